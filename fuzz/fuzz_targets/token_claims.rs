//! Tokens that are genuinely signed with the active key, with a fuzzed
//! header and payload: the signature check passes, so this reaches the
//! claims parsing and the time and kind checks. Input: header JSON, one
//! 0xFF byte, payload JSON.
//!
//! Beyond "never panics", whatever verifies must really be what it claims:
//! an access token has numeric `roles` (a byte; its role bits are what is
//! read) and is not a refresh token; a
//! refresh token has `refreshToken: true` and a `jti`; both are within
//! their times (with the leeway).
#![no_main]

use base64::Engine as _;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use engine_auth::domain::Roles;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

mod common;

fn sign(header: &[u8], payload: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        BASE64_URL_SAFE_NO_PAD.encode(header),
        BASE64_URL_SAFE_NO_PAD.encode(payload)
    );
    let key = jsonwebtoken::EncodingKey::from_secret(&common::secret());
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
        .unwrap();
    format!("{message}.{sig}")
}

fn within_times(claims: &Value) -> bool {
    let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
        return false;
    };
    exp.saturating_add(common::LEEWAY) > common::NOW
        && iat <= common::NOW.saturating_add(common::LEEWAY)
}

fuzz_target!(|data: &[u8]| {
    let (header, payload) = match data.iter().position(|b| *b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let header: &[u8] = if header.is_empty() {
        br#"{"alg":"HS256","typ":"JWT","kid":"fuzzkey000000000"}"#
    } else {
        header
    };
    let token = sign(header, payload);
    let t = common::tokens();
    let claims: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    if let Ok(a) = t.verify_access(&token, common::NOW) {
        assert_ne!(
            claims["refreshToken"],
            Value::Bool(true),
            "refresh accepted as access"
        );
        // The claim is a bitmask in 0..=255; bits that name no role (32, 64)
        // are dropped when read (authorization reads the stored roles anyway).
        let claimed = claims["roles"].as_u64().and_then(|n| u8::try_from(n).ok());
        assert_eq!(
            claimed.map(|n| Roles::from_bits(n).bits()),
            Some(a.roles.bits()),
            "roles"
        );
        assert!(
            within_times(&claims),
            "access token outside its times: {claims}"
        );
    }
    if let Ok(r) = t.verify_refresh(&token, common::NOW) {
        assert_eq!(
            claims["refreshToken"],
            Value::Bool(true),
            "non-refresh accepted"
        );
        assert!(claims["jti"].is_string(), "refresh token without jti");
        assert!(
            within_times(&claims),
            "refresh token outside its times: {claims}"
        );
        assert_eq!(claims["exp"].as_u64(), Some(r.exp));
    }
});
