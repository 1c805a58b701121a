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

/// The published key set (RFC 7517): the public keys of the EdDSA and
/// ES256 signing keys, as the document describes them (the body is rendered by
/// `tokens::Tokens::jwks`).
#[derive(Serialize, ToSchema)]
pub struct JwksBody {
    /// The active key first, then retired keys whose tokens may still be
    /// valid. Empty while every key is HS256 (shared secrets are never
    /// published).
    keys: Vec<JwkBody>,
}

/// One public key: Ed25519 (`OKP`, RFC 8037) or P-256 (`EC`, RFC 7518
/// section 6.2).
#[derive(Serialize, ToSchema)]
pub struct JwkBody {
    /// `OKP` (EdDSA) or `EC` (ES256).
    #[schema(example = "OKP")]
    kty: String,
    /// `Ed25519` or `P-256`.
    #[schema(example = "Ed25519")]
    crv: String,
    /// The public key (an EC key's x coordinate), base64url without padding.
    #[schema(example = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")]
    x: String,
    /// An EC key's y coordinate, base64url without padding (absent for OKP).
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    /// The `kid` header of the tokens this key signs.
    #[schema(example = "3f9c2a7d41e08b56")]
    kid: String,
    /// `EdDSA` or `ES256`.
    #[schema(example = "EdDSA")]
    alg: String,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    use_: String,
}

fn jwks_response(state: &State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            actix_web::http::header::CACHE_CONTROL,
            format!("public, max-age={}", state.settings.jwks_max_age_secs),
        ))
        .body(state.tokens.jwks())
}

#[utoipa::path(get, path = "/api/v1/auth/jwks.json", tag = "auth",
    responses((status = 200, description = "The public keys that verify this daemon's tokens (`--signing-alg EdDSA` or `ES256`), for other services: the active key and every retired key whose tokens may still be valid. Cacheable for 5 minutes; a verifier meeting an unknown `kid` fetches the set again", body = JwksBody,
        headers(("Cache-Control" = String, description = "public, max-age=300")))))]
/// The published signing keys (JWKS).
pub async fn jwks(state: State) -> HttpResponse {
    jwks_response(&state)
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "The same key set as /api/v1/auth/jwks.json, at the well-known address", body = JwksBody,
        headers(("Cache-Control" = String, description = "public, max-age=300")))))]
/// The published signing keys (JWKS), at the well-known address.
pub async fn jwks_well_known(state: State) -> HttpResponse {
    jwks_response(&state)
}
