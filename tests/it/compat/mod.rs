//! Differential tests against the original (`cargo test --test it compat`):
//! engine-auth must accept and refuse request bodies exactly like the
//! Fastify service it replaces. The judge is a real Fastify 4 with its
//! default Ajv options (`tests/oracle/`, installed by the tests on first use
//! with `npm ci`; Node.js and npm must be on `PATH`).
//!
//! - `oracle`: installing and running the Fastify oracle (one node process
//!   per [`oracle::Oracle`], killed on drop), turning engine-auth's
//!   OpenAPI 3 document into the swagger-like file it reads, and its answers.
//! - `corpus`: the generated bodies (every field position × every JSON kind,
//!   missing and extra fields, duplicate keys, prototype keys, raw-body and
//!   content-type cases, and a seeded random generator).
//! - `schemas`: oracle A (the published swagger) and oracle B (engine-auth's
//!   own documented schemas) agree on every body that names no field
//!   engine-auth added: the document is the original plus the additions.
//! - `http`: a real engine-auth answers every body as oracle B decides
//!   (refusals with the same status and validation message), plus the
//!   stricter domain rules engine-auth documents.
//! - `decoder`: `engine_auth::http::body::decode` agrees with oracle B on
//!   every body, down to the decoded value (no HTTP).

mod corpus;
mod decoder;
mod http;
mod oracle;
mod schemas;

use corpus::Case;
use oracle::{Answer, Oracle};

use crate::harness::compat::MAX_DEPTH;
use crate::harness::{TestApp, send};

/// The first disagreements a failure lists in full.
const SHOWN: usize = 20;
/// How many more it lists one line each.
const MORE: usize = 200;

/// A running engine-auth whose throttle never answers 429 however many
/// logins and refreshes fail, its body limit, and oracle B (Fastify with
/// the request-body schemas engine-auth documents).
struct Fixture {
    app: TestApp,
    body_limit: usize,
    oracle_b: Oracle,
}

impl Fixture {
    async fn start() -> Fixture {
        let mut body_limit = 0;
        let app = TestApp::spawn_with(|s| {
            s.throttle.per_user = 1_000_000;
            s.throttle.per_address = 1_000_000;
            body_limit = s.body_limit_bytes;
        })
        .await;
        let oracle_b = Oracle::start_with_spec(
            "B (engine-auth's documented schemas)",
            &documented_spec(&app).await,
        );
        Fixture {
            app,
            body_limit,
            oracle_b,
        }
    }
}

/// Oracle B's input: the OpenAPI document `app` serves, as the swagger-like
/// file `oracle.js` reads (its text: the key order matters to Ajv).
async fn documented_spec(app: &TestApp) -> String {
    let reply = send(app.client.get(app.url("/api/v1/docs/json"))).await;
    reply.ok_json();
    oracle::swagger_from_openapi(&reply.body)
}

/// Whether engine-auth's documented nesting limit (`MAX_DEPTH`) refuses
/// `case` where the original went on: the body nests deeper, and the
/// oracle got as far as judging it as JSON (accepted it, or refused it
/// for its schema; not a text body, which is a string, never parsed). Its
/// other refusals (syntax, prototype keys, content type) are engine-auth's
/// too, status for status.
fn nests_too_deep(case: &Case, oracle: &Answer) -> bool {
    let judged_as_json = match oracle {
        Answer::Accepted(_) => true,
        Answer::Refused { .. } => {
            oracle.validation_message().is_some()
                && !case
                    .content_type
                    .as_deref()
                    .is_some_and(|ct| ct.to_ascii_lowercase().contains("text/plain"))
        }
    };
    judged_as_json && case.nesting() > MAX_DEPTH
}

/// One body the two sides answered differently.
struct Disagreement {
    case: String,
    oracle: String,
    ours: String,
    why: String,
}

/// Collects disagreements and fails once, at the end, with the counts and
/// the first [`SHOWN`] of them in full (so the report does not depend on
/// `--nocapture`).
struct Tally {
    what: &'static str,
    seed: u64,
    corpus: usize,
    bodies: usize,
    disagreements: Vec<Disagreement>,
}

impl Tally {
    fn new(what: &'static str, corpus: &corpus::Corpus) -> Tally {
        Tally {
            what,
            seed: corpus.seed,
            corpus: corpus.cases.len(),
            bodies: 0,
            disagreements: Vec::new(),
        }
    }

    fn agree(&mut self) {
        self.bodies += 1;
    }

    fn disagree(&mut self, case: &Case, oracle: &Answer, ours: String, why: String) {
        self.bodies += 1;
        self.disagreements.push(Disagreement {
            case: case.describe(),
            oracle: oracle.describe(),
            ours,
            why,
        });
    }

    /// Prints the figures and fails the test on any disagreement.
    fn finish(self) {
        let agree = self.bodies - self.disagreements.len();
        let summary = format!(
            "compat ({}): {} bodies, {agree} agree, {} disagree (of a corpus of {}, seed \
             {:#x}; COMPAT_SEED={:#x} reproduces it)",
            self.what,
            self.bodies,
            self.disagreements.len(),
            self.corpus,
            self.seed,
            self.seed
        );
        println!("{summary}");
        if self.disagreements.is_empty() {
            return;
        }
        let mut report = summary;
        for (i, d) in self.disagreements.iter().take(SHOWN).enumerate() {
            report.push_str(&format!(
                "\n\n#{} {}\n  request: {}\n  oracle:  {}\n  ours:    {}",
                i + 1,
                d.why,
                d.case,
                clip(&d.oracle, 600),
                clip(&d.ours, 600)
            ));
        }
        if self.disagreements.len() > SHOWN {
            report.push('\n');
        }
        // The rest one line each, so that a run shows every kind of
        // disagreement at once.
        for d in self.disagreements.iter().skip(SHOWN).take(MORE) {
            report.push_str(&format!("\n- {}: {}", clip(&d.case, 160), d.why));
        }
        let left = self.disagreements.len().saturating_sub(SHOWN + MORE);
        if left > 0 {
            report.push_str(&format!("\n… and {left} more"));
        }
        panic!("{report}");
    }
}

/// `text` cut to `max` characters.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}
