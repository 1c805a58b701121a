//! `POST /api/v1/auth/logout`: `{refreshToken}` ends that session (the token
//! and every token descended from the same login), nothing else; it needs
//! the caller's bearer token and the caller's own refresh token.

use crate::harness::{TestApp, USER_PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

async fn with_user(name: &str) -> TestApp {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.token;
    app.add_user(&admin, name, &["read"]).await;
    app
}

#[actix_web::test]
async fn logout_ends_that_session_and_its_descendants_and_no_other() {
    let app = with_user("leo").await;
    let a0 = app.login_ok("leo", USER_PASSWORD).await;
    let other = app.login_ok("leo", USER_PASSWORD).await;
    let a1 = app.refresh_ok(&a0.refresh_token).await;
    let a2 = app.refresh_ok(&a1.refresh_token).await;

    // Logged out with a token from the middle of the chain.
    let resp = app
        .logout(
            Some(&a2.token),
            &json!({ "refreshToken": a1.refresh_token }),
        )
        .await;
    resp.ok_json();

    for (what, token) in [
        ("the logged-out token", &a1.refresh_token),
        ("its descendant", &a2.refresh_token),
        ("its ancestor", &a0.refresh_token),
    ] {
        let resp = app.refresh(token).await;
        resp.context(what).error_message(StatusCode::UNAUTHORIZED);
    }
    app.refresh_ok(&other.refresh_token).await;
    let fresh = app.login_ok("leo", USER_PASSWORD).await;
    app.refresh_ok(&fresh.refresh_token).await;
}

#[actix_web::test]
async fn logging_out_with_another_users_refresh_token_is_forbidden_and_changes_nothing() {
    let app = with_user("mallory").await;
    let admin = app.admin_tokens().await.token;
    app.add_user(&admin, "alice", &["read"]).await;
    let mallory = app.login_ok("mallory", USER_PASSWORD).await;
    let alice = app.login_ok("alice", USER_PASSWORD).await;

    let resp = app
        .logout(
            Some(&mallory.token),
            &json!({ "refreshToken": alice.refresh_token }),
        )
        .await;
    resp.context("logout with someone else's token")
        .error_message(StatusCode::FORBIDDEN);

    app.refresh_ok(&alice.refresh_token).await;
    app.refresh_ok(&mallory.refresh_token).await;
}

#[actix_web::test]
async fn logout_without_a_refresh_token_or_all_is_a_bad_request() {
    let app = with_user("nora").await;
    let s = app.login_ok("nora", USER_PASSWORD).await;

    for body in [json!({}), json!({ "all": false })] {
        let resp = app.logout(Some(&s.token), &body).await;
        resp.context(&format!("logout with {body}"))
            .error_message(StatusCode::BAD_REQUEST);
    }

    // Neither call ended anything.
    let next = app.refresh_ok(&s.refresh_token).await;
    app.refresh_ok(&next.refresh_token).await;
}

#[actix_web::test]
async fn logout_needs_a_bearer_access_token_and_changes_nothing_without_one() {
    let app = with_user("otis").await;
    let s = app.login_ok("otis", USER_PASSWORD).await;
    let one = json!({ "refreshToken": s.refresh_token });
    let all = json!({ "all": true });

    for body in [&one, &all] {
        let resp = app.logout(None, body).await;
        resp.context(&format!("{body} without a bearer"))
            .error_message(StatusCode::UNAUTHORIZED);
        // A stolen refresh token is not a bearer token either.
        let resp = app.logout(Some(&s.refresh_token), body).await;
        resp.context(&format!("{body} with a refresh token as the bearer"))
            .error_message(StatusCode::UNAUTHORIZED);
    }

    app.refresh_ok(&s.refresh_token).await;
}
