//! engine-auth's body decoder against oracle B, without HTTP (`cargo test
//! --test it compat::decoder`): for every corpus body,
//! `engine_auth::http::body::decode` returns `Ok(v)` exactly when the
//! oracle answers 200, with `v` the body the oracle's handler saw, and
//! `Err(r)` exactly when it refuses, with the same status and, for a schema
//! violation, the same message.
//!
//! Bodies over engine-auth's body limit are left out: the limit is the HTTP
//! layer's (see `compat::http`), not the decoder's. Its other documented
//! parse-level rule, the nesting limit, is the decoder's: a body it
//! refuses must be refused with 400 (in engine-auth's words).

use crate::harness::compat::{LOGIN, LOGOUT, NEW_USER, PASSWORD, REFRESH, ROLES, Schema, decode};

use super::corpus::{Endpoint, corpus};
use super::oracle::Answer;
use super::{Fixture, Tally, nests_too_deep};

/// Oracles validate bodies only; any id will do.
const TARGET: &str = "00000000-0000-4000-8000-000000000000";

fn schema(endpoint: Endpoint) -> &'static Schema {
    match endpoint {
        Endpoint::Login => &LOGIN,
        Endpoint::Refresh => &REFRESH,
        Endpoint::NewUser => &NEW_USER,
        Endpoint::Roles => &ROLES,
        Endpoint::Password => &PASSWORD,
        Endpoint::Logout => &LOGOUT,
    }
}

#[actix_web::test]
async fn decode_agrees_with_the_oracle() {
    let fx = Fixture::start().await;
    let corpus = corpus(fx.body_limit);
    let mut tally = Tally::new("decode() vs oracle B", &corpus);
    for case in corpus
        .cases
        .iter()
        .filter(|c| c.body.len() <= fx.body_limit)
    {
        let oracle = fx.oracle_b.ask(case, TARGET).await;
        let ours = decode(
            case.content_type.as_deref(),
            &case.body,
            schema(case.endpoint),
        );
        let verdict = match (&oracle, &ours) {
            _ if nests_too_deep(case, &oracle) => match &ours {
                Err(r) if r.status == 400 => Ok(()),
                _ => Err("nests deeper than engine-auth's limit: expected a 400"),
            },
            (Answer::Accepted(want), Ok(got)) if want == got => Ok(()),
            (Answer::Accepted(_), Ok(_)) => Err("decoded to another value"),
            (Answer::Accepted(_), Err(_)) => Err("the oracle accepts"),
            (Answer::Refused { .. }, Ok(_)) => Err("the oracle refuses"),
            (Answer::Refused { status, .. }, Err(r)) if r.status != *status => {
                Err("refused with another status")
            }
            (Answer::Refused { .. }, Err(r)) => match oracle.validation_message() {
                Some(m) if m != r.message => Err("refused with another validation message"),
                _ => Ok(()),
            },
        };
        match verdict {
            Ok(()) => tally.agree(),
            Err(why) => {
                let ours = match &ours {
                    Ok(v) => format!("Ok({v})"),
                    Err(r) => format!("Err({} {:?})", r.status, r.message),
                };
                tally.disagree(case, &oracle, ours, why.into());
            }
        }
    }
    tally.finish();
}
