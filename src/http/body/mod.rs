//! Request bodies, decided exactly as the original service decides them:
//! a Fastify 4 server with its default Ajv options, for the body schemas
//! the original publishes. An existing client of the engine's API gets
//! from engine-auth what it got from the original: the same bodies
//! refused (with Ajv's message), the same bodies accepted, and the handler
//! sees what the original's handler saw (unknown keys removed, scalars
//! coerced). `tests/it/compat` proves it against a live Fastify.
//!
//! The steps, in Fastify's order ([`decode`]): the content type picks a
//! parser or is refused (415); the size limit (413, in the extractor);
//! an empty JSON body is refused; the bytes are read as Node reads them
//! (UTF-8, invalid sequences replaced, which changes the length and so
//! fails Fastify's Content-Length check); `JSON.parse` and
//! secure-json-parse ([`json`]); Ajv with the route's schema ([`schema`]).
//! engine-auth's own, stricter rules (username characters, password
//! length in bytes, UUID ids) apply afterwards, in the domain types.

pub mod json;
pub mod schema;

pub use schema::{
    API_KEY, KEY_ROTATION, LOGIN, LOGOUT, MFA_CODE, MFA_GENERATE, NEW_USER, PASSWORD, REFRESH,
    ROLES, Schema,
};

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::{StatusCode, header};
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;

use super::error::ApiError;

/// A body type and the schema that decides it.
pub trait RequestBody: DeserializeOwned {
    const SCHEMA: &'static Schema;
}

/// Why a body was refused before any handler ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal {
            status: 400,
            message: message.into(),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::Client(status, r.message)
    }
}

/// Which of Fastify's two default parsers a content type selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parser {
    Json,
    Text,
}

/// Fastify 4's lookup: the media type is parsed strictly (RFC 7231, as
/// `fast-content-type-parse` does; anything malformed selects nothing),
/// lower-cased, and a parser is chosen when its name occurs *within* the
/// type, so `application/json; charset=utf-8` and `Application/JSON` are
/// JSON (and so, as in the original, is `application/jsonx`).
fn parser_for(content_type: &str) -> Option<Parser> {
    let media = media_type(content_type)?;
    if media.contains("application/json") {
        Some(Parser::Json)
    } else if media.contains("text/plain") {
        Some(Parser::Text)
    } else {
        None
    }
}

fn is_tchar(b: u8, backtick: bool) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+.^_|~-".contains(&b) || (backtick && b == b'`')
}

/// The lower-cased `type/subtype`, if the header parses.
pub(crate) fn media_type(header: &str) -> Option<String> {
    let (ty, params) = match header.find(';') {
        Some(i) => (&header[..i], Some(&header[i..])),
        None => (header, None),
    };
    let ty = ty.trim();
    let (main, sub) = ty.split_once('/')?;
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| is_tchar(b, false));
    if !token(main) || !token(sub) {
        return None;
    }
    if let Some(params) = params {
        parameters_parse(params.as_bytes())?;
    }
    Some(ty.to_ascii_lowercase())
}

/// `*( ";" *SP token "=" ( token / quoted-string ) *SP )` to the end.
fn parameters_parse(s: &[u8]) -> Option<()> {
    let mut i = 0;
    let skip_spaces = |i: &mut usize| {
        while s.get(*i) == Some(&b' ') {
            *i += 1;
        }
    };
    while i < s.len() {
        if s[i] != b';' {
            return None;
        }
        i += 1;
        skip_spaces(&mut i);
        let start = i;
        while s.get(i).is_some_and(|b| is_tchar(*b, true)) {
            i += 1;
        }
        if i == start || s.get(i) != Some(&b'=') {
            return None;
        }
        i += 1;
        if s.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match s.get(i) {
                    Some(b'"') => break,
                    Some(b'\\') if s.get(i + 1).is_some_and(|b| *b == 0x0B || *b >= 0x20) => i += 2,
                    Some(&b)
                        if b == 0x0B
                            || b == 0x20
                            || b == 0x21
                            || (0x23..=0x7E).contains(&b) && b != b'\\'
                            || b >= 0x80 =>
                    {
                        i += 1
                    }
                    _ => return None,
                }
            }
            i += 1;
        } else {
            let start = i;
            while s.get(i).is_some_and(|b| is_tchar(*b, true)) {
                i += 1;
            }
            if i == start {
                return None;
            }
        }
        skip_spaces(&mut i);
    }
    Some(())
}

/// Decides a complete body (`body` empty: none was sent) for `schema` as
/// the original does: `Ok` with what its handler would see, or the
/// refusal with Fastify's status and, for a schema failure, Ajv's message.
pub fn decode(
    content_type: Option<&str>,
    body: &[u8],
    schema: &Schema,
) -> Result<serde_json::Value, Refusal> {
    let parser = match content_type {
        // No content type and no body: the handler runs with no body, which
        // the schema then refuses. With a body, nothing parses it.
        None if body.is_empty() => None,
        None => return Err(unsupported("undefined")),
        Some(ct) => Some(parser_for(ct).ok_or_else(|| unsupported(ct))?),
    };
    if parser == Some(Parser::Json) && body.is_empty() {
        return Err(Refusal::bad_request(
            "Body cannot be empty when content-type is set to 'application/json'",
        ));
    }
    // Node decodes the body as UTF-8 with replacement characters; then
    // Fastify compares the decoded length with Content-Length.
    let text = String::from_utf8_lossy(body);
    if text.len() != body.len() {
        return Err(Refusal::bad_request(
            "Request body size did not match Content-Length",
        ));
    }
    let mut value = match parser {
        Some(Parser::Json) => json::parse_body(&text).map_err(|e| Refusal::bad_request(e.0))?,
        // A text body is a string, and every schema wants an object; no
        // body at all is `undefined`, refused the same way.
        Some(Parser::Text) => json::Js::String(text.into_owned()),
        None => json::Js::Null,
    };
    schema
        .apply(&mut value, "body")
        .map_err(|e| Refusal::bad_request(e.0))?;
    Ok(value.into_json())
}

fn unsupported(content_type: &str) -> Refusal {
    Refusal {
        status: 415,
        message: format!("Unsupported Media Type: {content_type}"),
    }
}

/// The extractor: a body of type `T`, decided by `T::SCHEMA` as the
/// original decides it. The size limit comes from the `PayloadConfig`
/// that `http::configure` registers.
pub struct Body<T>(pub T);

impl<T> Body<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: RequestBody + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Body<T>, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // A header that is not visible ASCII parses as no media type: 415.
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
        // Fastify picks the parser before it reads: 415 before 413.
        let early = match content_type.as_deref() {
            Some(ct) if parser_for(ct).is_none() => Some(unsupported(ct)),
            _ => None,
        };
        let bytes = Bytes::from_request(req, payload);
        Box::pin(async move {
            if let Some(refusal) = early {
                return Err(refusal.into());
            }
            let body = bytes.await.map_err(read_error)?;
            let value = decode(content_type.as_deref(), &body, T::SCHEMA)?;
            // The schema guarantees the shape; a mismatch is a bug of ours,
            // answered as a 400 all the same, never a panic.
            serde_json::from_value(value)
                .map(Body)
                .map_err(|e| ApiError::bad_request(format!("Invalid body: {e}")))
        })
    }
}

fn read_error(e: actix_web::Error) -> ApiError {
    match e.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => ApiError::Client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body is too large".into(),
        ),
        Some(other) => ApiError::bad_request(format!("Invalid body: {other}")),
        None => ApiError::bad_request(format!("Invalid body: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_pick_parsers_as_fastify_does() {
        for (ct, parser) in [
            ("application/json", Some(Parser::Json)),
            ("application/json; charset=utf-8", Some(Parser::Json)),
            ("application/json;charset=latin1", Some(Parser::Json)),
            ("Application/JSON", Some(Parser::Json)),
            ("application/jsonx", Some(Parser::Json)),
            (" application/json ", Some(Parser::Json)),
            ("application/json; charset=\"utf-8\"", Some(Parser::Json)),
            ("text/plain", Some(Parser::Text)),
            ("text/plain; charset=utf-8", Some(Parser::Text)),
            ("application/vnd.api+json", None),
            ("text/html", None),
            ("", None),
            ("application/json;", None),
            ("application/json; charset", None),
            ("application/json; charset=", None),
            ("application/json x", None),
            ("application/json, text/plain", None),
            ("application/", None),
            ("json", None),
        ] {
            assert_eq!(parser_for(ct), parser, "{ct:?}");
        }
    }

    #[test]
    fn bodies_before_the_schema() {
        let refused = |ct: Option<&str>, body: &[u8]| decode(ct, body, &LOGIN).unwrap_err();
        let json = Some("application/json");
        assert_eq!(refused(json, b"").status, 400);
        assert_eq!(refused(None, b"{}").status, 415);
        assert_eq!(refused(Some("text/html"), b"{}").status, 415);
        assert_eq!(refused(None, b"").message, "body must be object");
        assert_eq!(
            refused(Some("text/plain"), br#"{"username":"a","password":"b"}"#).message,
            "body must be object"
        );
        // One invalid byte becomes a 3-byte U+FFFD: the length check fails.
        assert_eq!(
            refused(json, b"{\"username\":\"\xff\",\"password\":\"b\"}").message,
            "Request body size did not match Content-Length"
        );
        assert_eq!(
            decode(
                json,
                b"\xef\xbb\xbf{\"username\":\"a\",\"password\":\"b\"}",
                &LOGIN
            ),
            Ok(serde_json::json!({"username": "a", "password": "b"}))
        );
    }
}
