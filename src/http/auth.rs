//! Who is calling: the bearer-token extractors. Only the `Authorization:
//! Bearer` header is read (never the query string). The token proves who
//! the caller is; what the caller may do is decided on the user's *stored*
//! roles, read on every request, so a deleted user's token stops working
//! and a demoted admin stops being an admin at once; a token issued before
//! the user's last password or role change is refused.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use std::future::{Ready, ready};
use std::sync::Arc;

use super::error::ApiError;
use crate::accounts::{Actor, api_key_caller};
use crate::state::AppState;
use crate::store::UserView;

/// An authenticated caller.
pub struct Caller {
    pub user: Arc<UserView>,
    /// The access token's `iat` (`None` for an API key): a session's
    /// tokens are issued when it begins or rotates, so this tells which
    /// of the user's sessions is the caller's (`GET /sessions`' `current`).
    pub issued_at: Option<u64>,
}

/// An authenticated caller with the admin role (403 otherwise, before the
/// body is read: the rule is [`Actor::require_admin`]).
pub struct Admin(pub Caller);

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let token = bearer(req).ok_or_else(|| {
        ApiError::unauthorized("Missing bearer token in the Authorization header")
    })?;
    caller_of(req, token)
}

/// The caller of a forward-auth check (`/verify`): the bearer token, else,
/// for a browser navigating behind a proxy, the access cookie of a
/// cookie-mode session. No other call reads that cookie.
pub fn forward_auth_caller(req: &HttpRequest) -> Result<Caller, ApiError> {
    match bearer(req) {
        Some(token) => caller_of(req, token),
        None => {
            let cookie = req.cookie(super::cookies::ACCESS_COOKIE).ok_or_else(|| {
                ApiError::unauthorized(
                    "Missing bearer token in the Authorization header (or access cookie)",
                )
            })?;
            caller_of(req, cookie.value())
        }
    }
}

/// The stored user a presented access token names, if the token is valid
/// and not revoked; or, for an API key (`eak_…`), its owner with the key's
/// roles within the owner's (`accounts::api_key_caller`).
fn caller_of(req: &HttpRequest, token: &str) -> Result<Caller, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("app state missing")))?;
    if crate::apikey::looks_like_key(token) {
        let user = api_key_caller(
            &state.store,
            &state.clock,
            || super::handlers::origin(req),
            token,
        )?;
        return Ok(Caller {
            user,
            issued_at: None,
        });
    }
    let access = state
        .tokens
        .verify_access(token, state.clock.now())
        .map_err(|e| ApiError::unauthorized(e.to_string()))?;
    // The one store read per request (from the store's in-memory view):
    // existence, current roles, and the generation that revokes tokens
    // issued before a password or role change, a "log out everywhere" or a
    // deletion.
    let user = state
        .store
        .user_view(access.user_id)?
        .ok_or_else(|| ApiError::unauthorized("The token's user no longer exists"))?;
    if user.generation != access.generation {
        return Err(ApiError::unauthorized("Token has been revoked"));
    }
    Ok(Caller {
        user,
        issued_at: Some(access.issued_at),
    })
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).and_then(|c| {
            Actor::User(&c.user).require_admin()?;
            Ok(Admin(c))
        }))
    }
}
