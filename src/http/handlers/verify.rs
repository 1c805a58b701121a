//! Forward-auth for reverse proxies (nginx `auth_request`, Caddy
//! `forward_auth`, Traefik `forwardAuth`): the proxy asks before every
//! request it forwards, so this is the hot path of everything behind it.
//! One token verification and one read of the in-memory user view, the
//! same as any bearer call: revocation (password or role change, deletion,
//! log out everywhere) takes effect at once.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::ApiResult;
use crate::domain::Roles;
use crate::http::auth::forward_auth_caller;
use crate::http::error::{ApiError, ErrorBody};

/// The flags `?roles=flows,write` requires (all of them); none without it.
fn required_roles(req: &HttpRequest) -> Result<Roles, ApiError> {
    let mut required = Roles::from_bits(0);
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| ApiError::bad_request(format!("Invalid query string: {e}")))?;
    for (key, value) in query.into_inner() {
        if key == "roles" {
            let listed = Roles::parse_list(&value)
                .map_err(|e| ApiError::bad_request(format!("querystring/roles: {e}")))?;
            required = Roles::from_bits(required.bits() | listed.bits());
        }
    }
    Ok(required)
}

#[utoipa::path(get, path = "/api/v1/auth/verify", tag = "forward-auth",
    params(("roles" = Option<String>, Query,
        description = "Comma-separated flags the caller must all have (admin, flows, configure, subscribe, write, read)")),
    security(("bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "The credential is valid (and has the roles asked for). Empty body; the user in X-Auth-User (UTF-8), X-Auth-User-Id and X-Auth-Roles (comma-separated flag names). HEAD and every other method answer the same",
            headers(("X-Auth-User" = String), ("X-Auth-User-Id" = String), ("X-Auth-Roles" = String))),
        (status = 400, description = "An unknown role name in roles", body = ErrorBody),
        (status = 401, description = "No credential, or an invalid, expired or revoked one (WWW-Authenticate: Bearer)", body = ErrorBody),
        (status = 403, description = "The user lacks a role asked for", body = ErrorBody)))]
/// Checks the credential a proxy forwards: `Authorization: Bearer <access
/// token>`, or the `engine_auth_access` cookie of a cookie-mode session.
pub async fn verify(req: HttpRequest) -> ApiResult {
    let required = required_roles(&req)?;
    let caller = forward_auth_caller(&req)?;
    let user = &caller.user;
    if !user.roles.includes(required) {
        let missing = Roles::from_bits(required.bits() & !user.roles.bits());
        return Err(ApiError::forbidden(format!(
            "Missing role(s): {}",
            missing.names().join(",")
        )));
    }
    let mut res = HttpResponse::Ok().finish();
    let headers = res.headers_mut();
    // Usernames hold no control characters (the domain refuses them), so
    // their UTF-8 bytes are a valid field value.
    if let Ok(v) = HeaderValue::from_bytes(user.username.as_bytes()) {
        headers.insert(HeaderName::from_static("x-auth-user"), v);
    }
    if let Ok(v) = HeaderValue::from_str(&user.id.to_string()) {
        headers.insert(HeaderName::from_static("x-auth-user-id"), v);
    }
    if let Ok(v) = HeaderValue::from_str(&user.roles.names().join(",")) {
        headers.insert(HeaderName::from_static("x-auth-roles"), v);
    }
    Ok(res)
}
