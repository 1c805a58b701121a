//! What the three integration-test crates (`api`, `hardening`, `lifecycle`)
//! share: the test passwords and role profiles, cheap server settings, the
//! in-process server on its own thread, the HTTP client, and JWT and JSON
//! helpers. Each crate includes this file with `#[path = "../common/mod.rs"]`
//! and re-exports it from its own `helpers.rs`, which keeps what only that
//! crate needs. (Cargo builds only `tests/*/main.rs` as test targets, so this
//! file is not a test crate of its own.)

// Each test crate uses only a subset of these helpers.
#![allow(dead_code)]

use actix_web::dev::ServerHandle;
use actix_web::web;
use base64::prelude::{BASE64_URL_SAFE_NO_PAD, Engine as _};
use engine_auth::config::{Argon2Params, Settings};
use engine_auth::startup::Application;
use engine_auth::state::AppState;
use engine_auth::store::Store;
use reqwest::{Client, ClientBuilder, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// The seeded admin's password in every test server (and in the binary).
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

/// argon2id cheap enough for tests; production parameters are exercised by
/// the binary tests.
pub fn cheap_argon2() -> Argon2Params {
    Argon2Params {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    }
}

/// Settings for an in-process test server in `dir`: port 0, cheap argon2,
/// one worker, the admin seeded with [`ADMIN_PASSWORD`].
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::new(dir);
    s.listen = "127.0.0.1:0".parse().expect("literal address");
    s.argon2 = cheap_argon2();
    s.workers = 1;
    s.admin_password = Some(ADMIN_PASSWORD.into());
    s
}

/// A port nothing listens on right now (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// The tests' HTTP client settings: no proxy, a 30 s timeout, and a fresh
/// connection per request (no stale pooled connection after a 413 or a
/// server-side close).
pub fn http_client_builder() -> ClientBuilder {
    Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
}

pub fn http_client() -> Client {
    http_client_builder().build().expect("http client")
}

/// An in-process server on its own thread with its own actix `System`, so
/// that a test may block without stalling it. Dropping it (also when a test
/// panics) stops the server and waits for the thread, so the store is
/// flushed before the data dir goes.
pub struct ServerThread {
    pub port: u16,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    /// Starts `Application` on its own thread; returns once it listens (or
    /// with the error `Application::build` gave). The state is handed out,
    /// not kept, so that a caller that drops it lets a stopped server
    /// release its store.
    pub async fn start(settings: Settings) -> anyhow::Result<(ServerThread, web::Data<AppState>)> {
        type Started = (u16, ServerHandle, web::Data<AppState>);
        let (tx, rx) = tokio::sync::oneshot::channel::<anyhow::Result<Started>>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match Application::build(settings).await {
                    Ok(app) => {
                        let _ = tx.send(Ok((app.port(), app.handle(), app.state())));
                        if let Err(e) = app.run_until_stopped().await {
                            panic!("test server stopped with an error: {e:#}");
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })
        });
        match rx.await {
            Ok(Ok((port, handle, state))) => Ok((
                ServerThread {
                    port,
                    handle,
                    thread: Some(thread),
                },
                state,
            )),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                anyhow::bail!("the server thread died before reporting")
            }
        }
    }

    /// Stops the server gracefully (it flushes the store) and waits for it.
    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the test server thread panicked");
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // `stop` sends the command at once; the returned future only
            // waits for completion, which joining the thread also does.
            drop(self.handle.stop(false));
            let _ = thread.join();
        }
    }
}

/// The store's active signing key: (kid, secret).
pub fn active_signing_key(store: &Store) -> (String, Vec<u8>) {
    let kid = store.active_kid().expect("active kid");
    let rec = store
        .keys()
        .expect("keys")
        .into_iter()
        .find(|k| k.kid == kid)
        .expect("active key record");
    let secret = engine_auth::hex::decode::<32>(&rec.secret_hex).expect("a 32-byte hex secret");
    (kid, secret.to_vec())
}

/// Sends a request; no request in these suites may ever be answered with 500.
pub async fn send(rb: RequestBuilder) -> Response {
    let resp = rb.send().await.expect("request failed to complete");
    assert_ne!(
        resp.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "the server answered 500 to {}",
        resp.url()
    );
    resp
}

pub fn content_type(resp: &Response) -> String {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Asserts 200 with a JSON body and returns the body.
pub async fn json_ok(resp: Response) -> Value {
    let status = resp.status();
    let url = resp.url().clone();
    let is_json = content_type(&resp).starts_with("application/json");
    let text = resp.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{url} answered {status}: {text}");
    assert!(is_json, "{url}: 200 without a JSON content type");
    serde_json::from_str(&text).expect("200 body is JSON")
}

/// Sorted keys of a JSON object.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("expected a JSON object, got {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

/// The message of an error body.
pub fn message(body: &Value) -> String {
    body["message"].as_str().unwrap_or_default().to_string()
}

/// An access / refresh token pair as `/login` and `/refresh` return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub token: String,
    pub refresh_token: String,
}

/// The pair in a token response body.
pub fn pair_of(body: &Value) -> TokenPair {
    let field = |name: &str| {
        body[name]
            .as_str()
            .unwrap_or_else(|| panic!("token response without {name}: {body}"))
            .to_string()
    };
    TokenPair {
        token: field("token"),
        refresh_token: field("refreshToken"),
    }
}

// ---- JWTs ----------------------------------------------------------------

pub fn b64(bytes: &[u8]) -> String {
    BASE64_URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64_json(v: &Value) -> String {
    b64(&serde_json::to_vec(v).expect("json"))
}

/// One base64url JSON segment of a JWT.
fn jwt_part(s: &str) -> Value {
    let bytes = BASE64_URL_SAFE_NO_PAD
        .decode(s)
        .unwrap_or_else(|e| panic!("JWT part is not base64url ({e}): {s}"));
    serde_json::from_slice(&bytes).expect("JWT part is JSON")
}

/// Decodes a JWT's header and payload without verifying anything.
pub fn decode_jwt(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token}");
    (jwt_part(parts[0]), jwt_part(parts[1]))
}

/// The claims of a JWT, unverified (the test only reads them).
pub fn claims_of(token: &str) -> Value {
    jwt_part(token.split('.').nth(1).expect("a JWT has a payload"))
}

/// 32 bytes that are not the server's key.
pub fn random_secret() -> Vec<u8> {
    let mut v = uuid::Uuid::new_v4().as_bytes().to_vec();
    v.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    v
}

pub fn now() -> u64 {
    engine_auth::unix_now()
}
