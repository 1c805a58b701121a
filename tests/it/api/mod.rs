//! One integration-test binary (`cargo test --test api`): every module
//! drives a real engine-auth over real HTTP, `binary` runs the built
//! executable as an operator would.

mod bad_input;
mod binary;
mod health;
mod login;
mod password;
mod roles;
mod token_claims;
mod tokens_attacks;
mod users;
