//! Node-RED's editor and admin API with engine-auth as its `adminAuth`:
//! a real Node-RED 4 (`tests/node-red/`, pinned by its lock file and
//! installed with `npm ci` on first use) run from the shipped
//! `examples/node-red/settings.js` and `engine-auth-admin-auth.js`, only
//! engine-auth's address and Node-RED's port replaced. An engine-auth
//! access token with `flows` reaches everything, one with `read` only reads,
//! anything else is refused; revocation and role changes (which revoke the
//! user's tokens) count at the next request (Node-RED asks `tokens()` for
//! each one and caches nothing). The editor's comms websocket takes the same
//! tokens (checked once, when it opens: see README).

use crate::harness::{TestApp, USER_PASSWORD, free_port, npm_ci, roles, wait_until};
use reqwest::Method;
use serde_json::{Value, json};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// `tests/node-red/`
fn node_red_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node-red")
}

/// `examples/node-red/<name>`, as shipped.
fn shipped(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/node-red")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ensure_installed() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        npm_ci(
            &node_red_dir(),
            "node-red",
            "node-red-install.lock",
            "the Node-RED tests (frontdoor::node_red runs Node-RED from tests/node-red/; \
             `cargo test --test it -- --skip frontdoor::node_red` skips them)",
        );
    });
}

/// A running Node-RED, killed when dropped.
struct NodeRed {
    port: u16,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for NodeRed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeRed {
    /// Node-RED with the shipped settings, asking engine-auth on `auth_port`.
    fn start(auth_port: u16) -> NodeRed {
        ensure_installed();
        let dir = tempfile::tempdir().expect("tempdir");
        // The module sits beside the settings file, as README says.
        std::fs::write(
            dir.path().join("engine-auth-admin-auth.js"),
            shipped("engine-auth-admin-auth.js"),
        )
        .expect("module");
        let template = shipped("settings.js");
        assert!(
            template.contains("\"http://127.0.0.1:8443\"") && template.contains("uiPort: 1880,")
        );
        let red = node_red_dir().join("node_modules/node-red/red.js");
        // free_port() releases the port before Node-RED binds it; should
        // another process take it meanwhile, Node-RED exits: try again.
        let mut dir = Some(dir);
        for attempt in 1..=5 {
            let d = dir.take().expect("dir");
            let port = free_port();
            let settings = template
                .replace("127.0.0.1:8443", &format!("127.0.0.1:{auth_port}"))
                .replace("uiPort: 1880,", &format!("uiPort: {port},"));
            let settings_path = d.path().join("settings.js");
            std::fs::write(&settings_path, settings).expect("settings.js");
            let log = d.path().join(format!("node-red-{attempt}.log"));
            let out = File::create(&log).expect("log");
            let child = Command::new("node")
                .arg(&red)
                .arg("--settings")
                .arg(&settings_path)
                .arg("--userDir")
                .arg(d.path().join("user"))
                .stdout(out.try_clone().expect("log"))
                .stderr(out)
                .stdin(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run node: {e}"));
            let mut nr = NodeRed {
                port,
                child,
                log,
                _dir: d,
            };
            let mut exited = false;
            wait_until(60, &format!("Node-RED listening on {port}"), || {
                if let Ok(Some(_)) = nr.child.try_wait() {
                    exited = true;
                    return true;
                }
                nr.logs().contains("Server now running at")
                    && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            if !exited {
                return nr;
            }
            let logs = nr.logs();
            assert!(
                logs.contains("in use") || logs.contains("EADDRINUSE"),
                "Node-RED exited:\n{logs}"
            );
            let _ = nr.child.wait();
            // Keep the temp dir for the next attempt.
            let placeholder = tempfile::tempdir().expect("tempdir");
            dir = Some(std::mem::replace(&mut nr._dir, placeholder));
        }
        panic!("Node-RED: no free port after 5 attempts")
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One admin API request: its status and body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String) {
        let client = crate::harness::http_client();
        let mut rb = client.request(
            method.clone(),
            format!("http://127.0.0.1:{}{path}", self.port),
        );
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("Node-RED {method} {path}: {e}\n{}", self.logs()));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    async fn status(&self, method: Method, path: &str, token: Option<&str>) -> u16 {
        let body = (method == Method::POST).then(|| json!([]));
        self.call(method, path, token, body).await.0
    }

    /// `GET /settings`' user: (username, permissions).
    async fn user(&self, token: &str) -> (String, String) {
        let (status, body) = self.call(Method::GET, "/settings", Some(token), None).await;
        assert_eq!(status, 200, "GET /settings: {body}");
        let v: Value = serde_json::from_str(&body).expect("GET /settings is JSON");
        (
            v["user"]["username"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            v["user"]["permissions"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }

    /// (GET /settings, GET /flows, POST /flows) for `token`.
    async fn access(&self, token: Option<&str>) -> (u16, u16, u16) {
        (
            self.status(Method::GET, "/settings", token).await,
            self.status(Method::GET, "/flows", token).await,
            self.status(Method::POST, "/flows", token).await,
        )
    }
}

/// Everything (POST /flows deploys: 204).
const FULL: (u16, u16, u16) = (200, 200, 204);
/// Reads; a write is refused with 401 (Node-RED's answer to a missing
/// permission).
const READ_ONLY: (u16, u16, u16) = (200, 200, 401);
const NONE: (u16, u16, u16) = (401, 401, 401);

#[actix_web::test]
async fn node_red_admin_api_admits_exactly_engine_auth_users_by_role() {
    let app = TestApp::spawn().await;
    let nr = NodeRed::start(app.port);
    let admin = app.admin_token().await;
    let (_, flows) = app
        .user_with_token(&admin, "jürgen", &["flows", "read"])
        .await;
    let (_, reader) = app.user_with_token(&admin, "rita", &["read"]).await;
    let (_, writer) = app
        .user_with_token(&admin, "wolf", &["write", "subscribe", "configure"])
        .await;

    // No token, a garbage one: nothing.
    assert_eq!(nr.access(None).await, NONE);
    assert_eq!(nr.access(Some("not.a.token")).await, NONE);
    // flows: everything, as the user engine-auth named (UTF-8 intact).
    assert_eq!(nr.access(Some(&flows)).await, FULL);
    assert_eq!(nr.user(&flows).await, ("jürgen".into(), "*".into()));
    // read: reads only.
    assert_eq!(nr.access(Some(&reader)).await, READ_ONLY);
    assert_eq!(nr.user(&reader).await, ("rita".into(), "read".into()));
    // Neither flag (other flags do not count): nothing.
    assert_eq!(nr.access(Some(&writer)).await, NONE);
    // The admin's flows flag gives it everything.
    assert_eq!(nr.access(Some(&admin)).await, FULL);
    // Node-RED offers no password login of its own.
    let (status, _) = nr
        .call(Method::POST, "/auth/token", None, Some(json!({})))
        .await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn node_red_refuses_a_revoked_token_or_a_deleted_user_at_once() {
    let app = TestApp::spawn().await;
    let nr = NodeRed::start(app.port);
    let admin = app.admin_token().await;
    let (_, alice) = app.user_with_token(&admin, "alice", &["flows"]).await;
    let (bob_id, bob) = app.user_with_token(&admin, "bob", &["flows"]).await;
    assert_eq!(nr.access(Some(&alice)).await, FULL);
    assert_eq!(nr.access(Some(&bob)).await, FULL);

    app.logout(Some(&alice), &json!({"all": true}))
        .await
        .ok_json();
    assert_eq!(nr.access(Some(&alice)).await, NONE);

    app.delete_user(&admin, &bob_id).await.ok_json();
    assert_eq!(nr.access(Some(&bob)).await, NONE);
}

#[actix_web::test]
async fn node_red_follows_role_changes_at_once() {
    let app = TestApp::spawn().await;
    let nr = NodeRed::start(app.port);
    let admin = app.admin_token().await;
    let (id, mut token) = app
        .user_with_token(&admin, "carol", &["flows", "read"])
        .await;
    assert_eq!(nr.access(Some(&token)).await, FULL);

    for (flags, expected) in [
        (&["read"][..], READ_ONLY),
        (&["write"][..], NONE),
        (&["flows"][..], FULL),
    ] {
        app.set_roles(&admin, &id, roles(flags)).await.ok_json();
        // engine-auth revokes the user's tokens on a role change: the token
        // Node-RED saw a moment ago is refused at the next request ...
        assert_eq!(nr.access(Some(&token)).await, NONE, "{flags:?}: old token");
        // ... and a new login gets exactly the new flags' access.
        token = app.login_ok("carol", USER_PASSWORD).await.token;
        assert_eq!(nr.access(Some(&token)).await, expected, "{flags:?}");
    }
}

/// The editor's comms websocket, authenticated as the editor does: it opens
/// `/comms` and sends `{"auth": <token>}`; Node-RED answers `{"auth":"ok"}`
/// or `{"auth":"fail"}` (and closes). A minimal client over std's TCP.
fn comms_auth(port: u16, token: &str) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let mut w = stream.try_clone().expect("clone");
    write!(
        w,
        "GET /comms HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("handshake");
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    assert!(line.starts_with("HTTP/1.1 101"), "comms: {line}");
    while line != "\r\n" {
        line.clear();
        r.read_line(&mut line).expect("header");
    }
    // One masked text frame from the client.
    let payload = json!({ "auth": token }).to_string().into_bytes();
    let mask = [0x5a, 0x13, 0xc7, 0x01];
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(n).expect("short").to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    w.write_all(&frame).expect("auth frame");
    // The first text frame back (the server's frames are not masked).
    loop {
        let mut head = [0u8; 2];
        r.read_exact(&mut head).expect("frame head");
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                r.read_exact(&mut b).expect("length");
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                r.read_exact(&mut b).expect("length");
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let mut body = vec![0; usize::try_from(len).expect("length")];
        r.read_exact(&mut body).expect("frame body");
        match head[0] & 0x0f {
            1 => return String::from_utf8(body).expect("text frame"),
            8 => return "closed".into(),
            _ => continue,
        }
    }
}

#[actix_web::test]
async fn node_red_editor_comms_websocket_takes_engine_auth_tokens() {
    let app = TestApp::spawn().await;
    let nr = NodeRed::start(app.port);
    let admin = app.admin_token().await;
    let (_, flows) = app.user_with_token(&admin, "alice", &["flows"]).await;
    let (_, reader) = app.user_with_token(&admin, "rita", &["read"]).await;
    let (_, writer) = app.user_with_token(&admin, "wolf", &["write"]).await;
    let ok = r#"{"auth":"ok"}"#;
    let fail = r#"{"auth":"fail"}"#;
    assert_eq!(comms_auth(nr.port, &flows), ok);
    assert_eq!(comms_auth(nr.port, &reader), ok);
    assert_eq!(comms_auth(nr.port, &writer), fail);
    assert_eq!(comms_auth(nr.port, "not.a.token"), fail);
    // A revoked token opens no new connection.
    app.logout(Some(&flows), &json!({"all": true}))
        .await
        .ok_json();
    assert_eq!(comms_auth(nr.port, &flows), fail);
}
