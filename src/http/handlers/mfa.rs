//! Two-factor authentication (TOTP) for one's own account, an admin's
//! reset, and `/me`. The rules are `accounts/mfa.rs`'; these parse and
//! render.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    AdminErrors, ApiResult, Body, JsonBodyErrors, OK, ResultBody, State, decided_by, origin,
    parse_id,
};
use crate::accounts::Actor;
use crate::domain::{Roles, Secret};
use crate::http::auth::{Admin, Caller};
use crate::http::error::ErrorBody;

#[derive(Deserialize, ToSchema)]
pub struct MfaGenerateBody {
    #[schema(value_type = String)]
    password: Secret,
}
decided_by!(MfaGenerateBody, MFA_GENERATE);

#[derive(Deserialize, ToSchema)]
pub struct MfaCodeBody {
    #[schema(value_type = String, example = "123456")]
    otp: Secret,
}
decided_by!(MfaCodeBody, MFA_CODE);

/// A new TOTP secret, shown once.
#[derive(Serialize, ToSchema)]
pub struct MfaSecretBody {
    /// Base32, no padding.
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    secret: String,
    #[serde(rename = "otpauthUrl")]
    #[schema(
        example = "otpauth://totp/engine-auth:bob?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=engine-auth"
    )]
    otpauth_url: String,
}

/// The recovery codes, shown once: each logs in (or disables two-factor
/// authentication) once in place of a code.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesBody {
    #[serde(rename = "recoveryCodes")]
    #[schema(example = json!(["abcd-efgh-ijkl-mnop"]))]
    recovery_codes: Vec<String>,
}

/// The caller.
#[derive(Serialize, ToSchema)]
pub struct MeBody {
    #[serde(rename = "_id")]
    id: Uuid,
    username: String,
    roles: Roles,
    /// Whether two-factor authentication is on.
    mfa: bool,
}

/// The statuses every own-account MFA call may answer.
pub struct OwnMfaErrors;

impl utoipa::IntoResponses for OwnMfaErrors {
    fn responses()
    -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        super::error_responses(&[
            (400, "Invalid body"),
            (401, "No valid bearer token"),
            (429, "Throttled after repeated failures (Retry-After)"),
        ])
    }
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/generate", tag = "auth", request_body = MfaGenerateBody,
    security(("bearer" = [])),
    responses((status = 200, description = "A new pending TOTP secret (replacing an earlier pending one); nothing else changes until /mfa/enable", body = MfaSecretBody),
        JsonBodyErrors, OwnMfaErrors,
        (status = 403, description = "Wrong password", body = ErrorBody),
        (status = 409, description = "Two-factor authentication is on already", body = ErrorBody),
        (status = 503, description = "The password-hashing queue is full (Retry-After)", body = ErrorBody)))]
/// Generates a TOTP secret for the caller, who proves its password.
pub async fn mfa_generate(
    req: HttpRequest,
    state: State,
    caller: Caller,
    body: Body<MfaGenerateBody>,
) -> ApiResult {
    let password = body.into_inner().password;
    let new = state
        .accounts()
        .mfa_generate(Actor::User(&caller.user), &origin(&req), password)
        .await?;
    Ok(HttpResponse::Ok().json(MfaSecretBody {
        secret: new.secret,
        otpauth_url: new.otpauth_url,
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/enable", tag = "auth", request_body = MfaCodeBody,
    security(("bearer" = [])),
    responses((status = 200, description = "Two-factor authentication is on; the recovery codes, shown once", body = RecoveryCodesBody),
        JsonBodyErrors, OwnMfaErrors,
        (status = 403, description = "Wrong code", body = ErrorBody),
        (status = 409, description = "On already, or no secret generated", body = ErrorBody)))]
/// Turns two-factor authentication on with a code of the generated secret.
pub async fn mfa_enable(
    req: HttpRequest,
    state: State,
    caller: Caller,
    body: Body<MfaCodeBody>,
) -> ApiResult {
    let otp = body.into_inner().otp;
    let codes = state
        .accounts()
        .mfa_enable(Actor::User(&caller.user), &origin(&req), otp)
        .await?;
    Ok(HttpResponse::Ok().json(RecoveryCodesBody {
        recovery_codes: codes,
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/disable", tag = "auth", request_body = MfaCodeBody,
    security(("bearer" = [])),
    responses((status = 200, description = "Two-factor authentication is off", body = ResultBody),
        JsonBodyErrors, OwnMfaErrors,
        (status = 403, description = "Wrong or used code", body = ErrorBody),
        (status = 409, description = "Two-factor authentication is off", body = ErrorBody)))]
/// Turns two-factor authentication off with a current code or a recovery
/// code.
pub async fn mfa_disable(
    req: HttpRequest,
    state: State,
    caller: Caller,
    body: Body<MfaCodeBody>,
) -> ApiResult {
    let otp = body.into_inner().otp;
    state
        .accounts()
        .mfa_disable(Actor::User(&caller.user), &origin(&req), otp)
        .await?;
    Ok(HttpResponse::Ok().json(OK))
}

#[utoipa::path(delete, path = "/api/v1/auth/user/mfa/{_id}", tag = "auth",
    params(("_id" = uuid::Uuid, Path, description = "User ID")), security(("bearer" = [])),
    responses((status = 200, description = "Two-factor authentication is off; every token of the user is revoked", body = ResultBody),
        AdminErrors,
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "Unknown user", body = ErrorBody)))]
/// Turns a user's two-factor authentication off (admins).
pub async fn mfa_reset(
    req: HttpRequest,
    state: State,
    Admin(admin): Admin,
    id: web::Path<String>,
) -> ApiResult {
    let id = parse_id(&id)?;
    state
        .accounts()
        .mfa_reset(Actor::User(&admin.user), &origin(&req), id)
        .await?;
    Ok(HttpResponse::Ok().json(OK))
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = MeBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody)))]
/// The caller: id, username, current roles, and whether two-factor
/// authentication is on.
pub async fn me(caller: Caller) -> ApiResult {
    let me = &caller.user;
    Ok(HttpResponse::Ok().json(MeBody {
        id: me.id,
        username: me.username.to_string(),
        roles: me.roles,
        mfa: me.mfa,
    }))
}
