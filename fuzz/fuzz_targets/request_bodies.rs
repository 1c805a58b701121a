//! Arbitrary bytes as a request body of every endpoint, through the
//! decoding the original service's Fastify applies (`http::body::decode`:
//! content type, JSON.parse, secure-json-parse, Ajv with coercion). The
//! first byte picks the content type; the rest is the body.
//!
//! Beyond "never panics or overflows the stack":
//! - whatever is accepted has exactly the schema's shape and deserializes
//!   into the handler's body type (the extractor's last step never fails);
//! - decoding is idempotent: the accepted value, sent again, decodes to
//!   itself;
//! - the JSON parser accepts everything serde_json accepts (it is
//!   JSON.parse: it may accept more, such as 1e400 or "\ud800", never less).
#![no_main]

use engine_auth::http::body::{RequestBody, Schema, decode, json::parse_body};
use engine_auth::http::handlers::{
    ApiKeyBody, LoginBody, LogoutBody, MfaCodeBody, MfaGenerateBody, NewUserBody, PasswordBody,
    RefreshBody, RolesBody, RotateKeyBody,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const CONTENT_TYPES: [Option<&str>; 5] = [
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
    None,
    Some("text/html"),
];

/// Does `v` have exactly the shape `schema` describes?
fn conforms(v: &Value, schema: &Schema) -> bool {
    match schema {
        Schema::Object {
            properties,
            required,
        } => {
            let Some(m) = v.as_object() else { return false };
            required.iter().all(|r| m.contains_key(*r))
                && m.iter().all(|(k, v)| {
                    properties
                        .iter()
                        .find(|p| p.name == k)
                        .is_some_and(|p| conforms(v, &p.schema))
                })
        }
        Schema::String { min_length } => v
            .as_str()
            .is_some_and(|s| s.chars().count() >= min_length.unwrap_or(0)),
        Schema::Boolean => v.is_boolean(),
    }
}

fn check<T: RequestBody>(content_type: Option<&str>, data: &[u8]) {
    let schema = T::SCHEMA;
    let Ok(v) = decode(content_type, data, schema) else {
        return;
    };
    assert!(conforms(&v, schema), "accepted {v} does not fit the schema");
    assert!(
        serde_json::from_value::<T>(v.clone()).is_ok(),
        "accepted {v} does not deserialize"
    );
    let again = serde_json::to_vec(&v).unwrap();
    assert_eq!(
        decode(Some("application/json"), &again, schema).as_ref(),
        Ok(&v),
        "not idempotent"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let ct = CONTENT_TYPES[usize::from(pick) % CONTENT_TYPES.len()];
    check::<LoginBody>(ct, data);
    check::<RefreshBody>(ct, data);
    check::<LogoutBody>(ct, data);
    check::<NewUserBody>(ct, data);
    check::<RolesBody>(ct, data);
    check::<PasswordBody>(ct, data);
    check::<RotateKeyBody>(ct, data);
    check::<MfaGenerateBody>(ct, data);
    check::<MfaCodeBody>(ct, data);
    check::<ApiKeyBody>(ct, data);

    if let Ok(text) = std::str::from_utf8(data) {
        if serde_json::from_str::<Value>(text).is_ok() && !text.starts_with('\u{feff}') {
            // secure-json-parse may still refuse prototype keys.
            if let Err(e) = parse_body(text) {
                assert!(
                    e.0.contains("prototype") || e.0.contains("null to object"),
                    "serde_json accepts what JSON.parse refused: {}",
                    e.0
                );
            }
        }
    }
});
