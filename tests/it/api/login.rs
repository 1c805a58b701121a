//! POST /login and POST /refresh: the token pair, bad credentials, exact
//! password comparison.

use crate::harness::{ADMIN_PASSWORD, TestApp, USER_PASSWORD, decode_jwt, message, roles};
use reqwest::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn login_returns_a_token_pair_that_authenticates() {
    let app = TestApp::spawn().await;

    let pair = app.login("admin", ADMIN_PASSWORD).await.token_pair();

    // The access token is accepted on an admin call.
    let users = app.users(&pair.token).await;
    assert_eq!(users, vec!["admin".to_string()]);
    assert_ne!(pair.token, pair.refresh_token);
}

#[actix_web::test]
async fn refresh_returns_a_new_pair_for_the_same_user() {
    let app = TestApp::spawn().await;
    let first = app.admin_tokens().await;

    let second = app.refresh(&first.refresh_token).await.token_pair();

    let (_, a) = decode_jwt(&first.token);
    let (_, b) = decode_jwt(&second.token);
    assert_eq!(a["_id"], b["_id"]);
    assert_eq!(b["roles"], json!(159));
    // Both new tokens work for what they are meant for.
    app.users(&second.token).await;
    app.refresh(&second.refresh_token).await.token_pair();
}

#[actix_web::test]
async fn after_a_role_change_old_tokens_are_refused_and_a_new_login_carries_the_new_roles() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, pair) = app.user_with_tokens(&admin, "carol", &["read"]).await;
    assert_eq!(decode_jwt(&pair.token).1["roles"], json!(1));

    let resp = app.set_roles(&admin, &id, roles(&["read", "write"])).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // README: a role change revokes every token issued before it.
    app.assert_all_revoked(&id, &[&pair], "revoked").await;
    let fresh = app.login_ok("carol", USER_PASSWORD).await;
    assert_eq!(decode_jwt(&fresh.token).1["roles"], json!(3));
    let refreshed = app.refresh(&fresh.refresh_token).await.token_pair();
    assert_eq!(decode_jwt(&refreshed.token).1["roles"], json!(3));
}

#[actix_web::test]
async fn bad_credentials_are_401_and_identical_for_known_and_unknown_users() {
    let app = TestApp::spawn().await;

    let known = app
        .login("admin", "wrong-password")
        .await
        .error(StatusCode::UNAUTHORIZED);
    let unknown = app
        .login("nobody-here", "wrong-password")
        .await
        .error(StatusCode::UNAUTHORIZED);

    assert_eq!(
        known, unknown,
        "the answer must not reveal which users exist"
    );
    assert!(!message(&known).to_lowercase().contains("admin"));
}

#[actix_web::test]
async fn passwords_are_compared_exactly() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    // Two accounts, so that no account sees more than a few failures (the
    // daemon may throttle repeated failures).
    for name in ["exact", "exact-2"] {
        app.create_user_ok(&admin, name, "Secret pass 1", roles(&["read"]))
            .await;
    }

    for (name, wrong) in [
        ("exact", "Secret pass 1 "),
        ("exact", " Secret pass 1"),
        ("exact", "secret pass 1"),
        ("exact-2", "SECRET PASS 1"),
        ("exact-2", "Secret pass 1\n"),
        ("exact-2", "Secret  pass 1"),
    ] {
        app.login(name, wrong).await.error(StatusCode::UNAUTHORIZED);
    }
    app.login_ok("exact", "Secret pass 1").await;
    app.login_ok("exact-2", "Secret pass 1").await;
}

#[actix_web::test]
async fn login_with_a_non_ascii_password_works() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    // 8 characters, 16 bytes: the minimum counts characters.
    app.create_user_ok(&admin, "zoë", "éééééééé", roles(&["read"]))
        .await;
    app.login_ok("zoë", "éééééééé").await;
    app.login("zoë", "eeeeeeee")
        .await
        .error(StatusCode::UNAUTHORIZED);
}

/// The login body as the original decides it: both fields required and an
/// object; scalars coerced to strings, one-item arrays unwrapped, unknown
/// fields removed. A coerced password is still checked like any other.
#[actix_web::test]
async fn login_body_is_decided_as_the_original_decides_it() {
    let app = TestApp::spawn().await;
    for (body, message) in [
        (
            json!({ "username": "admin" }),
            "body must have required property 'password'",
        ),
        (
            json!({ "password": ADMIN_PASSWORD }),
            "body must have required property 'username'",
        ),
        (json!({}), "body must have required property 'username'"),
        (
            json!({ "username": {}, "password": ADMIN_PASSWORD }),
            "body/username must be string",
        ),
        (
            json!({ "username": [], "password": ADMIN_PASSWORD }),
            "body/username must be string",
        ),
        (json!("admin"), "body must be object"),
        (json!(null), "body must be object"),
        (json!(42), "body must be object"),
    ] {
        let got = app
            .post_json("/login", None, &body)
            .await
            .error_message(StatusCode::BAD_REQUEST);
        assert_eq!(got, message, "{body}");
    }
    // Accepted and answered on their merits.
    for body in [
        json!({ "username": ["admin"], "password": ADMIN_PASSWORD }),
        json!({ "username": "admin", "password": [ADMIN_PASSWORD] }),
        json!({ "username": "admin", "password": ADMIN_PASSWORD, "extra": 1 }),
        json!({ "username": "admin", "password": ADMIN_PASSWORD, "Password": "x", "mode": "json" }),
    ] {
        app.post_json("/login", None, &body).await.token_pair();
    }
    for body in [
        json!({ "username": "admin", "password": 12345678 }),
        json!({ "username": null, "password": ADMIN_PASSWORD }),
        json!({ "username": "admin", "password": null }),
    ] {
        let resp = app.post_json("/login", None, &body).await;
        resp.error(StatusCode::UNAUTHORIZED);
    }
}

#[actix_web::test]
async fn login_with_a_password_over_1024_bytes_is_400() {
    let app = TestApp::spawn().await;
    let long = "a".repeat(1025);
    app.login("admin", &long)
        .await
        .error(StatusCode::BAD_REQUEST);
    // 1024 bytes is merely wrong.
    let max = "a".repeat(1024);
    app.login("admin", &max)
        .await
        .error(StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn refresh_body_is_decided_as_the_original_decides_it() {
    let app = TestApp::spawn().await;
    let pair = app.admin_tokens().await;
    for body in [
        json!({}),
        json!({ "refresh_token": pair.refresh_token }),
        json!({ "refreshToken": {} }),
    ] {
        let resp = app.post_json("/refresh", None, &body).await;
        resp.error(StatusCode::BAD_REQUEST);
    }
    // As the original: a number is read as a string (then an invalid
    // token); an unknown field is removed and the token works.
    let resp = app
        .post_json("/refresh", None, &json!({ "refreshToken": 1 }))
        .await;
    resp.error(StatusCode::UNAUTHORIZED);
    let body = json!({ "refreshToken": [pair.refresh_token], "extra": true });
    app.post_json("/refresh", None, &body).await.token_pair();
    for garbage in ["", "garbage", "a.b.c"] {
        app.refresh(garbage).await.error(StatusCode::UNAUTHORIZED);
    }
}
