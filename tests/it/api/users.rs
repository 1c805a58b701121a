//! POST /user, GET /user/{username}, GET /users, DELETE /user/{_id}, and
//! the username rules.

use crate::harness::{TestApp, USER_PASSWORD, id_of, roles};
use reqwest::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn create_user_returns_its_uuid_and_it_can_be_found_and_listed() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;

    let resp = app
        .create_user(
            &admin,
            "bobz@home.com",
            "12345678",
            roles(&["flows", "subscribe", "write", "read"]),
        )
        .await;
    let id = id_of(&resp.ok_json());

    let found = id_of(
        &app.get_user_by_name(&admin, "bobz@home.com")
            .await
            .ok_json(),
    );
    assert_eq!(found, id);
    assert_eq!(
        app.users(&admin).await,
        vec!["admin".to_string(), "bobz@home.com".to_string()]
    );
    app.login_ok("bobz@home.com", "12345678").await;
}

#[actix_web::test]
async fn every_created_user_gets_a_distinct_id() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let a = app
        .create_user_ok(&admin, "a-user", USER_PASSWORD, roles(&[]))
        .await;
    let b = app
        .create_user_ok(&admin, "b-user", USER_PASSWORD, roles(&[]))
        .await;
    let admin_id = id_of(&app.get_user_by_name(&admin, "admin").await.ok_json());
    assert_ne!(a, b);
    assert_ne!(a, admin_id);
}

#[actix_web::test]
async fn usernames_are_stored_and_listed_as_given() {
    let app = TestApp::spawn().await;
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
    let app = TestApp::spawn().await;
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
        assert_eq!(id_of(&resp.ok_json()), id, "{name:?}");
    }
}

#[actix_web::test]
async fn username_lookup_is_case_insensitive() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app
        .create_user_ok(&admin, "Straße", USER_PASSWORD, roles(&["read"]))
        .await;
    for probe in ["Straße", "straße", "STRASSE", "strasse"] {
        let got = id_of(&app.get_user_by_name(&admin, probe).await.ok_json());
        assert_eq!(got, id, "{probe}");
    }
}

#[actix_web::test]
async fn usernames_are_unique_regardless_of_case() {
    let app = TestApp::spawn().await;
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
        resp.error(StatusCode::CONFLICT);
    }
    // Nothing was overwritten.
    app.login_ok("Bob", USER_PASSWORD).await;
    assert_eq!(app.users(&admin).await.len(), 3);
}

#[actix_web::test]
async fn invalid_usernames_are_400() {
    let app = TestApp::spawn().await;
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
        resp.error(StatusCode::BAD_REQUEST);
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
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.get_user_by_name(&admin, "ghost")
        .await
        .error(StatusCode::NOT_FOUND);
    app.get_user_by_name(&admin, "a/b")
        .await
        .error(StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn delete_user_answers_ok_and_removes_everything() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, token) = app.user_with_token(&admin, "Doomed", &["read"]).await;

    let body = app.delete_user(&admin, &id).await.ok_json();
    assert_eq!(body, json!({ "result": "OK" }));

    app.get_user_by_name(&admin, "Doomed")
        .await
        .error(StatusCode::NOT_FOUND);
    assert_eq!(app.users(&admin).await, vec!["admin".to_string()]);
    app.login("Doomed", USER_PASSWORD)
        .await
        .error(StatusCode::UNAUTHORIZED);
    app.roles_of(&admin, &id).await.error(StatusCode::NOT_FOUND);
    // Its token is dead at once.
    app.roles_of(&token, &id)
        .await
        .error(StatusCode::UNAUTHORIZED);
    // Deleting again: gone.
    app.delete_user(&admin, &id)
        .await
        .error(StatusCode::NOT_FOUND);
    // The name is free again (and gets a new id).
    let again = app
        .create_user_ok(&admin, "doomed", USER_PASSWORD, roles(&["read"]))
        .await;
    assert_ne!(again, id);
}

#[actix_web::test]
async fn delete_unknown_or_malformed_id() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    app.delete_user(&admin, &unknown)
        .await
        .error(StatusCode::NOT_FOUND);
    for bad in [
        "not-a-uuid",
        "admin",
        "123",
        "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
    ] {
        app.delete_user(&admin, bad)
            .await
            .error(StatusCode::BAD_REQUEST);
    }
}

#[actix_web::test]
async fn the_last_admin_cannot_be_deleted_but_one_of_two_can() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&app.get_user_by_name(&admin, "admin").await.ok_json());

    app.delete_user(&admin, &admin_id)
        .await
        .error(StatusCode::CONFLICT);
    app.login_ok("admin", crate::harness::ADMIN_PASSWORD).await;

    let (other_id, other) = app
        .user_with_token(&admin, "second-admin", &["admin", "read"])
        .await;
    app.delete_user(&other, &admin_id).await.ok_json();
    // Now "second-admin" is the last one; it cannot delete itself.
    app.delete_user(&other, &other_id)
        .await
        .error(StatusCode::CONFLICT);
    assert_eq!(app.users(&other).await, vec!["second-admin".to_string()]);
}

#[actix_web::test]
async fn admin_endpoints_need_a_token() {
    let app = TestApp::spawn().await;
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
        resp.error(StatusCode::UNAUTHORIZED);
    }
}

#[actix_web::test]
async fn non_admins_get_403_on_admin_endpoints_whatever_else_they_hold() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&app.get_user_by_name(&admin, "admin").await.ok_json());
    let (own_id, user) = app
        .user_with_token(
            &admin,
            "poweruser",
            &["flows", "configure", "subscribe", "write", "read"],
        )
        .await;

    let new_user = json!({ "username": "x-user", "password": USER_PASSWORD, "roles": roles(&[]) });
    app.post_json("/user", Some(&user), &new_user)
        .await
        .error(StatusCode::FORBIDDEN);
    app.get("/user/admin", Some(&user))
        .await
        .error(StatusCode::FORBIDDEN);
    app.get("/user/poweruser", Some(&user))
        .await
        .error(StatusCode::FORBIDDEN);
    app.get("/users", Some(&user))
        .await
        .error(StatusCode::FORBIDDEN);
    app.set_roles(&user, &admin_id, roles(&[]))
        .await
        .error(StatusCode::FORBIDDEN);
    // Not even its own roles: only an admin changes roles.
    app.set_roles(&user, &own_id, crate::harness::all_roles())
        .await
        .error(StatusCode::FORBIDDEN);
    app.delete_user(&user, &admin_id)
        .await
        .error(StatusCode::FORBIDDEN);
    app.delete_user(&user, &own_id)
        .await
        .error(StatusCode::FORBIDDEN);

    // Nothing changed.
    assert_eq!(app.users(&admin).await.len(), 2);
    let r = app.roles_of(&admin, &own_id).await.ok_json();
    assert_eq!(r["admin"], json!(false));
}
