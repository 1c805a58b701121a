//! POST /login and POST /refresh: the token pair, bad credentials, exact
//! password comparison.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    ADMIN_PASSWORD, USER_PASSWORD, assert_error, decode_jwt, message, roles, spawn_app, token_pair,
};

#[actix_web::test]
async fn login_returns_a_token_pair_that_authenticates() {
    let app = spawn_app().await;

    let pair = token_pair(app.login("admin", ADMIN_PASSWORD).await).await;

    // The access token is accepted on an admin call.
    let users = app.users(&pair.token).await;
    assert_eq!(users, vec!["admin".to_string()]);
    assert_ne!(pair.token, pair.refresh_token);
}

#[actix_web::test]
async fn refresh_returns_a_new_pair_for_the_same_user() {
    let app = spawn_app().await;
    let first = app.admin_tokens().await;

    let second = token_pair(app.refresh(&first.refresh_token).await).await;

    let (_, a) = decode_jwt(&first.token);
    let (_, b) = decode_jwt(&second.token);
    assert_eq!(a["_id"], b["_id"]);
    assert_eq!(b["roles"], json!(159));
    // Both new tokens work for what they are meant for.
    app.users(&second.token).await;
    token_pair(app.refresh(&second.refresh_token).await).await;
}

#[actix_web::test]
async fn after_a_role_change_old_tokens_are_refused_and_a_new_login_carries_the_new_roles() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let id = app
        .create_user_ok(&admin, "carol", USER_PASSWORD, roles(&["read"]))
        .await;
    let pair = app.login_ok("carol", USER_PASSWORD).await;
    assert_eq!(decode_jwt(&pair.token).1["roles"], json!(1));

    let resp = app.set_roles(&admin, &id, roles(&["read", "write"])).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // README: a role change revokes every token issued before it.
    assert_error(
        app.roles_of(&pair.token, &id).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_error(
        app.refresh(&pair.refresh_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let fresh = app.login_ok("carol", USER_PASSWORD).await;
    assert_eq!(decode_jwt(&fresh.token).1["roles"], json!(3));
    let refreshed = token_pair(app.refresh(&fresh.refresh_token).await).await;
    assert_eq!(decode_jwt(&refreshed.token).1["roles"], json!(3));
}

#[actix_web::test]
async fn bad_credentials_are_401_and_identical_for_known_and_unknown_users() {
    let app = spawn_app().await;

    let known = assert_error(
        app.login("admin", "wrong-password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown = assert_error(
        app.login("nobody-here", "wrong-password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    assert_eq!(
        known, unknown,
        "the answer must not reveal which users exist"
    );
    assert!(!message(&known).to_lowercase().contains("admin"));
}

#[actix_web::test]
async fn passwords_are_compared_exactly() {
    let app = spawn_app().await;
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
        assert_error(app.login(name, wrong).await, StatusCode::UNAUTHORIZED).await;
    }
    app.login_ok("exact", "Secret pass 1").await;
    app.login_ok("exact-2", "Secret pass 1").await;
}

#[actix_web::test]
async fn login_with_a_non_ascii_password_works() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // 8 characters, 16 bytes: the minimum counts characters.
    app.create_user_ok(&admin, "zoë", "éééééééé", roles(&["read"]))
        .await;
    app.login_ok("zoë", "éééééééé").await;
    assert_error(app.login("zoë", "eeeeeeee").await, StatusCode::UNAUTHORIZED).await;
}

#[actix_web::test]
async fn login_body_must_be_exactly_username_and_password() {
    let app = spawn_app().await;
    let bodies = [
        json!({ "username": "admin" }),
        json!({ "password": ADMIN_PASSWORD }),
        json!({}),
        json!({ "username": "admin", "password": 12345678 }),
        json!({ "username": ["admin"], "password": ADMIN_PASSWORD }),
        json!({ "username": null, "password": ADMIN_PASSWORD }),
        json!({ "username": "admin", "password": ADMIN_PASSWORD, "extra": 1 }),
        json!({ "username": "admin", "password": ADMIN_PASSWORD, "Password": "x" }),
        json!("admin"),
        json!(null),
        json!(42),
    ];
    for body in bodies {
        let resp = app.post_json("/login", None, &body).await;
        assert_error(resp, StatusCode::BAD_REQUEST).await;
    }
}

#[actix_web::test]
async fn login_with_a_password_over_1024_bytes_is_400() {
    let app = spawn_app().await;
    let long = "a".repeat(1025);
    assert_error(app.login("admin", &long).await, StatusCode::BAD_REQUEST).await;
    // 1024 bytes is merely wrong.
    let max = "a".repeat(1024);
    assert_error(app.login("admin", &max).await, StatusCode::UNAUTHORIZED).await;
}

#[actix_web::test]
async fn refresh_body_must_be_exactly_refresh_token() {
    let app = spawn_app().await;
    let pair = app.admin_tokens().await;
    for body in [
        json!({}),
        json!({ "refreshToken": 1 }),
        json!({ "refresh_token": pair.refresh_token }),
        json!({ "refreshToken": pair.refresh_token, "extra": true }),
    ] {
        let resp = app.post_json("/refresh", None, &body).await;
        assert_error(resp, StatusCode::BAD_REQUEST).await;
    }
    for garbage in ["", "garbage", "a.b.c"] {
        assert_error(app.refresh(garbage).await, StatusCode::UNAUTHORIZED).await;
    }
}
