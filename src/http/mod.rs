//! The HTTP surface: routes, body limits, error shapes and common headers.
//! Handlers live in `handlers`, caller identification in `auth`, the
//! admin console's embedded files in `console`, the
//! client's address (`X-Forwarded-For` from trusted proxies) in
//! `forwarded`, the error type in `error`.

pub mod auth;
pub mod body;
pub mod console;
pub mod cookies;
pub mod error;
pub mod forwarded;
pub mod handlers;
pub mod openapi;

use actix_web::error::PathError;
use actix_web::http::StatusCode;
use actix_web::middleware::{DefaultHeaders, ErrorHandlers};
use actix_web::{HttpRequest, web};

use error::ApiError;

fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(format!("Invalid path parameter: {err}")).into()
}

/// Registers every route of [`openapi::routes`] plus the extractor
/// configuration they rely on.
pub fn configure(body_limit: usize) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        // The body extractor (`body::Body`) reads through this limit.
        cfg.app_data(web::PayloadConfig::new(body_limit))
            .app_data(web::PathConfig::default().error_handler(path_error));
        // One resource per actix pattern, holding every method on it, so a
        // known path with the wrong method answers 405, not 404.
        let routes = openapi::routes();
        let mut patterns: Vec<&str> = Vec::new();
        for r in &routes {
            if !patterns.contains(&r.pattern) {
                patterns.push(r.pattern);
            }
        }
        for pattern in patterns {
            // The route template, for the metrics' labels (no second routing pass).
            let mut resource = web::resource(pattern).app_data(crate::metrics::Route::new(pattern));
            let mut allow = Vec::new();
            for r in routes.iter().filter(|r| r.pattern == pattern) {
                if r.any_method {
                    resource = resource.route((r.handler)());
                    continue;
                }
                resource = resource.route((r.handler)().method(r.method.clone()));
                allow.push(r.method.as_str());
            }
            // RFC 9110: a 405 names the methods the resource does serve.
            let allow = allow.join(", ");
            resource = resource.default_service(web::to(move || {
                std::future::ready(error::method_not_allowed(&allow))
            }));
            cfg.service(resource);
        }
        // The admin console's static files (not API calls: not in the
        // OpenAPI document).
        console::configure(cfg);
    }
}

/// Headers on every response: no sniffing, no caching (tokens and user
/// lists must not linger in proxies or browser caches).
pub fn default_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Cache-Control", "no-store"))
}

/// `Strict-Transport-Security` on responses served over TLS only (sending
/// it over plain HTTP is meaningless and would break the loopback listener).
pub fn hsts<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>>
+ use<S, B>
where
    S: actix_web::dev::Service<
            actix_web::dev::ServiceRequest,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
{
    let secure = req.app_config().secure();
    let fut = srv.call(req);
    async move {
        let mut res = fut.await?;
        if secure {
            res.headers_mut().insert(
                actix_web::http::header::STRICT_TRANSPORT_SECURITY,
                actix_web::http::header::HeaderValue::from_static("max-age=31536000"),
            );
        }
        Ok(res)
    }
}

/// How long one request may take once its head has arrived, body included.
/// actix bounds the head (client_request_timeout) but not the body: a
/// client that sends `Content-Length: 100` and one byte would otherwise hold
/// its connection (and a file descriptor) forever.
pub const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

/// Answers 408 when a request exceeds [`REQUEST_DEADLINE`]. (It must not
/// hold a clone of the request: actix needs unique access to it later.)
pub fn deadline<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>>
+ use<S, B>
where
    S: actix_web::dev::Service<
            actix_web::dev::ServiceRequest,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
{
    let fut = srv.call(req);
    async move {
        match tokio::time::timeout(REQUEST_DEADLINE, fut).await {
            Ok(res) => res,
            Err(_) => Err(ApiError::Client(
                StatusCode::REQUEST_TIMEOUT,
                "Request took too long (body not received in time)".into(),
            )
            .into()),
        }
    }
}

/// Turns actix's own plain-text error responses into the JSON error shape.
pub fn error_handlers<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(error::jsonify)
}
