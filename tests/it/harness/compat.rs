//! What the compat suite (`compat/`) needs of engine-auth's internals: the
//! stricter rules engine-auth documents on top of the original's schemas
//! (applied to a body as the original decoded it; the domain parsers
//! themselves are called, so the expectations cannot drift from them), and
//! the request-body decoder with its schemas.

use engine_auth::domain::{PASSWORD_MAX_BYTES, Password, Username};

/// engine-auth refuses JSON nested deeper than this (a documented stricter
/// rule: the parser's stack stays bounded).
pub use engine_auth::http::body::json::MAX_DEPTH;

/// `Ok`, or the rule `name` breaks as a new username (`POST /user`).
pub fn valid_username(name: &str) -> Result<(), String> {
    Username::parse(name).map(drop).map_err(|e| e.to_string())
}

/// `Ok`, or the rule a login's password breaks: passwords are at most
/// `PASSWORD_MAX_BYTES` when logging in too (README, "Where engine-auth is
/// stricter"), refused before any hash is computed. The domain has no
/// parser for just this rule (`Password::parse` also wants 8 characters,
/// which a login does not), so the constant is used.
pub fn login_password_within_limit(password: &str) -> Result<(), String> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(format!("a login password over {PASSWORD_MAX_BYTES} bytes"));
    }
    Ok(())
}

/// `Ok`, or the rule a password being set (`POST /user`,
/// `PATCH /user/password/…`) breaks.
pub fn valid_new_password(password: &str) -> Result<(), String> {
    Password::parse(password.to_owned())
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The request-body decoder and its schemas, for the suite that checks it
/// below HTTP (`compat::decoder`).
pub use engine_auth::http::body::{
    LOGIN, LOGOUT, NEW_USER, PASSWORD, REFRESH, ROLES, Schema, decode,
};
