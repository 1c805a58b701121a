//! The request-body schemas and the part of Ajv that judges them, with the
//! options Fastify gives Ajv by default: `coerceTypes: 'array'`,
//! `removeAdditional: true`, `allErrors: false`. The same [`Schema`] values
//! are published in the OpenAPI document ([`Schema::to_json_schema`]), so
//! what the document says is what is decided.
//!
//! What Ajv does, in its order, for the keywords these schemas use:
//! - `type` first. A value of the wrong type is coerced if it can be
//!   (`'array'`: a one-item array is unwrapped, its item then coerced):
//!   to a string from a number (`"" + n`), a boolean or `null` (`""`); to a
//!   boolean from `"true"`/`1` and `"false"`/`0`/`null`. Objects are never
//!   coerced. Otherwise: `<path> must be <type>`.
//! - `required`, in the schema's order: `<path> must have required property 'x'`.
//! - `additionalProperties: false` with `removeAdditional`: unknown keys
//!   are removed, never refused.
//! - `properties`, in the schema's order, each judged the same way.
//! - `minLength` after coercion, counted in code points:
//!   `<path> must NOT have fewer than 8 characters`.
//!
//! The first failure is the one reported (`allErrors: false`).

use serde_json::{Value, json};

use super::json::{Js, js_number_to_string};

/// A JSON Schema of the kinds the API's bodies need.
#[derive(Debug)]
pub enum Schema {
    /// `type: object`, `additionalProperties: false`.
    Object {
        properties: &'static [Property],
        required: &'static [&'static str],
    },
    /// `type: string`, with an optional `minLength` (in characters).
    String { min_length: Option<usize> },
    /// `type: boolean`.
    Boolean,
}

/// One declared property of an object schema.
#[derive(Debug)]
pub struct Property {
    pub name: &'static str,
    pub schema: Schema,
    /// Shown in the OpenAPI document.
    pub description: &'static str,
}

const fn prop(name: &'static str, schema: Schema, description: &'static str) -> Property {
    Property {
        name,
        schema,
        description,
    }
}

const STRING: Schema = Schema::String { min_length: None };
const NEW_PASSWORD: Schema = Schema::String {
    min_length: Some(crate::domain::PASSWORD_MIN_CHARS),
};

/// The role profile: all six flags, each a boolean.
pub const ROLE_PROFILE: Schema = Schema::Object {
    properties: &[
        prop("admin", Schema::Boolean, "Has admin permission"),
        prop("flows", Schema::Boolean, "Has flows editing permission"),
        prop(
            "configure",
            Schema::Boolean,
            "Has configuration editing permission",
        ),
        prop("subscribe", Schema::Boolean, "Has subscription permission"),
        prop("write", Schema::Boolean, "Has write permission"),
        prop("read", Schema::Boolean, "Has read permission"),
    ],
    required: &["admin", "flows", "configure", "subscribe", "write", "read"],
};

/// `POST /login`.
/// `otp` and `mode` are engine-auth's own (browser sessions and two-factor
/// login); a body without them is decided as the original decides it.
pub const LOGIN: Schema = Schema::Object {
    properties: &[
        prop("username", STRING, "Username"),
        prop("password", STRING, "Password"),
        prop(
            "otp",
            STRING,
            "One-time password (a current TOTP code or a recovery code); required once \
             the user has two-factor authentication on",
        ),
        prop(
            "mode",
            STRING,
            "\"json\" (default): the refresh token is in the body. \"cookie\": it is \
             set as the HttpOnly cookie engine_auth_refresh instead",
        ),
    ],
    required: &["username", "password"],
};

/// `POST /refresh`. The original requires `refreshToken`; engine-auth also
/// takes it from the `engine_auth_refresh` cookie, and answers a body with
/// neither in Ajv's words for the missing property.
pub const REFRESH: Schema = Schema::Object {
    properties: &[
        prop(
            "refreshToken",
            STRING,
            "Refresh token (required unless the engine_auth_refresh cookie carries it)",
        ),
        prop(
            "mode",
            STRING,
            "\"json\" or \"cookie\": how the rotated refresh token is returned; by \
             default the way the presented one came",
        ),
    ],
    required: &[],
};

/// `POST /logout` (engine-auth's own call).
pub const LOGOUT: Schema = Schema::Object {
    properties: &[
        prop(
            "refreshToken",
            STRING,
            "The refresh token of the session to end",
        ),
        prop(
            "all",
            Schema::Boolean,
            "End every session and revoke every token of the caller",
        ),
    ],
    required: &[],
};

/// `POST /user`.
pub const NEW_USER: Schema = Schema::Object {
    properties: &[
        prop(
            "username",
            STRING,
            "Username (engine-auth: 1 to 256 characters, no control characters, \
             no leading or trailing whitespace; unique case-insensitively)",
        ),
        prop(
            "password",
            NEW_PASSWORD,
            "Password (engine-auth: at most 1024 bytes of UTF-8)",
        ),
        prop("roles", ROLE_PROFILE, "Role profile"),
    ],
    required: &["username", "password", "roles"],
};

/// `PATCH /user/roles/{_id}`.
pub const ROLES: Schema = Schema::Object {
    properties: &[prop("roles", ROLE_PROFILE, "Role profile")],
    required: &["roles"],
};

/// `PATCH /user/password/{_id}`; `currentPassword` is engine-auth's own
/// field (required when a non-admin changes their own password).
pub const PASSWORD: Schema = Schema::Object {
    properties: &[
        prop(
            "password",
            NEW_PASSWORD,
            "New password (engine-auth: at most 1024 bytes of UTF-8)",
        ),
        prop(
            "currentPassword",
            STRING,
            "The current password; required when users change their own",
        ),
    ],
    required: &["password"],
};

/// A body Ajv refused: the message in Ajv's words, prefixed with the
/// location as Fastify prints it (`body/roles/admin must be boolean`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl Schema {
    /// Judges `value` as Ajv does, coercing it and removing unknown keys in
    /// place; `path` is where it sits (`body` for the whole body).
    pub fn apply(&self, value: &mut Js, path: &str) -> Result<(), Invalid> {
        match self {
            Schema::Object {
                properties,
                required,
            } => {
                let Js::Object(members) = value else {
                    return Err(Invalid(format!("{path} must be object")));
                };
                if let Some(missing) = required
                    .iter()
                    .find(|r| !members.iter().any(|(k, _)| k == *r))
                {
                    return Err(Invalid(format!(
                        "{path} must have required property '{missing}'"
                    )));
                }
                members.retain(|(k, _)| properties.iter().any(|p| p.name == k));
                for p in *properties {
                    if let Some((_, v)) = members.iter_mut().find(|(k, _)| k == p.name) {
                        p.schema.apply(v, &format!("{path}/{}", p.name))?;
                    }
                }
                Ok(())
            }
            Schema::String { min_length } => {
                coerce(value, path, "string", to_string)?;
                if let (Some(min), Js::String(s)) = (min_length, &*value)
                    && s.chars().count() < *min
                {
                    return Err(Invalid(format!(
                        "{path} must NOT have fewer than {min} characters"
                    )));
                }
                Ok(())
            }
            Schema::Boolean => coerce(value, path, "boolean", to_boolean),
        }
    }

    /// The schema as JSON Schema, for the OpenAPI document.
    pub fn to_json_schema(&self) -> Value {
        match self {
            Schema::Object {
                properties,
                required,
            } => {
                let props: serde_json::Map<String, Value> = properties
                    .iter()
                    .map(|p| {
                        let mut s = p.schema.to_json_schema();
                        s["description"] = json!(p.description);
                        (p.name.to_string(), s)
                    })
                    .collect();
                let mut s = json!({
                    "type": "object",
                    "properties": props,
                    "additionalProperties": false,
                });
                if !required.is_empty() {
                    s["required"] = json!(required);
                }
                s
            }
            Schema::String { min_length: None } => json!({"type": "string"}),
            Schema::String {
                min_length: Some(n),
            } => json!({"type": "string", "minLength": n}),
            Schema::Boolean => json!({"type": "boolean"}),
        }
    }
}

/// Ajv's coercion with `coerceTypes: 'array'` for a scalar `type`: a value
/// of the type is kept; a one-item array is unwrapped (and its item
/// coerced); else `scalar` decides.
fn coerce(
    value: &mut Js,
    path: &str,
    type_name: &str,
    scalar: fn(&Js) -> Option<Js>,
) -> Result<(), Invalid> {
    if same_type(value, type_name) {
        return Ok(());
    }
    let item: &Js = match &*value {
        Js::Array(items) if items.len() == 1 => &items[0],
        other => other,
    };
    let coerced = if same_type(item, type_name) {
        Some(item.clone())
    } else {
        scalar(item)
    };
    match coerced {
        Some(v) => {
            *value = v;
            Ok(())
        }
        None => Err(Invalid(format!("{path} must be {type_name}"))),
    }
}

fn same_type(v: &Js, type_name: &str) -> bool {
    matches!(
        (v, type_name),
        (Js::String(_), "string") | (Js::Bool(_), "boolean")
    )
}

fn to_string(v: &Js) -> Option<Js> {
    match v {
        Js::Number(n) => Some(Js::String(js_number_to_string(*n))),
        Js::Bool(b) => Some(Js::String(b.to_string())),
        Js::Null => Some(Js::String(String::new())),
        _ => None,
    }
}

fn to_boolean(v: &Js) -> Option<Js> {
    match v {
        Js::String(s) if s == "true" => Some(Js::Bool(true)),
        Js::String(s) if s == "false" => Some(Js::Bool(false)),
        Js::Number(n) if *n == 1.0 => Some(Js::Bool(true)),
        Js::Number(n) if *n == 0.0 => Some(Js::Bool(false)),
        Js::Null => Some(Js::Bool(false)),
        _ => None,
    }
}

/// `POST /keys/rotate` (engine-auth's own call): the choice is required,
/// so logging everyone out is never a default.
pub const KEY_ROTATION: Schema = Schema::Object {
    properties: &[prop(
        "revokePrevious",
        Schema::Boolean,
        "Delete every earlier signing key at once (suspected leak): every token signed \
         before is refused from now on and everyone logs in again. false: retire it; \
         its tokens stay valid until they expire",
    )],
    required: &["revokePrevious"],
};

/// `POST /apikeys` (engine-auth's own call): a key's name (engine-auth: 1
/// to 100 characters, no control characters), its roles (among the
/// caller's) and an optional expiry.
pub const API_KEY: Schema = Schema::Object {
    properties: &[
        prop(
            "name",
            STRING,
            "What the key is for (engine-auth: 1 to 100 characters, no control characters)",
        ),
        prop(
            "roles",
            ROLE_PROFILE,
            "The key's roles: among the caller's (403 otherwise)",
        ),
        prop(
            "expiresAt",
            STRING,
            "Optional: when the key stops working, an RFC 3339 time in the future",
        ),
    ],
    required: &["name", "roles"],
};

/// `POST /mfa/generate` (engine-auth's own call): the caller's current
/// password, checked as a password change checks it.
pub const MFA_GENERATE: Schema = Schema::Object {
    properties: &[prop("password", STRING, "Your current password")],
    required: &["password"],
};

/// `POST /mfa/enable` and `POST /mfa/disable` (engine-auth's own calls).
pub const MFA_CODE: Schema = Schema::Object {
    properties: &[prop(
        "otp",
        STRING,
        "A current 6-digit TOTP code (enable: of the generated secret); to disable, a \
         recovery code also works",
    )],
    required: &["otp"],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::json::parse_body;

    fn decide(schema: &Schema, body: &str) -> Result<Value, String> {
        let mut v = parse_body(body).map_err(|e| e.0)?;
        schema.apply(&mut v, "body").map_err(|e| e.0)?;
        Ok(v.into_json())
    }

    // Each case below was answered by the Fastify oracle
    // (tests/oracle/; the differential suite checks hundreds more).
    #[test]
    fn coercions_as_ajv_makes_them() {
        assert_eq!(
            decide(&LOGIN, r#"{"username":5,"password":true,"email":"x"}"#),
            Ok(json!({"username":"5","password":"true"}))
        );
        assert_eq!(
            decide(&LOGIN, r#"{"username":["a"],"password":[null]}"#),
            Ok(json!({"username":"a","password":""}))
        );
        assert_eq!(
            decide(&LOGIN, r#"{"username":1e21,"password":1e400}"#),
            Ok(json!({"username":"1e+21","password":"Infinity"}))
        );
        assert_eq!(
            decide(
                &NEW_USER,
                r#"{"username":"a","password":"12345678","email":"x","roles":{"admin":"true","flows":"false","configure":1,"subscribe":0,"write":null,"read":[true],"x":1}}"#
            ),
            Ok(json!({"username":"a","password":"12345678","roles":{
                "admin":true,"flows":false,"configure":true,"subscribe":false,"write":false,"read":true}}))
        );
    }

    #[test]
    fn refusals_in_ajvs_words() {
        for (schema, body, message) in [
            (&LOGIN, "null", "body must be object"),
            (&LOGIN, "[{}]", "body must be object"),
            (
                &LOGIN,
                r#"{"username":{}}"#,
                "body must have required property 'password'",
            ),
            (
                &LOGIN,
                r#"{"username":[],"password":"x"}"#,
                "body/username must be string",
            ),
            (
                &LOGIN,
                r#"{"username":[["a"]],"password":"x"}"#,
                "body/username must be string",
            ),
            (
                &PASSWORD,
                r#"{"password":true}"#,
                "body/password must NOT have fewer than 8 characters",
            ),
            (
                &PASSWORD,
                r#"{"password":"\ud83d\ude00\ud83d\ude00\ud83d\ude00\ud83d\ude00"}"#,
                "body/password must NOT have fewer than 8 characters",
            ),
            (&ROLES, r#"{"roles":[]}"#, "body/roles must be object"),
            (
                &ROLES,
                r#"{"roles":{"admin":true}}"#,
                "body/roles must have required property 'flows'",
            ),
            (
                &NEW_USER,
                r#"{"username":"a","password":"12345678","roles":{"admin":"TRUE"}}"#,
                "body/roles must have required property 'flows'",
            ),
            (
                &ROLES,
                r#"{"roles":{"admin":2,"flows":1,"configure":1,"subscribe":1,"write":1,"read":1}}"#,
                "body/roles/admin must be boolean",
            ),
            (
                &ROLES,
                r#"{"roles":{"admin":1,"flows":1,"configure":1,"subscribe":1,"write":1,"read":[]}}"#,
                "body/roles/read must be boolean",
            ),
        ] {
            assert_eq!(decide(schema, body), Err(message.to_string()), "{body}");
        }
    }

    #[test]
    fn the_published_schemas_are_the_originals() {
        let login = LOGIN.to_json_schema();
        assert_eq!(login["required"], json!(["username", "password"]));
        assert_eq!(login["additionalProperties"], json!(false));
        let user = NEW_USER.to_json_schema();
        assert_eq!(user["properties"]["password"]["minLength"], json!(8));
        assert_eq!(
            user["properties"]["roles"]["properties"]["admin"]["type"],
            json!("boolean")
        );
        assert!(LOGOUT.to_json_schema().get("required").is_none());
    }
}
