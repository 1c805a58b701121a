//! One function per API call. Bodies are parsed into domain types first
//! (400 on anything malformed); authorization is decided by the `Caller` /
//! `Admin` extractors; store writes run on the blocking pool because each
//! one ends with a flush to disk.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Admin, Caller};
use super::error::{ApiError, ErrorBody};
use crate::domain::{ObjectOnly, PASSWORD_MAX_BYTES, Password, Roles, Username, fold};
use crate::startup::AppState;
use crate::store::{Exchange, NewSession, Refusal, SessionToken, UserRecord, new_user_record};
use crate::tokens::{Issue, RefreshId, TokenPair};

type State = web::Data<AppState>;
type ApiResult = Result<HttpResponse, ApiError>;
/// A JSON request body that must be an object (see [`ObjectOnly`]).
type Body<T> = web::Json<ObjectOnly<T>>;

/// Audit line for authentication events: never a password or token.
macro_rules! audit {
    ($req:expr, $($arg:tt)+) => {
        log::info!(target: "engine_auth::audit", "{} peer={}", format_args!($($arg)+), peer(&$req))
    };
}

fn peer_ip(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// 429 if this client is in a throttling delay (checked before any hash).
fn check_throttle(
    req: &HttpRequest,
    state: &State,
    username: Option<&str>,
) -> Result<(), ApiError> {
    match state.throttle.wait(peer_ip(req), username) {
        None => Ok(()),
        Some(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            audit!(
                req,
                "event=throttled user={:?} retry_after={secs}",
                username.unwrap_or("-")
            );
            Err(ApiError::Throttled(secs.max(1)))
        }
    }
}

fn peer(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "-".into())
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::bad_request("Invalid user id: expected a UUID"))
}

fn parse_password(p: String) -> Result<Password, ApiError> {
    Password::parse(p).map_err(|m| ApiError::bad_request(capitalized(m)))
}

fn capitalized(m: String) -> String {
    let mut c = m.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The daemon answers", body = HealthBody)))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(HealthBody { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct HealthBody {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `{"result": "OK"}`
#[derive(Serialize, ToSchema)]
pub struct ResultBody {
    #[schema(example = "OK")]
    result: &'static str,
}

const OK: ResultBody = ResultBody { result: "OK" };

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, description = "Tokens", body = TokenPair),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body not application/json", body = ErrorBody),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 429, description = "Throttled after repeated failures", body = ErrorBody)))]
pub async fn login(req: HttpRequest, state: State, body: Body<LoginBody>) -> ApiResult {
    let LoginBody { username, password } = body.into_inner().0;
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(ApiError::bad_request(format!(
            "Password must be at most {PASSWORD_MAX_BYTES} bytes"
        )));
    }
    let folded = fold(&username);
    check_throttle(&req, &state, Some(&folded))?;
    let user = state.store.user_by_name(&username)?;
    let password_copy = Password::parse(password.clone()).ok();
    let ok = state
        .hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await
        .map_err(ApiError::internal)?;
    match user {
        Some(user) if ok => {
            state.throttle.succeed(peer_ip(&req), &folded);
            if state.hasher.needs_rehash(&user.password_hash) {
                upgrade_hash(&state, &user, password_copy).await;
            }
            let pair = start_session(&state, &user).await?;
            audit!(
                req,
                "event=login_ok user={:?} id={}",
                user.username,
                user.id
            );
            Ok(HttpResponse::Ok().json(pair))
        }
        _ => {
            state.throttle.fail(peer_ip(&req), Some(&folded));
            audit!(req, "event=login_failed user={:?}", username);
            Err(ApiError::unauthorized("Invalid username or password"))
        }
    }
}

/// Rehashes a just-verified password with the configured parameters
/// (after `tune-argon2` or a config change). Failure only costs the upgrade.
async fn upgrade_hash(state: &State, user: &UserRecord, password: Option<Password>) {
    let Some(password) = password else { return };
    let new = match state.hasher.hash(password).await {
        Ok(h) => h,
        Err(e) => return log::warn!("password hash upgrade failed: {e:#}"),
    };
    let (store, id, old) = (state.store.clone(), user.id, user.password_hash.clone());
    match web::block(move || store.upgrade_password_hash(id, &old, new)).await {
        Ok(Ok(true)) => log::info!(
            "upgraded the password hash of {:?} to the configured parameters",
            user.username
        ),
        Ok(Ok(false)) => {}
        Ok(Err(e)) => log::warn!("password hash upgrade failed: {e}"),
        Err(e) => log::warn!("password hash upgrade failed: {e}"),
    }
}

/// A login opens a session (every refresh token descended from it) with an
/// absolute end.
async fn start_session(state: &State, user: &UserRecord) -> Result<TokenPair, ApiError> {
    let s = &state.settings;
    let now = s.now();
    let id = Uuid::new_v4();
    let token_exp = now + s.refresh_ttl_secs.min(s.session_max_secs);
    let refresh_id = RefreshId::new(id).map_err(ApiError::internal)?;
    let pair = state
        .tokens
        .issue(&Issue {
            user_id: user.id,
            roles: user.roles,
            generation: user.generation,
            now,
            refresh_id: &refresh_id,
            refresh_exp: token_exp,
        })
        .map_err(ApiError::internal)?;
    let session = NewSession {
        id,
        user_id: user.id,
        token_hash: refresh_id.hash,
        now,
        ends_at: now + s.session_max_secs,
        token_exp,
    };
    let store = state.store.clone();
    web::block(move || store.start_session(&session)).await??;
    Ok(pair)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    #[serde(rename = "refreshToken")]
    refresh_token: String,
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, description = "New tokens; the presented refresh token is spent", body = TokenPair),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body not application/json", body = ErrorBody),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token", body = ErrorBody),
        (status = 429, description = "Throttled after repeated failures", body = ErrorBody)))]
/// Rotates the refresh token: the presented one is spent and a successor
/// issued in the same family. A spent token presented again after the grace
/// window revokes the family (a stolen token was used, or will be).
pub async fn refresh(req: HttpRequest, state: State, body: Body<RefreshBody>) -> ApiResult {
    check_throttle(&req, &state, None)?;
    let result = refresh_inner(&req, &state, body.into_inner().0).await;
    if matches!(&result, Err(ApiError::Client(StatusCode::UNAUTHORIZED, _))) {
        state.throttle.fail(peer_ip(&req), None);
    }
    result
}

async fn refresh_inner(req: &HttpRequest, state: &State, body: RefreshBody) -> ApiResult {
    let s = &state.settings;
    let now = s.now();
    let presented = state
        .tokens
        .verify_refresh(&body.refresh_token, now)
        .map_err(|e| {
            audit!(req, "event=refresh_failed reason={:?}", e.to_string());
            ApiError::unauthorized(capitalized(e.to_string()))
        })?;
    let user = match state.store.user_view(presented.user_id)? {
        Some(u) if u.generation == presented.generation => u,
        Some(u) => {
            audit!(
                req,
                "event=refresh_failed reason=\"revoked\" user={:?} id={}",
                u.username,
                u.id
            );
            return Err(ApiError::unauthorized("Refresh token has been revoked"));
        }
        None => {
            audit!(
                req,
                "event=refresh_failed reason=\"user gone\" id={}",
                presented.user_id
            );
            return Err(ApiError::unauthorized("The token's user no longer exists"));
        }
    };
    let old = SessionToken {
        session: presented.session,
        hash: presented.id_hash,
    };
    // The successor names the session the store finds for the token.
    let session = state.store.session_of(&old)?;
    let next = RefreshId::new(session.unwrap_or_else(Uuid::nil)).map_err(ApiError::internal)?;
    let outcome = match session {
        None => Exchange::Refused(Refusal::Unknown),
        Some(_) => {
            let store = state.store.clone();
            let (new_hash, wanted, grace) =
                (next.hash, now + s.refresh_ttl_secs, s.refresh_grace_secs);
            web::block(move || store.exchange_refresh(&old, &new_hash, wanted, now, grace))
                .await??
        }
    };
    match outcome {
        Exchange::Rotated { exp, .. } => {
            let pair = state
                .tokens
                .issue(&Issue {
                    user_id: user.id,
                    roles: user.roles,
                    generation: user.generation,
                    now,
                    refresh_id: &next,
                    refresh_exp: exp,
                })
                .map_err(ApiError::internal)?;
            audit!(req, "event=refresh user={:?} id={}", user.username, user.id);
            Ok(HttpResponse::Ok().json(pair))
        }
        Exchange::Refused(why) => {
            let why = refusal_message(why);
            audit!(
                req,
                "event=refresh_failed reason={:?} user={:?} id={}",
                why,
                user.username,
                user.id
            );
            Err(ApiError::unauthorized(why))
        }
        Exchange::ReuseDetected { session } => {
            log::warn!(
                target: "engine_auth::audit",
                "event=refresh_reuse_detected user={:?} id={} session={} peer={}: session revoked",
                user.username, user.id, session, peer(req)
            );
            Err(ApiError::unauthorized(
                "Refresh token was already used: the session is revoked, log in again",
            ))
        }
    }
}

/// What the client is told when the store refuses a refresh token.
fn refusal_message(why: Refusal) -> &'static str {
    match why {
        Refusal::Unknown => "Unknown or revoked refresh token",
        Refusal::Revoked => "This session has been revoked",
        Refusal::SessionEnded => "Session expired: log in again",
        Refusal::TooManyRetries => "Too many retries of one refresh token: log in again",
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutBody {
    #[serde(rename = "refreshToken")]
    refresh_token: Option<String>,
    #[serde(default)]
    all: bool,
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = LogoutBody,
    security(("bearer" = [])),
    responses((status = 200, description = "Session(s) revoked", body = ResultBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body not application/json", body = ErrorBody),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "No valid bearer token, or invalid refresh token", body = ErrorBody),
        (status = 403, description = "The refresh token belongs to another user", body = ErrorBody)))]
/// Ends the session of `refreshToken`, or with `"all": true` every session
/// and every token of the caller.
pub async fn logout(
    req: HttpRequest,
    state: State,
    caller: Caller,
    body: Body<LogoutBody>,
) -> ApiResult {
    let LogoutBody { refresh_token, all } = body.into_inner().0;
    let now = state.settings.now();
    let store = state.store.clone();
    if all {
        let id = caller.user.id;
        web::block(move || store.revoke_all_tokens(id, now)).await??;
        audit!(
            req,
            "event=logout_all user={:?} id={}",
            caller.user.username,
            caller.user.id
        );
        return Ok(HttpResponse::Ok().json(OK));
    }
    let token = refresh_token
        .ok_or_else(|| ApiError::bad_request("Give refreshToken, or \"all\": true"))?;
    let presented = state
        .tokens
        .verify_refresh_for_logout(&token, now)
        .map_err(|e| ApiError::unauthorized(capitalized(e.to_string())))?;
    if presented.user_id != caller.user.id {
        return Err(ApiError::forbidden(
            "That refresh token belongs to another user",
        ));
    }
    let token = SessionToken {
        session: presented.session,
        hash: presented.id_hash,
    };
    web::block(move || store.revoke_session_of(&token, now)).await??;
    audit!(
        req,
        "event=logout user={:?} id={}",
        caller.user.username,
        caller.user.id
    );
    Ok(HttpResponse::Ok().json(OK))
}

#[utoipa::path(post, path = "/api/v1/auth/user/logout/{_id}", tag = "auth",
    params(("_id" = uuid::Uuid, Path, description = "User ID")), security(("bearer" = [])),
    responses((status = 200, description = "Every token of the user revoked", body = ResultBody),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Neither admin nor the user itself", body = ErrorBody),
        (status = 404, description = "Unknown user", body = ErrorBody)))]
/// Revokes every token of a user (admin, or the user itself).
pub async fn logout_user(
    req: HttpRequest,
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult {
    let id = parse_id(&id)?;
    if !caller.is_admin() && caller.user.id != id {
        return Err(ApiError::forbidden(
            "Only an admin or the user itself may end these sessions",
        ));
    }
    let now = state.settings.now();
    let store = state.store.clone();
    let rec = web::block(move || store.revoke_all_tokens(id, now)).await??;
    audit!(
        req,
        "event=logout_all user={:?} id={} by={:?}",
        rec.username,
        rec.id,
        caller.user.username
    );
    Ok(HttpResponse::Ok().json(OK))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    #[schema(min_length = 1, max_length = 256, example = "bobz@home.com")]
    username: String,
    #[schema(min_length = 8, max_length = 1024, example = "12345678")]
    password: String,
    roles: Roles,
}

#[derive(Serialize, ToSchema)]
pub struct IdBody {
    #[serde(rename = "_id")]
    id: Uuid,
}

#[utoipa::path(post, path = "/api/v1/auth/user", tag = "auth", request_body = NewUserBody,
    security(("bearer" = [])),
    responses((status = 200, description = "Created", body = IdBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body not application/json", body = ErrorBody),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Admin role required", body = ErrorBody),
        (status = 409, description = "Username taken (case-insensitively)", body = ErrorBody)))]
pub async fn create_user(
    req: HttpRequest,
    state: State,
    Admin(admin): Admin,
    body: Body<NewUserBody>,
) -> ApiResult {
    let NewUserBody {
        username,
        password,
        roles,
    } = body.into_inner().0;
    let username = Username::parse(&username).map_err(|m| ApiError::bad_request(capitalized(m)))?;
    let password = parse_password(password)?;
    // Fail fast on a taken name before paying for a hash; the transaction
    // below still decides races.
    if state.store.user_by_name(username.as_str())?.is_some() {
        return Err(ApiError::conflict("Username is already taken"));
    }
    let hash = state
        .hasher
        .hash(password)
        .await
        .map_err(ApiError::internal)?;
    let rec = new_user_record(&username, hash, roles, state.settings.now());
    let store = state.store.clone();
    let rec = web::block(move || store.create_user(&rec).map(|_| rec)).await??;
    audit!(
        req,
        "event=user_created user={:?} id={} roles={} by={:?}",
        rec.username,
        rec.id,
        rec.roles,
        admin.user.username
    );
    Ok(HttpResponse::Ok().json(IdBody { id: rec.id }))
}

#[utoipa::path(get, path = "/api/v1/auth/user/{username}", tag = "auth",
    params(("username" = String, Path, description = "Username (case-insensitive)")), security(("bearer" = [])),
    responses((status = 200, description = "The user's id", body = IdBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Admin role required", body = ErrorBody),
        (status = 404, description = "Unknown user", body = ErrorBody)))]
pub async fn get_user_id(state: State, _: Admin, username: web::Path<String>) -> ApiResult {
    let user = state
        .store
        .user_by_name(&username)?
        .ok_or_else(|| ApiError::not_found("User not found"))?;
    Ok(HttpResponse::Ok().json(IdBody { id: user.id }))
}

#[utoipa::path(get, path = "/api/v1/auth/users", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "Usernames as given", body = Vec<String>,
            example = json!(["admin", "bobz@home.com", "chris@home.com"])),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Admin role required", body = ErrorBody)))]
pub async fn list_users(state: State, _: Admin) -> ApiResult {
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(web::Bytes::from_owner(state.store.usernames_json()?)))
}

#[utoipa::path(get, path = "/api/v1/auth/user/roles/{_id}", tag = "auth",
    params(("_id" = uuid::Uuid, Path, description = "User ID")), security(("bearer" = [])),
    responses((status = 200, description = "Role profile", body = Roles),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Neither admin nor the user itself", body = ErrorBody),
        (status = 404, description = "Unknown user", body = ErrorBody)))]
pub async fn get_roles(state: State, caller: Caller, id: web::Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    if !caller.is_admin() && caller.user.id != id {
        return Err(ApiError::forbidden(
            "Only an admin or the user itself may read these roles",
        ));
    }
    let user = state
        .store
        .user_view(id)?
        .ok_or_else(|| ApiError::not_found("User not found"))?;
    Ok(HttpResponse::Ok().json(user.roles()))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    roles: Roles,
}

#[utoipa::path(patch, path = "/api/v1/auth/user/roles/{_id}", tag = "auth", request_body = RolesBody,
    params(("_id" = uuid::Uuid, Path, description = "User ID")), security(("bearer" = [])),
    responses((status = 200, description = "New roles; the user's tokens are revoked", body = RolesBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body not application/json", body = ErrorBody),
        (status = 400, description = "Invalid id or body", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Admin role required", body = ErrorBody),
        (status = 404, description = "Unknown user", body = ErrorBody),
        (status = 409, description = "Would leave no admin", body = ErrorBody)))]
pub async fn set_roles(
    req: HttpRequest,
    state: State,
    Admin(admin): Admin,
    id: web::Path<String>,
    body: Body<RolesBody>,
) -> ApiResult {
    let id = parse_id(&id)?;
    let roles = body.into_inner().0.roles;
    let store = state.store.clone();
    let now = state.settings.now();
    let rec = web::block(move || store.set_roles(id, roles, now)).await??;
    audit!(
        req,
        "event=user_roles_changed user={:?} id={} roles={} by={:?}",
        rec.username,
        rec.id,
        rec.roles,
        admin.user.username
    );
    Ok(HttpResponse::Ok().json(RolesBody { roles: rec.roles() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
    #[serde(rename = "currentPassword")]
    current_password: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/auth/user/password/{_id}", tag = "auth", request_body = PasswordBody,
    params(("_id" = uuid::Uuid, Path, description = "User ID")), security(("bearer" = [])),
    responses((status = 200, description = "Changed; the user's tokens are revoked", body = ResultBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body not application/json", body = ErrorBody),
        (status = 400, description = "Invalid id or body", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not allowed, or wrong currentPassword", body = ErrorBody),
        (status = 404, description = "Unknown user", body = ErrorBody)))]
pub async fn set_password(
    req: HttpRequest,
    state: State,
    caller: Caller,
    id: web::Path<String>,
    body: Body<PasswordBody>,
) -> ApiResult {
    let id = parse_id(&id)?;
    let PasswordBody {
        password,
        current_password,
    } = body.into_inner().0;
    let is_self = caller.user.id == id;
    if !caller.is_admin() && !is_self {
        return Err(ApiError::forbidden(
            "Only an admin or the user itself may change this password",
        ));
    }
    let password = parse_password(password)?;
    // A user changing its own password proves it knows the current one, so
    // a stolen access token alone cannot take the account over. Admins may
    // reset any password without it.
    if !caller.is_admin() {
        let current = current_password.ok_or_else(|| {
            ApiError::bad_request("currentPassword is required to change your own password")
        })?;
        let stored = state
            .store
            .user_by_id(caller.user.id)?
            .ok_or_else(|| ApiError::unauthorized("The token's user no longer exists"))?;
        let ok = state
            .hasher
            .verify(current, Some(stored.password_hash))
            .await
            .map_err(ApiError::internal)?;
        if !ok {
            audit!(
                req,
                "event=password_change_failed user={:?} id={}",
                caller.user.username,
                id
            );
            return Err(ApiError::forbidden("currentPassword is incorrect"));
        }
    }
    let hash = state
        .hasher
        .hash(password)
        .await
        .map_err(ApiError::internal)?;
    let store = state.store.clone();
    let now = state.settings.now();
    let rec = web::block(move || store.set_password_hash(id, hash, now)).await??;
    audit!(
        req,
        "event=user_password_changed user={:?} id={} by={:?}",
        rec.username,
        rec.id,
        caller.user.username
    );
    Ok(HttpResponse::Ok().json(OK))
}

#[utoipa::path(delete, path = "/api/v1/auth/user/{_id}", tag = "auth",
    params(("_id" = uuid::Uuid, Path, description = "User ID")), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = ResultBody),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Admin role required", body = ErrorBody),
        (status = 404, description = "Unknown user", body = ErrorBody),
        (status = 409, description = "Would leave no admin", body = ErrorBody)))]
pub async fn delete_user(
    req: HttpRequest,
    state: State,
    Admin(admin): Admin,
    id: web::Path<String>,
) -> ApiResult {
    let id = parse_id(&id)?;
    let store = state.store.clone();
    let rec = web::block(move || store.delete_user(id)).await??;
    audit!(
        req,
        "event=user_deleted user={:?} id={} by={:?}",
        rec.username,
        rec.id,
        admin.user.username
    );
    Ok(HttpResponse::Ok().json(OK))
}
