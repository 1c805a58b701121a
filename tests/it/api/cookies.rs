//! Browser sessions: `expires` in every token response; `mode: "cookie"`,
//! where the refresh token lives in the HttpOnly cookie
//! `engine_auth_refresh` (set by login and refresh, read by refresh and
//! logout only); the CSRF rules for a request whose credential is that
//! cookie (application/json, and an `Origin`, when sent, that is the
//! origin the request was sent to).

use crate::harness::{
    ADMIN_PASSWORD, Api, Reply, TestApp, USER_PASSWORD, free_port, https, keys, roles,
    self_signed_tls, send,
};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const COOKIE: &str = "engine_auth_refresh";
/// The refresh lifetime with the default settings: 12 hours.
const REFRESH_SECS: u64 = 12 * 3600;

/// The `engine_auth_refresh` Set-Cookie line of a reply, if any.
fn set_cookie(r: &Reply) -> Option<String> {
    let mut lines = r
        .headers
        .iter()
        .filter(|(n, v)| n == "set-cookie" && v.starts_with(&format!("{COOKIE}=")));
    let line = lines.next().map(|(_, v)| v.clone());
    assert!(lines.next().is_none(), "{}: two refresh cookies", r.what);
    line
}

/// The value and the attributes of a Set-Cookie line.
fn parse_cookie(line: &str) -> (String, BTreeSet<String>) {
    let mut parts = line.split("; ");
    let value = parts
        .next()
        .and_then(|p| p.strip_prefix(&format!("{COOKIE}=")))
        .expect("name=value")
        .to_string();
    (value, parts.map(str::to_string).collect())
}

fn attributes(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

/// A cookie-mode reply's access token and refresh cookie, checked: the
/// body is exactly `{token, expires}`, the cookie has exactly the expected
/// attributes (`Secure` when `tls`).
fn cookie_reply(r: &Reply, max_age: u64, tls: bool) -> (String, String) {
    let body = r.ok_json();
    assert_eq!(keys(&body), ["expires", "token"], "{}: {body}", r.what);
    assert_eq!(body["expires"], json!(600_000), "{}", r.what);
    let line = set_cookie(r).unwrap_or_else(|| panic!("{}: no refresh cookie", r.what));
    let (value, attrs) = parse_cookie(&line);
    let max_age = format!("Max-Age={max_age}");
    let mut want = vec!["HttpOnly", "SameSite=Strict", "Path=/api/v1/auth", &max_age];
    if tls {
        want.push("Secure");
    }
    assert_eq!(attrs, attributes(&want), "{}: {line}", r.what);
    assert!(value.split('.').count() == 3, "{}: {line}", r.what);
    (body["token"].as_str().expect("token").to_string(), value)
}

async fn cookie_login(app: &TestApp, username: &str, password: &str) -> (String, String) {
    let r = app
        .post_json(
            "/login",
            None,
            &json!({"username": username, "password": password, "mode": "cookie"}),
        )
        .await;
    cookie_reply(&r, REFRESH_SECS, false)
}

/// What a browser script would send: the cookie, a JSON body, and the
/// page's origin (`None`: no Origin header, as some browsers send
/// same-origin POSTs).
struct CookieRequest<'a> {
    path: &'a str,
    cookie: &'a str,
    body: &'a str,
    content_type: Option<&'a str>,
    origin: Option<String>,
    bearer: Option<&'a str>,
}

impl<'a> CookieRequest<'a> {
    fn new(app: &TestApp, path: &'a str, cookie: &'a str) -> CookieRequest<'a> {
        CookieRequest {
            path,
            cookie,
            body: "{}",
            content_type: Some("application/json"),
            origin: Some(format!("http://127.0.0.1:{}", app.port)),
            bearer: None,
        }
    }

    async fn send(&self, app: &TestApp) -> Reply {
        let mut rb = app
            .request(Method::POST, self.path, self.bearer)
            .header("Cookie", format!("{COOKIE}={}", self.cookie))
            .body(self.body.to_string());
        if let Some(ct) = self.content_type {
            rb = rb.header("Content-Type", ct);
        }
        if let Some(o) = &self.origin {
            rb = rb.header("Origin", o);
        }
        send(rb).await
    }
}

#[actix_web::test]
async fn every_token_response_says_in_milliseconds_when_the_access_token_expires() {
    let app = TestApp::spawn().await;
    let login = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(login.ok_json()["expires"], json!(600_000));
    assert_eq!(set_cookie(&login), None, "JSON mode sets no cookie");
    let pair = login.token_pair();
    let refreshed = app.refresh(&pair.refresh_token).await;
    assert_eq!(refreshed.ok_json()["expires"], json!(600_000));
    assert_eq!(set_cookie(&refreshed), None);
    refreshed.token_pair();
    // An explicit "json" is the default.
    let r = app
        .post_json(
            "/login",
            None,
            &json!({"username": "admin", "password": ADMIN_PASSWORD, "mode": "json"}),
        )
        .await;
    r.token_pair();
    // Another lifetime is reported as configured.
    let short = TestApp::spawn_with(|s| s.access_ttl_secs = 90).await;
    let r = short.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.ok_json()["expires"], json!(90_000));
}

#[actix_web::test]
async fn cookie_mode_keeps_the_refresh_token_out_of_the_body_in_an_httponly_cookie() {
    let app = TestApp::spawn().await;
    let (access, cookie) = cookie_login(&app, "admin", ADMIN_PASSWORD).await;
    assert_eq!(
        app.users(&access).await,
        ["admin"],
        "the access token works"
    );
    // The cookie is a working refresh token of its own session.
    let r = CookieRequest::new(&app, "/refresh", &cookie)
        .send(&app)
        .await;
    let (_, next) = cookie_reply(&r, REFRESH_SECS, false);
    assert_ne!(next, cookie, "a rotated token");
    // A mode that is neither is refused; so is a login failure, which
    // sets no cookie.
    let r = app
        .post_json(
            "/login",
            None,
            &json!({"username": "admin", "password": ADMIN_PASSWORD, "mode": "cookies"}),
        )
        .await;
    assert_eq!(
        r.error_message(400),
        "body/mode must be \"json\" or \"cookie\""
    );
    let r = app
        .post_json(
            "/login",
            None,
            &json!({"username": "admin", "password": "wrong password", "mode": "cookie"}),
        )
        .await;
    r.error(401);
    assert_eq!(set_cookie(&r), None);
    // The session's end caps the cookie's lifetime as it caps the token's.
    let capped = TestApp::spawn_with(|s| s.session_max_secs = 3600).await;
    let r = capped
        .post_json(
            "/login",
            None,
            &json!({"username": "admin", "password": ADMIN_PASSWORD, "mode": "cookie"}),
        )
        .await;
    cookie_reply(&r, 3600, false);
}

#[actix_web::test]
async fn over_tls_and_behind_a_trusted_tls_proxy_the_cookie_is_secure() {
    let plain_port = free_port();
    let app = TestApp::spawn_with(|s| {
        self_signed_tls(s, plain_port);
        s.trusted_proxies = vec!["127.0.0.2".parse().expect("ip")];
    })
    .await;
    let pin = app.self_signed_pin();
    let body =
        format!("{{\"username\":\"admin\",\"password\":\"{ADMIN_PASSWORD}\",\"mode\":\"cookie\"}}");
    let request = |extra: &str| {
        format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let r = https(app.port, &pin, &request("")).expect("TLS exchange");
    cookie_reply(&r, REFRESH_SECS, true);
    // Plain HTTP: no Secure (the browser would never send it back).
    let plain = Api::new(plain_port);
    let r = plain
        .post_json(
            "/login",
            None,
            &json!({"username": "admin", "password": ADMIN_PASSWORD, "mode": "cookie"}),
        )
        .await;
    cookie_reply(&r, REFRESH_SECS, false);
    // X-Forwarded-Proto counts from a trusted proxy only.
    let forwarded = |from: &str| {
        let api = plain.calling_from(from);
        async move {
            send(
                api.request(Method::POST, "/login", None)
                    .header("X-Forwarded-Proto", "https")
                    .json(
                        &json!({"username": "admin", "password": ADMIN_PASSWORD, "mode": "cookie"}),
                    ),
            )
            .await
        }
    };
    cookie_reply(&forwarded("127.0.0.2").await, REFRESH_SECS, true);
    cookie_reply(&forwarded("127.0.0.3").await, REFRESH_SECS, false);
}

#[actix_web::test]
async fn refresh_by_cookie_rotates_it_and_a_replayed_cookie_ends_the_session() {
    let app = TestApp::spawn_with(|s| s.refresh_grace_secs = 0).await;
    let (_, first) = cookie_login(&app, "admin", ADMIN_PASSWORD).await;
    let r = CookieRequest::new(&app, "/refresh", &first)
        .send(&app)
        .await;
    let (access, second) = cookie_reply(&r, REFRESH_SECS, false);
    assert_eq!(app.users(&access).await, ["admin"]);
    // The spent cookie replayed (a thief's copy): reuse, the whole session
    // is revoked, the current cookie with it.
    let r = CookieRequest::new(&app, "/refresh", &first)
        .send(&app)
        .await;
    assert!(
        r.error_message(401).contains("already used"),
        "{}",
        r.text()
    );
    let r = CookieRequest::new(&app, "/refresh", &second)
        .send(&app)
        .await;
    r.error(401);
    // A garbage cookie is a 401 like a garbage body token.
    let r = CookieRequest::new(&app, "/refresh", "not.a.token")
        .send(&app)
        .await;
    r.error(401);
}

#[actix_web::test]
async fn a_rotated_token_goes_back_the_way_it_came_unless_mode_says_otherwise() {
    let app = TestApp::spawn().await;
    let (_, cookie) = cookie_login(&app, "admin", ADMIN_PASSWORD).await;
    // Cookie in, JSON out when asked: no cookie set.
    let mut req = CookieRequest::new(&app, "/refresh", &cookie);
    req.body = r#"{"mode":"json"}"#;
    let r = req.send(&app).await;
    assert_eq!(set_cookie(&r), None);
    let pair = r.token_pair();
    // Body in, cookie out when asked.
    let r = app
        .post_json(
            "/refresh",
            None,
            &json!({"refreshToken": pair.refresh_token, "mode": "cookie"}),
        )
        .await;
    let (_, cookie) = cookie_reply(&r, REFRESH_SECS, false);
    // Body token and cookie both: the body's is the one used (and it
    // goes back in the body).
    let pair2 = app.admin_tokens().await;
    let mut req = CookieRequest::new(&app, "/refresh", &cookie);
    let body = json!({"refreshToken": pair2.refresh_token}).to_string();
    req.body = &body;
    let r = req.send(&app).await;
    assert_eq!(set_cookie(&r), None);
    r.token_pair();
    // The cookie was not spent by that: it still rotates.
    let r = CookieRequest::new(&app, "/refresh", &cookie)
        .send(&app)
        .await;
    cookie_reply(&r, REFRESH_SECS, false);
}

#[actix_web::test]
async fn neither_a_body_token_nor_a_cookie_is_the_originals_400() {
    let app = TestApp::spawn().await;
    for body in [json!({}), json!({"mode": "cookie"}), json!({"extra": 1})] {
        let r = app.post_json("/refresh", None, &body).await;
        assert_eq!(
            r.error_message(400),
            "body must have required property 'refreshToken'",
            "{body}"
        );
    }
}

#[actix_web::test]
async fn a_cookie_request_that_is_not_json_or_comes_from_another_origin_is_forbidden() {
    let app = TestApp::spawn().await;
    let (_, cookie) = cookie_login(&app, "admin", ADMIN_PASSWORD).await;
    let port = app.port;
    let other_origins = [
        "http://evil.example".to_string(),
        "null".to_string(),
        format!("http://127.0.0.1:{}", port + 1),
        format!("https://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}.evil.example"),
    ];
    for path in ["/refresh", "/logout"] {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonx"),
        ] {
            let mut req = CookieRequest::new(&app, path, &cookie);
            req.content_type = ct;
            let r = req.send(&app).await;
            assert!(
                r.error_message(403).contains("application/json"),
                "{path} {ct:?}: {}",
                r.text()
            );
        }
        for origin in &other_origins {
            let mut req = CookieRequest::new(&app, path, &cookie);
            req.origin = Some(origin.clone());
            let r = req.send(&app).await;
            assert!(
                r.error_message(403).contains("Origin"),
                "{path} {origin}: {}",
                r.text()
            );
        }
    }
    // None of that spent or ended anything: the cookie still rotates, from
    // the same origin, without an Origin header, and with a charset.
    let r = CookieRequest::new(&app, "/refresh", &cookie)
        .send(&app)
        .await;
    let (_, cookie) = cookie_reply(&r, REFRESH_SECS, false);
    let mut req = CookieRequest::new(&app, "/refresh", &cookie);
    req.origin = None;
    let (_, cookie) = cookie_reply(&req.send(&app).await, REFRESH_SECS, false);
    let mut req = CookieRequest::new(&app, "/refresh", &cookie);
    req.content_type = Some("Application/JSON; charset=utf-8");
    cookie_reply(&req.send(&app).await, REFRESH_SECS, false);
}

#[actix_web::test]
async fn logout_by_cookie_needs_no_bearer_ends_that_session_only_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let (access, cookie) = cookie_login(&app, "admin", ADMIN_PASSWORD).await;
    let other = app.admin_tokens().await;
    let r = CookieRequest::new(&app, "/logout", &cookie)
        .send(&app)
        .await;
    assert_eq!(r.ok_json(), json!({"result": "OK"}));
    let line = set_cookie(&r).expect("the cookie is cleared");
    let (value, attrs) = parse_cookie(&line);
    assert_eq!(value, "");
    assert!(attrs.contains("Max-Age=0"), "{line}");
    assert!(attrs.contains("Path=/api/v1/auth"), "{line}");
    // That session is over; the other session and the access token (which
    // expires on its own, as after any single-session logout) are not.
    CookieRequest::new(&app, "/refresh", &cookie)
        .send(&app)
        .await
        .error(401);
    app.refresh_ok(&other.refresh_token).await;
    assert_eq!(app.users(&access).await, ["admin"]);
}

#[actix_web::test]
async fn logout_with_a_bearer_and_another_users_cookie_is_forbidden() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_user_ok(&admin, "alice", USER_PASSWORD, roles(&["read"]))
        .await;
    let (_, admins_cookie) = cookie_login(&app, "admin", ADMIN_PASSWORD).await;
    let alice = app.login_ok("alice", USER_PASSWORD).await;
    let mut req = CookieRequest::new(&app, "/logout", &admins_cookie);
    req.bearer = Some(&alice.token);
    req.send(&app).await.error(403);
    // The admin's session lives on.
    let r = CookieRequest::new(&app, "/refresh", &admins_cookie)
        .send(&app)
        .await;
    cookie_reply(&r, REFRESH_SECS, false);
    // With "all", the bearer decides as before, and the cookie is cleared.
    let mut req = CookieRequest::new(&app, "/logout", &admins_cookie);
    req.bearer = Some(&alice.token);
    req.body = r#"{"all":true}"#;
    let r = req.send(&app).await;
    assert_eq!(r.ok_json(), json!({"result": "OK"}));
    assert!(set_cookie(&r).is_some_and(|l| l.contains("Max-Age=0")));
    app.refresh(&alice.refresh_token).await.error(401);
}

#[actix_web::test]
async fn no_call_but_refresh_and_logout_reads_the_cookie() {
    let app = TestApp::spawn().await;
    let (access, cookie) = cookie_login(&app, "admin", ADMIN_PASSWORD).await;
    let id: String = {
        let r = app.get_user_by_name(&access, "admin").await;
        r.ok_json()["_id"].as_str().expect("_id").to_string()
    };
    let with_cookie = |method: Method, path: String| {
        app.request(method, &path, None)
            .header("Cookie", format!("{COOKIE}={cookie}"))
            .header("Content-Type", "application/json")
            .header("Origin", format!("http://127.0.0.1:{}", app.port))
    };
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/users".into(), None),
        (Method::GET, "/user/admin".into(), None),
        (Method::GET, format!("/user/roles/{id}"), None),
        (Method::POST, format!("/user/logout/{id}"), None),
        (
            Method::POST,
            "/user".into(),
            Some(json!({"username": "x", "password": USER_PASSWORD, "roles": roles(&[])})),
        ),
        (Method::DELETE, format!("/user/{id}"), None),
    ];
    for (method, path, body) in calls {
        let mut rb = with_cookie(method.clone(), path.clone());
        if let Some(b) = body {
            rb = rb.body(b.to_string());
        }
        let r = send(rb).await;
        assert!(
            r.error_message(401).contains("bearer"),
            "{method} {path}: {}",
            r.text()
        );
    }
    // Logging out by cookie needs no bearer, but "all" does.
    let mut req = CookieRequest::new(&app, "/logout", &cookie);
    req.body = r#"{"all":true}"#;
    req.send(&app).await.error(401);
    // A bearer that fails is a 401 even with a good cookie.
    let mut req = CookieRequest::new(&app, "/logout", &cookie);
    req.bearer = Some("not.a.token");
    req.send(&app).await.error(401);
    let r = CookieRequest::new(&app, "/refresh", &cookie)
        .send(&app)
        .await;
    cookie_reply(&r, REFRESH_SECS, false);
}
