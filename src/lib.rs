//! engine-auth: the flow engine's authorization API as one small daemon.
//! See ARCHITECTURE.md for the map; `main.rs` only calls [`cli::main`].

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod accounts;
pub mod admin;
pub mod apikey;
pub mod audit;
pub mod backups;
pub mod bootstrap;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod hex;
pub mod http;
pub mod keys;
pub mod lifecycle;
pub mod metrics;
pub mod mfa;
pub mod password;
pub mod startup;
pub mod state;
pub mod store;
pub mod systemd;
pub mod throttle;
pub mod tls;
pub mod tokens;
pub mod tune;

#[cfg(test)]
mod invariants;

pub use clock::unix_now;
