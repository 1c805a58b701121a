//! engine-auth's documented request-body schemas are the original's plus
//! engine-auth's additions, and nothing else (`cargo test --test it
//! compat::schemas`).
//!
//! Oracle A serves the published swagger, oracle B the schemas engine-auth
//! documents at `/api/v1/docs/json`; on every corpus body that names no
//! added field they must answer alike (status, error code and message, the
//! decoded body). The additions themselves are checked against what was
//! agreed: `currentPassword` (a string) on PATCH /user/password/{_id};
//! POST /logout with `{refreshToken: string, all: boolean}`, neither
//! required, nothing else allowed; `otp` and `mode` (strings) on login;
//! `mode` on refresh, whose `refreshToken` is optional (the browser's
//! cookie may carry it); engine-auth's own calls (key rotation, the MFA
//! calls) with their one required field each, and the API key body (`name`,
//! `roles`, `expiresAt`; name and roles required).

use serde_json::{Value, json};
use std::collections::BTreeSet;

use super::corpus::corpus;
use super::oracle::Oracle;
use super::{Fixture, Tally, documented_spec};

/// Oracles validate bodies only; any id will do.
const TARGET: &str = "00000000-0000-4000-8000-000000000000";

#[actix_web::test]
async fn documented_schemas_decide_like_the_published_ones() {
    let fx = Fixture::start().await;
    let oracle_a = Oracle::start_published();
    let corpus = corpus(fx.body_limit);
    let mut tally = Tally::new("oracle A vs oracle B", &corpus);
    for case in corpus.cases.iter().filter(|c| !c.names_added_field()) {
        let a = oracle_a.ask(case, TARGET).await;
        let b = fx.oracle_b.ask(case, TARGET).await;
        if a == b {
            tally.agree();
        } else {
            tally.disagree(
                case,
                &a,
                format!("oracle B: {}", b.describe()),
                "engine-auth's documented schema decides otherwise than the published one".into(),
            );
        }
    }
    tally.finish();
}

#[actix_web::test]
async fn the_document_adds_only_the_agreed_fields() {
    let fx = Fixture::start().await;
    let ours: Value = serde_json::from_str(&documented_spec(&fx.app).await).expect("JSON");
    let published: Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/oracle/engine-api-v1-auth-swagger.json"),
        )
        .expect("the vendored swagger"),
    )
    .expect("JSON");

    let with_bodies = |spec: &Value| -> BTreeSet<String> {
        let mut ops = BTreeSet::new();
        for (path, item) in spec["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let has_body = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["in"] == "body"));
                if has_body {
                    ops.insert(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        ops
    };
    let mut expected = with_bodies(&published);
    expected.insert("POST /api/v1/auth/logout".into());
    expected.insert("POST /api/v1/auth/keys/rotate".into());
    for call in ["generate", "enable", "disable"] {
        expected.insert(format!("POST /api/v1/auth/mfa/{call}"));
    }
    // The MQTT broker's backend (its own protocol: JSON or form).
    for call in ["user", "superuser", "acl"] {
        expected.insert(format!("POST /api/v1/auth/mqtt/{call}"));
    }
    expected.insert("POST /api/v1/auth/apikeys".into());
    assert_eq!(
        with_bodies(&ours),
        expected,
        "operations with a JSON body: the published ones plus engine-auth's own calls"
    );

    let schema = |path: &str, method: &str| -> Value {
        strip_annotations(&ours["paths"][path][method]["parameters"][0]["schema"])
    };
    assert_eq!(
        schema("/api/v1/auth/user/password/{_id}", "patch")["properties"]["currentPassword"],
        json!({"type": "string"}),
        "currentPassword is documented as a string"
    );
    assert_eq!(
        schema("/api/v1/auth/login", "post"),
        json!({
            "type": "object",
            "properties": {
                "username": {"type": "string"},
                "password": {"type": "string"},
                "otp": {"type": "string"},
                "mode": {"type": "string"}
            },
            "additionalProperties": false,
            "required": ["username", "password"]
        }),
        "the login body"
    );
    assert_eq!(
        schema("/api/v1/auth/refresh", "post"),
        json!({
            "type": "object",
            "properties": {
                "refreshToken": {"type": "string"},
                "mode": {"type": "string"}
            },
            "additionalProperties": false
        }),
        "the refresh body"
    );
    assert_eq!(
        schema("/api/v1/auth/logout", "post"),
        json!({
            "type": "object",
            "properties": {
                "refreshToken": {"type": "string"},
                "all": {"type": "boolean"}
            },
            "additionalProperties": false
        }),
        "the logout body"
    );
    assert_eq!(
        schema("/api/v1/auth/keys/rotate", "post"),
        json!({
            "type": "object",
            "properties": {"revokePrevious": {"type": "boolean"}},
            "additionalProperties": false,
            "required": ["revokePrevious"]
        }),
        "the key rotation body"
    );
    assert_eq!(
        schema("/api/v1/auth/mfa/generate", "post"),
        json!({
            "type": "object",
            "properties": {"password": {"type": "string"}},
            "additionalProperties": false,
            "required": ["password"]
        }),
        "the MFA generate body"
    );
    let api_key = schema("/api/v1/auth/apikeys", "post");
    let fields: Vec<&String> = api_key["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .collect();
    assert_eq!(fields, ["name", "roles", "expiresAt"], "the API key body");
    assert_eq!(api_key["properties"]["name"], json!({"type": "string"}));
    assert_eq!(
        api_key["properties"]["expiresAt"],
        json!({"type": "string"})
    );
    assert_eq!(
        api_key["properties"]["roles"],
        schema("/api/v1/auth/user/roles/{_id}", "patch")["properties"]["roles"],
        "the API key's roles are a role profile"
    );
    assert_eq!(api_key["additionalProperties"], false);
    assert_eq!(api_key["required"], json!(["name", "roles"]));
    for call in ["enable", "disable"] {
        assert_eq!(
            schema(&format!("/api/v1/auth/mfa/{call}"), "post"),
            json!({
                "type": "object",
                "properties": {"otp": {"type": "string"}},
                "additionalProperties": false,
                "required": ["otp"]
            }),
            "the MFA {call} body"
        );
    }
}

/// `schema` without `description`, `title` and `example`: words, not rules.
fn strip_annotations(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "description" | "title" | "example"))
                .map(|(k, v)| (k.clone(), strip_annotations(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_annotations).collect()),
        other => other.clone(),
    }
}
