//! Two-factor authentication (TOTP, RFC 6238): generate, enable, the
//! second factor of a login (each code and recovery code once), disable,
//! an admin's reset, `/me`, the throttle on wrong codes, and the CLI's
//! `user mfa-reset` with no secret in the daemon's log. Codes are computed
//! by the test from the secret (totp-rs, `harness::totp_at`) at the
//! server's clock, which the tests move by whole steps.

use serde_json::{Value, json};

use crate::harness::{
    ADMIN_PASSWORD, Api, Sandbox, TestApp, TokenPair, USER_PASSWORD, all_roles, now, roles, totp_at,
};

const STEP: i64 = 30;

use crate::harness::Reply;

async fn generate(api: &Api, token: &str, password: &str) -> Reply {
    let body = json!({ "password": password });
    api.post_json("/mfa/generate", Some(token), &body).await
}

async fn enable(api: &Api, token: &str, otp: &str) -> Reply {
    api.post_json("/mfa/enable", Some(token), &json!({ "otp": otp }))
        .await
}

async fn disable(api: &Api, token: &str, otp: &str) -> Reply {
    api.post_json("/mfa/disable", Some(token), &json!({ "otp": otp }))
        .await
}

async fn login_otp(api: &Api, username: &str, password: &str, otp: &str) -> Reply {
    let body = json!({ "username": username, "password": password, "otp": otp });
    api.post_json("/login", None, &body).await
}

async fn me(api: &Api, token: &str) -> Reply {
    api.get("/me", Some(token)).await
}

/// Generates a secret for the bearer `token` (password `USER_PASSWORD`),
/// enables it with the code of `time`; returns the secret and the recovery
/// codes.
async fn turn_on(api: &Api, token: &str, time: u64) -> (String, Vec<String>) {
    let body = generate(api, token, USER_PASSWORD).await.ok_json();
    let secret = body["secret"].as_str().expect("secret").to_string();
    let body = enable(api, token, &totp_at(&secret, time)).await.ok_json();
    let codes: Vec<String> = serde_json::from_value(body["recoveryCodes"].clone()).expect("codes");
    (secret, codes)
}

/// A code that is not `right` (nor, by its form, anything else).
fn wrong(right: &str) -> String {
    if right == "000000" {
        "111111"
    } else {
        "000000"
    }
    .to_string()
}

fn message_of(r: &Reply, status: u16) -> String {
    r.error_message(status)
}

#[actix_web::test]
async fn enable_login_with_codes_once_each_and_disable() {
    // A high per-user threshold: this test counts its wrong codes itself.
    let app = TestApp::spawn_with(|s| s.throttle.per_user = 1000).await;
    let admin = app.admin_token().await;
    let (bob_id, bob) = app.user_with_tokens(&admin, "bob", &["read"]).await;

    // /me, before.
    let body = me(&app, &bob.token).await.ok_json();
    assert_eq!(
        body,
        json!({ "_id": bob_id, "username": "bob", "roles": roles(&["read"]), "mfa": false })
    );
    let body = me(&app, &admin).await.ok_json();
    assert_eq!(body["username"], "admin");
    assert_eq!(body["roles"], all_roles());
    assert_eq!(body["mfa"], false);
    me(&app, "not-a-token").await.error(401);
    app.get("/me", None).await.error(401);

    // Nothing to enable or disable yet.
    let m = message_of(&enable(&app, &bob.token, "123456").await, 409);
    assert!(m.contains("generate one first"), "{m}");
    disable(&app, &bob.token, "123456").await.error(409);

    // generate: the password is checked.
    let m = message_of(&generate(&app, &bob.token, "not-bobs-password").await, 403);
    assert_eq!(m, "password is incorrect");
    generate(&app, &bob.token, "").await.error(403);
    app.post_json("/mfa/generate", Some(&bob.token), &json!({}))
        .await
        .error(400);
    generate(&app, "not-a-token", USER_PASSWORD)
        .await
        .error(401);
    let first = generate(&app, &bob.token, USER_PASSWORD).await.ok_json();
    let first_secret = first["secret"].as_str().unwrap().to_string();
    assert_eq!(first_secret.len(), 32, "160 bits in base32: {first}");
    assert!(
        first_secret
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)),
        "{first}"
    );
    assert_eq!(
        first["otpauthUrl"],
        format!("otpauth://totp/engine-auth:bob?secret={first_secret}&issuer=engine-auth")
    );
    // A new generate replaces the pending secret; nothing else changed.
    let secret = generate(&app, &bob.token, USER_PASSWORD).await.ok_json()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(secret, first_secret);
    assert_eq!(me(&app, &bob.token).await.ok_json()["mfa"], false);
    app.login_ok("bob", USER_PASSWORD).await;

    // enable: a wrong code, or one of the replaced secret, is 403.
    let t0 = app.clock.now();
    let code0 = totp_at(&secret, t0);
    enable(&app, &bob.token, &wrong(&code0)).await.error(403);
    let stale = totp_at(&first_secret, t0);
    if stale != code0 {
        enable(&app, &bob.token, &stale).await.error(403);
    }
    enable(&app, &bob.token, "").await.error(403);
    let body = enable(&app, &bob.token, &code0).await.ok_json();
    let codes: Vec<String> = serde_json::from_value(body["recoveryCodes"].clone()).unwrap();
    assert_eq!(codes.len(), 10, "{body}");
    for c in &codes {
        assert_eq!(c.len(), 19, "xxxx-xxxx-xxxx-xxxx: {c}");
        assert_eq!(c.split('-').count(), 4, "{c}");
    }
    assert_eq!(me(&app, &bob.token).await.ok_json()["mfa"], true);
    // On: generate and enable are 409, whatever the password or code.
    generate(&app, &bob.token, USER_PASSWORD).await.error(409);
    enable(&app, &bob.token, &code0).await.error(409);

    // Login: only the right password learns that a code is needed.
    let m = app.login("bob", USER_PASSWORD).await.error_message(401);
    assert_eq!(m, "OTP required");
    let m = login_otp(&app, "bob", USER_PASSWORD, "")
        .await
        .error_message(401);
    assert_eq!(m, "OTP required");
    for otp in [None, Some(code0.as_str())] {
        let r = match otp {
            None => app.login("bob", "wrong-password").await,
            Some(o) => login_otp(&app, "bob", "wrong-password", o).await,
        };
        assert_eq!(r.error_message(401), "Invalid username or password");
    }
    let m = login_otp(&app, "nobody", USER_PASSWORD, &code0)
        .await
        .error_message(401);
    assert_eq!(m, "Invalid username or password");
    // The enabling code's step is spent: a replay is refused.
    let m = login_otp(&app, "bob", USER_PASSWORD, &code0)
        .await
        .error_message(401);
    assert_eq!(m, "Invalid OTP");
    let m = login_otp(&app, "bob", USER_PASSWORD, &wrong(&code0))
        .await
        .error_message(401);
    assert_eq!(m, "Invalid OTP");

    // The next step's code logs in, once.
    app.clock.advance(STEP);
    let code1 = totp_at(&secret, app.clock.now());
    let pair = login_otp(&app, "bob", USER_PASSWORD, &code1)
        .await
        .token_pair();
    assert_eq!(me(&app, &pair.token).await.ok_json()["mfa"], true);
    let m = login_otp(&app, "bob", USER_PASSWORD, &code1)
        .await
        .error_message(401);
    assert_eq!(m, "Invalid OTP");
    // Nor does the previous step's code (within the skew) come back.
    let m = login_otp(&app, "bob", USER_PASSWORD, &code0)
        .await
        .error_message(401);
    assert_eq!(m, "Invalid OTP");
    // Two concurrent logins with the next code: exactly one passes.
    app.clock.advance(STEP);
    let code2 = totp_at(&secret, app.clock.now());
    let (a, b) = tokio::join!(
        login_otp(&app, "bob", USER_PASSWORD, &code2),
        login_otp(&app, "bob", USER_PASSWORD, &code2),
    );
    let passed = [a.status(), b.status()]
        .iter()
        .filter(|s| **s == 200)
        .count();
    assert_eq!(
        passed,
        1,
        "one code, one login: {} / {}",
        a.text(),
        b.text()
    );

    // A recovery code works once, case and dashes aside.
    let loose = codes[0].replace('-', "").to_uppercase();
    login_otp(&app, "bob", USER_PASSWORD, &loose)
        .await
        .token_pair();
    let m = login_otp(&app, "bob", USER_PASSWORD, &codes[0])
        .await
        .error_message(401);
    assert_eq!(m, "Invalid OTP");
    login_otp(&app, "bob", USER_PASSWORD, &codes[1])
        .await
        .token_pair();

    // disable: a wrong or used code is 403; a right one turns it off.
    disable(&app, &bob.token, &wrong(&code2)).await.error(403);
    disable(&app, &bob.token, &code2).await.error(403);
    disable(&app, &bob.token, &codes[0]).await.error(403);
    disable(&app, "not-a-token", &codes[2]).await.error(401);
    app.post_json("/mfa/disable", Some(&bob.token), &json!({}))
        .await
        .error(400);
    let body = disable(&app, &bob.token, &codes[2]).await.ok_json();
    assert_eq!(body, json!({ "result": "OK" }));
    assert_eq!(me(&app, &bob.token).await.ok_json()["mfa"], false);
    app.login_ok("bob", USER_PASSWORD).await;
    disable(&app, &bob.token, &codes[3]).await.error(409);

    // On again with a new secret, off with a TOTP code of a later step.
    let t = app.clock.now();
    let (secret, _) = turn_on(&app, &bob.token, t).await;
    app.clock.advance(STEP);
    let code = totp_at(&secret, app.clock.now());
    disable(&app, &bob.token, &code).await.ok_json();
    app.login_ok("bob", USER_PASSWORD).await;
}

#[actix_web::test]
async fn an_admin_reset_turns_mfa_off_and_revokes_every_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (bob_id, bob) = app.user_with_tokens(&admin, "bob", &["read"]).await;
    let (carol_id, carol) = app
        .user_with_tokens(&admin, "carol", &["read", "write"])
        .await;
    let t = app.clock.now();
    let (secret, codes) = turn_on(&app, &bob.token, t).await;
    // Enabling revoked nothing.
    app.roles_of(&bob.token, &bob_id).await.ok_json();
    app.clock.advance(STEP);
    let second: TokenPair = login_otp(
        &app,
        "bob",
        USER_PASSWORD,
        &totp_at(&secret, app.clock.now()),
    )
    .await
    .token_pair();

    // Only admins: a user may not reset another's, nor its own.
    let path = format!("/user/mfa/{bob_id}");
    let r = app.delete(&path, Some(&carol.token)).await;
    r.error(403);
    app.delete(&path, Some(&bob.token)).await.error(403);
    app.delete(&path, None).await.error(401);
    app.delete("/user/mfa/not-a-uuid", Some(&admin))
        .await
        .error(400);
    let unknown = format!("/user/mfa/{}", uuid::Uuid::new_v4());
    app.delete(&unknown, Some(&admin)).await.error(404);
    assert_eq!(me(&app, &bob.token).await.ok_json()["mfa"], true);

    let body = app.delete(&path, Some(&admin)).await.ok_json();
    assert_eq!(body, json!({ "result": "OK" }));
    app.assert_all_revoked(&bob_id, &[&bob, &second], "after an MFA reset")
        .await;
    me(&app, &bob.token).await.error(401);
    // Others keep their tokens.
    app.roles_of(&carol.token, &carol_id).await.ok_json();
    // Off: the password alone logs in; the old recovery codes are gone.
    let pair = app.login_ok("bob", USER_PASSWORD).await;
    assert_eq!(me(&app, &pair.token).await.ok_json()["mfa"], false);
    disable(&app, &pair.token, &codes[0]).await.error(409);
    // Resetting a user without MFA is harmless (and still revokes).
    app.delete(&format!("/user/mfa/{carol_id}"), Some(&admin))
        .await
        .ok_json();
    me(&app, &carol.token).await.error(401);
}

#[actix_web::test]
async fn wrong_codes_are_throttled_like_wrong_passwords_and_otp_required_is_not() {
    // Default throttle: 5 failures per (username, address).
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, bob) = app.user_with_tokens(&admin, "bob", &["read"]).await;
    let t = app.clock.now();
    let (secret, _) = turn_on(&app, &bob.token, t).await;

    // "OTP required" counts neither way: many of them, no 429.
    for _ in 0..12 {
        let m = app.login("bob", USER_PASSWORD).await.error_message(401);
        assert_eq!(m, "OTP required");
    }
    // Wrong codes count as failures: the fifth reaches the threshold.
    for i in 0..5 {
        let m = login_otp(&app, "bob", USER_PASSWORD, "000000x")
            .await
            .error_message(401);
        assert_eq!(m, "Invalid OTP", "wrong code #{i}");
    }
    let r = login_otp(&app, "bob", USER_PASSWORD, "000000x").await;
    r.error(429);
    assert!(r.header("retry-after").is_some());
    // Knowing the password does not lift it: still 429, before any check.
    app.login("bob", USER_PASSWORD).await.error(429);
    // Throttled from this address only; a wrong code at enable/disable
    // counts in the same tables.
    app.clock.advance(STEP);
    let code = totp_at(&secret, app.clock.now());
    let pair = login_otp(&app, "bob", USER_PASSWORD, &code)
        .await
        .token_pair();
    // That full login cleared the count; wrong disable codes count again.
    for _ in 0..5 {
        disable(&app, &pair.token, "000000x").await.error(403);
    }
    disable(&app, &pair.token, "000000x").await.error(429);
}

#[actix_web::test]
async fn the_openapi_document_lists_the_mfa_calls_with_their_errors() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .api
        .client
        .get(app.url("/api/v1/docs/json"))
        .send()
        .await
        .expect("docs")
        .json()
        .await
        .expect("json");
    for (path, method, statuses) in [
        (
            "/api/v1/auth/mfa/generate",
            "post",
            &["200", "400", "401", "403", "409", "429"][..],
        ),
        (
            "/api/v1/auth/mfa/enable",
            "post",
            &["200", "400", "401", "403", "409", "429"],
        ),
        (
            "/api/v1/auth/mfa/disable",
            "post",
            &["200", "400", "401", "403", "409", "429"],
        ),
        (
            "/api/v1/auth/user/mfa/{_id}",
            "delete",
            &["200", "400", "401", "403", "404"],
        ),
        ("/api/v1/auth/me", "get", &["200", "401"]),
    ] {
        let op = &doc["paths"][path][method];
        for s in statuses {
            assert!(
                op["responses"].get(s).is_some(),
                "{method} {path}: {s}: {op}"
            );
        }
    }
}

/// The real binary: MFA over HTTP, `user mfa-reset` through the running
/// daemon's socket and offline, `check` on a store with MFA data, and no
/// secret, code or recovery code in any daemon log.
#[actix_web::test]
async fn user_mfa_reset_works_live_and_offline_and_no_secret_is_logged() {
    let sb = Sandbox::new();
    let d = sb.start();
    let admin = d.login_ok("admin", ADMIN_PASSWORD).await.token;
    d.add_user(&admin, "dora", &["read"]).await;
    let dora = d.login_ok("dora", USER_PASSWORD).await;
    let mut secrets: Vec<String> = Vec::new();

    // On, then a login with a recovery code and one with a wrong code.
    let (secret, codes) = turn_on(&d, &dora.token, now()).await;
    secrets.push(secret.clone());
    secrets.extend(codes.iter().cloned());
    secrets.push(codes[0].replace('-', ""));
    login_otp(&d, "dora", USER_PASSWORD, &codes[0])
        .await
        .token_pair();
    login_otp(&d, "dora", USER_PASSWORD, "zzzz-zzzz-zzzz-zzzz")
        .await
        .error(401);
    d.login("dora", USER_PASSWORD).await.error(401);

    // Through the socket: off at once, tokens revoked.
    let out = sb.cli_ok(&["user", "mfa-reset", "dora"], &[]);
    assert!(
        out.contains("two-factor authentication of \"dora\" is off"),
        "{out}"
    );
    me(&d, &dora.token).await.error(401);
    let dora = d.login_ok("dora", USER_PASSWORD).await;

    // On again, then the daemon stops: offline reset, and check passes.
    let (secret, codes) = turn_on(&d, &dora.token, now()).await;
    secrets.push(secret);
    secrets.extend(codes);
    d.login("dora", USER_PASSWORD).await.error(401);
    drop(d);
    let report = sb.cli_ok(&["check"], &[]);
    assert!(!report.contains(&secrets[0]), "{report}");
    let out = sb.cli_ok(&["user", "mfa-reset", "dora"], &[]);
    assert!(out.contains("is off; its tokens are revoked"), "{out}");
    sb.cli_ok(&["check"], &[]);
    let unknown = sb.cli(&["user", "mfa-reset", "nobody"], &[]);
    assert!(!unknown.status.success());

    let d = sb.start();
    let pair = d.login_ok("dora", USER_PASSWORD).await;
    assert_eq!(me(&d, &pair.token).await.ok_json()["mfa"], false);
    me(&d, &dora.token).await.error(401);
    drop(d);
    let logs = sb.all_logs();
    for event in ["event=mfa_enabled", "event=otp_failed", "event=mfa_reset"] {
        assert!(logs.contains(event), "{event} missing:\n{logs}");
    }
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    sb.assert_logs_free_of(&refs);
}
