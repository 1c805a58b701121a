//! The one JWT signer and decoder. Nothing here verifies: tests read claims
//! of genuine tokens and forge variants that differ in one respect.

use base64::prelude::{BASE64_URL_SAFE_NO_PAD, Engine as _};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

pub fn b64(bytes: &[u8]) -> String {
    BASE64_URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64_json(v: &Value) -> String {
    b64(&serde_json::to_vec(v).expect("json"))
}

/// One base64url JSON segment of a JWT.
fn part(s: &str) -> Value {
    let bytes = BASE64_URL_SAFE_NO_PAD
        .decode(s)
        .unwrap_or_else(|e| panic!("JWT part is not base64url ({e}): {s}"));
    serde_json::from_slice(&bytes).expect("JWT part is JSON")
}

/// A JWT's header and payload, unverified.
pub fn decode_jwt(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token}");
    (part(parts[0]), part(parts[1]))
}

/// The claims of a JWT, unverified.
pub fn claims_of(token: &str) -> Value {
    decode_jwt(token).1
}

/// The `kid` header of a JWT.
pub fn kid_of(token: &str) -> String {
    decode_jwt(token).0["kid"]
        .as_str()
        .expect("every token names its key")
        .to_string()
}

/// The header the server writes: `{alg, typ, kid}` (no `kid` when `None`).
pub fn header(alg: Algorithm, kid: Option<&str>) -> Value {
    let mut h = json!({ "alg": format!("{alg:?}"), "typ": "JWT" });
    if let Some(kid) = kid {
        h["kid"] = json!(kid);
    }
    h
}

/// A token with exactly this header and payload, HMAC-signed with `secret`
/// using `alg` (whatever the header claims).
pub fn forge(header: &Value, claims: &Value, alg: Algorithm, secret: &[u8]) -> String {
    let message = format!("{}.{}", b64_json(header), b64_json(claims));
    let sig = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(secret),
        alg,
    )
    .expect("sign");
    format!("{message}.{sig}")
}

/// `claims` signed as the server signs: the standard header for `alg` and
/// `kid`.
pub fn sign(alg: Algorithm, kid: Option<&str>, secret: &[u8], claims: &Value) -> String {
    forge(&header(alg, kid), claims, alg, secret)
}

/// Replaces a token's payload, keeping its header and signature.
pub fn with_payload(token: &str, payload: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", parts[0], b64_json(payload), parts[2])
}

/// 32 bytes that are not the server's key.
pub fn random_secret() -> Vec<u8> {
    let mut v = uuid::Uuid::new_v4().as_bytes().to_vec();
    v.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    v
}
