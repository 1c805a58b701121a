//! GET and PATCH /user/roles/{_id}, the last-admin rule, and demotion
//! taking effect at once. (That the *stored* roles, not the token's, decide
//! what a caller may do is checked with a genuinely signed token carrying
//! forged roles in `tokens_attacks`.)

use crate::harness::{TestApp, USER_PASSWORD, all_roles, decode_jwt, id_of, keys, roles};
use reqwest::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn roles_are_six_booleans() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&app.get_user_by_name(&admin, "admin").await.ok_json());
    let id = app
        .create_user_ok(
            &admin,
            "bobz@home.com",
            USER_PASSWORD,
            roles(&["flows", "subscribe", "write", "read"]),
        )
        .await;

    let a = app.roles_of(&admin, &admin_id).await.ok_json();
    assert_eq!(a, all_roles());
    let b = app.roles_of(&admin, &id).await.ok_json();
    assert_eq!(
        b,
        json!({ "admin": false, "flows": true, "configure": false,
                "subscribe": true, "write": true, "read": true })
    );
    assert_eq!(
        keys(&b),
        vec!["admin", "configure", "flows", "read", "subscribe", "write"]
    );
}

#[actix_web::test]
async fn every_single_flag_round_trips() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for (i, flag) in ["admin", "flows", "configure", "subscribe", "write", "read"]
        .into_iter()
        .enumerate()
    {
        let id = app
            .create_user_ok(&admin, &format!("only-{i}"), USER_PASSWORD, roles(&[flag]))
            .await;
        assert_eq!(app.roles_of(&admin, &id).await.ok_json(), roles(&[flag]));
    }
    let none = app
        .create_user_ok(&admin, "nothing", USER_PASSWORD, roles(&[]))
        .await;
    assert_eq!(app.roles_of(&admin, &none).await.ok_json(), roles(&[]));
}

#[actix_web::test]
async fn a_user_reads_its_own_roles_but_not_anothers() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&app.get_user_by_name(&admin, "admin").await.ok_json());
    let (id, token) = app.user_with_token(&admin, "reader", &["read"]).await;
    let other = app
        .create_user_ok(&admin, "other", USER_PASSWORD, roles(&["write"]))
        .await;

    assert_eq!(app.roles_of(&token, &id).await.ok_json(), roles(&["read"]));
    app.roles_of(&token, &other)
        .await
        .error(StatusCode::FORBIDDEN);
    app.roles_of(&token, &admin_id)
        .await
        .error(StatusCode::FORBIDDEN);
    let unknown = uuid::Uuid::new_v4().to_string();
    app.roles_of(&token, &unknown)
        .await
        .error(StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn roles_of_unknown_or_malformed_ids() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    app.roles_of(&admin, &unknown)
        .await
        .error(StatusCode::NOT_FOUND);
    app.set_roles(&admin, &unknown, roles(&["read"]))
        .await
        .error(StatusCode::NOT_FOUND);
    for bad in ["admin", "not-a-uuid", "1234"] {
        app.roles_of(&admin, bad)
            .await
            .error(StatusCode::BAD_REQUEST);
        app.set_roles(&admin, bad, roles(&["read"]))
            .await
            .error(StatusCode::BAD_REQUEST);
    }
}

#[actix_web::test]
async fn patch_roles_answers_the_new_profile_and_stores_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app
        .create_user_ok(&admin, "changing", USER_PASSWORD, roles(&["read"]))
        .await;

    let new = roles(&["configure", "subscribe", "write"]);
    let body = app.set_roles(&admin, &id, new.clone()).await.ok_json();

    assert_eq!(body, json!({ "roles": new }));
    assert_eq!(app.roles_of(&admin, &id).await.ok_json(), new);
    let token = app.login_ok("changing", USER_PASSWORD).await.token;
    assert_eq!(decode_jwt(&token).1["roles"], json!(14));
}

#[actix_web::test]
async fn patch_roles_body_is_decided_as_the_original_decides_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app
        .create_user_ok(&admin, "strict", USER_PASSWORD, roles(&["read"]))
        .await;
    let path = format!("/user/roles/{id}");
    let mut missing = all_roles();
    missing.as_object_mut().expect("object").remove("configure");
    let mut shouting = all_roles();
    shouting["write"] = json!("TRUE");
    let mut two = all_roles();
    two["admin"] = json!(2);
    for (body, message) in [
        (
            json!({ "roles": missing }),
            "body/roles must have required property 'configure'",
        ),
        (json!({ "roles": null }), "body/roles must be object"),
        (
            json!({ "roles": {} }),
            "body/roles must have required property 'admin'",
        ),
        (json!({ "roles": 159 }), "body/roles must be object"),
        (json!({ "roles": ["admin"] }), "body/roles must be object"),
        (
            json!({ "roles": [all_roles()] }),
            "body/roles must be object",
        ),
        (json!({}), "body must have required property 'roles'"),
        (roles(&["read"]), "body must have required property 'roles'"),
        (
            json!({ "roles": shouting }),
            "body/roles/write must be boolean",
        ),
        (json!({ "roles": two }), "body/roles/admin must be boolean"),
    ] {
        let got = app
            .patch_json(&path, Some(&admin), &body)
            .await
            .error_message(StatusCode::BAD_REQUEST);
        assert_eq!(got, message, "{body}");
    }
    assert_eq!(app.roles_of(&admin, &id).await.ok_json(), roles(&["read"]));

    // Coerced as Ajv coerces ("true"/1 are true, "false"/0/null false, a
    // one-item array unwrapped); unknown flags and fields removed.
    let body = json!({ "username": "x", "roles": {
        "admin": false, "flows": null, "configure": 0, "subscribe": "false",
        "write": "true", "read": [1], "superuser": true } });
    app.patch_json(&path, Some(&admin), &body).await.ok_json();
    assert_eq!(
        app.roles_of(&admin, &id).await.ok_json(),
        roles(&["write", "read"])
    );

    // Coercion changes how a flag is read, never who may set it: a
    // non-admin sending "admin": "true" for itself is refused.
    let (self_id, token) = app.user_with_token(&admin, "climber", &["read"]).await;
    let mut grab = all_roles();
    grab["admin"] = json!("true");
    grab["flows"] = json!(1);
    app.patch_json(
        &format!("/user/roles/{self_id}"),
        Some(&token),
        &json!({ "roles": grab }),
    )
    .await
    .error(StatusCode::FORBIDDEN);
    assert_eq!(
        app.roles_of(&admin, &self_id).await.ok_json(),
        roles(&["read"])
    );
}

#[actix_web::test]
async fn create_user_body_must_carry_all_six_flags() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut missing = all_roles();
    missing.as_object_mut().expect("object").remove("read");
    for (r, message) in [
        (missing, "body/roles must have required property 'read'"),
        (json!(null), "body/roles must be object"),
        (json!({}), "body/roles must have required property 'admin'"),
        (json!("read"), "body/roles must be object"),
        (json!(159), "body/roles must be object"),
    ] {
        let got = app
            .create_user(&admin, "someone", USER_PASSWORD, r)
            .await
            .error_message(StatusCode::BAD_REQUEST);
        assert_eq!(got, message);
    }
    assert_eq!(app.users(&admin).await, vec!["admin".to_string()]);
    // An unknown flag is removed, as by the original.
    let mut extra = roles(&["read"]);
    extra["root"] = json!(true);
    let id = id_of(
        &app.create_user(&admin, "someone", USER_PASSWORD, extra)
            .await
            .ok_json(),
    );
    assert_eq!(app.roles_of(&admin, &id).await.ok_json(), roles(&["read"]));
}

#[actix_web::test]
async fn the_last_admin_cannot_be_demoted() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&app.get_user_by_name(&admin, "admin").await.ok_json());

    let resp = app
        .set_roles(
            &admin,
            &admin_id,
            roles(&["flows", "configure", "subscribe", "write", "read"]),
        )
        .await;
    resp.error(StatusCode::CONFLICT);
    assert_eq!(app.roles_of(&admin, &admin_id).await.ok_json(), all_roles());
    // Still an admin in practice, too.
    app.users(&admin).await;
    // Setting the same full profile again is not a demotion.
    app.set_roles(&admin, &admin_id, all_roles())
        .await
        .ok_json();
}

#[actix_web::test]
async fn a_demoted_admin_can_no_longer_manage_users() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (x_id, x_token) = app
        .user_with_token(&admin, "x-admin", &["admin", "read"])
        .await;
    assert_eq!(decode_jwt(&x_token).1["roles"], json!(129));
    app.users(&x_token).await;

    app.set_roles(&admin, &x_id, roles(&["read"]))
        .await
        .ok_json();

    // Its unexpired token says 129 but is refused at once (README: a role
    // change revokes the user's earlier tokens: 401).
    app.get("/users", Some(&x_token))
        .await
        .error(StatusCode::UNAUTHORIZED);
    let new_user = json!({ "username": "y", "password": USER_PASSWORD, "roles": all_roles() });
    app.post_json("/user", Some(&x_token), &new_user)
        .await
        .error(StatusCode::UNAUTHORIZED);
    // Logged in again, it is itself without admin rights.
    let fresh = app.login_ok("x-admin", USER_PASSWORD).await.token;
    assert_eq!(decode_jwt(&fresh).1["roles"], json!(1));
    app.get("/users", Some(&fresh))
        .await
        .error(StatusCode::FORBIDDEN);
    app.post_json("/user", Some(&fresh), &new_user)
        .await
        .error(StatusCode::FORBIDDEN);
    assert_eq!(
        app.roles_of(&fresh, &x_id).await.ok_json(),
        roles(&["read"])
    );
    assert_eq!(app.users(&admin).await.len(), 2);
}

#[actix_web::test]
async fn a_demoted_former_admin_can_no_longer_manage_users() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&app.get_user_by_name(&admin, "admin").await.ok_json());
    let (other_id, other) = app.user_with_token(&admin, "new-boss", &["admin"]).await;

    // The new admin demotes the seeded one.
    app.set_roles(&other, &admin_id, roles(&["read"]))
        .await
        .ok_json();

    app.get("/users", Some(&admin))
        .await
        .error(StatusCode::UNAUTHORIZED);
    let fresh = app.admin_token().await;
    app.get("/users", Some(&fresh))
        .await
        .error(StatusCode::FORBIDDEN);
    app.set_roles(&fresh, &admin_id, all_roles())
        .await
        .error(StatusCode::FORBIDDEN);
    app.delete_user(&fresh, &other_id)
        .await
        .error(StatusCode::FORBIDDEN);
    // And the new last admin cannot be demoted.
    app.set_roles(&other, &other_id, roles(&["read"]))
        .await
        .error(StatusCode::CONFLICT);
    assert_eq!(
        app.roles_of(&other, &admin_id).await.ok_json(),
        roles(&["read"])
    );
}
