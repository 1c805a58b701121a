//! The harness, two ways.
//!
//! In process (zero-to-production style): [`spawn_app_with`] builds an
//! `Application` on the test's own actix runtime with port 0, a temporary
//! data dir and cheap argon2, and keeps its `ServerHandle` and `AppState`,
//! so a test can rotate keys, run housekeeping, or move the server's clock
//! ([`TestApp::clock`]).
//!
//! As an operator runs it: [`Daemon`] starts the built `engine-auth`
//! binary on a free port, and [`cli`] runs its subcommands against the same
//! data dir. Children are killed when the guard drops, also when a test
//! panics.

pub use crate::common::*;

use actix_web::dev::ServerHandle;
use actix_web::web;
use engine_auth::clock::Clock;
use engine_auth::config::Settings;
use engine_auth::startup::Application;
use engine_auth::state::AppState;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The `kid` header of a JWT.
pub fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT header")
        .kid
        .expect("every token names its key")
}

/// An in-process server on the test's actix runtime.
pub struct TestApp {
    /// `http://127.0.0.1:PORT/api/v1/auth`
    pub api: String,
    pub client: Client,
    pub handle: ServerHandle,
    pub state: web::Data<AppState>,
    /// The server's clock: tests move it instead of sleeping.
    pub clock: Clock,
    run: Option<actix_web::rt::task::JoinHandle<anyhow::Result<()>>>,
    // Last: removed after the server is told to stop.
    data_dir: Option<TempDir>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server whose settings `adjust` may change (TTLs, grace, limits).
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp data dir");
    start_in(dir, Clock::system(), adjust).await
}

/// Starts a server on an existing (or empty) data dir.
pub async fn start_in(
    data_dir: TempDir,
    clock: Clock,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = test_settings(data_dir.path());
    // Like the binary tests' `--max-concurrent-hashes 2`.
    settings.max_concurrent_hashes = 2;
    adjust(&mut settings);
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .expect("the test server failed to start");
    let api = format!("http://127.0.0.1:{}/api/v1/auth", app.port());
    let handle = app.handle();
    let state = app.state();
    let run = actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        api,
        client: http_client(),
        handle,
        state,
        clock,
        run: Some(run),
        data_dir: Some(data_dir),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command; the runtime ends with the test anyway.
        drop(self.handle.stop(false));
    }
}

impl TestApp {
    /// Stops the server gracefully (it flushes the store) and returns its
    /// data dir.
    pub async fn stop(mut self) -> TempDir {
        self.handle.stop(true).await;
        if let Some(run) = self.run.take() {
            run.await
                .expect("the server task panicked")
                .expect("the server stopped with an error");
        }
        self.data_dir.take().expect("data dir")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut rb = self.client.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        crate::common::send(rb).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post(
            "/login",
            None,
            &json!({ "username": username, "password": password }),
        )
        .await
    }

    /// Logs in and asserts success.
    pub async fn login_ok(&self, username: &str, password: &str) -> TokenPair {
        pair_of(&json_ok(self.login(username, password).await).await)
    }

    pub async fn admin(&self) -> TokenPair {
        self.login_ok("admin", ADMIN_PASSWORD).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post("/refresh", None, &json!({ "refreshToken": refresh_token }))
            .await
    }

    /// Refreshes and asserts success; checks the rotation happened.
    pub async fn refresh_ok(&self, refresh_token: &str) -> TokenPair {
        let pair = pair_of(&json_ok(self.refresh(refresh_token).await).await);
        assert_ne!(
            pair.refresh_token, refresh_token,
            "a refresh must return a new refresh token"
        );
        pair
    }

    /// Creates a user with `USER_PASSWORD` and returns its id.
    pub async fn create_user(&self, admin: &str, name: &str, flags: &[&str]) -> String {
        let body = json!({ "username": name, "password": USER_PASSWORD, "roles": roles(flags) });
        let body = json_ok(self.post("/user", Some(admin), &body).await).await;
        body["_id"].as_str().expect("_id").to_string()
    }

    /// A call any valid access token may make for its own user.
    pub async fn own_roles(&self, token: &str, id: &str) -> Response {
        self.send(Method::GET, &format!("/user/roles/{id}"), Some(token), None)
            .await
    }

    /// An admin-only call.
    pub async fn list_users(&self, token: &str) -> Response {
        self.send(Method::GET, "/users", Some(token), None).await
    }

    pub async fn set_roles(&self, token: &str, id: &str, flags: &[&str]) -> Response {
        let body = json!({ "roles": roles(flags) });
        self.send(
            Method::PATCH,
            &format!("/user/roles/{id}"),
            Some(token),
            Some(&body),
        )
        .await
    }

    pub async fn set_password(&self, token: &str, id: &str, body: &Value) -> Response {
        self.send(
            Method::PATCH,
            &format!("/user/password/{id}"),
            Some(token),
            Some(body),
        )
        .await
    }

    pub async fn delete_user(&self, token: &str, id: &str) -> Response {
        self.send(Method::DELETE, &format!("/user/{id}"), Some(token), None)
            .await
    }

    pub async fn logout(&self, token: Option<&str>, body: &Value) -> Response {
        self.post("/logout", token, body).await
    }

    /// Asserts that every access token is refused by `GET /user/roles/{id}`
    /// and every refresh token by `/refresh`, all with 401.
    pub async fn assert_all_revoked(&self, id: &str, pairs: &[&TokenPair], why: &str) {
        for (i, p) in pairs.iter().enumerate() {
            let resp = self.own_roles(&p.token, id).await;
            assert_status(
                resp,
                StatusCode::UNAUTHORIZED,
                &format!("{why}: access token #{i}"),
            )
            .await;
        }
        for (i, p) in pairs.iter().enumerate() {
            let resp = self.refresh(&p.refresh_token).await;
            assert_status(
                resp,
                StatusCode::UNAUTHORIZED,
                &format!("{why}: refresh token #{i}"),
            )
            .await;
        }
    }
}

/// Asserts the status and returns the error message (`message` of the JSON
/// error body; empty for a success).
pub async fn assert_status(resp: Response, want: StatusCode, what: &str) -> String {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    assert_eq!(
        status, want,
        "{what}: expected {want}, got {status}: {text}"
    );
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The real binary.

pub const BIN: &str = env!("CARGO_BIN_EXE_engine-auth");

/// A command for the binary with a clean environment (no ENGINE_AUTH_*,
/// STATE_DIRECTORY, NOTIFY_SOCKET or CREDENTIALS_DIRECTORY from the host).
pub fn bin() -> Command {
    let mut c = Command::new(BIN);
    c.env_clear().env("RUST_LOG", "info").stdin(Stdio::null());
    c
}

/// Runs a CLI subcommand against `data_dir` (cheap argon2) and returns its
/// output, whatever the exit status.
pub fn cli(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = bin();
    c.args(args).arg("--data-dir").arg(data_dir).args([
        "--argon2-memory-kib",
        "256",
        "--argon2-iterations",
        "1",
    ]);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run the engine-auth CLI")
}

/// Runs a CLI subcommand and asserts it succeeded; returns its stdout.
pub fn cli_ok(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = cli(data_dir, args, env);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "engine-auth {args:?} failed ({}): stdout {stdout:?} stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `keys list` rows as (kid, state).
pub fn keys_list(data_dir: &Path) -> Vec<(String, String)> {
    let out = cli_ok(data_dir, &["keys", "list"], &[]);
    let mut lines = out.lines();
    assert_eq!(
        lines
            .next()
            .map(|h| h.split('\t').next().unwrap_or_default()),
        Some("kid"),
        "keys list starts with a header: {out:?}"
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.split('\t');
            let kid = cols.next().unwrap_or_default().to_string();
            let state = cols.next().unwrap_or_default().to_string();
            (kid, state)
        })
        .collect()
}

/// A running `engine-auth serve`; killed (SIGKILL) when dropped.
pub struct Daemon {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    pub http: reqwest::blocking::Client,
}

/// A scratch directory holding a daemon's data dir (`data/`) and its logs.
pub struct DaemonDir {
    pub root: TempDir,
}

impl DaemonDir {
    pub fn new() -> DaemonDir {
        DaemonDir {
            root: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }
}

impl Daemon {
    /// Starts `engine-auth serve` on a free port with cheap argon2, one
    /// worker, and `extra` flags; waits until `/health` answers.
    pub fn start(dir: &DaemonDir, extra: &[&str]) -> Daemon {
        let port = free_port();
        let log = dir
            .root
            .path()
            .join(format!("daemon-{port}-{}.log", nanos()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = bin()
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.data())
            .args(["--argon2-memory-kib", "256", "--argon2-iterations", "1"])
            .args(["--workers", "1", "--max-concurrent-hashes", "2"])
            .args(extra)
            .env("ENGINE_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn engine-auth serve");
        let mut d = Daemon {
            child,
            port,
            log,
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("blocking http client"),
        };
        d.wait_healthy();
        d
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://127.0.0.1:{}/health", self.port);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "the daemon exited ({status}) before it was healthy:\n{}",
                    self.logs()
                );
            }
            if let Ok(r) = self.http.get(&url).timeout(Duration::from_secs(2)).send()
                && r.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not become healthy in time:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/api/v1/auth{path}", self.port)
    }

    pub fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::blocking::Response {
        let mut rb = self.http.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        rb.send().expect("request to the daemon failed to complete")
    }

    pub fn login(&self, username: &str, password: &str) -> reqwest::blocking::Response {
        let body = json!({ "username": username, "password": password });
        self.send(Method::POST, "/login", None, Some(&body))
    }

    pub fn login_ok(&self, username: &str, password: &str) -> TokenPair {
        pair_of(&blocking_json_ok(self.login(username, password)))
    }

    pub fn refresh(&self, refresh_token: &str) -> reqwest::blocking::Response {
        let body = json!({ "refreshToken": refresh_token });
        self.send(Method::POST, "/refresh", None, Some(&body))
    }

    pub fn refresh_ok(&self, refresh_token: &str) -> TokenPair {
        pair_of(&blocking_json_ok(self.refresh(refresh_token)))
    }

    /// `GET /users` with a bearer token; returns the status.
    pub fn list_users(&self, token: &str) -> StatusCode {
        self.send(Method::GET, "/users", Some(token), None).status()
    }

    /// Sends a signal with kill(1).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// SIGKILL, then reap.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(mut self) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                assert!(status.success(), "SIGTERM exit {status}:\n{}", self.logs());
                return;
            }
            assert!(Instant::now() < deadline, "the daemon ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts 200 with a JSON body (blocking client) and returns the body.
pub fn blocking_json_ok(resp: reqwest::blocking::Response) -> Value {
    let status = resp.status();
    let url = resp.url().clone();
    let text = resp.text().expect("body");
    assert_eq!(status, StatusCode::OK, "{url} answered {status}: {text}");
    serde_json::from_str(&text).expect("200 body is JSON")
}

/// A value that differs between calls (for unique file names).
pub fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Polls `cond` every 50 ms until it holds or `secs` pass.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sleeps until the system clock (the one the servers read, in whole
/// seconds) shows at least `t`. Not a timing assertion: it only makes sure
/// a server will see at least that much time passed.
pub async fn clock_reaches(t: u64) {
    while engine_auth::unix_now() < t {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sleeps until a new second starts, so that the next few requests most
/// likely fall within one second of the server's clock.
pub async fn start_of_a_second() {
    clock_reaches(engine_auth::unix_now() + 1).await;
}
