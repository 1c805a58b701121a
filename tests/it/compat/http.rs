//! A real engine-auth against oracle B over HTTP (`cargo test --test it
//! compat::http`): every corpus body goes to both, byte for byte.
//!
//! - Oracle B refuses (400, 413, 415): engine-auth answers the same status;
//!   for a schema violation (`FST_ERR_VALIDATION`) the same message, Ajv's
//!   words.
//! - Oracle B accepts and decodes the body to B: engine-auth gets past
//!   validation (200, 401, 403, 404 or 409, depending on the credentials
//!   in it), unless B breaks one of engine-auth's documented stricter rules
//!   (README, "Where engine-auth is stricter than the original"), which
//!   apply after the original's decoding: a new user's username
//!   (`Username::parse`), a password being set (`Password::parse`), a login
//!   password over 1024 bytes, and for every endpoint the body limit (413)
//!   and the nesting limit. Then it answers 400 (413 for the limit).
//!
//! Bodies are sent by the admin for the admin endpoints, aimed at a target
//! user who is not the admin (a role or password change revokes the
//! target's tokens, not the admin's); logout bodies by a user of their own,
//! logged in again whenever a logout succeeded.

use serde_json::Value;

use super::corpus::{Endpoint, corpus};
use super::oracle::Answer;
use super::{Fixture, Tally, nests_too_deep};
use crate::harness::compat::{login_password_within_limit, valid_new_password, valid_username};
use crate::harness::{TestApp, USER_PASSWORD};

/// Statuses that mean "the body passed validation": the credentials or
/// the state decide from there.
const PAST_VALIDATION: [u16; 5] = [200, 401, 403, 404, 409];

/// What engine-auth must answer to one body.
#[derive(Debug)]
enum Expected {
    /// The oracle's refusal: this status, and this message when it is a
    /// validation message.
    Refused {
        status: u16,
        message: Option<String>,
    },
    /// Past validation.
    Accepted,
    /// The original would accept it, but one of engine-auth's documented
    /// stricter rules refuses it with this status.
    Stricter { status: u16, rule: String },
}

/// engine-auth's answer.
struct Ours {
    status: u16,
    text: String,
}

impl Ours {
    fn message(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.text)
            .ok()?
            .get("message")?
            .as_str()
            .map(str::to_string)
    }

    fn describe(&self) -> String {
        format!("{} {}", self.status, self.text)
    }
}

#[actix_web::test]
async fn engine_auth_accepts_and_refuses_bodies_like_the_original() {
    let fx = Fixture::start().await;
    let corpus = corpus(fx.body_limit);
    let app = &fx.app;
    let admin = app.admin_token().await;
    let target = app.add_user(&admin, "compat-target", &["read"]).await;
    app.add_user(&admin, "compat-leaver", &["read"]).await;
    let mut leaver = app.login_ok("compat-leaver", USER_PASSWORD).await.token;

    let mut tally = Tally::new("engine-auth vs oracle B over HTTP", &corpus);
    for case in &corpus.cases {
        let oracle = fx.oracle_b.ask(case, &target).await;
        let token = match case.endpoint {
            Endpoint::Login | Endpoint::Refresh => None,
            Endpoint::Logout => Some(leaver.as_str()),
            _ => Some(admin.as_str()),
        };
        let ours = send(app, case, &target, token).await;
        let expected = expect(case, &oracle, fx.body_limit);
        match judge(&expected, &ours) {
            Ok(()) => tally.agree(),
            Err(why) => tally.disagree(case, &oracle, ours.describe(), why),
        }
        // A logout that went through may have ended the leaver's sessions
        // ("all": true): its next bodies need a live token.
        if case.endpoint == Endpoint::Logout && ours.status == 200 {
            leaver = app.login_ok("compat-leaver", USER_PASSWORD).await.token;
        }
    }
    app.assert_alive().await;
    tally.finish();
}

/// Sends `case` to engine-auth as is. Not through the harness's `send`: a
/// 500 or a dropped connection is one more disagreement to list, not the
/// end of the run.
async fn send(app: &TestApp, case: &super::Case, target: &str, token: Option<&str>) -> Ours {
    let mut rb = app
        .client
        .request(case.endpoint.method(), app.url(&case.endpoint.path(target)));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(ct) = &case.content_type {
        rb = rb.header(reqwest::header::CONTENT_TYPE, ct);
    }
    match rb.body(case.body.clone()).send().await {
        Ok(resp) => Ours {
            status: resp.status().as_u16(),
            text: resp.text().await.unwrap_or_else(|e| format!("(body: {e})")),
        },
        Err(e) => Ours {
            status: 0,
            text: format!("no response: {e}"),
        },
    }
}

fn expect(case: &super::Case, oracle: &Answer, body_limit: usize) -> Expected {
    // The limit is checked before any decoding, like Fastify's content
    // type check before its own (1 MiB) limit: a 415 stays a 415.
    if case.body.len() > body_limit && oracle.status() != 415 {
        return Expected::Stricter {
            status: 413,
            rule: format!(
                "{} bytes is over the body limit {body_limit}",
                case.body.len()
            ),
        };
    }
    if nests_too_deep(case, oracle) {
        return Expected::Stricter {
            status: 400,
            rule: format!("nests deeper than {}", super::MAX_DEPTH),
        };
    }
    let body = match oracle {
        Answer::Refused { status, .. } => {
            return Expected::Refused {
                status: *status,
                message: oracle.validation_message().map(str::to_string),
            };
        }
        Answer::Accepted(body) => body,
    };
    let field = |name: &str| -> &str {
        body[name].as_str().unwrap_or_else(|| {
            panic!("oracle B accepted a body whose {name} is not a string: {body}")
        })
    };
    // engine-auth's own `mode` (login and refresh): one of two words.
    let mode = body.get("mode").and_then(Value::as_str);
    let broken = match case.endpoint {
        Endpoint::Login | Endpoint::Refresh
            if mode.is_some_and(|m| m != "json" && m != "cookie") =>
        {
            Some("mode is \"json\" or \"cookie\"".to_string())
        }
        // The token may come from the refresh cookie instead (this request
        // carries none): without either, the original's 400.
        Endpoint::Refresh if body.get("refreshToken").is_none() => {
            Some("refresh names no refreshToken and carries no cookie".to_string())
        }
        Endpoint::NewUser => valid_username(field("username"))
            .and_then(|()| valid_new_password(field("password")))
            .err(),
        Endpoint::Password => valid_new_password(field("password")).err(),
        Endpoint::Login => login_password_within_limit(field("password")).err(),
        // engine-auth's own call (the original has none): it ends one
        // session or, with `"all": true`, every one; a body that names
        // neither is refused by the call, after the schema accepted it.
        Endpoint::Logout if body.get("refreshToken").is_none() && body["all"] != true => {
            Some("logout names neither refreshToken nor \"all\": true".to_string())
        }
        Endpoint::Refresh | Endpoint::Roles | Endpoint::Logout => None,
    };
    match broken {
        Some(rule) => Expected::Stricter { status: 400, rule },
        None => Expected::Accepted,
    }
}

fn judge(expected: &Expected, ours: &Ours) -> Result<(), String> {
    match expected {
        Expected::Refused { status, message } => {
            if ours.status != *status {
                return Err(format!("the oracle refuses with {status}"));
            }
            match message {
                Some(m) if ours.message().as_deref() != Some(m.as_str()) => {
                    Err(format!("the validation message must be {m:?}"))
                }
                _ => Ok(()),
            }
        }
        Expected::Accepted if PAST_VALIDATION.contains(&ours.status) => Ok(()),
        Expected::Accepted => Err(format!(
            "the oracle accepts: expected one of {PAST_VALIDATION:?}"
        )),
        Expected::Stricter { status, rule } if ours.status != *status => Err(format!(
            "the oracle accepts, but engine-auth's stricter rule ({rule}) must answer {status}"
        )),
        Expected::Stricter { .. } => Ok(()),
    }
}
