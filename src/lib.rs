//! engine-auth: the flow engine's authorization API as one small daemon.
//! See ARCHITECTURE.md for the map; `main.rs` only calls [`cli::main`].

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod domain;
pub mod hex;
pub mod http;
pub mod keys;
pub mod lifecycle;
pub mod password;
pub mod startup;
pub mod store;
pub mod systemd;
pub mod throttle;
pub mod tls;
pub mod tokens;
pub mod tune;

/// Seconds since the Unix epoch (u64 everywhere, also on 32-bit ARM).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
