//! Health endpoints, unknown routes (404) and wrong methods (405): all
//! answered in JSON.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_error, content_type, send, spawn_app};

#[actix_web::test]
async fn health_endpoints_answer_without_authentication() {
    let app = spawn_app().await;
    for path in ["/health", "/api/v1/health"] {
        let resp = send(app.client.get(format!("{}{path}", app.address))).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert!(
            content_type(&resp).starts_with("application/json"),
            "{path}"
        );
        let body: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(body, json!({ "status": "ok" }), "{path}");
    }
}

#[actix_web::test]
async fn unknown_routes_are_404_in_json() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for path in [
        "/nope",
        "/api/v1/nope",
        "/api/v1/auth/nope",
        "/api/v1/auth/user/roles/a/b",
        "/api/v1/auth/users/extra",
    ] {
        let resp = send(
            app.client
                .get(format!("{}{path}", app.address))
                .bearer_auth(&token),
        )
        .await;
        let body = assert_error(resp, StatusCode::NOT_FOUND).await;
        assert!(
            body["message"].as_str().unwrap_or_default().len() > 3,
            "{path}: {body}"
        );
    }
}

#[actix_web::test]
async fn wrong_method_on_a_known_path_is_405_in_json() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let id = uuid::Uuid::new_v4().to_string();
    // The method sent, the path, and the Allow header the 405 must carry.
    let cases = [
        (Method::GET, "/api/v1/auth/login".to_string(), "POST"),
        (Method::GET, "/api/v1/auth/refresh".to_string(), "POST"),
        (Method::GET, "/api/v1/auth/user".to_string(), "POST"),
        (Method::POST, "/api/v1/auth/users".to_string(), "GET"),
        (
            Method::PUT,
            format!("/api/v1/auth/user/roles/{id}"),
            "GET, PATCH",
        ),
        (
            Method::DELETE,
            format!("/api/v1/auth/user/roles/{id}"),
            "GET, PATCH",
        ),
        (
            Method::GET,
            format!("/api/v1/auth/user/password/{id}"),
            "PATCH",
        ),
        (
            Method::PATCH,
            format!("/api/v1/auth/user/{id}"),
            "GET, DELETE",
        ),
        (Method::POST, "/health".to_string(), "GET"),
        (Method::DELETE, "/api/v1/health".to_string(), "GET"),
    ];
    for (method, path, allow) in cases {
        let resp = send(
            app.client
                .request(method.clone(), format!("{}{path}", app.address))
                .bearer_auth(&token)
                .json(&json!({})),
        )
        .await;
        assert_eq!(
            resp.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        assert_error(resp, StatusCode::METHOD_NOT_ALLOWED).await;
    }
}

#[actix_web::test]
async fn every_response_carries_no_store_and_nosniff() {
    let app = spawn_app().await;
    for path in ["/health", "/api/v1/auth/users", "/api/v1/auth/nope"] {
        let resp = send(app.client.get(format!("{}{path}", app.address))).await;
        let h = resp.headers();
        assert_eq!(
            h.get("cache-control").map(|v| v.as_bytes()),
            Some(&b"no-store"[..]),
            "{path}"
        );
        assert_eq!(
            h.get("x-content-type-options").map(|v| v.as_bytes()),
            Some(&b"nosniff"[..]),
            "{path}"
        );
    }
}
