//! One integration-test binary (`cargo test --test api`): every module
//! drives a real engine-auth over real HTTP, `binary` runs the built
//! executable as an operator would.

mod bad_input;
mod binary;
#[path = "../common/mod.rs"]
mod common;
mod health;
mod helpers;
mod login;
mod password;
mod roles;
mod startup;
mod token_claims;
mod tokens_attacks;
mod users;
