//! POST /user, GET /user/{username}, GET /users, DELETE /user/{_id}, and
//! the username rules.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{USER_PASSWORD, assert_error, id_of, json_ok, roles, spawn_app};

#[actix_web::test]
async fn create_user_returns_its_uuid_and_it_can_be_found_and_listed() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let resp = app
        .create_user(
            &admin,
            "bobz@home.com",
            "12345678",
            roles(&["flows", "subscribe", "write", "read"]),
        )
        .await;
    let id = id_of(&json_ok(resp).await);

    let found = id_of(&json_ok(app.get_user_by_name(&admin, "bobz@home.com").await).await);
    assert_eq!(found, id);
    assert_eq!(
        app.users(&admin).await,
        vec!["admin".to_string(), "bobz@home.com".to_string()]
    );
    app.login_ok("bobz@home.com", "12345678").await;
}

#[actix_web::test]
async fn every_created_user_gets_a_distinct_id() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let a = app
        .create_user_ok(&admin, "a-user", USER_PASSWORD, roles(&[]))
        .await;
    let b = app
        .create_user_ok(&admin, "b-user", USER_PASSWORD, roles(&[]))
        .await;
    let admin_id = id_of(&json_ok(app.get_user_by_name(&admin, "admin").await).await);
    assert_ne!(a, b);
    assert_ne!(a, admin_id);
}

#[actix_web::test]
async fn usernames_are_stored_and_listed_as_given() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let names = [
        "Bob",
        "chris@HOME.com",
        "Zoë Ünïcødé 名前",
        "team/ops lead",
        "Ω",
    ];
    for n in names {
        app.create_user_ok(&admin, n, USER_PASSWORD, roles(&["read"]))
            .await;
    }

    let mut listed = app.users(&admin).await;
    listed.sort();
    let mut expected: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    expected.push("admin".into());
    expected.sort();
    assert_eq!(listed, expected);

    for n in names {
        app.login_ok(n, USER_PASSWORD).await;
    }
}

#[actix_web::test]
async fn usernames_with_slash_spaces_and_unicode_are_found_percent_encoded() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for name in [
        "team/ops lead",
        "a b",
        "roles/x",
        "50% off?#",
        "plus+sign",
        "名前 / 名前",
    ] {
        let id = app
            .create_user_ok(&admin, name, USER_PASSWORD, roles(&["read"]))
            .await;
        let resp = app.get_user_by_name(&admin, name).await;
        let status = resp.status();
        assert_eq!(
            status,
            StatusCode::OK,
            "GET /user/{{{name:?}}} answered {status}"
        );
        assert_eq!(id_of(&json_ok(resp).await), id, "{name:?}");
    }
}

#[actix_web::test]
async fn username_lookup_is_case_insensitive() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let id = app
        .create_user_ok(&admin, "Straße", USER_PASSWORD, roles(&["read"]))
        .await;
    for probe in ["Straße", "straße", "STRASSE", "strasse"] {
        let got = id_of(&json_ok(app.get_user_by_name(&admin, probe).await).await);
        assert_eq!(got, id, "{probe}");
    }
}

#[actix_web::test]
async fn usernames_are_unique_regardless_of_case() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_user_ok(&admin, "Bob", USER_PASSWORD, roles(&["read"]))
        .await;
    app.create_user_ok(&admin, "Straße", USER_PASSWORD, roles(&["read"]))
        .await;

    for dup in [
        "Bob", "bob", "BOB", "bOb", "Admin", "ADMIN", "STRASSE", "strasse", "straße",
    ] {
        let resp = app
            .create_user(&admin, dup, "another-password", roles(&["admin"]))
            .await;
        assert_error(resp, StatusCode::CONFLICT).await;
    }
    // Nothing was overwritten.
    app.login_ok("Bob", USER_PASSWORD).await;
    assert_eq!(app.users(&admin).await.len(), 3);
}

#[actix_web::test]
async fn invalid_usernames_are_400() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let long = "é".repeat(257);
    let invalid = [
        "",
        " ",
        " lead",
        "trail ",
        "\tlead",
        "trail\u{a0}",
        "bell\u{7}",
        "new\nline",
        "nul\0",
        "del\u{7f}",
        "c1\u{85}",
        long.as_str(),
    ];
    for name in invalid {
        let resp = app
            .create_user(&admin, name, USER_PASSWORD, roles(&["read"]))
            .await;
        assert_error(resp, StatusCode::BAD_REQUEST).await;
    }
    assert_eq!(app.users(&admin).await, vec!["admin".to_string()]);

    // The longest valid name: 256 characters (512 bytes).
    let max = "é".repeat(256);
    app.create_user_ok(&admin, &max, USER_PASSWORD, roles(&["read"]))
        .await;
    app.login_ok(&max, USER_PASSWORD).await;
}

#[actix_web::test]
async fn unknown_username_is_404() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    assert_error(
        app.get_user_by_name(&admin, "ghost").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error(
        app.get_user_by_name(&admin, "a/b").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[actix_web::test]
async fn delete_user_answers_ok_and_removes_everything() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (id, token) = app.user_with_token(&admin, "Doomed", &["read"]).await;

    let body = json_ok(app.delete_user(&admin, &id).await).await;
    assert_eq!(body, json!({ "result": "OK" }));

    assert_error(
        app.get_user_by_name(&admin, "Doomed").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(app.users(&admin).await, vec!["admin".to_string()]);
    assert_error(
        app.login("Doomed", USER_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_error(app.roles_of(&admin, &id).await, StatusCode::NOT_FOUND).await;
    // Its token is dead at once.
    assert_error(app.roles_of(&token, &id).await, StatusCode::UNAUTHORIZED).await;
    // Deleting again: gone.
    assert_error(app.delete_user(&admin, &id).await, StatusCode::NOT_FOUND).await;
    // The name is free again (and gets a new id).
    let again = app
        .create_user_ok(&admin, "doomed", USER_PASSWORD, roles(&["read"]))
        .await;
    assert_ne!(again, id);
}

#[actix_web::test]
async fn delete_unknown_or_malformed_id() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_error(
        app.delete_user(&admin, &unknown).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    for bad in [
        "not-a-uuid",
        "admin",
        "123",
        "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
    ] {
        assert_error(app.delete_user(&admin, bad).await, StatusCode::BAD_REQUEST).await;
    }
}

#[actix_web::test]
async fn the_last_admin_cannot_be_deleted_but_one_of_two_can() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&json_ok(app.get_user_by_name(&admin, "admin").await).await);

    assert_error(
        app.delete_user(&admin, &admin_id).await,
        StatusCode::CONFLICT,
    )
    .await;
    app.login_ok("admin", crate::helpers::ADMIN_PASSWORD).await;

    let (other_id, other) = app
        .user_with_token(&admin, "second-admin", &["admin", "read"])
        .await;
    json_ok(app.delete_user(&other, &admin_id).await).await;
    // Now "second-admin" is the last one; it cannot delete itself.
    assert_error(
        app.delete_user(&other, &other_id).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(app.users(&other).await, vec!["second-admin".to_string()]);
}

#[actix_web::test]
async fn admin_endpoints_need_a_token() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4().to_string();
    let body = json!({ "username": "x-user", "password": USER_PASSWORD, "roles": roles(&[]) });
    let responses = [
        app.post_json("/user", None, &body).await,
        app.get("/user/admin", None).await,
        app.get("/users", None).await,
        app.get(&format!("/user/roles/{id}"), None).await,
        app.patch_json(
            &format!("/user/roles/{id}"),
            None,
            &json!({ "roles": roles(&[]) }),
        )
        .await,
        app.patch_json(
            &format!("/user/password/{id}"),
            None,
            &json!({ "password": USER_PASSWORD }),
        )
        .await,
        app.delete(&format!("/user/{id}"), None).await,
    ];
    for resp in responses {
        assert_error(resp, StatusCode::UNAUTHORIZED).await;
    }
}

#[actix_web::test]
async fn non_admins_get_403_on_admin_endpoints_whatever_else_they_hold() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&json_ok(app.get_user_by_name(&admin, "admin").await).await);
    let (own_id, user) = app
        .user_with_token(
            &admin,
            "poweruser",
            &["flows", "configure", "subscribe", "write", "read"],
        )
        .await;

    let new_user = json!({ "username": "x-user", "password": USER_PASSWORD, "roles": roles(&[]) });
    assert_error(
        app.post_json("/user", Some(&user), &new_user).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_error(
        app.get("/user/admin", Some(&user)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_error(
        app.get("/user/poweruser", Some(&user)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_error(app.get("/users", Some(&user)).await, StatusCode::FORBIDDEN).await;
    assert_error(
        app.set_roles(&user, &admin_id, roles(&[])).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // Not even its own roles: only an admin changes roles.
    assert_error(
        app.set_roles(&user, &own_id, crate::helpers::all_roles())
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_error(
        app.delete_user(&user, &admin_id).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_error(app.delete_user(&user, &own_id).await, StatusCode::FORBIDDEN).await;

    // Nothing changed.
    assert_eq!(app.users(&admin).await.len(), 2);
    let r = json_ok(app.roles_of(&admin, &own_id).await).await;
    assert_eq!(r["admin"], json!(false));
}
