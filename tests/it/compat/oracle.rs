//! The Fastify oracle (`tests/oracle/oracle.js`): Fastify 4 with its
//! default Ajv options serving the body schemas of a swagger file, answering
//! `200 {"body": <what the handler would see>}` or Fastify's own error.
//!
//! This module installs it on first use (`npm ci`, under a lock), runs one
//! node process per [`Oracle`] on a free port (killed when it drops), turns
//! engine-auth's OpenAPI 3 document into the swagger-like file `oracle.js`
//! reads, and parses the oracle's answers.

use serde_json::Value;
use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tempfile::TempDir;

use super::corpus::Case;
use crate::harness::{free_port, npm_ci};

/// The published swagger of the original, vendored beside the oracle.
const PUBLISHED: &str = "engine-api-v1-auth-swagger.json";

/// `tests/oracle/`
fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle")
}

/// A client that keeps its connections to the oracle open: thousands of
/// requests then cost a handful of sockets, not thousands in TIME_WAIT
/// (engine-auth's side uses the harness's fresh connection per request).
fn oracle_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// One running oracle.
pub struct Oracle {
    what: String,
    child: Child,
    port: u16,
    client: reqwest::Client,
    /// Holds the spec (when generated) and node's output.
    dir: TempDir,
}

impl Oracle {
    /// Oracle A: the published swagger.
    pub fn start_published() -> Oracle {
        let dir = tempfile::tempdir().expect("temp dir");
        Oracle::start("A (published swagger)", &oracle_dir().join(PUBLISHED), dir)
    }

    /// An oracle serving `spec`, the text of a swagger-like `{"paths": …}`
    /// document.
    pub fn start_with_spec(what: &str, spec: &str) -> Oracle {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("spec.json");
        std::fs::write(&path, spec).expect("write spec");
        Oracle::start(what, &path, dir)
    }

    fn start(what: &str, spec: &Path, mut dir: TempDir) -> Oracle {
        ensure_installed();
        // free_port() releases the port before node binds it; should another
        // process take it meanwhile, node exits with EADDRINUSE: try again.
        for attempt in 1..=5 {
            let port = free_port();
            let log_path = dir.path().join(format!("node-{attempt}.log"));
            let log = File::create(&log_path).expect("node log file");
            let child = Command::new("node")
                .arg(oracle_dir().join("oracle.js"))
                .arg(spec)
                .env("PORT", port.to_string())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("oracle {what}: cannot run node: {e}"));
            let mut oracle = Oracle {
                what: what.into(),
                child,
                port,
                client: oracle_client(),
                dir,
            };
            match oracle.wait_listening() {
                Ok(()) => return oracle,
                Err(output) if output.contains("EADDRINUSE") => {
                    dir = oracle.take_dir();
                    continue;
                }
                Err(output) => panic!(
                    "oracle {what} (node {} {}) did not start:\n{output}",
                    oracle_dir().join("oracle.js").display(),
                    spec.display()
                ),
            }
        }
        panic!("oracle {what}: no free port after 5 attempts")
    }

    /// Waits until node accepts connections; `Err(node's output)` if it
    /// exits first or takes more than 30 s.
    fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("node exited ({status}):\n{}", self.output()));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // Connected to node, not to whoever else might hold the port.
                std::thread::sleep(Duration::from_millis(50));
                if let Ok(None) = self.child.try_wait() {
                    return Ok(());
                }
                continue;
            }
            if Instant::now() > deadline {
                return Err(format!("not listening after 30 s:\n{}", self.output()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything node printed so far.
    fn output(&self) -> String {
        let mut all = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        all
    }

    /// Stops node and hands back the temp dir (for a retry on another port).
    fn take_dir(mut self) -> TempDir {
        self.stop();
        let placeholder = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, placeholder)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `case` (exactly its content type and bytes) with `target` as
    /// `{_id}`.
    pub async fn ask(&self, case: &Case, target: &str) -> Answer {
        let url = format!(
            "http://127.0.0.1:{}{}",
            self.port,
            case.endpoint.path(target)
        );
        let mut last_error = None;
        // The oracle is stateless, so a request that met a pooled connection
        // closing under it is simply sent again.
        for _ in 0..2 {
            let mut rb = self.client.request(case.endpoint.method(), &url);
            if let Some(ct) = &case.content_type {
                rb = rb.header(reqwest::header::CONTENT_TYPE, ct);
            }
            let resp = match rb.body(case.body.clone()).send().await {
                Ok(resp) => resp,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let text = resp.text().await.expect("oracle response body");
            return Answer::parse(status, &text).unwrap_or_else(|why| {
                panic!("oracle {}: {why} for {}", self.what, case.describe())
            });
        }
        panic!(
            "oracle {}: no answer to {}: {:?}\n{}",
            self.what,
            case.describe(),
            last_error,
            self.output()
        )
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What Fastify made of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 200: the body the handler would see.
    Accepted(Value),
    /// 400, 413 or 415 with Fastify's error JSON.
    Refused {
        status: u16,
        /// `FST_ERR_VALIDATION`, `FST_ERR_CTP_…`; none for JSON syntax and
        /// prototype-poisoning errors.
        code: Option<String>,
        message: String,
    },
}

impl Answer {
    fn parse(status: u16, text: &str) -> Result<Answer, String> {
        let json = parse_lossy(text)
            .map_err(|e| format!("answered {status} with a body that is not JSON ({e}): {text}"))?;
        match status {
            200 => Ok(Answer::Accepted(
                json.get("body")
                    .cloned()
                    .ok_or_else(|| format!("200 without a body: {text}"))?,
            )),
            400 | 413 | 415 => Ok(Answer::Refused {
                status,
                code: json["code"].as_str().map(str::to_string),
                message: json["message"].as_str().unwrap_or_default().to_string(),
            }),
            _ => Err(format!("unexpected {status}: {text}")),
        }
    }

    /// The message engine-auth must repeat word for word: Ajv's, for a
    /// schema violation.
    pub fn validation_message(&self) -> Option<&str> {
        match self {
            Answer::Refused {
                code: Some(code),
                message,
                ..
            } if code == "FST_ERR_VALIDATION" => Some(message),
            _ => None,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Answer::Accepted(_) => 200,
            Answer::Refused { status, .. } => *status,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Answer::Accepted(body) => format!("200 body {body}"),
            Answer::Refused {
                status,
                code,
                message,
            } => format!(
                "{status} {} {message:?}",
                code.as_deref().unwrap_or("(no code)")
            ),
        }
    }
}

/// Parses JSON as Node writes it. `JSON.stringify` escapes a lone surrogate
/// as `\udXXX`, which serde_json refuses; each lone one becomes `\ufffd`
/// first, which is what engine-auth (like Node's UTF-8 encoder) makes of it.
pub fn parse_lossy(text: &str) -> serde_json::Result<Value> {
    serde_json::from_str(&replace_lone_surrogates(text))
}

fn replace_lone_surrogates(text: &str) -> String {
    fn unit(b: &[u8], at: usize) -> Option<u16> {
        if b.get(at..at + 2)? != b"\\u" {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(b.get(at + 2..at + 6)?).ok()?, 16).ok()
    }
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match unit(b, i) {
            Some(0xd800..=0xdbff) => {
                if let Some(0xdc00..=0xdfff) = unit(b, i + 6) {
                    out.extend_from_slice(&b[i..i + 12]);
                    i += 12;
                } else {
                    out.extend_from_slice(b"\\ufffd");
                    i += 6;
                }
            }
            Some(0xdc00..=0xdfff) => {
                out.extend_from_slice(b"\\ufffd");
                i += 6;
            }
            // Any other escape is copied whole, so the `\\` of an escaped
            // backslash never starts a `\u` of its own.
            _ => {
                out.extend_from_slice(&b[i..(i + 2).min(b.len())]);
                i += 2;
            }
        }
    }
    // Only ASCII was replaced, so the bytes are still UTF-8.
    String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
}

/// engine-auth's OpenAPI 3 document (its JSON text) as the text of the
/// swagger-like file `oracle.js` reads (`paths[p][m].parameters[in=body]
/// .schema`): every operation with an `application/json` request body, its
/// schema with every `$ref` to `components.schemas` resolved.
///
/// `example` keywords are dropped at every depth: Ajv's strict mode refuses
/// unknown keywords (Fastify fails to build the route) and `oracle.js` only
/// deletes the top-level one; they are annotations and decide nothing.
/// Nothing else is changed (Ajv knows `nullable` and type arrays itself).
/// Objects keep the document's key order: with `allErrors: false` Ajv
/// reports the first failing property in the schema's order, so reordering
/// `properties` would change the oracle's messages.
pub fn swagger_from_openapi(doc: &[u8]) -> String {
    // serde_json's `preserve_order` feature (the crate enables it) keeps
    // objects in document order.
    let doc: Value = serde_json::from_slice(doc).expect("the OpenAPI document is JSON");
    let schemas = &doc["components"]["schemas"];
    assert!(schemas.is_object(), "components.schemas");
    let items = doc["paths"]
        .as_object()
        .expect("the OpenAPI document has no paths");
    let mut paths = serde_json::Map::new();
    for (path, item) in items {
        let Some(ops) = item.as_object() else {
            continue;
        };
        let mut methods = serde_json::Map::new();
        for (method, op) in ops {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            if schema.is_null() {
                continue;
            }
            let parameter =
                serde_json::json!({"in": "body", "schema": resolve(schema, schemas, 0)});
            methods.insert(
                method.clone(),
                serde_json::json!({"parameters": [parameter]}),
            );
        }
        if !methods.is_empty() {
            paths.insert(path.clone(), Value::Object(methods));
        }
    }
    serde_json::to_string_pretty(&serde_json::json!({"paths": paths})).expect("JSON")
}

/// `schema` with `$ref`s inlined and `example` dropped. Inside `properties`
/// the keys are field names, not keywords, so nothing is dropped there.
fn resolve(schema: &Value, schemas: &Value, depth: usize) -> Value {
    assert!(depth < 64, "$ref cycle in the OpenAPI document");
    let map = match schema {
        Value::Object(map) => map,
        Value::Array(items) => {
            return Value::Array(
                items
                    .iter()
                    .map(|s| resolve(s, schemas, depth + 1))
                    .collect(),
            );
        }
        other => return other.clone(),
    };
    let mut out = serde_json::Map::new();
    for (key, value) in map {
        match key.as_str() {
            "$ref" => {
                let reference = value.as_str().expect("a $ref that is a string");
                let name = reference
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("unsupported $ref {reference:?}"));
                let target = schemas
                    .get(name)
                    .unwrap_or_else(|| panic!("$ref to a missing schema {name:?}"));
                if let Value::Object(fields) = resolve(target, schemas, depth + 1) {
                    out.extend(fields);
                }
            }
            "example" => {}
            "properties" | "patternProperties" | "definitions" | "$defs" => {
                let fields = value
                    .as_object()
                    .unwrap_or_else(|| panic!("{key} is not a map of schemas"))
                    .iter()
                    .map(|(k, v)| (k.clone(), resolve(v, schemas, depth + 1)))
                    .collect();
                out.insert(key.clone(), Value::Object(fields));
            }
            _ => {
                out.insert(key.clone(), resolve(value, schemas, depth + 1));
            }
        }
    }
    Value::Object(out)
}

/// Installs the oracle's node_modules from its lock file once (`npm ci`
/// under a lock, see [`npm_ci`]).
fn ensure_installed() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        npm_ci(
            &oracle_dir(),
            "fastify",
            "fastify-oracle-install.lock",
            "the compat tests (the original's Fastify runs as an oracle from tests/oracle/; \
             `cargo test --test it -- --skip compat::` skips them)",
        );
    });
}

#[test]
fn lone_surrogates_become_replacement_characters() {
    let text =
        r#"{"a":"\ud800","b":"x\udfffy","c":"\ud83d\ude00","d":"\\ud800","e":"\ud800\ud800"}"#;
    let v = parse_lossy(text).expect("parses");
    assert_eq!(v["a"], "\u{fffd}");
    assert_eq!(v["b"], "x\u{fffd}y");
    assert_eq!(v["c"], "😀");
    assert_eq!(v["d"], "\\ud800");
    assert_eq!(v["e"], "\u{fffd}\u{fffd}");
}

#[test]
fn the_conversion_keeps_the_document_order_and_inlines_refs() {
    let doc = br##"{"paths": {"/p": {"get": {}, "post": {"requestBody": {"content": {"application/json":
        {"schema": {"$ref": "#/components/schemas/B"}}}}}}},
        "components": {"schemas": {"B": {"type": "object", "example": {"z": 1},
        "properties": {"z": {"type": "string", "example": "x"}, "example": {"$ref": "#/components/schemas/F"},
        "a": {"type": "boolean"}}, "required": ["z", "a"]}, "F": {"type": "boolean"}}}}"##;
    let spec = swagger_from_openapi(doc);
    let compact: String = spec.split_whitespace().collect();
    assert_eq!(
        compact,
        r#"{"paths":{"/p":{"post":{"parameters":[{"in":"body","schema":{"type":"object","properties":{"z":{"type":"string"},"example":{"type":"boolean"},"a":{"type":"boolean"}},"required":["z","a"]}}]}}}}"#
    );
}
