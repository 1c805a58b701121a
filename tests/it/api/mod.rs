//! The HTTP contract (`cargo test --test it api::`): every module drives a
//! real engine-auth over real HTTP; `binary` runs the built executable as
//! an operator would (first start, user commands on a running and a
//! stopped daemon, healthcheck, a damaged store).

mod apikeys;
mod bad_input;
mod binary;
mod console;
mod cookies;
mod health;
mod login;
mod mfa;
mod password;
mod roles;
mod token_claims;
mod tokens_attacks;
mod users;
mod verify;
