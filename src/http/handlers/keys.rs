//! Signing keys (admins): rotation, and for a suspected leak revocation of
//! every earlier key. The same use case as SIGHUP and `engine-auth keys
//! rotate [--revoke-previous]`; key ids only, never key material.

use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminErrors, ApiResult, Body, JsonBodyErrors, State, decided_by, origin};
use crate::accounts::Actor;
use crate::http::auth::Admin;
use crate::http::error::ErrorBody;
use crate::lifecycle::PreviousKeys;

#[derive(Deserialize, ToSchema)]
pub struct RotateKeyBody {
    #[serde(rename = "revokePrevious")]
    revoke_previous: bool,
}
decided_by!(RotateKeyBody, KEY_ROTATION);

/// The new signing key's id, and the ids of the keys revoked with it.
#[derive(Serialize, ToSchema)]
pub struct RotatedKeyBody {
    /// The key that signs from now on.
    #[schema(example = "3f9c2a7d41e08b56")]
    kid: String,
    /// Deleted with `revokePrevious`: what they signed is refused from now
    /// on. Empty otherwise.
    revoked: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/keys/rotate", tag = "auth", request_body = RotateKeyBody,
    security(("bearer" = [])),
    responses((status = 200, description = "A new signing key. With revokePrevious every earlier key is deleted: every token signed before (the caller's too) gets 401 from now on", body = RotatedKeyBody),
        JsonBodyErrors, AdminErrors,
        (status = 400, description = "Invalid body", body = ErrorBody)))]
/// Rotates the signing key; with `"revokePrevious": true` every earlier
/// key is deleted at once, so every token signed before is refused.
pub async fn rotate_key(
    req: HttpRequest,
    state: State,
    Admin(admin): Admin,
    body: Body<RotateKeyBody>,
) -> ApiResult {
    let previous = match body.into_inner().revoke_previous {
        true => PreviousKeys::Revoke,
        false => PreviousKeys::Retire,
    };
    let replaced = state
        .accounts()
        .replace_signing_key(Actor::User(&admin.user), &origin(&req), previous)
        .await?;
    Ok(HttpResponse::Ok().json(RotatedKeyBody {
        kid: replaced.kid,
        revoked: replaced.revoked,
    }))
}
