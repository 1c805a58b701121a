//! The one test harness. Only this module names `engine_auth`'s types
//! (settings, application, state, store, clock), so a rename in `src/`
//! changes the harness and no test.
//!
//! - [`TestApp`] (`app.rs`): the server in process, on a clock tests move.
//! - [`Sandbox`] / [`Daemon`] (`daemon.rs`): the built binary and its CLI.
//! - [`Api`] (`api.rs`): typed requests, for either of them.
//! - [`Reply`] (`http.rs`): every response; the one error-shape asserter.
//! - `jwt.rs`: the one JWT signer and decoder; `tls.rs`: [`https`], one
//!   exchange with the daemon's pinned self-signed certificate.
//! - [`npm_ci`] (`npm.rs`): npm packages the tests run, installed once
//!   from their lock files.
//! - [`store`]: a stopped daemon's store, opened by the test.
//! - [`compat`]: engine-auth's domain rules, for the compat suite's
//!   expectations.

// Each suite uses only some of the helpers.
#![allow(dead_code)]

mod api;
mod app;
pub mod compat;
mod daemon;
mod http;
mod jwt;
mod npm;
pub mod store;
mod tls;
mod verifiers;

pub use api::Api;
pub use app::{TestApp, self_signed_tls, tls_fingerprint};
pub use daemon::{Daemon, Sandbox, healthcheck, text};
pub use http::{
    Reply, TokenPair, healthy, id_of, keys, message, raw_request, raw_request_unchecked,
    read_response, send, send_unchecked,
};
pub use jwt::{
    b64, b64_json, claims_of, decode_jwt, forge, header, kid_of, random_secret, sign, with_payload,
};
pub use npm::npm_ci;
pub use tls::https;
pub use verifiers::{Verifier, VerifierKind};

use engine_auth::config::{Argon2Params, Settings};
use reqwest::Client;
use serde_json::Value;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The seeded admin's password in every test server and daemon
/// (`hardening::bad_input` spells it out inside a raw body).
pub const ADMIN_PASSWORD: &str = "admin-test-password";
/// A password that satisfies the rules, for users the tests create.
pub const USER_PASSWORD: &str = "user-test-password";

/// The six role flags, in the API's order.
pub const ALL_ROLES: [&str; 6] = ["admin", "flows", "configure", "subscribe", "write", "read"];

/// A role profile with exactly the named flags set, all six keys present.
pub fn roles(flags: &[&str]) -> Value {
    for f in flags {
        assert!(ALL_ROLES.contains(f), "unknown role flag {f:?} in test");
    }
    let map: serde_json::Map<String, Value> = ALL_ROLES
        .iter()
        .map(|name| (name.to_string(), Value::Bool(flags.contains(name))))
        .collect();
    Value::Object(map)
}

/// The six flags set by the seeded admin.
pub fn all_roles() -> Value {
    roles(&ALL_ROLES)
}

/// Settings for an in-process test server in `dir`: port 0, cheap argon2
/// (production parameters are exercised by the binary tests), one worker,
/// two concurrent hashes, the admin seeded with [`ADMIN_PASSWORD`].
fn test_settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::new(dir);
    s.listen = "127.0.0.1:0".parse().expect("literal address");
    s.argon2 = Argon2Params {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    };
    s.workers = 1;
    s.max_concurrent_hashes = 2;
    s.admin_password = Some(ADMIN_PASSWORD.into());
    s
}

/// Settings adjustment: new keys are EdDSA (published in the JWKS), and
/// verifiers may cache the set for `jwks_max_age` seconds.
pub fn eddsa(s: &mut Settings, jwks_max_age: u64) {
    s.signing_alg = engine_auth::keys::KeyAlg::EdDSA;
    s.jwks_max_age_secs = jwks_max_age;
}

/// Settings adjustment: Prometheus metrics on 127.0.0.1:`port`.
pub fn metrics_on(s: &mut Settings, port: u16) {
    s.metrics_listen = Some(format!("127.0.0.1:{port}").parse().expect("addr"));
}

/// A port nothing listens on right now (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// The tests' HTTP client: no proxy, a 30 s timeout, and a fresh
/// connection per request (no stale pooled connection after a 413 or a
/// server-side close).
pub fn http_client() -> Client {
    client_builder().build().expect("http client")
}

/// An HTTP client whose connections come from `ip` (any 127.0.0.0/8
/// address works on Linux loopback), so one test can play several clients.
pub fn client_from(ip: &str) -> Client {
    let ip: IpAddr = ip.parse().expect("literal address");
    client_builder()
        .local_address(ip)
        .build()
        .expect("http client")
}

fn client_builder() -> reqwest::ClientBuilder {
    Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
}

/// Seconds since the Unix epoch on the system clock (what a server on an
/// unmoved clock reads).
pub fn now() -> u64 {
    engine_auth::clock::unix_now()
}

/// The RFC 6238 code (HMAC-SHA-1, 6 digits, 30 s steps) of the base32
/// `secret` at Unix time `time`, as an authenticator app computes it:
/// totp-rs directly, not engine-auth's own code.
pub fn totp_at(secret: &str, time: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .expect("a base32 TOTP secret");
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .expect("an RFC 6238 TOTP")
        .generate(time)
}

/// The one polling loop: checks `cond` every 50 ms until it holds, failing
/// the test after `secs`. For another process (a daemon becoming ready or
/// exiting, a log line, a lock released), never for the server's clock.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (at most a second) until a new second starts on the system clock,
/// so that the next few requests most likely fall within one second of the
/// server's clock. Not a timing assertion and not a way to let time pass
/// (move [`TestApp::clock`] for that): a test uses it to make a same-second
/// edge case likely, and passes either way.
pub async fn start_of_a_second() {
    let t = now() + 1;
    while now() < t {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}
