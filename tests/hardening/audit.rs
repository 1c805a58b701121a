//! The audit log of the real binary: one line per security event (login
//! ok / failed / throttled, refresh, reuse detected, logout, user created /
//! changed / deleted, key rotated) with a UTC time, the event, the
//! username, the user id where known and the client address; and never a
//! secret: the whole captured log is scanned for every password, token and
//! token signature the run used, the generated admin password, and any run
//! of 64 hex digits (what a signing key looks like).

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{decode_jwt, free_port, roles};

const BIN: &str = env!("CARGO_BIN_EXE_engine-auth");

fn client(from: &str) -> Client {
    Client::builder()
        .no_proxy()
        .local_address(from.parse::<std::net::IpAddr>().expect("address"))
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// The daemon, killed when dropped (also when the test panics).
struct Daemon {
    child: Child,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill {sig}");
    }
}

/// One call: (status, JSON body or Null).
fn call(
    c: &Client,
    d: &Daemon,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = c.request(m, d.url(&format!("/api/v1/auth{path}")));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().expect("request");
    let status = resp.status();
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{method} {path}");
    (status, resp.json().unwrap_or(Value::Null))
}

fn tokens(v: &Value) -> (String, String) {
    (
        v["token"].as_str().expect("token").to_string(),
        v["refreshToken"]
            .as_str()
            .expect("refreshToken")
            .to_string(),
    )
}

fn wait_for(log: &Path, what: &str) -> String {
    let start = Instant::now();
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if text.contains(what) {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what:?} never appeared in the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lines of the audit target whose message starts with `event=<event>`,
/// parsed as a log reader would: `[TIME LEVEL TARGET] MESSAGE` (so text
/// inside a quoted username cannot pass for an event).
fn events<'a>(log: &'a str, event: &str) -> Vec<&'a str> {
    let tag = format!("event={event} ");
    log.lines()
        .filter(|l| {
            l.split_once("] ").is_some_and(|(prefix, message)| {
                prefix.ends_with(" engine_auth::audit") && message.starts_with(&tag)
            })
        })
        .collect()
}

/// Exactly one line for `event` that contains every one of `parts`;
/// returns it.
fn one<'a>(log: &'a str, event: &str, parts: &[&str]) -> &'a str {
    let hits: Vec<&str> = events(log, event)
        .into_iter()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one event={event} line with {parts:?}, found {hits:?}; log:\n{log}"
    );
    hits[0]
}

/// The longest run of hex digits in `s`.
fn longest_hex_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[test]
fn the_audit_log_has_one_line_per_security_event_and_no_secret() {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    let log_path = root.path().join("engine-auth.log");
    let log_file = fs::File::create(&log_path).expect("log file");
    let port = free_port();
    let child = Command::new(BIN)
        .env_clear()
        .env("RUST_LOG", "info")
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data.to_str().expect("utf-8 path"),
            "--argon2-memory-kib",
            "256",
            "--argon2-iterations",
            "1",
            "--refresh-grace-secs",
            "0",
            "--throttle-after",
            "2",
            "--workers",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log handle"))
        .stderr(log_file)
        .spawn()
        .expect("spawn engine-auth serve");
    let d = Daemon { child, port };
    let local = client("127.0.0.1");
    let other = client("127.0.0.2");
    let start = Instant::now();
    while !local
        .get(d.url("/health"))
        .send()
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(start.elapsed() < Duration::from_secs(20), "not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every secret this run handles, to look for in the log at the end.
    let mut secrets: Vec<String> = Vec::new();
    let generated = fs::read_to_string(data.join("initial-admin-password"))
        .expect("a generated admin password");
    let admin_pw = generated.trim_end().to_string();
    secrets.push(admin_pw.clone());
    let (alice_pw, alice_pw2) = ("alice-first-pw".to_string(), "alice-second-pw".to_string());
    let wrong = ["wrong-guess-one", "wrong-guess-two", "wrong-guess-three"];
    secrets.extend([alice_pw.clone(), alice_pw2.clone()]);
    secrets.extend(wrong.iter().map(|s| s.to_string()));

    let login = |c: &Client, u: &str, p: &str| {
        call(
            c,
            &d,
            "POST",
            "/login",
            None,
            Some(json!({"username": u, "password": p})),
        )
    };

    // login_ok
    let (s, body) = login(&local, "admin", &admin_pw);
    assert_eq!(s, 200);
    let (admin, admin_refresh) = tokens(&body);
    let admin_id = decode_jwt(&admin).1["_id"]
        .as_str()
        .expect("_id")
        .to_string();
    secrets.extend([admin.clone(), admin_refresh.clone()]);
    // user_created
    let (s, body) = call(
        &local,
        &d,
        "POST",
        "/user",
        Some(&admin),
        Some(json!({"username": "alice", "password": alice_pw, "roles": roles(&["read"])})),
    );
    assert_eq!(s, 200);
    let alice_id = body["_id"].as_str().expect("_id").to_string();
    // login_failed, twice, then throttled (threshold 2)
    for pw in &wrong[..2] {
        assert_eq!(login(&local, "alice", pw).0, 401);
    }
    assert_eq!(login(&local, "alice", wrong[2]).0, 429);
    // A forged log line in a username stays inside its quotes.
    let forged =
        "mallory\n[2020-01-01T00:00:00Z INFO  engine_auth::audit] event=login_ok user=\"admin\"";
    assert_eq!(login(&local, forged, "whatever-pw").0, 401);
    // refresh, then reuse of the spent token after the (zero) grace window
    let (s, body) = call(
        &local,
        &d,
        "POST",
        "/refresh",
        None,
        Some(json!({"refreshToken": admin_refresh})),
    );
    assert_eq!(s, 200);
    let (a2, r2) = tokens(&body);
    secrets.extend([a2, r2]);
    std::thread::sleep(Duration::from_millis(1100));
    let (s, _) = call(
        &local,
        &d,
        "POST",
        "/refresh",
        None,
        Some(json!({"refreshToken": admin_refresh})),
    );
    assert_eq!(s, 401);
    let (s, _) = call(
        &local,
        &d,
        "POST",
        "/refresh",
        None,
        Some(json!({"refreshToken": "not.a.token"})),
    );
    assert_eq!(s, 401);
    // user changed: roles and password
    let (s, _) = call(
        &local,
        &d,
        "PATCH",
        &format!("/user/roles/{alice_id}"),
        Some(&admin),
        Some(json!({"roles": roles(&["read", "write"])})),
    );
    assert_eq!(s, 200);
    let (s, _) = call(
        &local,
        &d,
        "PATCH",
        &format!("/user/password/{alice_id}"),
        Some(&admin),
        Some(json!({"password": alice_pw2})),
    );
    assert_eq!(s, 200);
    // login_ok from another address (alice is throttled on 127.0.0.1)
    let (s, body) = login(&other, "alice", &alice_pw2);
    assert_eq!(s, 200);
    let (alice, alice_refresh) = tokens(&body);
    secrets.extend([alice.clone(), alice_refresh.clone()]);
    // logout (one session), logout_all (self), logout_all (by the admin)
    let (s, _) = call(
        &other,
        &d,
        "POST",
        "/logout",
        Some(&alice),
        Some(json!({"refreshToken": alice_refresh})),
    );
    assert_eq!(s, 200);
    let (s, _) = call(
        &other,
        &d,
        "POST",
        "/logout",
        Some(&alice),
        Some(json!({"all": true})),
    );
    assert_eq!(s, 200);
    let (s, _) = call(
        &local,
        &d,
        "POST",
        &format!("/user/logout/{alice_id}"),
        Some(&admin),
        None,
    );
    assert_eq!(s, 200);
    // user_deleted
    let (s, _) = call(
        &local,
        &d,
        "DELETE",
        &format!("/user/{alice_id}"),
        Some(&admin),
        None,
    );
    assert_eq!(s, 200);
    // key rotated (SIGHUP, as `systemctl reload` sends it)
    d.signal("-HUP");
    wait_for(&log_path, "event=key_rotated");
    // A token signed with the new key is logged like any other.
    let (s, body) = login(&local, "admin", &admin_pw);
    assert_eq!(s, 200);
    let (a3, r3) = tokens(&body);
    secrets.extend([a3, r3]);
    d.signal("-TERM");
    let log = wait_for(&log_path, "store flushed");

    // One line per event, with the username (Debug-quoted), id and peer.
    let peer1 = "peer=127.0.0.1";
    let peer2 = "peer=127.0.0.2";
    let admin_q = "user=\"admin\"";
    let alice_q = "user=\"alice\"";
    let admin_idp = format!("id={admin_id}");
    let alice_idp = format!("id={alice_id}");
    assert_eq!(events(&log, "login_ok").len(), 3, "{log}");
    one(&log, "login_ok", &[alice_q, &alice_idp, peer2]);
    one(
        &log,
        "user_created",
        &[alice_q, &alice_idp, "by=\"admin\"", peer1],
    );
    assert_eq!(events(&log, "login_failed").len(), 3, "{log}");
    assert_eq!(
        events(&log, "login_failed")
            .iter()
            .filter(|l| l.contains(alice_q) && l.contains(peer1))
            .count(),
        2
    );
    one(&log, "throttled", &[alice_q, "retry_after=", peer1]);
    one(&log, "refresh", &[admin_q, &admin_idp, peer1]);
    one(
        &log,
        "refresh_reuse_detected",
        &[admin_q, &admin_idp, peer1],
    );
    one(&log, "refresh_failed", &[peer1]);
    one(
        &log,
        "user_roles_changed",
        &[alice_q, &alice_idp, "by=\"admin\"", peer1],
    );
    one(
        &log,
        "user_password_changed",
        &[alice_q, &alice_idp, "by=\"admin\"", peer1],
    );
    one(&log, "logout", &[alice_q, &alice_idp, peer2]);
    one(&log, "logout_all", &[alice_q, &alice_idp, peer2]);
    one(
        &log,
        "logout_all",
        &[alice_q, &alice_idp, "by=\"admin\"", peer1],
    );
    one(
        &log,
        "user_deleted",
        &[alice_q, &alice_idp, "by=\"admin\"", peer1],
    );
    let rotated = one(&log, "key_rotated", &["kid="]);
    assert_eq!(log.matches("event=key_rotated").count(), 1);
    // Times are UTC (RFC 3339 with Z): "[2026-01-02T03:04:05Z INFO ...".
    for line in log.lines().filter(|l| l.contains("engine_auth::audit")) {
        let stamp = line
            .strip_prefix('[')
            .and_then(|l| l.split(' ').next())
            .unwrap_or_else(|| panic!("audit line without a timestamp: {line}"));
        assert!(stamp.ends_with('Z') && stamp.contains('T'), "{line}");
    }
    assert!(rotated.contains("engine_auth::audit"));
    // The forged line did not become a line of its own.
    assert!(
        !log.lines().any(|l| l.starts_with("[2020-01-01")),
        "a username forged a log line:\n{log}"
    );
    one(&log, "login_failed", &["mallory\\n[2020-01-01", peer1]);

    // No secret anywhere in the log: passwords, tokens, token parts.
    for s in &secrets {
        assert!(!s.is_empty());
        let mut needles = vec![s.as_str()];
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() == 3 {
            needles.push(parts[2]); // the signature
            needles.push(parts[1]); // the claims
        }
        for n in needles {
            assert!(
                !log.contains(n),
                "a secret ({}…) is in the log:\n{log}",
                &n[..n.len().min(8)]
            );
        }
    }
    assert!(!log.contains("$argon2"), "a password hash is in the log");
    // Signing keys are 64 hex digits; nothing of that shape may appear.
    for line in log.lines() {
        assert!(
            longest_hex_run(line) < 64,
            "key-like hex in the log: {line}"
        );
    }
}
