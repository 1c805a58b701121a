//! The one error type every handler returns, rendered in the original
//! service's (Fastify's) error shape:
//! `{"statusCode": 401, "error": "Unauthorized", "message": "…"}`.
//! Internal faults are logged with their whole cause chain; the client only
//! sees a generic message.

use actix_web::dev::ServiceResponse;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

use crate::accounts::AccountError;
use crate::store::StoreError;

#[derive(Debug)]
pub enum ApiError {
    /// 4xx with a message for the client.
    Client(StatusCode, String),
    /// 429 with `Retry-After` (seconds).
    Throttled(u64),
    /// 503 with `Retry-After` (seconds): the hash queue is full.
    Unavailable(u64),
    /// 500: logged in full, shown as "Internal Server Error".
    Internal(anyhow::Error),
}

/// The error shape of the original (Fastify) service.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    #[serde(rename = "statusCode")]
    #[schema(example = 401)]
    status_code: u16,
    #[schema(example = "Unauthorized")]
    error: &'a str,
    #[schema(example = "Invalid username or password")]
    message: &'a str,
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::Client(StatusCode::BAD_REQUEST, msg.into())
    }
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        ApiError::Client(StatusCode::UNAUTHORIZED, msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        ApiError::Client(StatusCode::FORBIDDEN, msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        ApiError::Client(StatusCode::NOT_FOUND, msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        ApiError::Client(StatusCode::CONFLICT, msg.into())
    }
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Client(s, m) => write!(f, "{s}: {m}"),
            ApiError::Throttled(s) => write!(f, "throttled for {s} s"),
            ApiError::Unavailable(s) => write!(f, "hash queue full, retry in {s} s"),
            ApiError::Internal(e) => write!(f, "internal error: {e:#}"),
        }
    }
}

/// The one mapping of a use case's refusal to an HTTP status.
impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(m) => ApiError::bad_request(m),
            AccountError::Unauthorized(m) => ApiError::unauthorized(m),
            AccountError::Forbidden(m) => ApiError::forbidden(m),
            AccountError::NotFound(m) => ApiError::not_found(m),
            AccountError::Conflict(m) => ApiError::conflict(m),
            AccountError::Throttled(secs) => ApiError::Throttled(secs),
            AccountError::Busy(secs) => ApiError::Unavailable(secs),
            AccountError::Internal(e) => ApiError::internal(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        AccountError::from(e).into()
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::internal(anyhow::anyhow!("blocking task failed: {e}"))
    }
}

/// Renders the error shape for any status.
pub fn error_response(status: StatusCode, message: &str) -> HttpResponse {
    let body = ErrorBody {
        status_code: status.as_u16(),
        error: status.canonical_reason().unwrap_or("Error"),
        message,
    };
    let mut resp = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    resp.json(body)
}

/// The error shape with `Retry-After: secs`.
fn retry_after(status: StatusCode, message: &str, secs: u64) -> HttpResponse {
    let mut resp = error_response(status, message);
    if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// 405 in the error shape, with the `Allow` header RFC 9110 requires.
pub fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut resp = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed for this route",
    );
    if let Ok(v) = header::HeaderValue::from_str(allow) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Client(s, _) => *s,
            ApiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Client(s, m) => error_response(*s, m),
            ApiError::Throttled(secs) => retry_after(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many attempts from this address: retry in {secs} s"),
                *secs,
            ),
            ApiError::Unavailable(secs) => retry_after(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("Too many passwords being checked: retry in {secs} s"),
                *secs,
            ),
            ApiError::Internal(e) => {
                log::error!("internal error: {e:#}");
                error_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}

/// Catch-all for error responses actix produces on its own (unknown route,
/// wrong method, …): whatever is not JSON yet gets the error shape.
pub fn jsonify<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let message = match status {
        StatusCode::NOT_FOUND => "Route not found",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed for this route",
        _ => status.canonical_reason().unwrap_or("Error"),
    };
    let (req, _) = res.into_parts();
    let resp = error_response(status, message);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, resp).map_into_right_body::<_>(),
    ))
}
