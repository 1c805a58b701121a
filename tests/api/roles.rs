//! GET and PATCH /user/roles/{_id}, the last-admin rule, and demotion
//! taking effect at once. (That the *stored* roles, not the token's, decide
//! what a caller may do is checked with a genuinely signed token carrying
//! forged roles in `tokens_attacks`.)

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    USER_PASSWORD, all_roles, assert_error, decode_jwt, id_of, json_ok, keys, roles, spawn_app,
};

#[actix_web::test]
async fn roles_are_six_booleans() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&json_ok(app.get_user_by_name(&admin, "admin").await).await);
    let id = app
        .create_user_ok(
            &admin,
            "bobz@home.com",
            USER_PASSWORD,
            roles(&["flows", "subscribe", "write", "read"]),
        )
        .await;

    let a = json_ok(app.roles_of(&admin, &admin_id).await).await;
    assert_eq!(a, all_roles());
    let b = json_ok(app.roles_of(&admin, &id).await).await;
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
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for (i, flag) in ["admin", "flows", "configure", "subscribe", "write", "read"]
        .into_iter()
        .enumerate()
    {
        let id = app
            .create_user_ok(&admin, &format!("only-{i}"), USER_PASSWORD, roles(&[flag]))
            .await;
        assert_eq!(
            json_ok(app.roles_of(&admin, &id).await).await,
            roles(&[flag])
        );
    }
    let none = app
        .create_user_ok(&admin, "nothing", USER_PASSWORD, roles(&[]))
        .await;
    assert_eq!(json_ok(app.roles_of(&admin, &none).await).await, roles(&[]));
}

#[actix_web::test]
async fn a_user_reads_its_own_roles_but_not_anothers() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&json_ok(app.get_user_by_name(&admin, "admin").await).await);
    let (id, token) = app.user_with_token(&admin, "reader", &["read"]).await;
    let other = app
        .create_user_ok(&admin, "other", USER_PASSWORD, roles(&["write"]))
        .await;

    assert_eq!(
        json_ok(app.roles_of(&token, &id).await).await,
        roles(&["read"])
    );
    assert_error(app.roles_of(&token, &other).await, StatusCode::FORBIDDEN).await;
    assert_error(app.roles_of(&token, &admin_id).await, StatusCode::FORBIDDEN).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_error(app.roles_of(&token, &unknown).await, StatusCode::FORBIDDEN).await;
}

#[actix_web::test]
async fn roles_of_unknown_or_malformed_ids() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_error(app.roles_of(&admin, &unknown).await, StatusCode::NOT_FOUND).await;
    assert_error(
        app.set_roles(&admin, &unknown, roles(&["read"])).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    for bad in ["admin", "not-a-uuid", "1234"] {
        assert_error(app.roles_of(&admin, bad).await, StatusCode::BAD_REQUEST).await;
        assert_error(
            app.set_roles(&admin, bad, roles(&["read"])).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
}

#[actix_web::test]
async fn patch_roles_answers_the_new_profile_and_stores_it() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let id = app
        .create_user_ok(&admin, "changing", USER_PASSWORD, roles(&["read"]))
        .await;

    let new = roles(&["configure", "subscribe", "write"]);
    let body = json_ok(app.set_roles(&admin, &id, new.clone()).await).await;

    assert_eq!(body, json!({ "roles": new }));
    assert_eq!(json_ok(app.roles_of(&admin, &id).await).await, new);
    let token = app.login_ok("changing", USER_PASSWORD).await.token;
    assert_eq!(decode_jwt(&token).1["roles"], json!(14));
}

#[actix_web::test]
async fn patch_roles_body_must_carry_all_six_flags_and_nothing_else() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let id = app
        .create_user_ok(&admin, "strict", USER_PASSWORD, roles(&["read"]))
        .await;
    let mut missing = all_roles();
    missing.as_object_mut().expect("object").remove("configure");
    let mut extra = roles(&["read"]);
    extra["superuser"] = json!(true);
    let mut stringy = roles(&["read"]);
    stringy["write"] = json!("true");
    let mut numeric = roles(&["read"]);
    numeric["admin"] = json!(1);
    let mut null = roles(&["read"]);
    null["flows"] = json!(null);
    let bodies = [
        json!({ "roles": missing }),
        json!({ "roles": extra }),
        json!({ "roles": stringy }),
        json!({ "roles": numeric }),
        json!({ "roles": null }),
        json!({ "roles": {} }),
        json!({ "roles": 159 }),
        json!({ "roles": ["admin"] }),
        json!({}),
        json!({ "roles": roles(&["read"]), "username": "x" }),
        roles(&["read"]),
    ];
    for body in bodies {
        let resp = app
            .patch_json(&format!("/user/roles/{id}"), Some(&admin), &body)
            .await;
        assert_error(resp, StatusCode::BAD_REQUEST).await;
    }
    assert_eq!(
        json_ok(app.roles_of(&admin, &id).await).await,
        roles(&["read"])
    );
}

#[actix_web::test]
async fn create_user_body_must_carry_all_six_flags() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let mut missing = all_roles();
    missing.as_object_mut().expect("object").remove("read");
    let mut extra = roles(&["read"]);
    extra["root"] = json!(false);
    for r in [
        missing,
        extra,
        json!(null),
        json!({}),
        json!("read"),
        json!(159),
    ] {
        let resp = app.create_user(&admin, "someone", USER_PASSWORD, r).await;
        assert_error(resp, StatusCode::BAD_REQUEST).await;
    }
    assert_eq!(app.users(&admin).await, vec!["admin".to_string()]);
}

#[actix_web::test]
async fn the_last_admin_cannot_be_demoted() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&json_ok(app.get_user_by_name(&admin, "admin").await).await);

    let resp = app
        .set_roles(
            &admin,
            &admin_id,
            roles(&["flows", "configure", "subscribe", "write", "read"]),
        )
        .await;
    assert_error(resp, StatusCode::CONFLICT).await;
    assert_eq!(
        json_ok(app.roles_of(&admin, &admin_id).await).await,
        all_roles()
    );
    // Still an admin in practice, too.
    app.users(&admin).await;
    // Setting the same full profile again is not a demotion.
    json_ok(app.set_roles(&admin, &admin_id, all_roles()).await).await;
}

#[actix_web::test]
async fn a_demoted_admin_can_no_longer_manage_users() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (x_id, x_token) = app
        .user_with_token(&admin, "x-admin", &["admin", "read"])
        .await;
    assert_eq!(decode_jwt(&x_token).1["roles"], json!(129));
    app.users(&x_token).await;

    json_ok(app.set_roles(&admin, &x_id, roles(&["read"])).await).await;

    // Its unexpired token says 129 but is refused at once (README: a role
    // change revokes the user's earlier tokens: 401).
    assert_error(
        app.get("/users", Some(&x_token)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let new_user = json!({ "username": "y", "password": USER_PASSWORD, "roles": all_roles() });
    assert_error(
        app.post_json("/user", Some(&x_token), &new_user).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // Logged in again, it is itself without admin rights.
    let fresh = app.login_ok("x-admin", USER_PASSWORD).await.token;
    assert_eq!(decode_jwt(&fresh).1["roles"], json!(1));
    assert_error(app.get("/users", Some(&fresh)).await, StatusCode::FORBIDDEN).await;
    assert_error(
        app.post_json("/user", Some(&fresh), &new_user).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        json_ok(app.roles_of(&fresh, &x_id).await).await,
        roles(&["read"])
    );
    assert_eq!(app.users(&admin).await.len(), 2);
}

#[actix_web::test]
async fn a_demoted_former_admin_can_no_longer_manage_users() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&json_ok(app.get_user_by_name(&admin, "admin").await).await);
    let (other_id, other) = app.user_with_token(&admin, "new-boss", &["admin"]).await;

    // The new admin demotes the seeded one.
    json_ok(app.set_roles(&other, &admin_id, roles(&["read"])).await).await;

    assert_error(
        app.get("/users", Some(&admin)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let fresh = app.admin_token().await;
    assert_error(app.get("/users", Some(&fresh)).await, StatusCode::FORBIDDEN).await;
    assert_error(
        app.set_roles(&fresh, &admin_id, all_roles()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_error(
        app.delete_user(&fresh, &other_id).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // And the new last admin cannot be demoted.
    assert_error(
        app.set_roles(&other, &other_id, roles(&["read"])).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        json_ok(app.roles_of(&other, &admin_id).await).await,
        roles(&["read"])
    );
}
