//! PATCH /user/password/{_id}: admins reset anyone's password; a user
//! changes its own only with the right `currentPassword`.

use crate::harness::{ADMIN_PASSWORD, TestApp, USER_PASSWORD, id_of, roles};
use reqwest::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn admin_resets_any_password_without_the_current_one() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app
        .create_user_ok(&admin, "forgetful", USER_PASSWORD, roles(&["read"]))
        .await;

    let body = app
        .set_password(&admin, &id, json!({ "password": "brand-new-password" }))
        .await
        .ok_json();

    assert_eq!(body, json!({ "result": "OK" }));
    app.login_ok("forgetful", "brand-new-password").await;
    app.login("forgetful", USER_PASSWORD)
        .await
        .error(StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn admin_changes_its_own_password() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&app.get_user_by_name(&admin, "admin").await.ok_json());

    app.set_password(
        &admin,
        &admin_id,
        json!({ "password": "new-admin-password" }),
    )
    .await
    .ok_json();

    app.login_ok("admin", "new-admin-password").await;
    app.login("admin", ADMIN_PASSWORD)
        .await
        .error(StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_user_changes_its_own_password_with_the_current_one() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, token) = app.user_with_token(&admin, "self-service", &["read"]).await;

    let body = app
        .set_password(
            &token,
            &id,
            json!({ "password": "my-new-password", "currentPassword": USER_PASSWORD }),
        )
        .await
        .ok_json();

    assert_eq!(body, json!({ "result": "OK" }));
    app.login_ok("self-service", "my-new-password").await;
    app.login("self-service", USER_PASSWORD)
        .await
        .error(StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_user_without_current_password_gets_400_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, token) = app.user_with_token(&admin, "self-service", &["read"]).await;

    let resp = app
        .set_password(&token, &id, json!({ "password": "my-new-password" }))
        .await;
    resp.error(StatusCode::BAD_REQUEST);
    let resp = app
        .set_password(
            &token,
            &id,
            json!({ "password": "my-new-password", "currentPassword": null }),
        )
        .await;
    // As Ajv reads it: `null` is the empty string, a wrong current password.
    resp.error(StatusCode::FORBIDDEN);

    app.login_ok("self-service", USER_PASSWORD).await;
    app.login("self-service", "my-new-password")
        .await
        .error(StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_user_with_a_wrong_current_password_gets_403_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, token) = app.user_with_token(&admin, "self-service", &["read"]).await;

    for wrong in [
        "not-my-password",
        "USER-TEST-PASSWORD",
        "user-test-password ",
    ] {
        let resp = app
            .set_password(
                &token,
                &id,
                json!({ "password": "my-new-password", "currentPassword": wrong }),
            )
            .await;
        resp.error(StatusCode::FORBIDDEN);
    }

    app.login_ok("self-service", USER_PASSWORD).await;
    app.login("self-service", "my-new-password")
        .await
        .error(StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_user_cannot_change_anothers_password() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&app.get_user_by_name(&admin, "admin").await.ok_json());
    let (_, token) = app
        .user_with_token(&admin, "mallory", &["read", "write"])
        .await;
    let victim = app
        .create_user_ok(&admin, "victim", "victim-password", roles(&["read"]))
        .await;

    for target in [&victim, &admin_id] {
        for body in [
            json!({ "password": "taken-over-1" }),
            json!({ "password": "taken-over-1", "currentPassword": USER_PASSWORD }),
        ] {
            let resp = app.set_password(&token, target, body).await;
            resp.error(StatusCode::FORBIDDEN);
        }
    }

    app.login_ok("victim", "victim-password").await;
    app.login_ok("admin", ADMIN_PASSWORD).await;
}

#[actix_web::test]
async fn new_passwords_must_be_8_characters_to_1024_bytes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app
        .create_user_ok(&admin, "rules", USER_PASSWORD, roles(&["read"]))
        .await;

    for bad in [
        "",
        "1234567",
        "ééééééé",
        "a".repeat(1025).as_str(),
        "é".repeat(513).as_str(),
    ] {
        let resp = app
            .set_password(&admin, &id, json!({ "password": bad }))
            .await;
        resp.error(StatusCode::BAD_REQUEST);
        let resp = app
            .create_user(&admin, "someone-new", bad, roles(&[]))
            .await;
        resp.error(StatusCode::BAD_REQUEST);
    }
    app.login_ok("rules", USER_PASSWORD).await;
    assert_eq!(app.users(&admin).await.len(), 2);

    // The bounds themselves are accepted.
    for good in ["12345678".to_string(), "a".repeat(1024), "é".repeat(512)] {
        app.set_password(&admin, &id, json!({ "password": good }))
            .await
            .ok_json();
        app.login_ok("rules", &good).await;
    }
}

#[actix_web::test]
async fn password_body_is_checked() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app
        .create_user_ok(&admin, "typed", USER_PASSWORD, roles(&["read"]))
        .await;
    for (body, message) in [
        (json!({}), "body must have required property 'password'"),
        (
            json!({ "newPassword": "long-enough-pw" }),
            "body must have required property 'password'",
        ),
        (
            json!({ "password": null }),
            "body/password must NOT have fewer than 8 characters",
        ),
        (json!({ "password": {} }), "body/password must be string"),
        (
            json!({ "password": "long-enough-pw", "currentPassword": {} }),
            "body/currentPassword must be string",
        ),
    ] {
        let got = app
            .set_password(&admin, &id, body.clone())
            .await
            .error_message(StatusCode::BAD_REQUEST);
        assert_eq!(got, message, "{body}");
    }
    app.login_ok("typed", USER_PASSWORD).await;
    // Accepted as the original accepts them: a number is its digits, an
    // unknown field is removed.
    for (body, password) in [
        (json!({ "password": 12345678 }), "12345678"),
        (
            json!({ "password": ["long-enough-pw"], "extra": "x" }),
            "long-enough-pw",
        ),
    ] {
        app.set_password(&admin, &id, body).await.ok_json();
        app.login_ok("typed", password).await;
    }
}

#[actix_web::test]
async fn password_of_unknown_or_malformed_id() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let body = json!({ "password": "long-enough-pw" });
    app.set_password(&admin, &unknown, body.clone())
        .await
        .error(StatusCode::NOT_FOUND);
    app.set_password(&admin, "admin", body)
        .await
        .error(StatusCode::BAD_REQUEST);
}
