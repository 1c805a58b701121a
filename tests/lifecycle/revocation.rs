//! Revocation at once: changing a user's password or roles, deleting it,
//! "log out everywhere" and the admin's logout of a user all invalidate
//! every access and refresh token issued to it before, while a login right
//! after the change (same second of the server's clock) works.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    ADMIN_PASSWORD, TestApp, TokenPair, USER_PASSWORD, assert_status, claims_of, json_ok,
    spawn_app, start_of_a_second,
};

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
    let id = app.create_user(admin, name, flags).await;
    let first = app.login_ok(name, USER_PASSWORD).await;
    let second = app.login_ok(name, USER_PASSWORD).await;
    let refreshed = app.refresh_ok(&second.refresh_token).await;
    let pairs = vec![first, second, refreshed];
    for p in &pairs {
        json_ok(app.own_roles(&p.token, &id).await).await;
    }
    Victim { id, name, pairs }
}

/// A login right after the change works, and so do its tokens.
async fn fresh_login_works(app: &TestApp, v: &Victim, password: &str) -> TokenPair {
    let fresh = app.login_ok(v.name, password).await;
    json_ok(app.own_roles(&fresh.token, &v.id).await).await;
    let next = app.refresh_ok(&fresh.refresh_token).await;
    json_ok(app.own_roles(&next.token, &v.id).await).await;
    fresh
}

#[actix_web::test]
async fn an_admin_password_reset_revokes_every_token_and_a_login_in_the_same_second_works() {
    let app = spawn_app().await;
    let admin = app.admin().await.token;
    let mut v = victim(&app, &admin, "pat", &["read"]).await;

    // Issued, changed and logged in again within (most likely) one second:
    // a token from the same second as the change must still be revoked, a
    // login from the same second must still work.
    start_of_a_second().await;
    v.pairs.push(app.login_ok(v.name, USER_PASSWORD).await);
    let resp = app
        .set_password(
            &admin,
            &v.id,
            &json!({ "password": "a-brand-new-password" }),
        )
        .await;
    json_ok(resp).await;
    let fresh = app.login_ok(v.name, "a-brand-new-password").await;
    json_ok(app.own_roles(&fresh.token, &v.id).await).await;

    app.assert_all_revoked(&v.id, &v.refs(), "after a password reset")
        .await;
    let old = app.login(v.name, USER_PASSWORD).await;
    assert_status(old, StatusCode::UNAUTHORIZED, "the old password").await;
    fresh_login_works(&app, &v, "a-brand-new-password").await;
    // The change touched that user only.
    json_ok(app.list_users(&admin).await).await;
}

#[actix_web::test]
async fn a_users_own_password_change_revokes_its_other_sessions_and_the_calling_token() {
    let app = spawn_app().await;
    let admin = app.admin().await.token;
    let v = victim(&app, &admin, "sam", &["read", "write"]).await;

    let body = json!({ "password": "sams-new-password", "currentPassword": USER_PASSWORD });
    json_ok(app.set_password(&v.pairs[0].token, &v.id, &body).await).await;

    app.assert_all_revoked(&v.id, &v.refs(), "after changing one's own password")
        .await;
    fresh_login_works(&app, &v, "sams-new-password").await;
}

#[actix_web::test]
async fn a_role_change_revokes_every_token_and_new_tokens_carry_the_new_roles() {
    let app = spawn_app().await;
    let admin = app.admin().await.token;
    let v = victim(&app, &admin, "rolf", &["read", "write", "subscribe"]).await;

    json_ok(app.set_roles(&admin, &v.id, &["read"]).await).await;

    app.assert_all_revoked(&v.id, &v.refs(), "after a role change")
        .await;
    let fresh = fresh_login_works(&app, &v, USER_PASSWORD).await;
    assert_eq!(claims_of(&fresh.token)["roles"], json!(1), "read only now");
}

#[actix_web::test]
async fn a_demoted_admins_old_token_can_no_longer_manage_users() {
    let app = spawn_app().await;
    let admin = app.admin().await.token;
    let flags = ["admin", "flows", "configure", "subscribe", "write", "read"];
    let v = victim(&app, &admin, "deputy", &flags).await;
    let deputy = v.pairs[0].clone();
    json_ok(app.list_users(&deputy.token).await).await;

    json_ok(app.set_roles(&admin, &v.id, &["read"]).await).await;

    // Every admin call with the old token is refused as unauthenticated,
    // including promoting itself back and minting a fresh pair.
    let resp = app.list_users(&deputy.token).await;
    assert_status(
        resp,
        StatusCode::UNAUTHORIZED,
        "GET /users with the old token",
    )
    .await;
    let body = json!({ "username": "sneaky", "password": USER_PASSWORD, "roles": crate::helpers::all_roles() });
    let resp = app.post("/user", Some(&deputy.token), &body).await;
    assert_status(
        resp,
        StatusCode::UNAUTHORIZED,
        "POST /user with the old token",
    )
    .await;
    let resp = app.set_roles(&deputy.token, &v.id, &flags).await;
    assert_status(
        resp,
        StatusCode::UNAUTHORIZED,
        "self re-promotion with the old token",
    )
    .await;
    let resp = app
        .send(
            reqwest::Method::POST,
            &format!("/user/logout/{}", admin_id(&app).await),
            Some(&deputy.token),
            None,
        )
        .await;
    assert_status(
        resp,
        StatusCode::UNAUTHORIZED,
        "logging the admin out with the old token",
    )
    .await;
    app.assert_all_revoked(&v.id, &v.refs(), "after demotion")
        .await;

    // Logged in again, the deputy is an ordinary user.
    let fresh = fresh_login_works(&app, &v, USER_PASSWORD).await;
    let resp = app.list_users(&fresh.token).await;
    assert_status(resp, StatusCode::FORBIDDEN, "GET /users as a demoted admin").await;
    // The admin who demoted it is unaffected.
    json_ok(app.list_users(&admin).await).await;
}

async fn admin_id(app: &TestApp) -> String {
    let token = app.login_ok("admin", ADMIN_PASSWORD).await.token;
    let resp = app
        .send(reqwest::Method::GET, "/user/admin", Some(&token), None)
        .await;
    json_ok(resp).await["_id"]
        .as_str()
        .expect("_id")
        .to_string()
}

#[actix_web::test]
async fn deleting_a_user_revokes_every_token_even_when_the_name_is_reused() {
    let app = spawn_app().await;
    let admin = app.admin().await.token;
    let v = victim(&app, &admin, "dora", &["read"]).await;

    json_ok(app.delete_user(&admin, &v.id).await).await;

    app.assert_all_revoked(&v.id, &v.refs(), "after deletion")
        .await;
    let resp = app.login(v.name, USER_PASSWORD).await;
    assert_status(resp, StatusCode::UNAUTHORIZED, "login of a deleted user").await;

    // Someone new gets the name: the old tokens are still worth nothing.
    let new_id = app.create_user(&admin, v.name, &["read"]).await;
    assert_ne!(new_id, v.id);
    for p in &v.pairs {
        let resp = app.own_roles(&p.token, &new_id).await;
        assert_status(
            resp,
            StatusCode::UNAUTHORIZED,
            "an old token against the new account",
        )
        .await;
        let resp = app.refresh(&p.refresh_token).await;
        assert_status(
            resp,
            StatusCode::UNAUTHORIZED,
            "an old refresh token after re-creation",
        )
        .await;
    }
    let fresh = app.login_ok(v.name, USER_PASSWORD).await;
    json_ok(app.own_roles(&fresh.token, &new_id).await).await;
}

#[actix_web::test]
async fn logout_all_revokes_every_session_of_the_caller_and_nobody_elses() {
    let app = spawn_app().await;
    let admin = app.admin().await.token;
    let v = victim(&app, &admin, "lou", &["read"]).await;
    let bystander = victim(&app, &admin, "ben", &["read"]).await;

    let resp = app
        .logout(Some(&v.pairs[2].token), &json!({ "all": true }))
        .await;
    json_ok(resp).await;

    app.assert_all_revoked(&v.id, &v.refs(), "after logout all")
        .await;
    fresh_login_works(&app, &v, USER_PASSWORD).await;
    // Another user's sessions live on.
    json_ok(
        app.own_roles(&bystander.pairs[0].token, &bystander.id)
            .await,
    )
    .await;
    app.refresh_ok(&bystander.pairs[2].refresh_token).await;
}

#[actix_web::test]
async fn an_admin_logging_a_user_out_revokes_every_session_of_that_user() {
    let app = spawn_app().await;
    let admin = app.admin().await.token;
    let v = victim(&app, &admin, "ulla", &["read"]).await;
    let other = victim(&app, &admin, "otto", &["read", "write"]).await;

    // A non-admin cannot end another user's sessions.
    let path = format!("/user/logout/{}", v.id);
    let resp = app
        .send(
            reqwest::Method::POST,
            &path,
            Some(&other.pairs[0].token),
            None,
        )
        .await;
    assert_status(resp, StatusCode::FORBIDDEN, "logging another user out").await;
    json_ok(app.own_roles(&v.pairs[0].token, &v.id).await).await;

    let resp = app
        .send(reqwest::Method::POST, &path, Some(&admin), None)
        .await;
    json_ok(resp).await;

    app.assert_all_revoked(&v.id, &v.refs(), "after the admin's logout")
        .await;
    fresh_login_works(&app, &v, USER_PASSWORD).await;
    json_ok(app.list_users(&admin).await).await;
    json_ok(app.own_roles(&other.pairs[0].token, &other.id).await).await;
}
