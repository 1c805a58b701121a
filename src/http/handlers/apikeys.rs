//! API keys (service accounts) of the caller: create (the key shown
//! once), list (admins: everyone's), revoke. The rules are
//! `accounts/apikeys.rs`'; these parse and render.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ApiResult, Body, JsonBodyErrors, OK, ResultBody, State, decided_by, origin};
use crate::accounts::{Actor, KeyRequest, ListedKey};
use crate::clock::utc_rfc3339;
use crate::domain::Roles;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorBody};

#[derive(Deserialize, ToSchema)]
pub struct ApiKeyBody {
    #[schema(min_length = 1, max_length = 100, example = "node-red flows")]
    name: String,
    roles: Roles,
    #[serde(rename = "expiresAt")]
    #[schema(example = "2030-01-01T00:00:00Z")]
    expires_at: Option<String>,
}
decided_by!(ApiKeyBody, API_KEY);

/// A new key: shown in this answer only.
#[derive(Serialize, ToSchema)]
pub struct NewApiKeyBody {
    id: Uuid,
    /// `eak_` and 43 base64url characters (256 random bits). Present it as
    /// `Authorization: Bearer <key>`.
    #[schema(example = "eak_3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    key: String,
}

/// A key as listed: never the key.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyInfo {
    id: Uuid,
    name: String,
    /// The owner's username.
    owner: String,
    #[serde(rename = "ownerId")]
    owner_id: Uuid,
    /// The key's roles (its use has them only while its owner does).
    roles: Roles,
    /// RFC 3339 UTC.
    #[serde(rename = "createdAt")]
    created_at: String,
    /// Recorded at most once an hour; null until first used.
    #[serde(rename = "lastUsedAt")]
    last_used_at: Option<String>,
    #[serde(rename = "expiresAt")]
    expires_at: Option<String>,
}

fn rfc3339(secs: u64) -> String {
    utc_rfc3339(secs.saturating_mul(1000))
}

impl From<ListedKey> for ApiKeyInfo {
    fn from(k: ListedKey) -> Self {
        let r = k.record;
        ApiKeyInfo {
            id: r.id,
            name: r.name,
            owner: k.owner_name,
            owner_id: r.owner,
            roles: r.roles,
            created_at: rfc3339(r.created_at),
            last_used_at: r.last_used_at.map(rfc3339),
            expires_at: r.expires_at.map(rfc3339),
        }
    }
}

/// The statuses every API key call may answer for its caller.
pub struct ApiKeyErrors;

impl utoipa::IntoResponses for ApiKeyErrors {
    fn responses()
    -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        super::error_responses(&[
            (401, "No valid bearer token or API key"),
            (403, "Presented an API key (a key cannot manage keys)"),
        ])
    }
}

#[utoipa::path(post, path = "/api/v1/auth/apikeys", tag = "auth", request_body = ApiKeyBody,
    security(("bearer" = [])),
    responses((status = 200, description = "The new key, shown once", body = NewApiKeyBody),
        JsonBodyErrors, ApiKeyErrors,
        (status = 400, description = "Invalid body: name, roles or expiresAt (malformed or past)", body = ErrorBody)))]
/// Creates an API key for the caller, with roles among the caller's (403
/// otherwise).
pub async fn create_api_key(
    req: HttpRequest,
    state: State,
    caller: Caller,
    body: Body<ApiKeyBody>,
) -> ApiResult {
    let ApiKeyBody {
        name,
        roles,
        expires_at,
    } = body.into_inner();
    let created = state
        .accounts()
        .create_api_key(
            Actor::User(&caller.user),
            &origin(&req),
            KeyRequest {
                owner: caller.user.id,
                name: &name,
                roles,
                expires_at: expires_at.as_deref(),
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(NewApiKeyBody {
        id: created.id,
        key: created.key.into_inner(),
    }))
}

#[utoipa::path(get, path = "/api/v1/auth/apikeys", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The caller's keys (admins: every key), oldest first", body = Vec<ApiKeyInfo>),
        ApiKeyErrors))]
/// Lists API keys: the caller's own; an admin's, every key.
pub async fn list_api_keys(state: State, caller: Caller) -> ApiResult {
    let keys = state.accounts().api_keys(Actor::User(&caller.user), None)?;
    let keys: Vec<ApiKeyInfo> = keys.into_iter().map(ApiKeyInfo::from).collect();
    Ok(HttpResponse::Ok().json(keys))
}

#[utoipa::path(delete, path = "/api/v1/auth/apikeys/{id}", tag = "auth",
    params(("id" = uuid::Uuid, Path, description = "API key ID")), security(("bearer" = [])),
    responses((status = 200, description = "Revoked: the key is refused from now on", body = ResultBody),
        ApiKeyErrors,
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such key (or another user's, for a non-admin)", body = ErrorBody)))]
/// Revokes an API key (its owner or an admin).
pub async fn revoke_api_key(
    req: HttpRequest,
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request("Invalid API key id: expected a UUID"))?;
    state
        .accounts()
        .revoke_api_key(Actor::User(&caller.user), &origin(&req), id)
        .await?;
    Ok(HttpResponse::Ok().json(OK))
}
