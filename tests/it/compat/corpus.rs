//! The corpus: request bodies for the five published body schemas and our
//! logout body, written as raw bytes (serde_json could not express
//! duplicate keys, `-0`, `1e400`, escaped lone surrogates or invalid UTF-8).
//! It is generated, deterministic for a given seed, and the same for every
//! suite: every field position × every JSON kind, missing and unknown
//! fields, duplicate keys, two faults at once (which one Ajv reports),
//! prototype keys at several depths, top levels that are not objects,
//! raw-body and content-type cases, bodies around engine-auth's body and
//! nesting limits, and a seeded random mix of all of these.

use reqwest::Method;

use crate::harness::ALL_ROLES;
use crate::harness::compat::MAX_DEPTH;

/// The seed of the random part unless `COMPAT_SEED` (decimal or `0x…`)
/// names another.
const DEFAULT_SEED: u64 = 0x00c0_ffee_5eed_2024;

/// Random bodies per endpoint.
const RANDOM_PER_ENDPOINT: usize = 60;

/// Every endpoint that reads a JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Login,
    Refresh,
    NewUser,
    Roles,
    Password,
    /// engine-auth's own (the original has no logout endpoint).
    Logout,
}

impl Endpoint {
    pub const ALL: [Endpoint; 6] = [
        Endpoint::Login,
        Endpoint::Refresh,
        Endpoint::NewUser,
        Endpoint::Roles,
        Endpoint::Password,
        Endpoint::Logout,
    ];

    pub fn method(self) -> Method {
        match self {
            Endpoint::Roles | Endpoint::Password => Method::PATCH,
            _ => Method::POST,
        }
    }

    /// The full path, with `target` as `{_id}`.
    pub fn path(self, target: &str) -> String {
        match self {
            Endpoint::Login => "/api/v1/auth/login".into(),
            Endpoint::Refresh => "/api/v1/auth/refresh".into(),
            Endpoint::NewUser => "/api/v1/auth/user".into(),
            Endpoint::Roles => format!("/api/v1/auth/user/roles/{target}"),
            Endpoint::Password => format!("/api/v1/auth/user/password/{target}"),
            Endpoint::Logout => "/api/v1/auth/logout".into(),
        }
    }

    /// Every top-level field the endpoint knows, the optional ones too.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Endpoint::Login => &["username", "password"],
            Endpoint::Refresh => &["refreshToken"],
            Endpoint::NewUser => &["username", "password", "roles"],
            Endpoint::Roles => &["roles"],
            Endpoint::Password => &["password", "currentPassword"],
            Endpoint::Logout => &["refreshToken", "all"],
        }
    }

    /// The fields of the valid base body (the required ones, and for
    /// logout the one it needs to do anything).
    fn base_fields(self) -> &'static [&'static str] {
        match self {
            Endpoint::Password => &["password"],
            Endpoint::Logout => &["refreshToken"],
            other => other.fields(),
        }
    }

    fn has_roles(self) -> bool {
        matches!(self, Endpoint::NewUser | Endpoint::Roles)
    }

    /// A string field to carry raw bytes (invalid UTF-8, control
    /// characters); the roles body has none, so an unknown one.
    fn string_field(self) -> &'static str {
        match self {
            Endpoint::Login | Endpoint::NewUser => "username",
            Endpoint::Refresh | Endpoint::Logout => "refreshToken",
            Endpoint::Password => "password",
            Endpoint::Roles => "extra",
        }
    }
}

/// One request: method and path from the endpoint, the exact header and
/// body bytes.
#[derive(Debug, Clone)]
pub struct Case {
    pub endpoint: Endpoint,
    /// `None`: no `Content-Type` header at all.
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// How the generator made it, for failure reports.
    pub label: String,
}

impl Case {
    fn json(endpoint: Endpoint, label: String, text: impl Into<Vec<u8>>) -> Case {
        Case {
            endpoint,
            content_type: Some("application/json".into()),
            body: text.into(),
            label,
        }
    }

    /// Whether the body names a field (or uses an endpoint) the original
    /// does not have, where engine-auth's document may differ from it:
    /// `currentPassword`, login's `otp` and `mode`, refresh's `mode`, and a
    /// refresh body without `refreshToken` (which engine-auth's document
    /// leaves optional: the cookie may carry the token).
    pub fn names_added_field(&self) -> bool {
        let names = |field: &str| {
            self.body
                .windows(field.len())
                .any(|w| w == field.as_bytes())
        };
        match self.endpoint {
            Endpoint::Logout => true,
            Endpoint::Login => names("otp") || names("mode"),
            Endpoint::Refresh => names("mode") || !names("refreshToken"),
            _ => names("currentPassword"),
        }
    }

    /// How deep the body nests arrays and objects (outside strings); for
    /// a body that is not JSON, up to where it stops being JSON or beyond.
    pub fn nesting(&self) -> usize {
        let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0, false, false);
        for &b in &self.body {
            if in_string {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }

    /// The request in full (the body shortened past 600 bytes), exact:
    /// Debug-quoted text when it is UTF-8, escaped bytes otherwise.
    pub fn describe(&self) -> String {
        const MAX: usize = 600;
        let shown = &self.body[..self.body.len().min(MAX)];
        let more = if self.body.len() > MAX { "…" } else { "" };
        let body = match std::str::from_utf8(shown) {
            Ok(s) => format!("{s:?}{more}"),
            Err(_) => format!("b\"{}\"{more}", shown.escape_ascii()),
        };
        format!(
            "{} {} ({}) content-type: {}; body ({} bytes): {body}",
            self.endpoint.method(),
            self.endpoint.path("{_id}"),
            super::clip(&self.label, 60),
            self.content_type
                .as_deref()
                .map_or("(none)".into(), |c| format!("{c:?}")),
            self.body.len(),
        )
    }
}

pub struct Corpus {
    pub seed: u64,
    pub cases: Vec<Case>,
}

/// The whole corpus; `body_limit` is engine-auth's, so that bodies just
/// under, at and over it are in.
pub fn corpus(body_limit: usize) -> Corpus {
    let seed = seed();
    let mut g = Gen {
        names: 0,
        out: Vec::new(),
    };
    let kinds = kinds();
    for ep in Endpoint::ALL {
        g.positions(ep, &kinds);
        g.missing(ep);
        g.unknown(ep);
        g.duplicates(ep);
        g.two_faults(ep);
        g.prototypes(ep);
        g.not_objects(ep);
        g.raw(ep);
        g.content_types(ep);
        g.sizes(ep, body_limit);
    }
    let mut rng = XorShift::new(seed);
    for ep in Endpoint::ALL {
        for i in 0..RANDOM_PER_ENDPOINT {
            let case = g.random(ep, &kinds, &mut rng, i);
            g.out.push(case);
        }
    }
    Corpus { seed, cases: g.out }
}

fn seed() -> u64 {
    let Ok(s) = std::env::var("COMPAT_SEED") else {
        return DEFAULT_SEED;
    };
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("COMPAT_SEED={s:?} is not a u64 (decimal or 0x…)"))
}

/// Every JSON kind as raw text: strings (empty, short, exactly 8
/// characters, non-ASCII, astral, escaped lone surrogates, the words Ajv
/// coerces), numbers at the edges of JavaScript's doubles, literals,
/// arrays of 0/1/2 items of each kind, objects; and strings at the length
/// limits engine-auth documents (usernames 256 characters, passwords 1024
/// bytes).
fn kinds() -> Vec<String> {
    const FIXED: &[&str] = &[
        // strings
        r#""""#,
        r#""a""#,
        r#""1234567""#,
        r#""12345678""#,
        r#""héllo wörld""#,
        r#""名前名前名前名前""#,
        r#""😀😀😀😀""#,
        r#""😀😀😀😀😀😀😀😀""#,
        r#""\ud83d\ude00\ud83d\ude00\ud83d\ude00\ud83d\ude00""#,
        r#""\ud800""#,
        r#""\ud800abcdefgh""#,
        r#""abcdefg\udfff""#,
        r#""\udc00\ud800xxxxxx""#,
        r#""\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9""#,
        r#""true""#,
        r#""false""#,
        r#""TRUE""#,
        r#""1""#,
        r#""0""#,
        r#""null""#,
        r#"" padded ""#,
        r#""tab\tinside""#,
        r#""nul\u0000inside""#,
        r#""line\nbreak""#,
        r#""quote\"and\\slash\/""#,
        r#""\u2028\u2029sep""#,
        // numbers
        "0",
        "-0",
        "1",
        "1.0",
        "-1",
        "0.5",
        "2.50",
        "1E2",
        "1e+2",
        "-0.0",
        "1e21",
        "1e-7",
        "0.000001",
        "1e400",
        "-1e400",
        "5e-324",
        "123456789",
        "9007199254740993",
        "12345678901234567890",
        "1.7976931348623157e308",
        // literals
        "true",
        "false",
        "null",
        // arrays
        "[]",
        r#"["a"]"#,
        r#"["12345678"]"#,
        "[1]",
        "[12345678]",
        "[1e400]",
        "[true]",
        "[false]",
        "[null]",
        "[[]]",
        r#"[["a"]]"#,
        "[{}]",
        r#"[{"a":1}]"#,
        r#"["a","b"]"#,
        "[1,2]",
        "[true,false]",
        // objects
        "{}",
        r#"{"a":1}"#,
        r#"{"admin":true}"#,
    ];
    let mut v: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
    for s in [
        "u".repeat(256),
        "u".repeat(257),
        "é".repeat(256),
        "p".repeat(1024),
        "p".repeat(1025),
        // 513 characters, 1026 bytes: long enough in characters, too long
        // in bytes.
        "é".repeat(513),
        "😀".repeat(257),
    ] {
        v.push(format!("\"{s}\""));
    }
    v
}

/// Prototype-pollution keys (raw, some escaped) with values: Fastify's
/// secure-json-parse refuses `__proto__` and `constructor.prototype`.
const PROTOTYPE: &[(&str, &str)] = &[
    (r#""__proto__""#, "{}"),
    (r#""__proto__""#, r#"{"admin":true}"#),
    (r#""__proto__""#, "1"),
    (r#""__proto__""#, "null"),
    (r#""\u005f_proto__""#, "{}"),
    (r#""__pro\u0074o__""#, "[]"),
    (r#""constructor""#, r#"{"prototype":{}}"#),
    (r#""constructor""#, r#"{"prototype":1}"#),
    (r#""constructor""#, r#"{"prototype":null}"#),
    (r#""\u0063onstructor""#, r#"{"prototype":{}}"#),
    (r#""constructor""#, r#"{"\u0070rototype":{}}"#),
    (r#""constructor""#, r#"{"a":{"prototype":1}}"#),
    (r#""constructor""#, "{}"),
    (r#""constructor""#, "null"),
    (r#""constructor""#, "1"),
    (r#""constructor""#, r#""x""#),
    (r#""prototype""#, "{}"),
    (r#""__proto""#, "{}"),
];

/// Content types tried with a valid body (`None`: no header).
const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json; charset=utf-8"),
    Some("application/json;charset=UTF-8"),
    Some("Application/JSON"),
    Some("APPLICATION/JSON; CHARSET=UTF-8"),
    Some("application/json ; charset=latin1"),
    Some("application/json; charset=utf-16"),
    Some("application/json;"),
    Some(" application/json"),
    Some("application/jsonx"),
    Some("application/json-patch+json"),
    Some("application/vnd.api+json"),
    Some("application/x-www-form-urlencoded"),
    Some("multipart/form-data; boundary=x"),
    Some("text/plain"),
    Some("text/plain; charset=utf-8"),
    Some("text/html"),
    Some("text/json"),
    Some("json"),
    Some("xapplication/json"),
    Some("application/xjson"),
    Some("text/plainx"),
    Some("application/json, text/plain"),
    Some("application/json; charset"),
    Some("application/json; x=\"a;b\""),
    Some("application/json; charset=utf-8; charset=utf-8"),
    Some("*/*"),
    Some("application/*"),
    Some(""),
    None,
];

/// A JSON object as raw (key, value) text pairs, in order; duplicates and
/// escaped keys allowed.
#[derive(Debug, Clone, Default)]
struct Obj(Vec<(String, String)>);

impl Obj {
    fn quoted(key: &str) -> String {
        format!("\"{key}\"")
    }

    /// Replaces the first `key` (or appends it).
    fn set(mut self, key: &str, value: impl Into<String>) -> Obj {
        let k = Obj::quoted(key);
        let value = value.into();
        match self.0.iter_mut().find(|(kk, _)| *kk == k) {
            Some(entry) => entry.1 = value,
            None => self.0.push((k, value)),
        }
        self
    }

    fn without(mut self, key: &str) -> Obj {
        let k = Obj::quoted(key);
        self.0.retain(|(kk, _)| *kk != k);
        self
    }

    /// Appends a pair as given: `key_raw` is JSON text with its quotes.
    fn push_raw(mut self, key_raw: &str, value: impl Into<String>) -> Obj {
        self.0.push((key_raw.into(), value.into()));
        self
    }

    fn render(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", pairs.join(","))
    }
}

/// A valid role profile (some flags on, some off).
fn roles() -> Obj {
    ALL_ROLES
        .iter()
        .enumerate()
        .fold(Obj::default(), |o, (i, f)| {
            o.set(f, if i % 2 == 0 { "false" } else { "true" })
        })
}

/// The generator: its output so far, and a counter for fresh usernames
/// (POST /user with a taken name answers 409, so bodies that are not
/// about the username create a new one each time).
struct Gen {
    names: usize,
    out: Vec<Case>,
}

impl Gen {
    fn push(&mut self, ep: Endpoint, label: String, text: String) {
        self.out.push(Case::json(ep, label, text));
    }

    fn fresh_name(&mut self) -> String {
        self.names += 1;
        format!("\"compat-user-{}\"", self.names)
    }

    /// A valid value of `field` on `ep`.
    fn good(&mut self, ep: Endpoint, field: &str) -> String {
        match (ep, field) {
            (Endpoint::NewUser, "username") => self.fresh_name(),
            (_, "username") => r#""alice""#.into(),
            (Endpoint::Login, "password") => r#""a-password""#.into(),
            (_, "password") => r#""new-password-1""#.into(),
            (_, "currentPassword") => r#""old-password-1""#.into(),
            (_, "refreshToken") => r#""not.a.token""#.into(),
            (_, "roles") => roles().render(),
            (_, "all") => "true".into(),
            (_, "extra") => r#""x""#.into(),
            other => panic!("no valid value for {other:?}"),
        }
    }

    /// The valid base body of `ep`.
    fn base(&mut self, ep: Endpoint) -> Obj {
        ep.base_fields().iter().fold(Obj::default(), |o, f| {
            let v = self.good(ep, f);
            o.set(f, v)
        })
    }

    /// `base` with its roles object changed by `change`.
    fn with_roles(base: Obj, change: impl FnOnce(Obj) -> Obj) -> Obj {
        base.set("roles", change(roles()).render())
    }

    /// Every field position (top level, and each role flag) × every kind.
    fn positions(&mut self, ep: Endpoint, kinds: &[String]) {
        for field in ep.fields() {
            for v in kinds {
                let body = self.base(ep).set(field, v.as_str()).render();
                self.push(ep, format!("{field} = {v}"), body);
            }
        }
        if ep.has_roles() {
            for flag in ALL_ROLES {
                for v in kinds {
                    let body = Gen::with_roles(self.base(ep), |r| r.set(flag, v.as_str()));
                    self.push(ep, format!("roles.{flag} = {v}"), body.render());
                }
            }
        }
    }

    /// Each field missing (the required ones matter), each role flag
    /// missing, and the empty object.
    fn missing(&mut self, ep: Endpoint) {
        for field in ep.base_fields() {
            let body = self.base(ep).without(field).render();
            self.push(ep, format!("without {field}"), body);
        }
        if ep.has_roles() {
            for flag in ALL_ROLES {
                let body = Gen::with_roles(self.base(ep), |r| r.without(flag));
                self.push(ep, format!("without roles.{flag}"), body.render());
            }
            let body = self.base(ep).set("roles", "{}").render();
            self.push(ep, "roles = {} ".into(), body);
        }
        self.push(ep, "empty object".into(), "{}".into());
    }

    /// Unknown fields (removed by the original, never refused), at the top
    /// level and inside roles; another endpoint's fields.
    fn unknown(&mut self, ep: Endpoint) {
        let extras: &[(&str, &str)] = &[
            ("extra", "1"),
            ("mode", r#""json""#),
            ("_id", r#""00000000-0000-4000-8000-000000000000""#),
            ("Username", r#""x""#),
            ("extra", r#"{"nested":[1,{"deeper":null}]}"#),
            ("extra", r#""\ud800""#),
            ("roles", r#"{"admin":"yes"}"#),
            ("refreshToken", "{}"),
            ("all", r#""maybe""#),
            ("", "1"),
        ];
        for (k, v) in extras {
            if ep.fields().contains(k) {
                continue;
            }
            let body = self.base(ep).set(k, *v).render();
            self.push(ep, format!("unknown {k:?} = {v}"), body);
        }
        let only_unknown = Obj::default().set("extra", "1").render();
        self.push(ep, "only an unknown field".into(), only_unknown);
        if ep.has_roles() {
            for (k, v) in [
                ("root", "true"),
                ("Admin", "true"),
                ("extra", "{}"),
                ("extra", r#"["x"]"#),
            ] {
                let body = Gen::with_roles(self.base(ep), |r| r.set(k, v));
                self.push(ep, format!("unknown roles.{k} = {v}"), body.render());
            }
        }
    }

    /// Duplicate keys: the last one wins in `JSON.parse`.
    fn duplicates(&mut self, ep: Endpoint) {
        for field in ep.fields() {
            let good = self.good(ep, field);
            for (first, second) in [
                ("{}".to_string(), good.clone()),
                (good.clone(), "{}".to_string()),
                (good.clone(), good.clone()),
                ("null".to_string(), "[1,2]".to_string()),
            ] {
                let base = self.base(ep).without(field);
                let body = base
                    .push_raw(&Obj::quoted(field), first.as_str())
                    .push_raw(&Obj::quoted(field), second.as_str());
                self.push(
                    ep,
                    format!("duplicate {field}: {first} then {second}"),
                    body.render(),
                );
            }
        }
        if ep.has_roles() {
            for (first, second) in [("{}", "true"), ("true", "{}"), ("\"x\"", "false")] {
                let body = Gen::with_roles(self.base(ep), |r| {
                    r.push_raw("\"admin\"", first).push_raw("\"admin\"", second)
                });
                self.push(
                    ep,
                    format!("duplicate roles.admin: {first} then {second}"),
                    body.render(),
                );
            }
        }
    }

    /// Two faults at once, for every ordered pair of fields (and of role
    /// flags): both mistyped (written in both orders), or the first missing
    /// and the second mistyped. With `allErrors: false` only one is
    /// reported, so these pin down the order in which they are judged.
    fn two_faults(&mut self, ep: Endpoint) {
        let pairs = |names: &[&'static str]| -> Vec<(&'static str, &'static str)> {
            let mut v = Vec::new();
            for a in names {
                for b in names {
                    if a != b {
                        v.push((*a, *b));
                    }
                }
            }
            v
        };
        for (a, b) in pairs(ep.fields()) {
            let body = self
                .base(ep)
                .without(a)
                .without(b)
                .set(a, "{}")
                .set(b, "{}");
            self.push(ep, format!("{a} then {b}, both {{}}"), body.render());
            let body = self.base(ep).without(a).set(b, "{}");
            self.push(ep, format!("without {a}, {b} = {{}}"), body.render());
        }
        if ep.has_roles() {
            for (a, b) in pairs(&ALL_ROLES) {
                let body = Gen::with_roles(self.base(ep), |r| {
                    r.without(a).without(b).set(a, "{}").set(b, "{}")
                });
                self.push(
                    ep,
                    format!("roles.{a} then roles.{b}, both {{}}"),
                    body.render(),
                );
                let body = Gen::with_roles(self.base(ep), |r| r.without(a).set(b, "{}"));
                self.push(
                    ep,
                    format!("without roles.{a}, roles.{b} = {{}}"),
                    body.render(),
                );
            }
        }
    }

    /// Prototype keys at the top level, inside roles, and inside a field's
    /// value (an object, an array, arrays of arrays).
    fn prototypes(&mut self, ep: Endpoint) {
        for (k, v) in PROTOTYPE {
            let body = self.base(ep).push_raw(k, *v).render();
            self.push(ep, format!("top-level {k} = {v}"), body);
            // First in the object, before any valid field.
            let mut first = Obj::default().push_raw(k, *v);
            first.0.extend(self.base(ep).0);
            self.push(ep, format!("leading {k} = {v}"), first.render());
            if ep.has_roles() {
                let body = Gen::with_roles(self.base(ep), |r| r.push_raw(k, *v));
                self.push(ep, format!("roles.{k} = {v}"), body.render());
            }
        }
        let field = ep.fields()[0];
        for nested in [
            r#"{"__proto__":1}"#,
            r#"[{"__proto__":1}]"#,
            r#"[[{"constructor":{"prototype":1}}]]"#,
            r#"{"a":{"b":{"__proto__":{}}}}"#,
            r#"["__proto__"]"#,
            r#""__proto__""#,
            r#""constructor""#,
        ] {
            let body = self.base(ep).set(field, nested).render();
            self.push(ep, format!("{field} = {nested}"), body);
        }
    }

    /// Top levels that are not an object.
    fn not_objects(&mut self, ep: Endpoint) {
        let base = self.base(ep).render();
        for text in [
            "[]".to_string(),
            format!("[{base}]"),
            "[null]".into(),
            r#""a string""#.into(),
            r#""""#.into(),
            "5".into(),
            "0".into(),
            "null".into(),
            "true".into(),
            "false".into(),
        ] {
            self.push(ep, format!("top level {text}"), text.clone());
        }
    }

    /// Broken or unusual JSON text, encodings and bytes.
    fn raw(&mut self, ep: Endpoint) {
        let b = self.base(ep).render();
        let field = ep.string_field();
        let first = ep.fields()[0];
        // The base body with `field`'s string value replaced by `bytes`
        // (raw, between the quotes).
        let spliced = |g: &mut Gen, bytes: &[u8]| -> Vec<u8> {
            let marker = "@@SPLICE@@";
            let text = g.base(ep).set(field, format!("\"{marker}\"")).render();
            let at = text.find(marker).expect("marker");
            let mut out = text.as_bytes()[..at].to_vec();
            out.extend_from_slice(bytes);
            out.extend_from_slice(&text.as_bytes()[at + marker.len()..]);
            out
        };
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("whitespace only", b" \n\t\r ".to_vec()),
            ("BOM then JSON", [b"\xef\xbb\xbf", b.as_bytes()].concat()),
            ("BOM only", b"\xef\xbb\xbf".to_vec()),
            (
                "whitespace, BOM, JSON",
                [b"  \xef\xbb\xbf", b.as_bytes()].concat(),
            ),
            (
                "two BOMs",
                [b"\xef\xbb\xbf\xef\xbb\xbf", b.as_bytes()].concat(),
            ),
            (
                "surrounding whitespace",
                format!("\r\n\t {b} \n").into_bytes(),
            ),
            ("trailing garbage", format!("{b} x").into_bytes()),
            ("trailing brace", format!("{b}}}").into_bytes()),
            ("two objects", format!("{b}{b}").into_bytes()),
            ("trailing NUL", [b.as_bytes(), b"\0"].concat()),
            (
                "trailing comma",
                format!("{},}}", &b[..b.len() - 1]).into_bytes(),
            ),
            ("leading comma", format!("{{,{}", &b[1..]).into_bytes()),
            ("single quotes", b.replace('"', "'").into_bytes()),
            ("block comment", format!("/* c */{b}").into_bytes()),
            ("line comment", format!("{b}// c").into_bytes()),
            ("truncated", b.as_bytes()[..b.len() - 1].to_vec()),
            ("open brace only", b"{".to_vec()),
            (
                "unquoted key",
                b.replacen(&format!("\"{first}\""), first, 1).into_bytes(),
            ),
            ("invalid UTF-8 in a string", spliced(self, b"a\xffb")),
            ("overlong UTF-8 in a string", spliced(self, b"a\xc0\xafb")),
            (
                "UTF-8-encoded surrogate in a string",
                spliced(self, b"a\xed\xa0\x80b"),
            ),
            ("truncated UTF-8 in a string", spliced(self, b"abc\xe2\x82")),
            ("Latin-1 in a string", spliced(self, b"caf\xe9")),
            ("raw tab in a string", spliced(self, b"a\tb")),
            ("raw newline in a string", spliced(self, b"a\nb")),
            ("raw DEL in a string", spliced(self, b"a\x7fb")),
            (
                "raw U+2028 in a string",
                spliced(self, "a\u{2028}b".as_bytes()),
            ),
            ("bad escape \\x41", spliced(self, b"a\\x41")),
            ("short escape \\u12", spliced(self, b"a\\u12")),
            ("escaped slash", spliced(self, b"a\\/b")),
            (
                "invalid UTF-8 outside strings",
                [b"{\xff", &b.as_bytes()[1..]].concat(),
            ),
        ];
        for (label, literal) in [
            ("NaN", "NaN"),
            ("Infinity", "Infinity"),
            ("leading zero", "01"),
            ("bare fraction", ".5"),
            ("explicit plus", "+1"),
            ("hex number", "0x10"),
            ("trailing dot", "1."),
            ("lone minus", "-"),
            ("undefined", "undefined"),
            ("True", "True"),
            (
                "deep arrays (200)",
                &format!("{}{}", "[".repeat(200), "]".repeat(200)),
            ),
            // With the body's own object: exactly engine-auth's limit, and
            // one more.
            ("nesting at the limit", &deep(MAX_DEPTH - 1)),
            ("nesting one over the limit", &deep(MAX_DEPTH)),
            (
                "deep arrays (2000)",
                &format!("{}{}", "[".repeat(2000), "]".repeat(2000)),
            ),
            (
                "deep objects (200)",
                &format!("{}{}", r#"{"a":"#.repeat(200), "}".repeat(200)),
            ),
        ] {
            let text = self.base(ep).set(field, literal).render();
            cases.push((label, text.into_bytes()));
        }
        for (label, body) in cases {
            self.out.push(Case::json(ep, format!("raw: {label}"), body));
        }
    }

    /// A valid body under every content type; no content type with and
    /// without a body; text/plain without a body.
    fn content_types(&mut self, ep: Endpoint) {
        for ct in CONTENT_TYPES {
            let body = self.base(ep).render();
            self.out.push(Case {
                endpoint: ep,
                content_type: ct.map(str::to_string),
                body: body.into_bytes(),
                label: format!("content type {ct:?}"),
            });
        }
        for ct in [
            None,
            Some("text/plain"),
            Some("application/json; charset=utf-8"),
        ] {
            self.out.push(Case {
                endpoint: ep,
                content_type: ct.map(str::to_string),
                body: Vec::new(),
                label: format!("content type {ct:?}, no body"),
            });
        }
        let body = Obj::default().set("extra", "1").render();
        self.out.push(Case {
            endpoint: ep,
            content_type: Some("text/plain".into()),
            body: body.into_bytes(),
            label: "text/plain, a JSON object without required fields".into(),
        });
    }

    /// Valid bodies just under, at and over engine-auth's body limit (a
    /// long string in the endpoint's string field); Fastify's own limit is
    /// 1 MiB, far above.
    fn sizes(&mut self, ep: Endpoint, limit: usize) {
        let field = ep.string_field();
        let overhead = self.base(ep).set(field, "\"\"").render().len();
        for total in [limit - 1, limit, limit + 1, limit * 2] {
            let pad = "s".repeat(total - overhead);
            let body = self.base(ep).set(field, format!("\"{pad}\"")).render();
            assert_eq!(body.len(), total, "padding arithmetic");
            self.push(ep, format!("{total}-byte body (limit {limit})"), body);
        }
    }

    /// One random body: each known field present or not, valid or any
    /// kind; sometimes an unknown field, a duplicate, a prototype key, an
    /// array around it, another content type.
    fn random(&mut self, ep: Endpoint, kinds: &[String], rng: &mut XorShift, i: usize) -> Case {
        let mut fields: Vec<&str> = ep.fields().to_vec();
        rng.shuffle(&mut fields);
        let mut obj = Obj::default();
        for field in fields {
            if !rng.chance(85) {
                continue;
            }
            let value = if field == "roles" && rng.chance(80) {
                self.random_roles(kinds, rng).render()
            } else if rng.chance(50) {
                self.good(ep, field)
            } else {
                rng.pick(kinds).clone()
            };
            obj = obj.set(field, value);
        }
        if rng.chance(15) {
            let key = *rng.pick(&["extra", "mode", "role", "admin", "Password"]);
            obj = obj.push_raw(&Obj::quoted(key), rng.pick(kinds).as_str());
        }
        if rng.chance(10) && !obj.0.is_empty() {
            let (k, _) = obj.0[rng.below(obj.0.len())].clone();
            obj = obj.push_raw(&k, rng.pick(kinds).as_str());
        }
        if rng.chance(4) {
            let (k, v) = *rng.pick(PROTOTYPE);
            let at = rng.below(obj.0.len() + 1);
            obj.0.insert(at, (k.into(), v.into()));
        }
        let mut text = obj.render();
        if rng.chance(3) {
            text = format!("[{text}]");
        }
        let content_type = if rng.chance(8) {
            rng.pick(CONTENT_TYPES).map(str::to_string)
        } else {
            Some("application/json".into())
        };
        Case {
            endpoint: ep,
            content_type,
            body: text.into_bytes(),
            label: format!("random #{i}"),
        }
    }

    fn random_roles(&mut self, kinds: &[String], rng: &mut XorShift) -> Obj {
        let mut flags = ALL_ROLES.to_vec();
        rng.shuffle(&mut flags);
        let mut roles = Obj::default();
        for flag in flags {
            if !rng.chance(90) {
                continue;
            }
            let v = if rng.chance(60) {
                rng.pick(&["true", "false"]).to_string()
            } else {
                rng.pick(kinds).clone()
            };
            roles = roles.set(flag, v);
        }
        if rng.chance(10) {
            roles = roles.set("root", "true");
        }
        roles
    }
}

/// `levels` nested arrays.
fn deep(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

/// xorshift64*: tiny, deterministic, good enough to mix a corpus.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        // xorshift's state must not be 0.
        XorShift(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[test]
fn nesting_counts_brackets_outside_strings() {
    let case = |text: &str| Case::json(Endpoint::Login, String::new(), text);
    assert_eq!(case("{}").nesting(), 1);
    assert_eq!(case(r#"{"a":[[1],{"b":[]}]}"#).nesting(), 4);
    assert_eq!(case(r#"{"a":"[[[\"[["}"#).nesting(), 1);
    assert_eq!(case("5").nesting(), 0);
}

#[test]
fn the_corpus_is_deterministic_and_large_enough() {
    let a = corpus(16 * 1024);
    let b = corpus(16 * 1024);
    assert!(a.cases.len() >= 500, "{} bodies", a.cases.len());
    assert_eq!(a.cases.len(), b.cases.len());
    for (x, y) in a.cases.iter().zip(&b.cases) {
        assert_eq!((&x.body, &x.content_type), (&y.body, &y.content_type));
    }
}
