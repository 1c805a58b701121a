//! Browser sessions: the refresh token in an HttpOnly cookie (`mode:
//! "cookie"` at login), and the CSRF rules for requests whose credential
//! that cookie is. Only `/refresh` and `/logout` read the cookie. Cookie
//! mode also sets the access token as the HttpOnly cookie
//! `engine_auth_access` (`Path=/`, for browser navigation behind a
//! forward-auth proxy), which only `/verify` reads; every other call still
//! reads only `Authorization: Bearer`.
//!
//! CSRF: a browser attaches the cookie to any request for its path, from
//! any page, so a request carrying it must prove it was sent by a script of
//! the gateway's own origin: its `Content-Type` is `application/json`
//! (which a cross-site form cannot send, and a cross-site script can only
//! send after a CORS preflight this server never grants), and its `Origin`,
//! when present, is the very origin (scheme, host, port) it was sent to.
//! `SameSite=Strict` keeps the cookie off cross-site requests in browsers
//! that honour it; these checks do not rely on that.

use actix_web::cookie::{Cookie, SameSite, time::Duration};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde::Serialize;
use std::future::{Ready, ready};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use crate::state::AppState;
use crate::tokens::TokenPair;

/// The refresh token's cookie.
pub const REFRESH_COOKIE: &str = "engine_auth_refresh";
/// The cookie's path: the auth API, so it never reaches other services on
/// the gateway's host, nor this one's console pages.
const COOKIE_PATH: &str = "/api/v1/auth";
/// The access token's cookie, sent with every request to the host (the
/// proxied services' too), read by `/verify` only.
pub const ACCESS_COOKIE: &str = "engine_auth_access";

/// How a token pair is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Both tokens in the JSON body (the original's answer).
    Json,
    /// The access token in the body, the refresh token as the cookie.
    Cookie,
}

impl Mode {
    /// A body's `mode`, if given.
    pub fn parse(mode: Option<&str>) -> Result<Option<Mode>, ApiError> {
        match mode {
            None => Ok(None),
            Some("json") => Ok(Some(Mode::Json)),
            Some("cookie") => Ok(Some(Mode::Cookie)),
            Some(_) => Err(ApiError::bad_request(
                "body/mode must be \"json\" or \"cookie\"",
            )),
        }
    }
}

/// The token response of login and refresh.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// The access token (a JWT).
    token: String,
    /// The refresh token; absent in cookie mode.
    #[serde(rename = "refreshToken", skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// The access token's remaining lifetime, in milliseconds.
    #[schema(example = 600000)]
    expires: u64,
}

/// Did `req` reach us over TLS (on our listener, or on a trusted proxy's,
/// which says so in `X-Forwarded-Proto`)?
fn over_tls(req: &HttpRequest) -> bool {
    if req.app_config().secure() {
        return true;
    }
    let proxies = req
        .app_data::<web::Data<AppState>>()
        .map_or(&[][..], |s| s.settings.trusted_proxies.as_slice());
    let from_proxy = req
        .peer_addr()
        .is_some_and(|p| super::forwarded::is_trusted_proxy(p.ip(), proxies));
    from_proxy
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn refresh_cookie(req: &HttpRequest, value: String, max_age: Duration) -> Cookie<'static> {
    session_cookie(req, REFRESH_COOKIE, COOKIE_PATH, value, max_age)
}

fn access_cookie(req: &HttpRequest, value: String, max_age: Duration) -> Cookie<'static> {
    session_cookie(req, ACCESS_COOKIE, "/", value, max_age)
}

fn session_cookie(
    req: &HttpRequest,
    name: &'static str,
    path: &'static str,
    value: String,
    max_age: Duration,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .http_only(true)
        .same_site(SameSite::Strict)
        .path(path)
        .max_age(max_age)
        .secure(over_tls(req))
        .finish()
}

fn seconds(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// The 200 answer carrying `pair` the way `mode` says.
pub fn token_response(req: &HttpRequest, pair: TokenPair, mode: Mode) -> HttpResponse {
    let expires = pair.expires_in_ms();
    match mode {
        Mode::Json => HttpResponse::Ok().json(TokenResponse {
            token: pair.token,
            refresh_token: Some(pair.refresh_token),
            expires,
        }),
        Mode::Cookie => {
            let refresh_age = seconds(pair.refresh_lifetime_secs());
            let access_age = seconds(pair.access_lifetime_secs());
            HttpResponse::Ok()
                .cookie(refresh_cookie(req, pair.refresh_token, refresh_age))
                .cookie(access_cookie(req, pair.token.clone(), access_age))
                .json(TokenResponse {
                    token: pair.token,
                    refresh_token: None,
                    expires,
                })
        }
    }
}

/// Tells the browser to drop the session's cookies (refresh and access).
pub fn clear_session_cookies(req: &HttpRequest, res: &mut HttpResponse) {
    // Only fails on a value that is not a valid header, which these are not.
    let _ = res.add_cookie(&refresh_cookie(req, String::new(), Duration::ZERO));
    let _ = res.add_cookie(&access_cookie(req, String::new(), Duration::ZERO));
}

/// The refresh cookie of a request, if it carries a non-empty one.
fn cookie_token(req: &HttpRequest) -> Option<String> {
    req.cookie(REFRESH_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// The CSRF rules for a request whose credential is the cookie (403).
fn csrf_check(req: &HttpRequest) -> Result<(), ApiError> {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(super::body::media_type)
        .is_some_and(|media| media == "application/json");
    if !json {
        return Err(ApiError::forbidden(
            "A request authenticated by the session cookie must be sent as application/json",
        ));
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let scheme = if over_tls(req) { "https" } else { "http" };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let same = match (origin.to_str().ok(), host) {
        (Some(origin), Some(host)) => same_origin(origin, scheme, host),
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "Cross-origin request refused: its Origin is not the origin it was sent to",
        ))
    }
}

/// Is `origin` (`scheme://host[:port]`) the origin of a request sent to
/// `host` (a `Host` header: `host[:port]`) over `scheme`? Hosts compare
/// case-insensitively, an omitted port is the scheme's default.
fn same_origin(origin: &str, scheme: &str, host: &str) -> bool {
    let Some((o_scheme, o_rest)) = origin.split_once("://") else {
        return false;
    };
    if !o_scheme.eq_ignore_ascii_case(scheme) || o_rest.contains(['/', '?', '#', '@']) {
        return false;
    }
    let default = if scheme == "https" { "443" } else { "80" };
    let split = |hp: &str| -> Option<(String, String)> {
        // An IPv6 literal is bracketed: [::1]:8443.
        let (h, p) = if let Some(rest) = hp.strip_prefix('[') {
            let (h, after) = rest.split_once(']')?;
            (format!("[{h}]"), after.strip_prefix(':').unwrap_or(after))
        } else {
            match hp.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p),
                None => (hp.to_owned(), ""),
            }
        };
        let p = if p.is_empty() { default } else { p };
        (!h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| (h.to_ascii_lowercase(), p.trim_start_matches('0').to_owned()))
    };
    match (split(o_rest), split(host.trim())) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The refresh cookie, checked against the CSRF rules when present: an
/// extractor that runs before the body is read, so a refusal is a 403
/// whatever the body.
pub struct RefreshCookie(pub Option<String>);

impl FromRequest for RefreshCookie {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match cookie_token(req) {
            None => Ok(RefreshCookie(None)),
            Some(token) => csrf_check(req).map(|()| RefreshCookie(Some(token))),
        })
    }
}

/// Who asks to log out: a bearer token (as always), or, with no
/// `Authorization` header, the refresh cookie alone (CSRF-checked). Decided
/// before the body is read, like [`Caller`].
pub struct LogoutCredential {
    pub caller: Option<Caller>,
    pub cookie: Option<String>,
}

impl FromRequest for LogoutCredential {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let mut resolve = || {
            let RefreshCookie(cookie) = RefreshCookie::from_request(req, payload).into_inner()?;
            let caller = if req.headers().contains_key(header::AUTHORIZATION) || cookie.is_none() {
                Some(Caller::from_request(req, payload).into_inner()?)
            } else {
                None
            };
            Ok(LogoutCredential { caller, cookie })
        };
        ready(resolve())
    }
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn origins_match_their_host_with_default_ports_and_any_case() {
        for (origin, scheme, host) in [
            ("http://gw.local:8443", "http", "gw.local:8443"),
            ("http://GW.local:8443", "http", "gw.LOCAL:8443"),
            ("http://192.168.1.5", "http", "192.168.1.5:80"),
            ("https://192.168.1.5:443", "https", "192.168.1.5"),
            ("http://[::1]:8443", "http", "[::1]:8443"),
            ("http://127.0.0.1:08443", "http", "127.0.0.1:8443"),
        ] {
            assert!(same_origin(origin, scheme, host), "{origin} {host}");
        }
        for (origin, scheme, host) in [
            ("null", "http", "gw.local"),
            ("http://evil.example", "http", "gw.local"),
            ("http://gw.local:8080", "http", "gw.local:8443"),
            ("https://gw.local:8443", "http", "gw.local:8443"),
            ("http://gw.local:8443", "https", "gw.local:8443"),
            ("http://gw.local.evil.example:8443", "http", "gw.local:8443"),
            ("http://user@gw.local:8443", "http", "gw.local:8443"),
            ("http://gw.local:8443/", "http", "gw.local:8443"),
            ("http://gw.local:x", "http", "gw.local:x"),
            ("http://:80", "http", ":80"),
            ("http://[::1]:8443", "http", "[::2]:8443"),
        ] {
            assert!(!same_origin(origin, scheme, host), "{origin} {host}");
        }
    }
}
