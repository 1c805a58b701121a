//! Malformed requests: 400 for bad JSON and for what the original's schemas
//! refuse, 413 for oversized bodies, 415 for a content type no parser takes;
//! each in the error shape, never a 500.

use crate::harness::{ADMIN_PASSWORD, TestApp, USER_PASSWORD, roles, send};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[actix_web::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = uuid::Uuid::new_v4().to_string();
    let targets = [
        (Method::POST, "/login".to_string(), None),
        (Method::POST, "/refresh".to_string(), None),
        (Method::POST, "/user".to_string(), Some(admin.as_str())),
        (
            Method::PATCH,
            format!("/user/roles/{id}"),
            Some(admin.as_str()),
        ),
        (
            Method::PATCH,
            format!("/user/password/{id}"),
            Some(admin.as_str()),
        ),
    ];
    for (method, path, token) in targets {
        for raw in [
            "{",
            "{\"username\": }",
            "not json",
            "",
            "{\"a\":1}{}",
            "\u{feff}{}",
        ] {
            let resp = send(
                app.request(method.clone(), &path, token)
                    .header("Content-Type", "application/json")
                    .body(raw.to_string()),
            )
            .await;
            resp.error(StatusCode::BAD_REQUEST);
        }
    }
}

#[actix_web::test]
async fn create_user_fields_are_required_typed_and_closed() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let r = roles(&["read"]);
    // Refused as the original refuses them (Ajv's words), or by our own
    // stricter rule (a password over 1024 bytes).
    for (body, message) in [
        (
            json!({ "password": USER_PASSWORD, "roles": r }),
            "body must have required property 'username'",
        ),
        (
            json!({ "username": "n", "roles": r }),
            "body must have required property 'password'",
        ),
        (
            json!({ "username": "n", "password": USER_PASSWORD }),
            "body must have required property 'roles'",
        ),
        (
            json!({ "username": {}, "password": USER_PASSWORD, "roles": r }),
            "body/username must be string",
        ),
        (
            json!({ "username": "n", "password": "short", "roles": r }),
            "body/password must NOT have fewer than 8 characters",
        ),
        (
            json!({ "username": "n", "password": "a".repeat(1025), "roles": r }),
            "Password must be at most 1024 bytes",
        ),
    ] {
        let got = app
            .post_json("/user", Some(&admin), &body)
            .await
            .error_message(StatusCode::BAD_REQUEST);
        assert_eq!(got, message, "{body}");
    }
    assert_eq!(app.users(&admin).await, vec!["admin".to_string()]);

    // Accepted as the original accepts them: scalars coerced to strings,
    // unknown fields removed (an extra "admin": true grants nothing).
    app.post_json(
        "/user",
        Some(&admin),
        &json!({ "username": 7, "password": 12345678, "roles": r, "_id": "x", "admin": true }),
    )
    .await
    .ok_json();
    let pair = app.login_ok("7", "12345678").await;
    let id = crate::harness::claims_of(&pair.token)["_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.roles_of(&admin, &id).await.ok_json(), r);
}

/// The schemas say `type: object`, and Ajv never coerces to an object (a
/// one-item array is unwrapped only for scalar types): a body or a role
/// profile written as an array of its fields is refused, as by the original.
#[actix_web::test]
async fn bodies_must_be_json_objects_not_arrays() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app
        .create_user_ok(&admin, "plain", USER_PASSWORD, roles(&["read"]))
        .await;

    let resp = app
        .post_json("/login", None, &json!(["admin", ADMIN_PASSWORD]))
        .await;
    resp.error(StatusCode::BAD_REQUEST);

    let resp = app
        .post_json(
            "/user",
            Some(&admin),
            &json!(["array-user", USER_PASSWORD, roles(&["read"])]),
        )
        .await;
    resp.error(StatusCode::BAD_REQUEST);

    // A role profile as six positional booleans: this one would make an admin.
    let resp = app
        .patch_json(
            &format!("/user/roles/{id}"),
            Some(&admin),
            &json!({ "roles": [true, true, true, true, true, true] }),
        )
        .await;
    resp.error(StatusCode::BAD_REQUEST);
    assert_eq!(app.roles_of(&admin, &id).await.ok_json(), roles(&["read"]));

    let resp = app
        .patch_json(
            &format!("/user/password/{id}"),
            Some(&admin),
            &json!(["array-password"]),
        )
        .await;
    resp.error(StatusCode::BAD_REQUEST);
    let resp = app
        .post_json(
            "/refresh",
            None,
            &json!([app.admin_tokens().await.refresh_token]),
        )
        .await;
    resp.error(StatusCode::BAD_REQUEST);
    assert_eq!(app.users(&admin).await.len(), 2);
    app.login_ok("plain", USER_PASSWORD).await;
}

#[actix_web::test]
async fn a_body_over_16_kib_is_413() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let big = "x".repeat(16 * 1024 + 1);

    let resp = app.login("admin", &big).await;
    resp.error(StatusCode::PAYLOAD_TOO_LARGE);
    let resp = app
        .create_user(&admin, &big, USER_PASSWORD, roles(&[]))
        .await;
    resp.error(StatusCode::PAYLOAD_TOO_LARGE);
    let resp = app.refresh(&big).await;
    resp.error(StatusCode::PAYLOAD_TOO_LARGE);

    // Exactly 16 KiB is parsed (and is merely a wrong login).
    let overhead = serde_json::to_string(&json!({ "username": "", "password": "whatever-pw" }))
        .unwrap()
        .len();
    let body = json!({ "username": "y".repeat(16 * 1024 - overhead), "password": "whatever-pw" });
    assert_eq!(serde_json::to_string(&body).unwrap().len(), 16 * 1024);
    let resp = app.post_json("/login", None, &body).await;
    resp.error(StatusCode::UNAUTHORIZED);
    app.login_ok("admin", ADMIN_PASSWORD).await;
}

#[actix_web::test]
async fn the_body_limit_is_configurable() {
    let app = TestApp::spawn_with(|s| s.body_limit_bytes = 2048).await;
    let resp = app.login("admin", &"z".repeat(2100)).await;
    resp.error(StatusCode::PAYLOAD_TOO_LARGE);
    app.login_ok("admin", ADMIN_PASSWORD).await;
}

#[actix_web::test]
async fn a_body_no_parser_takes_is_415_and_text_is_refused_by_the_schema() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let login =
        serde_json::to_string(&json!({ "username": "admin", "password": ADMIN_PASSWORD })).unwrap();
    // As Fastify: no parser for the type is 415; `text/plain` has one (the
    // body becomes a string), so the schema refuses it: 400.
    for (ctype, status) in [
        (None, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (Some("text/plain"), StatusCode::BAD_REQUEST),
        (
            Some("application/x-www-form-urlencoded"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Some("multipart/form-data"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Some("application/vnd.api+json"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        let mut rb = app
            .request(Method::POST, "/login", None)
            .body(login.clone());
        if let Some(c) = ctype {
            rb = rb.header("Content-Type", c);
        }
        send(rb).await.error(status);
    }
    // Admin endpoints too (after authentication).
    let user = serde_json::to_string(&json!({
        "username": "n", "password": USER_PASSWORD, "roles": roles(&["read"])
    }))
    .unwrap();
    let rb = app
        .request(Method::POST, "/user", Some(&admin))
        .header("Content-Type", "text/html")
        .body(user.clone());
    send(rb).await.error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let rb = app
        .request(Method::POST, "/user", Some(&admin))
        .header("Content-Type", "text/plain")
        .body(user);
    let refused = send(rb).await.error_message(StatusCode::BAD_REQUEST);
    assert_eq!(refused, "body must be object");
    assert_eq!(app.users(&admin).await, vec!["admin".to_string()]);

    // application/json with a charset parameter is JSON.
    let rb = app
        .request(Method::POST, "/login", None)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(login);
    send(rb).await.token_pair();
}

#[actix_web::test]
async fn authentication_comes_before_body_checks() {
    let app = TestApp::spawn().await;
    // A caller without a token learns nothing about the body rules.
    let rb = app
        .request(Method::POST, "/user", None)
        .header("Content-Type", "text/plain")
        .body("x");
    send(rb).await.error(StatusCode::UNAUTHORIZED);
    let resp = app.post_json("/user", None, &json!({})).await;
    resp.error(StatusCode::UNAUTHORIZED);
}
