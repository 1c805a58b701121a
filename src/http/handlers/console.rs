//! What the admin console (`/admin/`) reads beyond the original API: the
//! accounts list, sessions (list, end one), the signing keys and the
//! recent security events. The rules are `accounts/overview.rs`'; these
//! parse the query and path, and render.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{AdminErrors, ApiResult, OK, ResultBody, State, origin};
use crate::accounts::{
    AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT, AccountSummary, Actor, AuditQuery, ListedSession,
    ListedSigningKey,
};
use crate::clock::utc_rfc3339;
use crate::domain::Roles;
use crate::http::auth::{Admin, Caller};
use crate::http::error::{ApiError, ErrorBody};
use crate::keys::KeyState;
use crate::store::AuditRecord;

fn rfc3339(secs: u64) -> String {
    utc_rfc3339(secs.saturating_mul(1000))
}

/// The query string as name → value, refusing names `allowed` lacks and
/// repeated names (400, in words), so a typo is never silently ignored.
fn query(req: &HttpRequest, allowed: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| ApiError::bad_request(format!("Invalid query string: {e}")))?
        .into_inner();
    let mut out = HashMap::new();
    for (k, v) in pairs {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Unknown query parameter {k:?} (expected: {})",
                allowed.join(", ")
            )));
        }
        if out.insert(k.clone(), v).is_some() {
            return Err(ApiError::bad_request(format!(
                "Query parameter {k:?} given twice"
            )));
        }
    }
    Ok(out)
}

/// One account as listed.
#[derive(Serialize, ToSchema)]
pub struct AccountInfo {
    #[serde(rename = "_id")]
    id: Uuid,
    username: String,
    roles: Roles,
    /// Whether two-factor authentication is on.
    mfa: bool,
    /// RFC 3339 UTC.
    #[serde(rename = "createdAt")]
    #[schema(example = "2026-01-31T12:00:00.000Z")]
    created_at: String,
    /// RFC 3339 UTC; null if it never logged in since this was recorded.
    #[serde(rename = "lastLoginAt")]
    last_login_at: Option<String>,
}

impl From<AccountSummary> for AccountInfo {
    fn from(a: AccountSummary) -> Self {
        AccountInfo {
            id: a.user.id,
            mfa: a.user.mfa.is_on(),
            username: a.user.username,
            roles: a.user.roles,
            created_at: rfc3339(a.user.created_at),
            last_login_at: a.last_login_at.map(rfc3339),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/auth/accounts", tag = "console", security(("bearer" = [])),
    responses((status = 200, description = "Every account, ordered by username case-insensitively", body = Vec<AccountInfo>),
        AdminErrors))]
/// Every account with its roles, MFA state, creation and last login.
pub async fn list_accounts(state: State, Admin(admin): Admin) -> ApiResult {
    let list = state.accounts().accounts(Actor::User(&admin.user))?;
    let list: Vec<AccountInfo> = list.into_iter().map(AccountInfo::from).collect();
    Ok(HttpResponse::Ok().json(list))
}

/// One live session as listed.
#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    id: Uuid,
    /// The login, RFC 3339 UTC.
    #[serde(rename = "createdAt")]
    created_at: String,
    /// The last refresh (the login if none yet), RFC 3339 UTC.
    #[serde(rename = "lastUsedAt")]
    last_used_at: String,
    /// The client's address at login (null for sessions older than this
    /// record).
    address: Option<String>,
    /// The client's `User-Agent` at login, at most 256 bytes.
    #[serde(rename = "userAgent")]
    user_agent: Option<String>,
    /// The session that issued the caller's access token.
    current: bool,
}

impl From<ListedSession> for SessionInfo {
    fn from(s: ListedSession) -> Self {
        let r = s.record;
        SessionInfo {
            id: s.id,
            created_at: rfc3339(r.created_at),
            last_used_at: rfc3339(r.client.last_used_at.unwrap_or(r.created_at)),
            address: r.client.address,
            user_agent: r.client.user_agent,
            current: s.current,
        }
    }
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; `query` parses it
struct SessionsQuery {
    /// Another user's sessions (admins only); default: the caller's.
    #[param(rename = "userId")]
    user_id: Option<Uuid>,
}

/// The statuses of the session calls.
pub struct SessionErrors;

impl utoipa::IntoResponses for SessionErrors {
    fn responses()
    -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        super::error_responses(&[
            (400, "Invalid id or query"),
            (401, "No valid bearer token"),
            (
                403,
                "Another user's sessions without the admin role, or an API key",
            ),
            (404, "Unknown user or session"),
        ])
    }
}

#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "console", params(SessionsQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The live sessions, oldest first", body = Vec<SessionInfo>),
        SessionErrors))]
/// The caller's live sessions (an admin: `?userId=` for another user's).
pub async fn list_sessions(req: HttpRequest, state: State, caller: Caller) -> ApiResult {
    let q = query(&req, &["userId"])?;
    let user = match q.get("userId") {
        None => None,
        Some(raw) => Some(Uuid::parse_str(raw).map_err(|_| {
            ApiError::bad_request("Invalid userId: expected a UUID (a user's _id)")
        })?),
    };
    let list = state
        .accounts()
        .sessions(Actor::User(&caller.user), user, caller.issued_at)?;
    let list: Vec<SessionInfo> = list.into_iter().map(SessionInfo::from).collect();
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "console",
    params(("id" = uuid::Uuid, Path, description = "Session id, as listed")), security(("bearer" = [])),
    responses((status = 200, description = "Ended: its refresh tokens are refused from now on (access tokens it issued run out within their lifetime)", body = ResultBody),
        SessionErrors))]
/// Ends one session (its owner, or an admin).
pub async fn end_session(
    req: HttpRequest,
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request("Invalid session id: expected a UUID"))?;
    state
        .accounts()
        .end_session(Actor::User(&caller.user), &origin(&req), id)
        .await?;
    Ok(HttpResponse::Ok().json(OK))
}

/// A signing key: never key material.
#[derive(Serialize, ToSchema)]
pub struct SigningKeyInfo {
    #[schema(example = "3f9c2a7d41e08b56")]
    kid: String,
    /// `active` (signs new tokens) or `retired` (verifies until what it
    /// signed has expired).
    #[schema(example = "active")]
    state: &'static str,
    #[serde(rename = "createdAt")]
    created_at: String,
}

impl From<ListedSigningKey> for SigningKeyInfo {
    fn from(k: ListedSigningKey) -> Self {
        SigningKeyInfo {
            kid: k.kid,
            state: match k.state {
                KeyState::Active => "active",
                KeyState::Retired => "retired",
            },
            created_at: rfc3339(k.created_at),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/auth/keys", tag = "console", security(("bearer" = [])),
    responses((status = 200, description = "The signing keys: the active one first, then newest first", body = Vec<SigningKeyInfo>),
        AdminErrors))]
/// The signing keys: id, state, creation time.
pub async fn list_keys(state: State, Admin(admin): Admin) -> ApiResult {
    let keys = state.accounts().signing_keys(Actor::User(&admin.user))?;
    let keys: Vec<SigningKeyInfo> = keys.into_iter().map(SigningKeyInfo::from).collect();
    Ok(HttpResponse::Ok().json(keys))
}

/// One security event.
#[derive(Serialize, ToSchema)]
pub struct AuditEventInfo {
    /// RFC 3339 UTC, milliseconds.
    time: String,
    #[schema(example = "login_ok")]
    event: String,
    /// The user it is about (for a failed login: the name as sent).
    username: Option<String>,
    #[serde(rename = "userId")]
    user_id: Option<Uuid>,
    /// The client's address, for requests over HTTP.
    address: Option<String>,
    /// Who acted, when someone acted on another user's account (`cli`:
    /// the operator on the gateway).
    by: Option<String>,
}

impl From<AuditRecord> for AuditEventInfo {
    fn from(r: AuditRecord) -> Self {
        AuditEventInfo {
            time: utc_rfc3339(r.time),
            event: r.event,
            username: r.username,
            user_id: r.user_id,
            address: r.address,
            by: r.by,
        }
    }
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; `query` parses it
struct AuditParams {
    /// At most this many events (1 to 10000; default 100).
    limit: Option<u32>,
    /// Only events of this name, e.g. `login_failed`.
    event: Option<String>,
    /// Only events about this user: a username (compared case-insensitively) or a user id.
    user: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/auth/audit", tag = "console", params(AuditParams),
    security(("bearer" = [])),
    responses((status = 200, description = "The kept events (the last 10,000), newest first", body = Vec<AuditEventInfo>),
        AdminErrors,
        (status = 400, description = "Invalid query", body = ErrorBody)))]
/// The recent security events, newest first.
pub async fn list_audit(req: HttpRequest, state: State, Admin(admin): Admin) -> ApiResult {
    let q = query(&req, &["limit", "event", "user"])?;
    let limit = match q.get("limit") {
        None => AUDIT_DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=AUDIT_MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid limit: expected a whole number from 1 to {AUDIT_MAX_LIMIT}"
                ))
            })?,
    };
    let nonempty = |name: &str| q.get(name).filter(|v| !v.is_empty()).cloned();
    let query = AuditQuery {
        limit,
        event: nonempty("event"),
        user: nonempty("user"),
    };
    let events = state
        .accounts()
        .audit_events(Actor::User(&admin.user), &query)?;
    let events: Vec<AuditEventInfo> = events.into_iter().map(AuditEventInfo::from).collect();
    Ok(HttpResponse::Ok().json(events))
}
