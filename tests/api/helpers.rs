//! The test harness: a real engine-auth server per test (port 0, temporary
//! data dir, cheap argon2) driven over real HTTP with `reqwest`.
//!
//! Each server is a [`ServerThread`] (from `tests/common`, re-exported here
//! with the rest of the shared helpers), so that dropping the `TestApp`
//! (also when a test panics) stops the server and waits for it to finish
//! (it flushes the store) before the data dir is removed.

pub use crate::common::*;

use engine_auth::bootstrap;
use engine_auth::config::Settings;
use engine_auth::password::Hasher;
use reqwest::header::CACHE_CONTROL;
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The store's active signing key, read before the server started.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub secret: Vec<u8>,
}

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub client: Client,
    /// Only set by [`spawn_app_with_key`].
    pub signing_key: Option<SigningKey>,
    server: Option<ServerThread>,
    // Declared last: dropped after the server has stopped.
    pub data_dir: TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A test server whose settings `adjust` may change (TTLs, leeway, body
/// limit, …). The data dir and listen address are the harness's.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let mut settings = test_settings(data_dir.path());
    adjust(&mut settings);
    build(data_dir, settings, None).await
}

/// Like [`spawn_app`], but the store is seeded first (by the same bootstrap
/// code the server uses) so the test knows the real signing key and can
/// forge tokens that differ from genuine ones in exactly one respect.
pub async fn spawn_app_with_key() -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let settings = test_settings(data_dir.path());
    let key = {
        let hasher = Hasher::new(settings.argon2, 1).expect("hasher");
        let store = bootstrap::open_store(&settings, &hasher, &engine_auth::clock::Clock::system())
            .expect("seed the store");
        let (kid, secret) = active_signing_key(&store);
        SigningKey { kid, secret }
        // the store is dropped (and its lock released) here
    };
    build(data_dir, settings, Some(key)).await
}

async fn build(data_dir: TempDir, settings: Settings, key: Option<SigningKey>) -> TestApp {
    // The state is not kept: a stopped server must release its store.
    let (server, _state) = ServerThread::start(settings)
        .await
        .expect("the test server failed to start");
    TestApp {
        address: format!("http://127.0.0.1:{}", server.port),
        client: http_client(),
        signing_key: key,
        server: Some(server),
        data_dir,
    }
}

impl TestApp {
    /// Stops the server gracefully (it flushes the store) and waits for it.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// Full URL of an API path: `api("/login")` is `.../api/v1/auth/login`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1/auth{}", self.address, path)
    }

    /// A request to an API path, with a bearer token when given.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let rb = self.client.request(method, self.api(path));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        send(self.request(Method::GET, path, token)).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        send(self.request(Method::POST, path, token).json(body)).await
    }

    pub async fn patch_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        send(self.request(Method::PATCH, path, token).json(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        send(self.request(Method::DELETE, path, token)).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/login",
            None,
            &json!({ "username": username, "password": password }),
        )
        .await
    }

    /// Logs in and asserts success.
    pub async fn login_ok(&self, username: &str, password: &str) -> TokenPair {
        let resp = self.login(username, password).await;
        token_pair(resp).await
    }

    pub async fn admin_tokens(&self) -> TokenPair {
        self.login_ok("admin", ADMIN_PASSWORD).await
    }

    pub async fn admin_token(&self) -> String {
        self.admin_tokens().await.token
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json("/refresh", None, &json!({ "refreshToken": refresh_token }))
            .await
    }

    pub async fn create_user(
        &self,
        token: &str,
        username: &str,
        password: &str,
        roles: Value,
    ) -> Response {
        self.post_json(
            "/user",
            Some(token),
            &json!({ "username": username, "password": password, "roles": roles }),
        )
        .await
    }

    /// Creates a user and returns its id.
    pub async fn create_user_ok(
        &self,
        token: &str,
        username: &str,
        password: &str,
        roles: Value,
    ) -> String {
        let resp = self.create_user(token, username, password, roles).await;
        let body = json_ok(resp).await;
        id_of(&body)
    }

    /// Creates a user with the given roles and `USER_PASSWORD`, logs it in,
    /// and returns its id and access token.
    pub async fn user_with_token(
        &self,
        admin: &str,
        name: &str,
        flags: &[&str],
    ) -> (String, String) {
        let id = self
            .create_user_ok(admin, name, USER_PASSWORD, roles(flags))
            .await;
        let token = self.login_ok(name, USER_PASSWORD).await.token;
        (id, token)
    }

    /// `GET /user/{username}` with the username percent-encoded as one path
    /// segment.
    pub async fn get_user_by_name(&self, token: &str, username: &str) -> Response {
        let mut url = reqwest::Url::parse(&self.api("/user")).expect("url");
        url.path_segments_mut().expect("base url").push(username);
        send(self.client.get(url).bearer_auth(token)).await
    }

    pub async fn users(&self, token: &str) -> Vec<String> {
        let body = json_ok(self.get("/users", Some(token)).await).await;
        serde_json::from_value(body).expect("GET /users returns an array of strings")
    }

    pub async fn roles_of(&self, token: &str, id: &str) -> Response {
        self.get(&format!("/user/roles/{id}"), Some(token)).await
    }

    pub async fn set_roles(&self, token: &str, id: &str, roles: Value) -> Response {
        self.patch_json(
            &format!("/user/roles/{id}"),
            Some(token),
            &json!({ "roles": roles }),
        )
        .await
    }

    pub async fn set_password(&self, token: &str, id: &str, body: Value) -> Response {
        self.patch_json(&format!("/user/password/{id}"), Some(token), &body)
            .await
    }

    pub async fn delete_user(&self, token: &str, id: &str) -> Response {
        self.delete(&format!("/user/{id}"), Some(token)).await
    }

    /// Signs `claims` with the server's real key and its `kid` (see
    /// [`spawn_app_with_key`]), using the HMAC algorithm `alg`.
    pub fn sign_with_real_key(&self, alg: jsonwebtoken::Algorithm, claims: &Value) -> String {
        let key = self
            .signing_key
            .as_ref()
            .expect("use spawn_app_with_key to know the signing key");
        sign(alg, Some(&key.kid), &key.secret, claims)
    }
}

/// Asserts a 200 token response (`{token, refreshToken}` and nothing else,
/// `Cache-Control: no-store`) and returns the pair.
pub async fn token_pair(resp: Response) -> TokenPair {
    let cache = resp
        .headers()
        .get(CACHE_CONTROL)
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let body = json_ok(resp).await;
    assert_eq!(
        cache.as_deref(),
        Some("no-store"),
        "token responses carry Cache-Control: no-store"
    );
    assert_eq!(
        keys(&body),
        vec!["refreshToken", "token"],
        "token response shape: {body}"
    );
    pair_of(&body)
}

/// Asserts an error response in the original's shape: the given status,
/// `Content-Type: application/json`, and a body with `statusCode` (the same
/// number), `error` (the status's reason phrase) and a non-empty `message`.
/// Returns the body.
pub async fn assert_error(resp: Response, expected: StatusCode) -> Value {
    let status = resp.status();
    let url = resp.url().clone();
    let ctype = content_type(&resp);
    let text = resp.text().await.expect("body");
    assert_eq!(
        status, expected,
        "{url}: expected {expected}, got {status}: {text}"
    );
    assert!(
        ctype.starts_with("application/json"),
        "{url}: error {status} has Content-Type {ctype:?}, body {text:?}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{url}: error body is not JSON ({e}): {text:?}"));
    assert_eq!(
        body["statusCode"].as_u64(),
        Some(u64::from(expected.as_u16())),
        "statusCode must be a number equal to the HTTP status: {body}"
    );
    assert_eq!(
        body["error"].as_str(),
        expected.canonical_reason(),
        "error must be the status's reason phrase: {body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message must be a non-empty string: {body}"
    );
    body
}

/// The `_id` of a `{_id}` body, checked to be exactly that shape and a UUID.
pub fn id_of(body: &Value) -> String {
    assert_eq!(keys(body), vec!["_id"], "expected exactly {{_id}}: {body}");
    let id = body["_id"].as_str().expect("_id is a string").to_string();
    uuid::Uuid::parse_str(&id).unwrap_or_else(|_| panic!("_id {id:?} is not a UUID"));
    id
}

/// Replaces a token's payload, keeping its header and signature.
pub fn with_payload(token: &str, payload: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", parts[0], b64_json(payload), parts[2])
}

/// Signs `claims` with `secret` using an HMAC `alg` and optional `kid`.
pub fn sign(
    alg: jsonwebtoken::Algorithm,
    kid: Option<&str>,
    secret: &[u8],
    claims: &Value,
) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("sign test token")
}
