//! The harness: a real engine-auth per test (port 0, temporary data dir,
//! cheap argon2, one worker), driven over real HTTP with `reqwest`, or over
//! a raw TCP socket when the request must be malformed in ways `reqwest`
//! refuses to send.
//!
//! Each server runs on its own thread with its own actix `System` (built
//! with `Application::build`, served by `run_until_stopped`), so tests can
//! block on raw sockets without stalling it, and dropping the `TestApp`
//! (also when a test panics) stops the server, which flushes the store,
//! before the data dir is removed. `state` is the server's own shared
//! state: tests read the throttle tables and rotate or delete keys with it.
//!
//! Every response, whichever way it was obtained, goes through [`Reply`],
//! which fails the test on a 500 and on a missing security header.

// Everything shared but `ADMIN_PASSWORD`, `USER_PASSWORD`, `test_settings`
// and `send` (which mean something else here).
pub use crate::common::{b64, b64_json, decode_jwt, free_port, now, random_secret, roles};

use crate::common::{ServerThread, http_client_builder};

use actix_web::web;
use engine_auth::config::Settings;
use engine_auth::state::AppState;
use reqwest::{Client, Method, RequestBuilder};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::Duration;
use tempfile::TempDir;

/// The seeded admin's password in every test server (its own, not the
/// common one: `bad_input` spells it out inside a raw request body).
pub const ADMIN_PASSWORD: &str = "hardening-admin-pw";
/// A valid password for users the tests create.
pub const USER_PASSWORD: &str = "hardening-user-pw";

/// Settings for a test server in `dir`.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut s = crate::common::test_settings(dir);
    s.admin_password = Some(ADMIN_PASSWORD.into());
    s
}

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub port: u16,
    /// From 127.0.0.1, a fresh connection per request.
    pub client: Client,
    /// Held for its `Drop`, which stops the server.
    _server: ServerThread,
    /// The server's shared state (store, keyring, throttle, settings).
    pub state: web::Data<AppState>,
    // Declared last: dropped after the server has stopped.
    pub data_dir: TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A test server whose settings `adjust` may change.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let mut settings = test_settings(data_dir.path());
    adjust(&mut settings);
    let (server, state) = ServerThread::start(settings)
        .await
        .expect("the test server failed to start");
    TestApp {
        address: format!("http://127.0.0.1:{}", server.port),
        port: server.port,
        client: client_from("127.0.0.1"),
        _server: server,
        state,
        data_dir,
    }
}

/// An HTTP client whose connections come from `ip` (any 127.0.0.0/8
/// address works on Linux loopback), so one test can play several clients.
pub fn client_from(ip: &str) -> Client {
    let ip: IpAddr = ip.parse().expect("literal address");
    http_client_builder()
        .local_address(ip)
        .build()
        .expect("http client")
}

impl TestApp {
    /// Full URL of an API path: `api("/login")` is `.../api/v1/auth/login`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1/auth{}", self.address, path)
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let rb = self.client.request(method, self.api(path));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        send(self.request(Method::GET, path, token)).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        send(self.request(Method::POST, path, token).json(body)).await
    }

    /// POSTs raw bytes declared as `application/json`.
    pub async fn post_bytes(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
        send(
            self.request(Method::POST, path, token)
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.login_from(&self.client, username, password).await
    }

    pub async fn login_from(&self, client: &Client, username: &str, password: &str) -> Reply {
        send(
            client
                .post(self.api("/login"))
                .json(&json!({ "username": username, "password": password })),
        )
        .await
    }

    /// Logs in and asserts success; returns (access, refresh).
    pub async fn login_ok(&self, username: &str, password: &str) -> (String, String) {
        token_pair(&self.login(username, password).await)
    }

    pub async fn admin_token(&self) -> String {
        self.login_ok("admin", ADMIN_PASSWORD).await.0
    }

    pub async fn refresh_from(&self, client: &Client, refresh_token: &str) -> Reply {
        send(
            client
                .post(self.api("/refresh"))
                .json(&json!({ "refreshToken": refresh_token })),
        )
        .await
    }

    /// Creates a user and returns its id.
    pub async fn create_user_ok(&self, token: &str, username: &str, flags: &[&str]) -> String {
        let body =
            json!({ "username": username, "password": USER_PASSWORD, "roles": roles(flags) });
        let v = self.post_json("/user", Some(token), &body).await.ok_json();
        v["_id"].as_str().expect("_id").to_string()
    }

    /// The daemon still serves: `/health` answers 200 `{"status":"ok"}`.
    pub async fn assert_alive(&self) {
        let r = send(self.client.get(format!("{}/health", self.address))).await;
        assert_eq!(r.ok_json(), json!({"status": "ok"}), "/health");
    }

    /// Sends raw bytes on a fresh TCP connection and reads the response.
    pub fn raw(&self, request: &[u8]) -> Reply {
        raw_request(self.port, request)
    }

    /// See [`raw_request_unchecked`].
    pub fn raw_unchecked(&self, request: &[u8]) -> Reply {
        raw_request_unchecked(self.port, request)
    }

    /// The server's active signing key: (kid, secret).
    pub fn signing_key(&self) -> (String, Vec<u8>) {
        crate::common::active_signing_key(&self.state.store)
    }
}

/// A response, whichever way it was obtained. Building one asserts the two
/// properties every response must have: it is not a 500, and it carries
/// `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`.
#[derive(Debug, Clone)]
pub struct Reply {
    /// What was sent, for failure messages.
    pub what: String,
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn new(what: String, status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Reply {
        let r = Reply::unchecked(what, status, headers, body);
        r.assert_security_headers();
        r
    }

    /// Only the 500 check: for answers actix's HTTP/1 codec gives before a
    /// request reaches the application (an unparseable request head).
    fn unchecked(
        what: String,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Reply {
        let r = Reply {
            what,
            status,
            headers,
            body,
        };
        assert_ne!(
            r.status,
            500,
            "{}: the server answered 500: {}",
            r.what,
            r.text()
        );
        r
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn assert_security_headers(&self) {
        assert_eq!(
            self.header("x-content-type-options"),
            Some("nosniff"),
            "{}: X-Content-Type-Options on a {} response",
            self.what,
            self.status
        );
        assert_eq!(
            self.header("cache-control"),
            Some("no-store"),
            "{}: Cache-Control on a {} response",
            self.what,
            self.status
        );
    }

    /// Asserts 200 with a JSON body and returns the body.
    pub fn ok_json(&self) -> Value {
        assert_eq!(self.status, 200, "{}: {}", self.what, self.text());
        self.json()
    }

    fn json(&self) -> Value {
        let ctype = self.header("content-type").unwrap_or_default();
        assert!(
            ctype.starts_with("application/json"),
            "{}: Content-Type {ctype:?} on a {} response: {}",
            self.what,
            self.status,
            self.text()
        );
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {}", self.what, self.text()))
    }

    /// Asserts an error in the API's shape: `status`, JSON content type,
    /// `{statusCode, error, message}` with matching values. Returns the body.
    pub fn error(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}: expected {status}, got {}: {}",
            self.what,
            self.status,
            self.text()
        );
        let body = self.json();
        let reason = reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason());
        assert_eq!(
            body["statusCode"].as_u64(),
            Some(u64::from(status)),
            "{body}"
        );
        assert_eq!(body["error"].as_str(), reason, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: error without a message: {body}",
            self.what
        );
        let mut keys: Vec<&String> = body.as_object().expect("object").keys().collect();
        keys.sort();
        assert_eq!(keys, ["error", "message", "statusCode"], "{body}");
        body
    }

    /// The error message of an error response with `status`.
    pub fn error_message(&self, status: u16) -> String {
        self.error(status)["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Sends a request and captures the response as a [`Reply`].
pub async fn send(rb: RequestBuilder) -> Reply {
    let (client, req) = rb.build_split();
    let req = req.expect("request builds");
    let what = format!("{} {}", req.method(), req.url());
    let resp = client
        .execute(req)
        .await
        .unwrap_or_else(|e| panic!("{what}: request failed: {e:?}"));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp.bytes().await.expect("response body").to_vec();
    Reply::new(what, status, headers, body)
}

/// Reads a whole HTTP/1.1 response from `stream` (the request asked for
/// `Connection: close`, or the server closes after an error).
pub fn read_response(what: String, stream: &mut impl Read) -> Reply {
    let buf = read_all(&what, stream);
    parse_response(what, &buf, true)
}

fn read_all(what: &str, stream: &mut impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A reset after the response was sent (the server closed with
            // unread request bytes) still leaves a complete response.
            Err(_) if !buf.is_empty() => break,
            Err(e) => panic!("{what}: no response: {e}"),
        }
    }
    buf
}

fn parse_response(what: String, buf: &[u8], checked: bool) -> Reply {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "{what}: no complete response head: {:?}",
                String::from_utf8_lossy(buf)
            )
        });
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{what}: bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    if checked {
        Reply::new(what, status, headers, body)
    } else {
        Reply::unchecked(what, status, headers, body)
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..pos]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        data = &data[pos + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// Sends raw bytes to 127.0.0.1:`port` on a fresh connection.
pub fn raw_request(port: u16, request: &[u8]) -> Reply {
    raw_exchange(port, request, true)
}

/// Like [`raw_request`], for requests so broken that actix's HTTP/1 codec
/// answers them itself (no application, so no security headers): only the
/// "never 500" rule applies.
pub fn raw_request_unchecked(port: u16, request: &[u8]) -> Reply {
    raw_exchange(port, request, false)
}

fn raw_exchange(port: u16, request: &[u8], checked: bool) -> Reply {
    let first_line = request.split(|b| *b == b'\r').next().unwrap_or_default();
    let what = format!("raw {:?}", String::from_utf8_lossy(first_line));
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // The server may answer (413, 431) and close before it read everything.
    let _ = s.write_all(request);
    let buf = read_all(&what, &mut s);
    parse_response(what, &buf, checked)
}

// ---- JWTs ----------------------------------------------------------------

/// A token with exactly this header and payload, HMAC-signed with `secret`
/// using `alg` (whatever the header claims).
pub fn forge(
    header: &Value,
    claims: &Value,
    alg: jsonwebtoken::Algorithm,
    secret: &[u8],
) -> String {
    let message = format!("{}.{}", b64_json(header), b64_json(claims));
    let sig = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(secret),
        alg,
    )
    .expect("sign");
    format!("{message}.{sig}")
}

/// (access, refresh) from a 200 token response, checked to be exactly
/// `{token, refreshToken}`.
pub fn token_pair(r: &Reply) -> (String, String) {
    let body = r.ok_json();
    let obj = body.as_object().expect("object");
    assert_eq!(obj.len(), 2, "{body}");
    (
        body["token"].as_str().expect("token").to_string(),
        body["refreshToken"]
            .as_str()
            .expect("refreshToken")
            .to_string(),
    )
}
