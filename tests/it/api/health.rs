//! Health endpoints, unknown routes (404) and wrong methods (405): all
//! answered in JSON.

use crate::harness::{TestApp, send};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[actix_web::test]
async fn health_endpoints_answer_without_authentication() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/api/v1/health"] {
        let resp = send(app.client.get(app.url(path))).await;
        assert_eq!(resp.ok_json(), json!({ "status": "ok" }), "{path}");
    }
}

#[actix_web::test]
async fn unknown_routes_are_404_in_json() {
    let app = TestApp::spawn().await;
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
        let body = resp.error(StatusCode::NOT_FOUND);
        assert!(
            body["message"].as_str().unwrap_or_default().len() > 3,
            "{path}: {body}"
        );
    }
}

#[actix_web::test]
async fn wrong_method_on_a_known_path_is_405_in_json() {
    let app = TestApp::spawn().await;
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
        assert_eq!(resp.header("allow"), Some(allow), "{method} {path}");
        resp.error(StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[actix_web::test]
async fn every_response_carries_no_store_and_nosniff() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/api/v1/auth/users", "/api/v1/auth/nope"] {
        // Building the reply asserts both headers.
        let resp = send(app.client.get(app.url(path))).await;
        assert_eq!(resp.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
    }
}
