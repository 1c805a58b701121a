//! Login, refresh and logout, in JSON or browser-cookie mode
//! (`crate::http::cookies`).

use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    ApiResult, Body, JsonBodyErrors, OK, SelfOrAdminErrors, State, decided_by, origin, parse_id,
};
use crate::accounts::{Actor, LoginRequest};
use crate::domain::Secret;
use crate::http::auth::Caller;
use crate::http::cookies::{
    LogoutCredential, Mode, RefreshCookie, TokenResponse, clear_session_cookies, token_response,
};
use crate::http::error::{ApiError, ErrorBody};

#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    username: String,
    #[schema(value_type = String)]
    password: Secret,
    #[schema(value_type = Option<String>)]
    otp: Option<Secret>,
    mode: Option<String>,
}
decided_by!(LoginBody, LOGIN);

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, description = "Tokens. In cookie mode the refresh token is not in the body: it is set as the HttpOnly cookie engine_auth_refresh (SameSite=Strict, Path=/api/v1/auth; Secure over TLS)", body = TokenResponse), JsonBodyErrors,
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Wrong username or password; \"OTP required\" or \"Invalid OTP\" (only after a correct password)", body = ErrorBody),
        (status = 429, description = "Throttled after repeated failures, or too many attempts in flight from this address (Retry-After)", body = ErrorBody),
        (status = 503, description = "The password-hashing queue is full (Retry-After)", body = ErrorBody)))]
pub async fn login(req: HttpRequest, state: State, body: Body<LoginBody>) -> ApiResult {
    let LoginBody {
        username,
        password,
        otp,
        mode,
    } = body.into_inner();
    let mode = Mode::parse(mode.as_deref())?.unwrap_or(Mode::Json);
    let pair = state
        .sessions()
        .login(
            &origin(&req),
            LoginRequest {
                username,
                password,
                otp,
                user_agent: req
                    .headers()
                    .get(actix_web::http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            },
        )
        .await?;
    Ok(token_response(&req, pair, mode))
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshBody {
    #[serde(rename = "refreshToken")]
    refresh_token: Option<String>,
    mode: Option<String>,
}
decided_by!(RefreshBody, REFRESH);

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, description = "New tokens; the presented refresh token is spent. The new refresh token goes back the way the presented one came (body or cookie) unless mode says otherwise", body = TokenResponse),
        JsonBodyErrors,
        (status = 400, description = "Invalid body, or no refresh token in the body nor in the cookie", body = ErrorBody),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token", body = ErrorBody),
        (status = 403, description = "The cookie's request is not application/json, or its Origin is another origin (CSRF)", body = ErrorBody),
        (status = 429, description = "Too many tokens that failed verification from this address (Retry-After)", body = ErrorBody)))]
/// Rotates the refresh token (see [`crate::accounts::Sessions::refresh`]),
/// taken from the body, else from the cookie.
pub async fn refresh(
    req: HttpRequest,
    state: State,
    cookie: RefreshCookie,
    body: Body<RefreshBody>,
) -> ApiResult {
    let RefreshBody {
        refresh_token,
        mode,
    } = body.into_inner();
    let mode = Mode::parse(mode.as_deref())?;
    let (token, came) = match (refresh_token, cookie.0) {
        (Some(token), _) => (token, Mode::Json),
        (None, Some(token)) => (token, Mode::Cookie),
        // The original's answer to a body without the token.
        (None, None) => {
            return Err(ApiError::bad_request(
                "body must have required property 'refreshToken'",
            ));
        }
    };
    let pair = state.sessions().refresh(&origin(&req), &token).await?;
    Ok(token_response(&req, pair, mode.unwrap_or(came)))
}

#[derive(Deserialize, ToSchema)]
pub struct LogoutBody {
    #[serde(rename = "refreshToken")]
    refresh_token: Option<String>,
    #[serde(default)]
    all: bool,
}
decided_by!(LogoutBody, LOGOUT);

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = LogoutBody,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Session(s) revoked; the refresh cookie, if sent, is cleared", body = super::ResultBody),
        JsonBodyErrors,
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "No valid bearer token (nor refresh cookie), or invalid refresh token", body = ErrorBody),
        (status = 403, description = "The refresh token belongs to another user, or the cookie's request failed the CSRF rules", body = ErrorBody)))]
/// Ends the session of `refreshToken`, or with `"all": true` every session
/// and every token of the caller; with neither, the session of the refresh
/// cookie, which needs no bearer token.
pub async fn logout(
    req: HttpRequest,
    state: State,
    credential: LogoutCredential,
    body: Body<LogoutBody>,
) -> ApiResult {
    let LogoutBody { refresh_token, all } = body.into_inner();
    let LogoutCredential { caller, cookie } = credential;
    let had_cookie = cookie.is_some();
    let done = |req: &HttpRequest| {
        let mut res = HttpResponse::Ok().json(OK);
        if had_cookie {
            clear_session_cookies(req, &mut res);
        }
        res
    };
    let sessions = state.sessions();
    match (all, refresh_token, cookie) {
        (true, _, _) => {
            let caller = caller.ok_or_else(needs_bearer)?;
            state
                .accounts()
                .log_out_everywhere(Actor::User(&caller.user), &origin(&req), caller.user.id)
                .await?;
        }
        (false, Some(token), _) => {
            let caller = caller.ok_or_else(needs_bearer)?;
            sessions
                .log_out(Actor::User(&caller.user), &origin(&req), &token)
                .await?;
        }
        (false, None, Some(token)) => {
            let me = caller.as_ref().map(|c| &*c.user);
            sessions.log_out_cookie(me, &origin(&req), &token).await?;
        }
        (false, None, None) => {
            return Err(ApiError::bad_request("Give refreshToken, or \"all\": true"));
        }
    }
    Ok(done(&req))
}

fn needs_bearer() -> ApiError {
    ApiError::unauthorized("Missing bearer token in the Authorization header")
}

#[utoipa::path(post, path = "/api/v1/auth/user/logout/{_id}", tag = "auth",
    params(("_id" = uuid::Uuid, Path, description = "User ID")), security(("bearer" = [])),
    responses((status = 200, description = "Every token of the user revoked", body = super::ResultBody),
        SelfOrAdminErrors))]
/// Revokes every token of a user (admin, or the user itself).
pub async fn logout_user(
    req: HttpRequest,
    state: State,
    caller: Caller,
    id: actix_web::web::Path<String>,
) -> ApiResult {
    let id = parse_id(&id)?;
    state
        .accounts()
        .log_out_everywhere(Actor::User(&caller.user), &origin(&req), id)
        .await?;
    Ok(HttpResponse::Ok().json(OK))
}
