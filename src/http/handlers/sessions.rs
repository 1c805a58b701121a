//! Login, refresh and logout.

use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    ApiResult, Body, JsonBodyErrors, OK, SelfOrAdminErrors, State, decided_by, origin, parse_id,
};
use crate::accounts::{Actor, LoginRequest};
use crate::domain::Secret;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorBody};
use crate::tokens::TokenPair;

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
    responses((status = 200, description = "Tokens", body = TokenPair), JsonBodyErrors,
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 429, description = "Throttled after repeated failures, or too many attempts in flight from this address (Retry-After)", body = ErrorBody),
        (status = 503, description = "The password-hashing queue is full (Retry-After)", body = ErrorBody)))]
pub async fn login(req: HttpRequest, state: State, body: Body<LoginBody>) -> ApiResult {
    let LoginBody {
        username,
        password,
        otp,
        mode: _,
    } = body.into_inner();
    let pair = state
        .sessions()
        .login(
            &origin(&req),
            LoginRequest {
                username,
                password,
                otp,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(pair))
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshBody {
    #[serde(rename = "refreshToken")]
    refresh_token: Option<String>,
    mode: Option<String>,
}
decided_by!(RefreshBody, REFRESH);

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, description = "New tokens; the presented refresh token is spent", body = TokenPair),
        JsonBodyErrors,
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token", body = ErrorBody),
        (status = 429, description = "Too many tokens that failed verification from this address (Retry-After)", body = ErrorBody)))]
/// Rotates the refresh token (see [`crate::accounts::Sessions::refresh`]).
pub async fn refresh(req: HttpRequest, state: State, body: Body<RefreshBody>) -> ApiResult {
    let RefreshBody {
        refresh_token,
        mode: _,
    } = body.into_inner();
    let refresh_token = refresh_token
        .ok_or_else(|| ApiError::bad_request("body must have required property 'refreshToken'"))?;
    let pair = state
        .sessions()
        .refresh(&origin(&req), &refresh_token)
        .await?;
    Ok(HttpResponse::Ok().json(pair))
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
    security(("bearer" = [])),
    responses((status = 200, description = "Session(s) revoked", body = super::ResultBody),
        JsonBodyErrors,
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
    let LogoutBody { refresh_token, all } = body.into_inner();
    let actor = Actor::User(&caller.user);
    if all {
        state
            .accounts()
            .log_out_everywhere(actor, &origin(&req), caller.user.id)
            .await?;
        return Ok(HttpResponse::Ok().json(OK));
    }
    let token = refresh_token
        .ok_or_else(|| ApiError::bad_request("Give refreshToken, or \"all\": true"))?;
    state
        .sessions()
        .log_out(actor, &origin(&req), &token)
        .await?;
    Ok(HttpResponse::Ok().json(OK))
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
