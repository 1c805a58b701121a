//! Revocation at once: changing a user's password or roles, deleting it,
//! "log out everywhere" and the admin's logout of a user all invalidate
//! every access and refresh token issued to it before, while a login right
//! after the change (same second of the server's clock) works.

use crate::harness::{
    ADMIN_PASSWORD, TestApp, TokenPair, USER_PASSWORD, claims_of, roles, start_of_a_second,
};
use reqwest::StatusCode;
use serde_json::json;

/// A user with three live token pairs: two logins, and the second one
/// refreshed (so its first refresh token is spent, within the grace
/// window, and its successor is live). Every access token works.
struct Victim {
    id: String,
    name: &'static str,
    pairs: Vec<TokenPair>,
}

impl Victim {
    fn refs(&self) -> Vec<&TokenPair> {
        self.pairs.iter().collect()
    }
}

async fn victim(app: &TestApp, admin: &str, name: &'static str, flags: &[&str]) -> Victim {
    let id = app.add_user(admin, name, flags).await;
    let first = app.login_ok(name, USER_PASSWORD).await;
    let second = app.login_ok(name, USER_PASSWORD).await;
    let refreshed = app.refresh_ok(&second.refresh_token).await;
    let pairs = vec![first, second, refreshed];
    for p in &pairs {
        app.roles_of(&p.token, &id).await.ok_json();
    }
    Victim { id, name, pairs }
}

/// A login right after the change works, and so do its tokens.
async fn fresh_login_works(app: &TestApp, v: &Victim, password: &str) -> TokenPair {
    let fresh = app.login_ok(v.name, password).await;
    app.roles_of(&fresh.token, &v.id).await.ok_json();
    let next = app.refresh_ok(&fresh.refresh_token).await;
    app.roles_of(&next.token, &v.id).await.ok_json();
    fresh
}

#[actix_web::test]
async fn an_admin_password_reset_revokes_every_token_and_a_login_in_the_same_second_works() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.token;
    let mut v = victim(&app, &admin, "pat", &["read"]).await;

    // Issued, changed and logged in again within (most likely) one second:
    // a token from the same second as the change must still be revoked, a
    // login from the same second must still work.
    start_of_a_second().await;
    v.pairs.push(app.login_ok(v.name, USER_PASSWORD).await);
    let resp = app
        .set_password(&admin, &v.id, json!({ "password": "a-brand-new-password" }))
        .await;
    resp.ok_json();
    let fresh = app.login_ok(v.name, "a-brand-new-password").await;
    app.roles_of(&fresh.token, &v.id).await.ok_json();

    app.assert_all_revoked(&v.id, &v.refs(), "after a password reset")
        .await;
    let old = app.login(v.name, USER_PASSWORD).await;
    old.context("the old password")
        .error_message(StatusCode::UNAUTHORIZED);
    fresh_login_works(&app, &v, "a-brand-new-password").await;
    // The change touched that user only.
    app.list_users(&admin).await.ok_json();
}

#[actix_web::test]
async fn a_users_own_password_change_revokes_its_other_sessions_and_the_calling_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.token;
    let v = victim(&app, &admin, "sam", &["read", "write"]).await;

    let body = json!({ "password": "sams-new-password", "currentPassword": USER_PASSWORD });
    app.set_password(&v.pairs[0].token, &v.id, body)
        .await
        .ok_json();

    app.assert_all_revoked(&v.id, &v.refs(), "after changing one's own password")
        .await;
    fresh_login_works(&app, &v, "sams-new-password").await;
}

#[actix_web::test]
async fn a_role_change_revokes_every_token_and_new_tokens_carry_the_new_roles() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.token;
    let v = victim(&app, &admin, "rolf", &["read", "write", "subscribe"]).await;

    app.set_roles(&admin, &v.id, roles(&["read"]))
        .await
        .ok_json();

    app.assert_all_revoked(&v.id, &v.refs(), "after a role change")
        .await;
    let fresh = fresh_login_works(&app, &v, USER_PASSWORD).await;
    assert_eq!(claims_of(&fresh.token)["roles"], json!(1), "read only now");
}

#[actix_web::test]
async fn a_demoted_admins_old_token_can_no_longer_manage_users() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.token;
    let flags = ["admin", "flows", "configure", "subscribe", "write", "read"];
    let v = victim(&app, &admin, "deputy", &flags).await;
    let deputy = v.pairs[0].clone();
    app.list_users(&deputy.token).await.ok_json();

    app.set_roles(&admin, &v.id, roles(&["read"]))
        .await
        .ok_json();

    // Every admin call with the old token is refused as unauthenticated,
    // including promoting itself back and minting a fresh pair.
    let resp = app.list_users(&deputy.token).await;
    resp.context("GET /users with the old token")
        .error_message(StatusCode::UNAUTHORIZED);
    let body = json!({ "username": "sneaky", "password": USER_PASSWORD, "roles": crate::harness::all_roles() });
    let resp = app.post_json("/user", Some(&deputy.token), &body).await;
    resp.context("POST /user with the old token")
        .error_message(StatusCode::UNAUTHORIZED);
    let resp = app.set_roles(&deputy.token, &v.id, roles(&flags)).await;
    resp.context("self re-promotion with the old token")
        .error_message(StatusCode::UNAUTHORIZED);
    let admin_id = admin_id(&app).await;
    let resp = app.logout_user(&deputy.token, &admin_id).await;
    resp.context("logging the admin out with the old token")
        .error_message(StatusCode::UNAUTHORIZED);
    app.assert_all_revoked(&v.id, &v.refs(), "after demotion")
        .await;

    // Logged in again, the deputy is an ordinary user.
    let fresh = fresh_login_works(&app, &v, USER_PASSWORD).await;
    let resp = app.list_users(&fresh.token).await;
    resp.context("GET /users as a demoted admin")
        .error_message(StatusCode::FORBIDDEN);
    // The admin who demoted it is unaffected.
    app.list_users(&admin).await.ok_json();
}

async fn admin_id(app: &TestApp) -> String {
    let token = app.login_ok("admin", ADMIN_PASSWORD).await.token;
    let resp = app.get_user_by_name(&token, "admin").await;
    resp.ok_json()["_id"].as_str().expect("_id").to_string()
}

#[actix_web::test]
async fn deleting_a_user_revokes_every_token_even_when_the_name_is_reused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.token;
    let v = victim(&app, &admin, "dora", &["read"]).await;

    app.delete_user(&admin, &v.id).await.ok_json();

    app.assert_all_revoked(&v.id, &v.refs(), "after deletion")
        .await;
    let resp = app.login(v.name, USER_PASSWORD).await;
    resp.context("login of a deleted user")
        .error_message(StatusCode::UNAUTHORIZED);

    // Someone new gets the name: the old tokens are still worth nothing.
    let new_id = app.add_user(&admin, v.name, &["read"]).await;
    assert_ne!(new_id, v.id);
    for p in &v.pairs {
        let resp = app.roles_of(&p.token, &new_id).await;
        resp.context("an old token against the new account")
            .error_message(StatusCode::UNAUTHORIZED);
        let resp = app.refresh(&p.refresh_token).await;
        resp.context("an old refresh token after re-creation")
            .error_message(StatusCode::UNAUTHORIZED);
    }
    let fresh = app.login_ok(v.name, USER_PASSWORD).await;
    app.roles_of(&fresh.token, &new_id).await.ok_json();
}

#[actix_web::test]
async fn logout_all_revokes_every_session_of_the_caller_and_nobody_elses() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.token;
    let v = victim(&app, &admin, "lou", &["read"]).await;
    let bystander = victim(&app, &admin, "ben", &["read"]).await;

    let resp = app
        .logout(Some(&v.pairs[2].token), &json!({ "all": true }))
        .await;
    resp.ok_json();

    app.assert_all_revoked(&v.id, &v.refs(), "after logout all")
        .await;
    fresh_login_works(&app, &v, USER_PASSWORD).await;
    // Another user's sessions live on.
    app.roles_of(&bystander.pairs[0].token, &bystander.id)
        .await
        .ok_json();
    app.refresh_ok(&bystander.pairs[2].refresh_token).await;
}

#[actix_web::test]
async fn an_admin_logging_a_user_out_revokes_every_session_of_that_user() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await.token;
    let v = victim(&app, &admin, "ulla", &["read"]).await;
    let other = victim(&app, &admin, "otto", &["read", "write"]).await;

    // A non-admin cannot end another user's sessions.
    let resp = app.logout_user(&other.pairs[0].token, &v.id).await;
    resp.context("logging another user out")
        .error_message(StatusCode::FORBIDDEN);
    app.roles_of(&v.pairs[0].token, &v.id).await.ok_json();

    let resp = app.logout_user(&admin, &v.id).await;
    resp.ok_json();

    app.assert_all_revoked(&v.id, &v.refs(), "after the admin's logout")
        .await;
    fresh_login_works(&app, &v, USER_PASSWORD).await;
    app.list_users(&admin).await.ok_json();
    app.roles_of(&other.pairs[0].token, &other.id)
        .await
        .ok_json();
}
