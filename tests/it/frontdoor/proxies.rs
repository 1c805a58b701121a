//! nginx (`auth_request`) and Caddy (`forward_auth`) protecting a service
//! with engine-auth, each run from the configuration README shows
//! (`examples/forward-auth/`), its addresses replaced by the test's ports.
//! For each: without a credential the service is unreachable; with one it
//! is reached and sees the user headers (never ones the client forged);
//! a path requiring a role refuses a user without it; a browser signed in
//! through the proxy in cookie mode is let through by its access cookie;
//! a deleted user is refused at once.

use super::{Seen, Upstream};
use crate::harness::{ADMIN_PASSWORD, Reply, TestApp, free_port, send_unchecked, wait_until};
use reqwest::Method;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A proxy process, killed when dropped.
struct Proxy {
    name: &'static str,
    port: u16,
    child: Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The shipped example with the test's ports in place of the documented
/// ones (engine-auth on 8443, the service on 1880).
fn example(name: &str, auth_port: u16, upstream_port: u16) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/forward-auth")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.contains("127.0.0.1:8443") && text.contains("127.0.0.1:1880"));
    text.replace("127.0.0.1:8443", &format!("127.0.0.1:{auth_port}"))
        .replace("127.0.0.1:1880", &format!("127.0.0.1:{upstream_port}"))
}

fn start(name: &'static str, port: u16, dir: tempfile::TempDir, mut cmd: Command) -> Proxy {
    let log = dir.path().join("proxy.log");
    let out = std::fs::File::create(&log).expect("log");
    let child = cmd
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {name} (install Debian's {name} package): {e}"));
    let mut proxy = Proxy {
        name,
        port,
        child,
        log,
        _dir: dir,
    };
    wait_until(20, &format!("{name} listening on {port}"), || {
        if let Ok(Some(status)) = proxy.child.try_wait() {
            panic!("{name} exited ({status}):\n{}", proxy.logs());
        }
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    proxy
}

fn nginx(auth_port: u16, upstream_port: u16) -> Proxy {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let site = example("nginx.conf", auth_port, upstream_port)
        .replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
    assert!(site.contains(&format!("listen 127.0.0.1:{port};")));
    let d = dir.path().display();
    std::fs::write(dir.path().join("site.conf"), site).expect("site");
    // Everything an unprivileged, foreground nginx needs in its own dir.
    let main = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         include {d}/site.conf;\n}}\n"
    );
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, main).expect("nginx.conf");
    let mut cmd = Command::new("nginx");
    cmd.arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.path().join("error.log"));
    start("nginx", port, dir, cmd)
}

fn caddy(auth_port: u16, upstream_port: u16) -> Proxy {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let site = example("Caddyfile", auth_port, upstream_port)
        .replace(":80 {", &format!("http://127.0.0.1:{port} {{"));
    assert!(site.contains(&format!("http://127.0.0.1:{port} {{")));
    // No admin endpoint, no certificates, nothing kept outside the dir.
    let file = format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}");
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, file).expect("Caddyfile");
    let mut cmd = Command::new("caddy");
    cmd.args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&path)
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"));
    start("caddy", port, dir, cmd)
}

/// A request through the proxy, its response read whole (not engine-auth's
/// own, so without the security-header check).
async fn through(
    proxy: &Proxy,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<String>,
) -> Reply {
    let client = crate::harness::http_client();
    let mut rb = client.request(method, format!("http://127.0.0.1:{}{path}", proxy.port));
    for (n, v) in headers {
        rb = rb.header(*n, v.as_str());
    }
    if let Some(b) = body {
        rb = rb.header("Content-Type", "application/json").body(b);
    }
    send_unchecked(rb).await.context(proxy.name)
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

/// The user headers the service saw.
fn user_of(seen: &Seen) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        seen.header("x-auth-user"),
        seen.header("x-auth-user-id"),
        seen.header("x-auth-roles"),
    )
}

async fn protects_the_service(proxy: Proxy, app: &TestApp, upstream: &Upstream) {
    let name = proxy.name;
    let admin = app.admin_token().await;
    let (alice_id, alice) = app.user_with_token(&admin, "alice", &["read"]).await;
    let (bob_id, bob) = app.user_with_token(&admin, "bob", &["flows", "read"]).await;

    // No credential, or a bad one: the service is never reached.
    for headers in [vec![], vec![bearer("not.a.token")]] {
        let r = through(&proxy, Method::GET, "/dashboard", &headers, None).await;
        assert_eq!(r.status(), 401, "{name}: {}", r.text());
    }
    assert_eq!(upstream.hits(), 0, "{name}: reached without a credential");

    // A valid token: reached, with the user headers, whatever the client
    // claimed in its own.
    let forged = [
        bearer(&alice),
        ("X-Auth-User", "admin".to_string()),
        ("X-Auth-Roles", "admin,flows".to_string()),
    ];
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let r = through(&proxy, method.clone(), "/dashboard?x=1", &forged, None).await;
        assert_eq!(r.status(), 200, "{name} {method}: {}", r.text());
        assert_eq!(r.text(), "upstream");
        let seen = upstream.last();
        assert_eq!(seen.path, "/dashboard?x=1", "{name}");
        assert_eq!(
            user_of(&seen),
            (Some("alice"), Some(alice_id.as_str()), Some("read")),
            "{name} {method}: the service saw {:?}",
            seen.headers
        );
    }

    // A path that requires the flows role.
    let hits = upstream.hits();
    let r = through(&proxy, Method::GET, "/flows/x", &[bearer(&alice)], None).await;
    assert_eq!(r.status(), 403, "{name}: {}", r.text());
    assert_eq!(upstream.hits(), hits, "{name}: reached without the role");
    let r = through(&proxy, Method::GET, "/flows/x", &[bearer(&bob)], None).await;
    assert_eq!(r.status(), 200, "{name}: {}", r.text());
    assert_eq!(
        user_of(&upstream.last()),
        (Some("bob"), Some(bob_id.as_str()), Some("flows,read")),
        "{name}"
    );

    // A browser signs in through the proxy (cookie mode) and navigates by
    // its access cookie alone.
    let login = json!({"username": "admin", "password": ADMIN_PASSWORD, "mode": "cookie"});
    let r = through(
        &proxy,
        Method::POST,
        "/api/v1/auth/login",
        &[],
        Some(login.to_string()),
    )
    .await;
    assert_eq!(
        r.status(),
        200,
        "{name}: login through the proxy: {}",
        r.text()
    );
    let cookies: Vec<String> = r
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .filter_map(|(_, c)| c.split(';').next())
        .map(str::to_string)
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("engine_auth_access=")),
        "{name}: {cookies:?}"
    );
    let jar = ("Cookie", cookies.join("; "));
    let r = through(&proxy, Method::GET, "/", std::slice::from_ref(&jar), None).await;
    assert_eq!(r.status(), 200, "{name}: by cookie: {}", r.text());
    assert_eq!(upstream.last().header("x-auth-user"), Some("admin"));
    // The refresh cookie works through the proxy too (same origin).
    let r = through(
        &proxy,
        Method::POST,
        "/api/v1/auth/refresh",
        &[
            jar.clone(),
            ("Origin", format!("http://127.0.0.1:{}", proxy.port)),
        ],
        Some("{}".into()),
    )
    .await;
    assert_eq!(r.status(), 200, "{name}: refresh by cookie: {}", r.text());

    // Deleting a user shuts the door at once.
    app.delete_user(&admin, &alice_id).await.ok_json();
    let hits = upstream.hits();
    let r = through(&proxy, Method::GET, "/dashboard", &[bearer(&alice)], None).await;
    assert_eq!(r.status(), 401, "{name}: a deleted user: {}", r.text());
    assert_eq!(upstream.hits(), hits);
}

#[actix_web::test]
async fn nginx_auth_request_lets_through_exactly_who_engine_auth_allows() {
    let app = TestApp::spawn().await;
    let upstream = Upstream::start();
    let proxy = nginx(app.port, upstream.port);
    protects_the_service(proxy, &app, &upstream).await;
}

#[actix_web::test]
async fn caddy_forward_auth_lets_through_exactly_who_engine_auth_allows() {
    let app = TestApp::spawn().await;
    let upstream = Upstream::start();
    let proxy = caddy(app.port, upstream.port);
    protects_the_service(proxy, &app, &upstream).await;
}
