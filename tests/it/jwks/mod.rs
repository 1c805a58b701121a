//! Tokens other services verify on their own, and what a monitoring stack
//! scrapes (`cargo test --test it jwks::`):
//!
//! - `published`: the key set at both addresses (EdDSA public keys only,
//!   cacheable for `--jwks-max-age-secs`), a switch of `--signing-alg` as
//!   a rotation, a new key published before it signs.
//! - `attacks`: algorithm confusion and keys a token brings along, over HTTP.
//! - `verifiers`: PyJWT's `PyJWKClient` and the `jose` npm package, as
//!   long-lived services with cached key sets, verifying the real daemon's
//!   tokens across a rotation and refusing them once their key is deleted.
//! - `metrics`: `--metrics-listen`, every metric exercised, the scrape
//!   checked by Debian's `promtool check metrics`.

mod attacks;
mod metrics;
mod published;
mod verifiers;

use crate::harness::Api;
use serde_json::Value;

/// The JWKS as served at `/.well-known/jwks.json`, checked to be cacheable.
pub async fn jwks(api: &Api) -> Value {
    let reply = crate::harness::send(api.client.get(api.url("/.well-known/jwks.json"))).await;
    reply.ok_json()
}

/// The published kids, in the set's order.
pub fn kids(set: &Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .expect("a JWKS has a keys array")
        .iter()
        .map(|k| k["kid"].as_str().expect("every key has a kid").to_string())
        .collect()
}
