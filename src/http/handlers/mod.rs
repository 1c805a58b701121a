//! One function per API call, grouped by what they serve: `sessions`
//! (login, refresh, logout), `users` (user and role management), `keys`
//! (signing-key rotation and revocation), `apikeys` (API keys), `mfa`
//! (two-factor authentication, `/me`), `console` (what the admin console
//! reads: accounts, sessions, signing keys, security events), `verify` (forward-auth for reverse
//! proxies) and `mqtt` (the MQTT broker's auth backend). A
//! handler's body is decided as the original decides it (`http::body`; each
//! body type names its schema), then parsed into domain types (400 on
//! anything our stricter rules refuse); it names the caller (the `Caller` / `Admin` extractors) and calls the one
//! use case in `crate::accounts` that decides and audits; it only renders
//! the result.

mod apikeys;
mod console;
mod keys;
mod mfa;
mod mqtt;
mod sessions;
mod users;
mod verify;

pub use apikeys::*;
pub use console::*;
pub use keys::*;
pub use mfa::*;
pub use mqtt::*;
pub use sessions::*;
pub use users::*;
pub use verify::*;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use uuid::Uuid;

use super::error::ApiError;
use crate::audit::Origin;
use crate::state::AppState;

type State = web::Data<AppState>;
type ApiResult = Result<HttpResponse, ApiError>;
use super::body::Body;

/// Names the schema that decides a body type (see [`crate::http::body::RequestBody`]).
macro_rules! decided_by {
    ($body:ty, $schema:ident) => {
        impl crate::http::body::RequestBody for $body {
            const SCHEMA: &'static crate::http::body::Schema = &crate::http::body::$schema;
        }
    };
}
use decided_by;

/// Where the request came from, for the audit trail and the throttle: the
/// TCP peer, or the client a trusted proxy forwarded it for.
pub(crate) fn origin(req: &HttpRequest) -> Origin {
    let proxies = req
        .app_data::<State>()
        .map_or(&[][..], |s| s.settings.trusted_proxies.as_slice());
    Origin::Http {
        peer: req
            .peer_addr()
            .map(|a| super::forwarded::client_address(a.ip(), req.headers(), proxies)),
        by: None,
    }
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::bad_request("Invalid user id: expected a UUID"))
}

/// 200 while the daemon can serve; 503 once a write failed at the storage
/// level (a full disk): this process can no longer write, only a restart
/// helps (see `store::Store::storage_failure`).
#[utoipa::path(get, path = "/health", tag = "health",
    responses(
        (status = 200, description = "The daemon answers", body = HealthBody),
        (status = 503, description = "Storage failed (e.g. the disk is full): writes are refused until the daemon is restarted", body = super::error::ErrorBody),
    ))]
pub async fn health(state: State) -> HttpResponse {
    match state.store.storage_failure() {
        None => HttpResponse::Ok().json(HealthBody { status: "ok" }),
        Some(_) => super::error::error_response(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "Storage failed: this process can no longer write (is the disk full?); restart it",
        ),
    }
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

/// `{"_id": "<uuid>"}`
#[derive(Serialize, ToSchema)]
pub struct IdBody {
    #[serde(rename = "_id")]
    id: Uuid,
}

/// Error responses in the shared error shape, for the OpenAPI document.
fn error_responses(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", content)
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

/// 413 and 415: what every call with a JSON body may answer before the
/// handler runs.
pub struct JsonBodyErrors;

impl utoipa::IntoResponses for JsonBodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(&[(413, "Body too large"), (415, "Body not application/json")])
    }
}

/// 401 and 403 of the admin-only calls.
pub struct AdminErrors;

impl utoipa::IntoResponses for AdminErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(&[(401, "No valid bearer token"), (403, "Admin role required")])
    }
}

/// 400, 401, 403 and 404 of the calls on one user open to admins and the
/// user itself.
pub struct SelfOrAdminErrors;

impl utoipa::IntoResponses for SelfOrAdminErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(&[
            (400, "Invalid id (or body)"),
            (401, "No valid bearer token"),
            (403, "Neither admin nor the user itself"),
            (404, "Unknown user"),
        ])
    }
}
