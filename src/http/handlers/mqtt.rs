//! The MQTT broker's auth backend, in the protocol of mosquitto-go-auth's
//! HTTP backend (`auth_opt_http_*`): `POST` with the parameters as JSON
//! (`http_params_mode json`, its default) or as a form (`form`); 200
//! allows, 403 denies (`http_response_mode status`; the 200 body
//! `{"ok":true,"error":""}` also satisfies its `json` mode). Only the
//! configured broker addresses may ask (`--mqtt-backend-client`, loopback
//! by default): the answers say which users exist and what they may do.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, State, origin};
use crate::accounts::MqttAccess;
use crate::domain::Secret;
use crate::http::error::{ApiError, ErrorBody};

/// The user check's parameters.
#[derive(Deserialize, ToSchema)]
pub struct MqttUserParams {
    username: String,
    /// The user's password, or an access token.
    #[schema(value_type = String)]
    password: Secret,
    /// The MQTT client id (not used).
    #[serde(default)]
    #[allow(dead_code)]
    clientid: Option<String>,
}

/// The superuser check's parameters.
#[derive(Deserialize, ToSchema)]
pub struct MqttSuperuserParams {
    username: String,
}

/// The ACL check's parameters.
#[derive(Deserialize, ToSchema)]
pub struct MqttAclParams {
    username: String,
    /// The topic (only the role bits decide: any topic).
    #[allow(dead_code)]
    topic: String,
    #[serde(default)]
    #[allow(dead_code)]
    clientid: Option<String>,
    /// 1 read, 2 write, 3 read and write, 4 subscribe.
    acc: i64,
}

/// An allowed request's body.
#[derive(Serialize, ToSchema)]
pub struct MqttAllowed {
    ok: bool,
    error: &'static str,
}

fn allowed() -> HttpResponse {
    HttpResponse::Ok().json(MqttAllowed {
        ok: true,
        error: "",
    })
}

/// 403 unless the TCP peer is a configured broker address.
fn from_broker(req: &HttpRequest, state: &State) -> Result<(), ApiError> {
    let peer = req.peer_addr().map(|a| a.ip().to_canonical());
    let known = peer.is_some_and(|p| {
        state
            .settings
            .mqtt_backend_clients
            .iter()
            .any(|c| c.to_canonical() == p)
    });
    if known {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "Not an MQTT broker address (see --mqtt-backend-client)",
        ))
    }
}

/// The parameters, as JSON or as a form, by the content type.
fn params<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::http::body::media_type)
        .unwrap_or_default();
    match ctype.as_str() {
        "application/json" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("Invalid parameters: {e}"))),
        "application/x-www-form-urlencoded" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("Invalid parameters: not UTF-8"))?;
            web::Query::<T>::from_query(text)
                .map(web::Query::into_inner)
                .map_err(|e| ApiError::bad_request(format!("Invalid parameters: {e}")))
        }
        _ => Err(ApiError::Client(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Parameters must be application/json or application/x-www-form-urlencoded".into(),
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/auth/mqtt/user", tag = "mqtt",
    request_body(content = MqttUserParams, content_type = "application/json",
        description = "Also as application/x-www-form-urlencoded (mosquitto-go-auth's form mode)"),
    responses((status = 200, description = "May connect", body = MqttAllowed),
        (status = 400, description = "Invalid parameters", body = ErrorBody),
        (status = 403, description = "Wrong username or password, an invalid token, a two-factor user's password, or not a broker address", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Neither JSON nor a form", body = ErrorBody),
        (status = 429, description = "Throttled, as logins are (Retry-After)", body = ErrorBody),
        (status = 503, description = "The password-hashing queue is full (Retry-After)", body = ErrorBody)))]
/// May this MQTT client connect? Its password is checked as a login's
/// (throttle, hash queue); an access token may stand for the password.
pub async fn mqtt_user(req: HttpRequest, state: State, body: web::Bytes) -> ApiResult {
    from_broker(&req, &state)?;
    let p: MqttUserParams = params(&req, &body)?;
    state
        .sessions()
        .mqtt_user(&origin(&req), &p.username, p.password)
        .await
        .map_err(denied)?;
    Ok(allowed())
}

#[utoipa::path(post, path = "/api/v1/auth/mqtt/superuser", tag = "mqtt",
    request_body(content = MqttSuperuserParams, content_type = "application/json",
        description = "Also as application/x-www-form-urlencoded"),
    responses((status = 200, description = "A superuser (admin)", body = MqttAllowed),
        (status = 400, description = "Invalid parameters", body = ErrorBody),
        (status = 403, description = "Not a superuser, or not a broker address", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Neither JSON nor a form", body = ErrorBody)))]
/// Is this MQTT user a superuser (the admin flag)?
pub async fn mqtt_superuser(req: HttpRequest, state: State, body: web::Bytes) -> ApiResult {
    from_broker(&req, &state)?;
    let p: MqttSuperuserParams = params(&req, &body)?;
    state.sessions().mqtt_superuser(&p.username)?;
    Ok(allowed())
}

#[utoipa::path(post, path = "/api/v1/auth/mqtt/acl", tag = "mqtt",
    request_body(content = MqttAclParams, content_type = "application/json",
        description = "Also as application/x-www-form-urlencoded (acc as text)"),
    responses((status = 200, description = "Allowed", body = MqttAllowed),
        (status = 400, description = "Invalid parameters", body = ErrorBody),
        (status = 403, description = "The user's roles do not allow it, no such user, an unknown acc, or not a broker address", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Neither JSON nor a form", body = ErrorBody)))]
/// May this MQTT user read (acc 1), write (2), both (3) or subscribe (4)?
pub async fn mqtt_acl(req: HttpRequest, state: State, body: web::Bytes) -> ApiResult {
    from_broker(&req, &state)?;
    let p: MqttAclParams = params(&req, &body)?;
    let access = MqttAccess::from_acc(p.acc)
        .ok_or_else(|| ApiError::forbidden(format!("Unknown acc {}", p.acc)))?;
    state.sessions().mqtt_acl(&p.username, access)?;
    Ok(allowed())
}

/// The broker knows two answers: a wrong password is a denial (403), not
/// a 401 (which it would also take as one, but 403 is the protocol's).
fn denied(e: crate::accounts::AccountError) -> ApiError {
    match ApiError::from(e) {
        ApiError::Client(s, m) if s == actix_web::http::StatusCode::UNAUTHORIZED => {
            ApiError::forbidden(m)
        }
        other => other,
    }
}
