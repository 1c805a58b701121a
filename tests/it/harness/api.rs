//! [`Api`]: typed requests over reqwest to one engine-auth, in process
//! ([`super::TestApp`]) or the real binary ([`super::Daemon`]), both of
//! which dereference to it. Every call returns a [`Reply`].

use reqwest::{Client, Method, RequestBuilder};
use serde_json::{Value, json};

use super::{
    ADMIN_PASSWORD, Reply, TokenPair, USER_PASSWORD, http_client, raw_request,
    raw_request_unchecked, roles, send,
};

pub struct Api {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub port: u16,
    /// From 127.0.0.1, a fresh connection per request.
    pub client: Client,
}

impl Api {
    pub fn new(port: u16) -> Api {
        Api {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: http_client(),
        }
    }

    /// The same server, called from another source address (see
    /// [`super::client_from`]), so one test can play several clients.
    pub fn calling_from(&self, ip: &str) -> Api {
        Api {
            address: self.address.clone(),
            port: self.port,
            client: super::client_from(ip),
        }
    }

    /// Full URL of a path outside the API (`/health`, `/api/v1/docs/json`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Full URL of an API path: `api("/login")` is `.../api/v1/auth/login`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1/auth{path}", self.address)
    }

    /// A request to an API path, with a bearer token when given.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let rb = self.client.request(method, self.api(path));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        send(self.request(Method::GET, path, token)).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        send(self.request(Method::POST, path, token).json(body)).await
    }

    pub async fn patch_json(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        send(self.request(Method::PATCH, path, token).json(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        send(self.request(Method::DELETE, path, token)).await
    }

    /// POSTs raw bytes declared as `application/json`.
    pub async fn post_bytes(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
        send(
            self.request(Method::POST, path, token)
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await
    }

    /// Sends raw bytes on a fresh TCP connection and reads the response.
    pub fn raw(&self, request: &[u8]) -> Reply {
        raw_request(self.port, request)
    }

    /// See [`raw_request_unchecked`].
    pub fn raw_unchecked(&self, request: &[u8]) -> Reply {
        raw_request_unchecked(self.port, request)
    }

    /// The daemon still serves: `/health` answers 200 `{"status":"ok"}`.
    pub async fn assert_alive(&self) {
        let r = send(self.client.get(self.url("/health"))).await;
        assert_eq!(r.ok_json(), json!({"status": "ok"}), "/health");
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.login_from(&self.client, username, password).await
    }

    /// A login from another client (another source address, see
    /// [`super::client_from`]).
    pub async fn login_from(&self, client: &Client, username: &str, password: &str) -> Reply {
        send(
            client
                .post(self.api("/login"))
                .json(&json!({ "username": username, "password": password })),
        )
        .await
    }

    /// A login with any body (a coerced or odd one), from `client`.
    pub async fn login_body_from(&self, client: &Client, body: &Value) -> Reply {
        send(client.post(self.api("/login")).json(body)).await
    }

    /// Logs in and asserts success.
    pub async fn login_ok(&self, username: &str, password: &str) -> TokenPair {
        self.login(username, password).await.token_pair()
    }

    pub async fn admin_tokens(&self) -> TokenPair {
        self.login_ok("admin", ADMIN_PASSWORD).await
    }

    pub async fn admin_token(&self) -> String {
        self.admin_tokens().await.token
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.refresh_from(&self.client, refresh_token).await
    }

    pub async fn refresh_from(&self, client: &Client, refresh_token: &str) -> Reply {
        send(
            client
                .post(self.api("/refresh"))
                .json(&json!({ "refreshToken": refresh_token })),
        )
        .await
    }

    /// Refreshes and asserts success; checks the rotation happened.
    pub async fn refresh_ok(&self, refresh_token: &str) -> TokenPair {
        let pair = self.refresh(refresh_token).await.token_pair();
        assert_ne!(
            pair.refresh_token, refresh_token,
            "a refresh must return a new refresh token"
        );
        pair
    }

    pub async fn create_user(
        &self,
        token: &str,
        username: &str,
        password: &str,
        roles: Value,
    ) -> Reply {
        let body = json!({ "username": username, "password": password, "roles": roles });
        self.post_json("/user", Some(token), &body).await
    }

    /// Creates a user and returns its id.
    pub async fn create_user_ok(
        &self,
        token: &str,
        username: &str,
        password: &str,
        roles: Value,
    ) -> String {
        self.create_user(token, username, password, roles)
            .await
            .id()
    }

    /// Creates a user with `USER_PASSWORD` and exactly the role `flags`;
    /// returns its id.
    pub async fn add_user(&self, token: &str, username: &str, flags: &[&str]) -> String {
        self.create_user_ok(token, username, USER_PASSWORD, roles(flags))
            .await
    }

    /// Creates a user with the given roles and `USER_PASSWORD`, logs it in,
    /// and returns its id and token pair.
    pub async fn user_with_tokens(
        &self,
        admin: &str,
        name: &str,
        flags: &[&str],
    ) -> (String, TokenPair) {
        let id = self.add_user(admin, name, flags).await;
        let pair = self.login_ok(name, USER_PASSWORD).await;
        (id, pair)
    }

    /// [`Api::user_with_tokens`], keeping only the access token.
    pub async fn user_with_token(
        &self,
        admin: &str,
        name: &str,
        flags: &[&str],
    ) -> (String, String) {
        let (id, pair) = self.user_with_tokens(admin, name, flags).await;
        (id, pair.token)
    }

    /// `GET /user/{username}` with the username percent-encoded as one path
    /// segment.
    pub async fn get_user_by_name(&self, token: &str, username: &str) -> Reply {
        let mut url = reqwest::Url::parse(&self.api("/user")).expect("url");
        url.path_segments_mut().expect("base url").push(username);
        send(self.client.get(url).bearer_auth(token)).await
    }

    /// `GET /users` (admin only).
    pub async fn list_users(&self, token: &str) -> Reply {
        self.get("/users", Some(token)).await
    }

    /// `GET /users`, asserted to succeed.
    pub async fn users(&self, token: &str) -> Vec<String> {
        let body = self.list_users(token).await.ok_json();
        serde_json::from_value(body).expect("GET /users returns an array of strings")
    }

    /// `GET /user/roles/{id}`: any valid access token may ask for its own.
    pub async fn roles_of(&self, token: &str, id: &str) -> Reply {
        self.get(&format!("/user/roles/{id}"), Some(token)).await
    }

    pub async fn set_roles(&self, token: &str, id: &str, roles: Value) -> Reply {
        let body = json!({ "roles": roles });
        self.patch_json(&format!("/user/roles/{id}"), Some(token), &body)
            .await
    }

    pub async fn set_password(&self, token: &str, id: &str, body: Value) -> Reply {
        self.patch_json(&format!("/user/password/{id}"), Some(token), &body)
            .await
    }

    pub async fn delete_user(&self, token: &str, id: &str) -> Reply {
        self.delete(&format!("/user/{id}"), Some(token)).await
    }

    /// `POST /user/logout/{id}` (no body): ends every session of `id`.
    pub async fn logout_user(&self, token: &str, id: &str) -> Reply {
        send(self.request(Method::POST, &format!("/user/logout/{id}"), Some(token))).await
    }

    pub async fn logout(&self, token: Option<&str>, body: &Value) -> Reply {
        self.post_json("/logout", token, body).await
    }

    /// Asserts that every access token is refused by `GET /user/roles/{id}`
    /// and every refresh token by `/refresh`, all with 401.
    pub async fn assert_all_revoked(&self, id: &str, pairs: &[&TokenPair], why: &str) {
        for (i, p) in pairs.iter().enumerate() {
            let r = self.roles_of(&p.token, id).await;
            assert_eq!(r.status(), 401, "{why}: access token #{i}: {}", r.text());
            r.error(401);
        }
        for (i, p) in pairs.iter().enumerate() {
            let r = self.refresh(&p.refresh_token).await;
            assert_eq!(r.status(), 401, "{why}: refresh token #{i}: {}", r.text());
            r.error(401);
        }
    }
}
