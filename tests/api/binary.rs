//! The built `engine-auth` executable, run as an operator would: fresh data
//! dir, a free port, logs captured to a file. Every child process is killed
//! when its guard drops, also when a test panics.

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

use crate::helpers::{decode_jwt, free_port, roles};

const BIN: &str = env!("CARGO_BIN_EXE_engine-auth");
const READY_DEADLINE: Duration = Duration::from_secs(20);
const CHEAP_ARGON2: [&str; 4] = ["--argon2-memory-kib", "256", "--argon2-iterations", "1"];

fn http() -> Client {
    Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("blocking client")
}

/// A scratch directory: the data dir is `<root>/data` (created by the
/// daemon on first start); daemon logs go to `<root>/log-N.txt`.
struct Sandbox {
    root: TempDir,
    runs: usize,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            root: tempfile::tempdir().expect("temp dir"),
            runs: 0,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn data_dir_str(&self) -> String {
        self.data_dir()
            .to_str()
            .expect("utf-8 temp path")
            .to_string()
    }

    /// Starts `engine-auth serve` on a free port without waiting for it.
    fn spawn_serve(&mut self, envs: &[(&str, &str)], cheap_argon2: bool) -> Daemon {
        self.runs += 1;
        let port = free_port();
        let log = self.root.path().join(format!("log-{}.txt", self.runs));
        let out = fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file handle");
        let data_dir = self.data_dir_str();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["serve", "--listen", &listen, "--data-dir", &data_dir];
        if cheap_argon2 {
            args.extend(CHEAP_ARGON2);
        }
        let child = command(&args, envs)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn engine-auth serve");
        Daemon {
            child,
            port,
            log,
            exited: None,
        }
    }

    /// Starts `serve` and waits until `/health` answers.
    fn serve(&mut self, envs: &[(&str, &str)]) -> Daemon {
        let mut d = self.spawn_serve(envs, true);
        d.wait_ready();
        d
    }

    /// Every daemon log written in this sandbox so far.
    fn all_logs(&self) -> String {
        (1..=self.runs)
            .map(|n| {
                fs::read_to_string(self.root.path().join(format!("log-{n}.txt")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// No secret (password or token) may appear in any daemon log.
    fn assert_logs_free_of(&self, secrets: &[&str]) {
        let logs = self.all_logs();
        assert!(!logs.is_empty(), "the daemon logged nothing at all");
        for s in secrets {
            assert!(!s.is_empty());
            assert!(
                !logs.contains(s),
                "a secret ({}…) appears in the daemon's log:\n{logs}",
                &s[..s.len().min(6)]
            );
        }
    }
}

/// A command for the binary with a clean environment: nothing from the
/// test runner's environment (`ENGINE_AUTH_*`, `STATE_DIRECTORY`,
/// `CREDENTIALS_DIRECTORY`, `RUST_LOG`) leaks in.
fn command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// Runs an offline CLI command to completion.
fn cli(args: &[&str], envs: &[(&str, &str)]) -> Output {
    command(args, envs)
        .stdin(Stdio::null())
        .output()
        .expect("run engine-auth")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Daemon {
    child: Child,
    port: u16,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Daemon {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let client = http();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                panic!(
                    "engine-auth exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            if client
                .get(self.url("/health"))
                .send()
                .is_ok_and(|r| r.status() == StatusCode::OK)
            {
                return;
            }
            assert!(
                start.elapsed() < READY_DEADLINE,
                "engine-auth not ready after {READY_DEADLINE:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit on its own.
    fn wait_exit(&mut self) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return status;
            }
            assert!(
                start.elapsed() < READY_DEADLINE,
                "engine-auth did not exit within {READY_DEADLINE:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit on its own, failing at once if it
    /// starts serving instead.
    fn wait_exit_unless_ready(&mut self) -> ExitStatus {
        let client = http();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return status;
            }
            if client
                .get(self.url("/health"))
                .send()
                .is_ok_and(|r| r.status() == StatusCode::OK)
            {
                panic!(
                    "engine-auth started serving; it should have refused:\n{}",
                    self.log()
                );
            }
            assert!(
                start.elapsed() < READY_DEADLINE,
                "engine-auth neither served nor exited within {READY_DEADLINE:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("wait");
        self.exited = Some(status);
    }

    /// SIGTERM, as systemd stops it; returns the exit status.
    fn sigterm(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -TERM {pid} failed");
        self.wait_exit()
    }

    fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        let resp = http()
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .expect("login request");
        let status = resp.status();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// Logs in, asserts 200, returns (access, refresh).
    fn login_ok(&self, username: &str, password: &str) -> (String, String) {
        let (status, body) = self.login(username, password);
        assert_eq!(status, StatusCode::OK, "login {username:?}: {body}");
        (
            body["token"].as_str().expect("token").to_string(),
            body["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .to_string(),
        )
    }

    fn create_user(&self, token: &str, username: &str, password: &str, roles: Value) -> String {
        let resp = http()
            .post(self.url("/api/v1/auth/user"))
            .bearer_auth(token)
            .json(&json!({ "username": username, "password": password, "roles": roles }))
            .send()
            .expect("create user request");
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().expect("json");
        body["_id"].as_str().expect("_id").to_string()
    }
}

/// Deterministic junk (xorshift), so a failure reproduces byte for byte.
fn junk(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[test]
fn first_start_generates_the_admin_password_into_a_0600_file_and_logs_only_its_path() {
    let mut sb = Sandbox::new();
    // Production argon2 parameters here (the default), nothing configured.
    let mut d = sb.spawn_serve(&[], false);
    d.wait_ready();

    let file = sb.data_dir().join("initial-admin-password");
    let meta = fs::metadata(&file).expect("initial-admin-password exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "file mode");
    let content = fs::read_to_string(&file).expect("readable");
    let password = content.strip_suffix('\n').unwrap_or(&content).to_string();
    assert!(password.len() >= 16, "a strong generated password");
    assert!(!password.contains(char::is_whitespace));

    let log = d.log();
    assert!(
        log.contains(file.to_str().expect("utf-8 path")),
        "the log names the password file:\n{log}"
    );
    let (token, refresh) = d.login_ok("admin", &password);
    assert_eq!(decode_jwt(&token).1["roles"], json!(159));

    d.sigkill();
    sb.assert_logs_free_of(&[&password, &token, &refresh]);
}

#[test]
fn sigkill_right_after_a_200_loses_nothing_and_a_restart_never_reseeds() {
    let mut sb = Sandbox::new();
    let original = "original-admin-pw";
    let mut secrets: Vec<String> = vec![original.into(), "something-else".into()];

    // First start: the admin password comes from the environment.
    let mut d = sb.serve(&[("ENGINE_AUTH_ADMIN_PASSWORD", original)]);
    assert!(
        !sb.data_dir().join("initial-admin-password").exists(),
        "no generated password file when one was configured"
    );
    let (admin, refresh) = d.login_ok("admin", original);
    secrets.extend([admin.clone(), refresh]);
    d.create_user(
        &admin,
        "survivor",
        "survivor-pw-1",
        roles(&["read", "write"]),
    );
    d.sigkill();

    // Second start, with a different admin password in the environment.
    let mut d = sb.serve(&[("ENGINE_AUTH_ADMIN_PASSWORD", "something-else")]);
    // The signing key is in the store: a token from before still verifies.
    let resp = http()
        .get(d.url("/api/v1/auth/users"))
        .bearer_auth(&admin)
        .send()
        .expect("users");
    assert_eq!(resp.status(), StatusCode::OK);
    let users: Vec<String> = resp.json().expect("json");
    assert_eq!(users, vec!["admin".to_string(), "survivor".to_string()]);
    let (user, user_refresh) = d.login_ok("survivor", "survivor-pw-1");
    assert_eq!(decode_jwt(&user).1["roles"], json!(3));
    let (admin, refresh) = d.login_ok("admin", original);
    let (status, _) = d.login("admin", "something-else");
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the admin was re-seeded");
    secrets.extend([user, user_refresh, admin.clone(), refresh]);
    assert!(!sb.data_dir().join("initial-admin-password").exists());

    // An update (password change) acknowledged right before a SIGKILL.
    let survivor_id = decode_jwt(&d.login_ok("survivor", "survivor-pw-1").0).1["_id"]
        .as_str()
        .expect("_id")
        .to_string();
    let resp = http()
        .patch(d.url(&format!("/api/v1/auth/user/password/{survivor_id}")))
        .bearer_auth(&admin)
        .json(&json!({ "password": "survivor-pw-2" }))
        .send()
        .expect("password change");
    assert_eq!(resp.status(), StatusCode::OK);
    d.sigkill();

    let d = sb.serve(&[]);
    let (t, r) = d.login_ok("survivor", "survivor-pw-2");
    secrets.extend([t, r]);
    assert_eq!(
        d.login("survivor", "survivor-pw-1").0,
        StatusCode::UNAUTHORIZED
    );
    drop(d);

    // Authentication events are logged (with user and peer), secrets never.
    let logs = sb.all_logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("login") && l.contains("survivor") && l.contains("127.0.0.1")),
        "one log line per login, with username and peer address:\n{logs}"
    );
    secrets.extend(["survivor-pw-1".into(), "survivor-pw-2".into()]);
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    sb.assert_logs_free_of(&refs);
}

/// How the CLI is told the data dir.
#[derive(Clone, Copy)]
enum DirArg {
    /// `engine-auth user list --data-dir DIR`, as README shows it.
    FlagAfterAction,
    /// `ENGINE_AUTH_DATA_DIR=DIR engine-auth user list`.
    Environment,
}

fn user_cmd(sb: &Sandbox, how: DirArg, action: &[&str], envs: &[(&str, &str)]) -> Output {
    let dir = sb.data_dir_str();
    let mut args = vec!["user"];
    args.extend(action);
    let mut envs = envs.to_vec();
    match how {
        DirArg::FlagAfterAction => args.extend(["--data-dir", dir.as_str()]),
        DirArg::Environment => envs.push(("ENGINE_AUTH_DATA_DIR", dir.as_str())),
    }
    cli(&args, &envs)
}

/// `user add` must print the new id and nothing secret.
fn added_id(out: &Output, password: &str) -> String {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "user add failed:\n{}",
        text(&out.stderr)
    );
    assert!(!stdout.contains(password) && !text(&out.stderr).contains(password));
    let id = stdout.trim().to_string();
    uuid::Uuid::parse_str(&id).unwrap_or_else(|_| panic!("user add prints the id, got {stdout:?}"));
    id
}

fn user_administration_from_the_cli(how: DirArg) {
    let mut sb = Sandbox::new();
    let mut d = sb.serve(&[("ENGINE_AUTH_ADMIN_PASSWORD", "admin-pw-cli")]);

    // While the daemon runs, the CLI goes through its admin socket.
    let sock = sb.data_dir().join("admin.sock");
    let mode = fs::metadata(&sock)
        .expect("admin.sock exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "admin.sock mode");
    let out = user_cmd(&sb, how, &["list"], &[]);
    assert!(
        out.status.success(),
        "user list via the daemon:\n{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.ends_with("\t159\tadmin")),
        "{}",
        text(&out.stdout)
    );
    let out = user_cmd(
        &sb,
        how,
        &["add", "live-user", "--roles", "read,write"],
        &[("ENGINE_AUTH_PASSWORD", "live-user-pw")],
    );
    let live_id = added_id(&out, "live-user-pw");
    let (token, _) = d.login_ok("live-user", "live-user-pw");
    assert_eq!(decode_jwt(&token).1["_id"], json!(live_id));

    // A process holding the store without a reachable socket: refused,
    // clearly, and nothing changes.
    fs::remove_file(&sock).expect("remove admin.sock");
    let out = user_cmd(&sb, how, &["list"], &[]);
    assert!(
        !out.status.success(),
        "user list opened a store held by a running daemon"
    );
    let err = text(&out.stderr);
    assert!(err.contains("in use by a running daemon"), "stderr:\n{err}");
    let out = user_cmd(
        &sb,
        how,
        &["add", "too-early", "--roles", "read"],
        &[("ENGINE_AUTH_PASSWORD", "too-early-pw")],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("in use by a running daemon"));

    // SIGTERM: a clean stop with exit code 0.
    let status = d.sigterm();
    assert!(
        status.success(),
        "SIGTERM should exit 0, got {status}:\n{}",
        d.log()
    );

    // Stopped: the CLI opens the store itself.
    let out = user_cmd(
        &sb,
        how,
        &["add", "offline-user", "--roles", "read,write"],
        &[("ENGINE_AUTH_PASSWORD", "offline-user-pw")],
    );
    let id = added_id(&out, "offline-user-pw");
    let out = user_cmd(&sb, how, &["list"], &[]);
    assert!(
        out.status.success(),
        "user list failed:\n{}",
        text(&out.stderr)
    );
    let listing = text(&out.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l == format!("{id}\t3\toffline-user")),
        "user list shows id, role bits and name:\n{listing}"
    );
    assert!(
        listing.lines().any(|l| l.starts_with(&live_id)),
        "{listing}"
    );
    assert!(!listing.contains("too-early"), "{listing}");

    let d = sb.serve(&[]);
    let (token, refresh) = d.login_ok("offline-user", "offline-user-pw");
    let (_, claims) = decode_jwt(&token);
    assert_eq!(claims["_id"], json!(id));
    assert_eq!(claims["roles"], json!(3));
    assert_eq!(
        d.login("too-early", "too-early-pw").0,
        StatusCode::UNAUTHORIZED
    );
    drop(d);
    sb.assert_logs_free_of(&[
        "admin-pw-cli",
        "live-user-pw",
        "offline-user-pw",
        "too-early-pw",
        &token,
        &refresh,
    ]);
}

#[test]
fn user_commands_as_readme_shows_them_work_on_a_running_and_a_stopped_daemon() {
    user_administration_from_the_cli(DirArg::FlagAfterAction);
}

#[test]
fn user_commands_with_the_data_dir_from_the_environment() {
    user_administration_from_the_cli(DirArg::Environment);
}

#[test]
fn healthcheck_exits_0_while_running_and_non_zero_when_nothing_listens() {
    let mut sb = Sandbox::new();
    let mut d = sb.serve(&[("ENGINE_AUTH_ADMIN_PASSWORD", "admin-pw-health")]);

    for path in ["/health", "/api/v1/health"] {
        let url = d.url(path);
        let out = cli(&["healthcheck", "--url", &url], &[]);
        assert!(
            out.status.success(),
            "healthcheck {url}: {}",
            text(&out.stderr)
        );
    }
    let url = d.url("/health");
    d.sigkill();

    let out = cli(&["healthcheck", "--url", &url, "--timeout-secs", "2"], &[]);
    assert!(!out.status.success(), "healthcheck passed with no daemon");
    let nobody = format!("http://127.0.0.1:{}/health", free_port());
    let out = cli(
        &["healthcheck", "--url", &nobody, "--timeout-secs", "2"],
        &[],
    );
    assert!(!out.status.success());
}

/// Seeds a store (configured admin password, one extra user), SIGKILLs the
/// daemon (so sled has written no snapshot, as after a power cut), damages
/// `store/<file>`, and checks that `serve` refuses to start: non-zero exit,
/// a message naming the store, no listener, no new admin password file.
fn damaged_store_is_refused(file: &str) {
    let mut sb = Sandbox::new();
    let mut d = sb.serve(&[("ENGINE_AUTH_ADMIN_PASSWORD", "admin-pw-damage")]);
    let (admin, _) = d.login_ok("admin", "admin-pw-damage");
    d.create_user(&admin, "precious", "precious-pw-1", roles(&["read"]));
    d.sigkill();

    let target = sb.data_dir().join("store").join(file);
    let len = fs::metadata(&target)
        .map(|m| m.len() as usize)
        .unwrap_or(0)
        .max(4096);
    fs::write(&target, junk(len, 0x9E37_79B9_7F4A_7C15)).expect("damage the store");

    // No admin password configured: a (wrong) re-seed would generate one.
    let mut d = sb.spawn_serve(&[], true);
    let status = d.wait_exit_unless_ready();
    let log = d.log();
    assert!(
        !status.success(),
        "serve started on a damaged store ({file}):\n{log}"
    );
    assert!(
        log.contains(sb.data_dir().to_str().expect("utf-8"))
            && log.to_lowercase().contains("store"),
        "the message should name the store:\n{log}"
    );
    assert!(
        !sb.data_dir().join("initial-admin-password").exists(),
        "a new admin was seeded over existing data:\n{log}"
    );
    assert!(!log.contains("seeded"), "{log}");
}

#[test]
fn a_store_with_a_damaged_conf_file_stops_the_daemon_without_seeding() {
    damaged_store_is_refused("conf");
}

#[test]
fn a_store_with_a_damaged_db_file_stops_the_daemon_without_seeding() {
    damaged_store_is_refused("db");
}

#[test]
fn recover_admin_works_on_a_running_and_on_a_stopped_daemon() {
    let mut sb = Sandbox::new();
    let dir = sb.data_dir_str();
    let mut d = sb.serve(&[("ENGINE_AUTH_ADMIN_PASSWORD", "original-admin-pw")]);
    let (old_token, _) = d.login_ok("admin", "original-admin-pw");

    // A forgotten password on a device in the field: no restart needed.
    let out = cli(
        &["recover-admin", "--data-dir", &dir],
        &[("ENGINE_AUTH_ADMIN_PASSWORD", "newpassword123")],
    );
    assert!(
        out.status.success(),
        "recover-admin (running):\n{}",
        text(&out.stderr)
    );
    let printed = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !printed.contains("newpassword123"),
        "recover-admin printed the password"
    );
    let (token, _) = d.login_ok("admin", "newpassword123");
    assert_eq!(decode_jwt(&token).1["roles"], json!(159));
    assert_eq!(
        d.login("admin", "original-admin-pw").0,
        StatusCode::UNAUTHORIZED
    );
    assert!(d.sigterm().success());

    // On the stopped store.
    let out = cli(
        &["recover-admin", "--data-dir", &dir],
        &[("ENGINE_AUTH_ADMIN_PASSWORD", "offline-recovered-pw")],
    );
    assert!(
        out.status.success(),
        "recover-admin (stopped):\n{}",
        text(&out.stderr)
    );
    let d = sb.serve(&[]);
    let (new_token, _) = d.login_ok("admin", "offline-recovered-pw");
    assert_eq!(decode_jwt(&new_token).1["roles"], json!(159));
    assert_eq!(
        d.login("admin", "newpassword123").0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        d.login("admin", "original-admin-pw").0,
        StatusCode::UNAUTHORIZED
    );
    assert!(!sb.data_dir().join("initial-admin-password").exists());
    drop(d);
    sb.assert_logs_free_of(&[
        "original-admin-pw",
        "newpassword123",
        "offline-recovered-pw",
        &old_token,
        &token,
        &new_token,
    ]);
}

#[test]
fn offline_commands_never_create_a_store() {
    let sb = Sandbox::new();
    let dir = sb.data_dir_str();
    let out = cli(
        &["recover-admin", "--data-dir", &dir],
        &[("ENGINE_AUTH_ADMIN_PASSWORD", "newpassword123")],
    );
    assert!(!out.status.success());
    let out = cli(&["user", "list"], &[("ENGINE_AUTH_DATA_DIR", &dir)]);
    assert!(!out.status.success());
    assert!(
        !Path::new(&dir).join("store").exists(),
        "an offline command created a store"
    );
}
