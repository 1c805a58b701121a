//! What the admin console reads, over HTTP: `GET /accounts`, `GET
//! /sessions` and `DELETE /sessions/{id}`, `GET /keys`, `GET /audit`, and
//! the console's own files at `/admin/` (CSP, caching by content hash).
//! Admin-only calls refuse other users (403) and anonymous callers (401);
//! bad ids and queries get a JSON 400 naming what is wrong.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, Reply, TestApp, USER_PASSWORD, keys, send, send_unchecked};

fn array(r: &Reply) -> Vec<Value> {
    r.ok_json().as_array().expect("a JSON array").clone()
}

/// A login from a browser named `agent`.
async fn login_as_browser(app: &TestApp, name: &str, password: &str, agent: &str) -> Value {
    send(
        app.client
            .post(app.api("/login"))
            .header("User-Agent", agent)
            .json(&json!({"username": name, "password": password})),
    )
    .await
    .ok_json()
}

#[actix_web::test]
async fn accounts_lists_roles_mfa_creation_and_last_login_to_admins_only() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let bob = app.add_user(&admin, "Bob", &["read", "write"]).await;

    let list = array(&app.get("/accounts", Some(&admin)).await);
    assert_eq!(list.len(), 2);
    let entry = list.iter().find(|u| u["_id"] == bob.as_str()).expect("bob");
    assert_eq!(
        keys(entry),
        [
            "_id",
            "createdAt",
            "lastLoginAt",
            "mfa",
            "roles",
            "username"
        ]
    );
    assert_eq!(entry["username"], "Bob");
    assert_eq!(entry["roles"]["write"], true);
    assert_eq!(entry["roles"]["admin"], false);
    assert_eq!(entry["mfa"], false);
    assert!(entry["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(entry["lastLoginAt"], Value::Null, "never logged in");
    // Ordered case-insensitively, as GET /users orders names.
    assert_eq!(list[0]["username"], "admin");

    let bob_token = app.login_ok("Bob", USER_PASSWORD).await.token;
    let list = array(&app.get("/accounts", Some(&admin)).await);
    let entry = list.iter().find(|u| u["_id"] == bob.as_str()).unwrap();
    let last = entry["lastLoginAt"].as_str().expect("a login time");
    assert!(last.len() == 24 && last.ends_with('Z'), "{last}");

    app.get("/accounts", Some(&bob_token))
        .await
        .context("a non-admin")
        .error(403);
    app.get("/accounts", None).await.error(401);
}

#[actix_web::test]
async fn sessions_are_listed_to_their_owner_and_admins_and_ended_by_id() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let bob = app.add_user(&admin, "bob", &["read"]).await;
    let carol_token = {
        app.add_user(&admin, "carol", &["read"]).await;
        app.login_ok("carol", USER_PASSWORD).await.token
    };
    let first = login_as_browser(&app, "bob", USER_PASSWORD, "Firefox/128 (first)").await;
    app.clock.advance(2);
    let second = login_as_browser(&app, "bob", USER_PASSWORD, "Chrome/131 (second)").await;
    let token = second["token"].as_str().unwrap();

    let mine = array(&app.get("/sessions", Some(token)).await);
    assert_eq!(mine.len(), 2);
    assert_eq!(
        keys(&mine[0]),
        [
            "address",
            "createdAt",
            "current",
            "id",
            "lastUsedAt",
            "userAgent"
        ]
    );
    assert_eq!(mine[0]["userAgent"], "Firefox/128 (first)", "oldest first");
    assert_eq!(mine[0]["address"], "127.0.0.1");
    assert_eq!(mine[0]["createdAt"], mine[0]["lastUsedAt"], "not refreshed");
    assert_eq!(
        (mine[0]["current"].as_bool(), mine[1]["current"].as_bool()),
        (Some(false), Some(true)),
        "the session of the access token presented is the current one"
    );

    // A refresh moves lastUsedAt, and the new access token is that session's.
    app.clock.advance(3);
    let rotated = app
        .refresh_ok(first["refreshToken"].as_str().unwrap())
        .await;
    let mine = array(&app.get("/sessions", Some(&rotated.token)).await);
    assert_ne!(mine[0]["createdAt"], mine[0]["lastUsedAt"]);
    assert_eq!(mine[0]["current"], true);
    assert_eq!(mine[1]["current"], false);

    // Another user's sessions: admins only; to others, as if unknown.
    let bob_path = format!("/sessions?userId={bob}");
    app.get(&bob_path, Some(&carol_token)).await.error(403);
    let id = mine[1]["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/sessions/{id}"), Some(&carol_token))
        .await
        .error(404);
    let theirs = array(&app.get(&bob_path, Some(&admin)).await);
    assert_eq!(theirs.len(), 2);
    assert!(theirs.iter().all(|s| s["current"] == false));

    // An admin ends one: its refresh token is refused from then on.
    let ended = app.delete(&format!("/sessions/{id}"), Some(&admin)).await;
    assert_eq!(ended.ok_json(), json!({"result": "OK"}));
    app.refresh(second["refreshToken"].as_str().unwrap())
        .await
        .error(401);
    assert_eq!(array(&app.get(&bob_path, Some(&admin)).await).len(), 1);
    app.delete(&format!("/sessions/{id}"), Some(&admin))
        .await
        .ok_json();

    // The owner ends its own.
    let last = mine[0]["id"].as_str().unwrap();
    app.delete(&format!("/sessions/{last}"), Some(&rotated.token))
        .await
        .ok_json();
    app.refresh(&rotated.refresh_token).await.error(401);
    assert!(array(&app.get(&bob_path, Some(&admin)).await).is_empty());

    // "Log out everywhere" (a generation bump) leaves no session listed.
    login_as_browser(&app, "bob", USER_PASSWORD, "x").await;
    assert_eq!(array(&app.get(&bob_path, Some(&admin)).await).len(), 1);
    app.logout_user(&admin, &bob).await.ok_json();
    assert!(array(&app.get(&bob_path, Some(&admin)).await).is_empty());
}

#[actix_web::test]
async fn session_calls_refuse_bad_input_in_words() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let bad = [
        ("/sessions?userId=nope", "Invalid userId"),
        ("/sessions?user=1", "Unknown query parameter"),
        ("/sessions?userId=a&userId=b", "given twice"),
    ];
    for (path, words) in bad {
        let message = app.get(path, Some(&admin)).await.error_message(400);
        assert!(message.contains(words), "{path}: {message}");
    }
    let unknown = format!("/sessions?userId={}", uuid::Uuid::new_v4());
    app.get(&unknown, Some(&admin)).await.error(404);
    let message = app
        .delete("/sessions/not-a-uuid", Some(&admin))
        .await
        .error_message(400);
    assert!(message.contains("Invalid session id"), "{message}");
    let gone = format!("/sessions/{}", uuid::Uuid::new_v4());
    app.delete(&gone, Some(&admin)).await.error(404);
    app.get("/sessions", None).await.error(401);
    app.delete(&gone, None).await.error(401);
    // An API key may not list or end sessions, even an admin's key.
    let key = app
        .post_json(
            "/apikeys",
            Some(&admin),
            &json!({"name": "k", "roles": crate::harness::all_roles()}),
        )
        .await
        .ok_json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = app.get("/sessions", Some(&key)).await.error_message(403);
    assert!(message.contains("API key"), "{message}");
    app.delete(&gone, Some(&key)).await.error(403);
}

#[actix_web::test]
async fn keys_are_listed_without_key_material_and_rotate() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (kid, secret) = app.signing_key();
    let listed = app.get("/keys", Some(&admin)).await;
    assert!(
        !listed.text().contains(&engine_hex(&secret)),
        "key material listed"
    );
    let list = array(&listed);
    assert_eq!(list.len(), 1);
    assert_eq!(keys(&list[0]), ["createdAt", "kid", "state"]);
    assert_eq!(
        (list[0]["kid"].as_str(), list[0]["state"].as_str()),
        (Some(kid.as_str()), Some("active"))
    );

    let new = app
        .post_json(
            "/keys/rotate",
            Some(&admin),
            &json!({"revokePrevious": false}),
        )
        .await
        .ok_json();
    let list = array(&app.get("/keys", Some(&admin)).await);
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["kid"], new["kid"], "newest first");
    assert_eq!(list[0]["state"], "active");
    assert_eq!(list[1]["kid"], kid.as_str());
    assert_eq!(list[1]["state"], "retired");

    let (_, user) = app.user_with_token(&admin, "dave", &["read"]).await;
    app.get("/keys", Some(&user)).await.error(403);
    app.get("/keys", None).await.error(401);
}

fn engine_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[actix_web::test]
async fn audit_lists_kept_events_newest_first_and_filters_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    // (Failed logins are aggregated per address across the whole test
    // process, which other suites flood: the browser tests, on a daemon of
    // their own, check that one is kept.)
    let bob = app.add_user(&admin, "Bob", &["read"]).await;
    app.login_ok("bob", USER_PASSWORD).await;
    app.set_roles(&admin, &bob, crate::harness::roles(&["read", "write"]))
        .await
        .ok_json();
    app.delete_user(&admin, &bob).await.ok_json();

    let all = app.get("/audit", Some(&admin)).await;
    let text = all.text();
    for secret in [ADMIN_PASSWORD, USER_PASSWORD] {
        assert!(!text.contains(secret), "a password in the audit list");
    }
    let events = array(&all);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "user_deleted",
            "user_roles_changed",
            "login_ok",
            "user_created",
            "login_ok"
        ],
        "newest first"
    );
    let deleted = &events[0];
    assert_eq!(
        keys(deleted),
        ["address", "by", "event", "time", "userId", "username"]
    );
    assert_eq!(deleted["username"], "Bob");
    assert_eq!(deleted["userId"], bob.as_str());
    assert_eq!(deleted["by"], "admin");
    assert_eq!(deleted["address"], "127.0.0.1");
    assert_eq!(events[4]["username"], "admin");
    assert_eq!(events[4]["by"], Value::Null, "acting on itself");

    let only = |q: &str| {
        let app = &app;
        let admin = admin.clone();
        let q = q.to_owned();
        async move { array(&app.get(&format!("/audit?{q}"), Some(&admin)).await) }
    };
    let created = only("event=user_created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["username"], "Bob");
    let bobs = only("user=BOB").await;
    assert_eq!(bobs.len(), 4, "case-insensitive: {bobs:?}");
    assert_eq!(only(&format!("user={bob}")).await.len(), 4, "by id");
    assert_eq!(only("event=login_ok&user=admin").await.len(), 1);
    assert_eq!(only("limit=2").await.len(), 2);
    assert_eq!(only("limit=2").await[0]["event"], "user_deleted");
    assert!(only("event=nothing_like_it").await.is_empty());

    for (q, words) in [
        ("limit=0", "Invalid limit"),
        ("limit=10001", "Invalid limit"),
        ("limit=ten", "Invalid limit"),
        ("limit=-1", "Invalid limit"),
        ("since=1", "Unknown query parameter"),
        ("event=a&event=b", "given twice"),
    ] {
        let message = app
            .get(&format!("/audit?{q}"), Some(&admin))
            .await
            .error_message(400);
        assert!(message.contains(words), "{q}: {message}");
    }
    let (_, user) = app.user_with_token(&admin, "erin", &["read"]).await;
    app.get("/audit", Some(&user)).await.error(403);
    app.get("/audit", None).await.error(401);
}

/// The policy, exactly.
const CSP: &str = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

#[actix_web::test]
async fn the_console_is_served_with_its_policy_and_hashed_cacheable_assets() {
    let app = TestApp::spawn().await;
    // Cacheable on purpose: not the API's `no-store` (checked by `send`).
    let get = |path: &str| send_unchecked(app.client.get(app.url(path)));
    let page = get("/admin/").await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.header("content-security-policy"), Some(CSP));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text();
    let assets: Vec<String> = html
        .split('"')
        .filter(|s| s.starts_with("/admin/assets/"))
        .map(str::to_owned)
        .collect();
    assert_eq!(assets.len(), 2, "one stylesheet and one script: {assets:?}");
    for path in &assets {
        let name = path.trim_start_matches("/admin/assets/");
        let hash = name.split('.').nth(1).unwrap();
        assert_eq!(hash.len(), 16, "{name}: a content hash in the name");
        let file = get(path).await;
        assert_eq!(file.status(), 200, "{path}");
        assert_eq!(file.header("content-security-policy"), Some(CSP));
        assert_eq!(
            file.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
    }
    let redirect = send_unchecked(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(app.url("/admin")),
    )
    .await;
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.header("location"), Some("/admin/"));
    send(
        app.client
            .get(app.url("/admin/assets/console.0000000000000000.js")),
    )
    .await
    .error(404);
    let post = send(app.client.request(Method::POST, app.url("/admin/"))).await;
    post.error(405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = send_unchecked(app.client.request(Method::HEAD, app.url("/admin/"))).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.header("content-security-policy"), Some(CSP));
}
