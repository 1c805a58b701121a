//! Attacks on EdDSA tokens over HTTP, each a genuine admin token's claims
//! under a forged header or key: the published public key used as an HS256
//! secret, `alg: none`, a forged `kid`, a key the token brings along
//! (`jwk`) or points to (`jku`, `x5u`), which is never used. A control with the real key shows
//! each refusal is for the one thing changed.

use base64::Engine as _;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::jwks;
use crate::harness::{TestApp, b64, b64_json, claims_of, eddsa, forge, kid_of};

/// `header.claims` signed with an Ed25519 key.
fn ed_signed(header: &Value, claims: &Value, seed: &[u8; 32]) -> String {
    let message = format!("{}.{}", b64_json(header), b64_json(claims));
    let sig = ed25519_dalek::SigningKey::from_bytes(seed).sign(message.as_bytes());
    format!("{message}.{}", b64(&sig.to_bytes()))
}

async fn refused(app: &TestApp, token: &str, what: &str) {
    let msg = app
        .list_users(token)
        .await
        .context(what)
        .error_message(StatusCode::UNAUTHORIZED);
    assert!(msg.contains("Invalid token"), "{what}: {msg}");
}

#[actix_web::test]
async fn confused_algorithms_and_keys_a_token_brings_are_refused() {
    let app = TestApp::spawn_with(|s| eddsa(s, 300)).await;
    let genuine = app.admin_token().await;
    let kid = kid_of(&genuine);
    let claims = claims_of(&genuine);
    let set = jwks(&app).await;
    let x = set["keys"][0]["x"].as_str().expect("x").to_string();
    let public = BASE64_URL_SAFE_NO_PAD.decode(&x).expect("base64url x");
    let attacker: [u8; 32] = rand_seed();

    // Control: the same claims under the real key's signature are fine.
    let secrets = app.key_secrets();
    assert_eq!(secrets.len(), 1);
    let real: [u8; 32] = hex32(&secrets[0]);
    let control = ed_signed(
        &json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}),
        &claims,
        &real,
    );
    app.list_users(&control).await.ok_json();

    // 1. The public key as an HMAC secret: raw, as published, the whole set.
    let set_text = set.to_string();
    for secret in [public.as_slice(), x.as_bytes(), set_text.as_bytes()] {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
        refused(
            &app,
            &forge(&header, &claims, Algorithm::HS256, secret),
            "public key as HS256 secret",
        )
        .await;
    }
    // 2. alg none, any spelling, with and without a trailing signature.
    for alg in ["none", "None", "NONE"] {
        let message = format!(
            "{}.{}",
            b64_json(&json!({"alg": alg, "kid": kid})),
            b64_json(&claims)
        );
        refused(&app, &format!("{message}."), "alg none").await;
        refused(
            &app,
            &format!("{message}.{}", b64(b"sig")),
            "alg none, signed",
        )
        .await;
    }
    // 3. A forged kid: ours on the attacker's signature, an unknown one, none.
    for header in [
        json!({"alg": "EdDSA", "kid": kid}),
        json!({"alg": "EdDSA", "kid": "0123456789abcdef"}),
        json!({"alg": "EdDSA"}),
    ] {
        refused(&app, &ed_signed(&header, &claims, &attacker), "forged kid").await;
    }
    // 4. The attacker's key embedded (jwk) or at an address (jku, x5u),
    // signed by it; and our own genuine signature under such a header.
    let own = b64(ed25519_dalek::SigningKey::from_bytes(&attacker)
        .verifying_key()
        .as_bytes());
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": own, "kid": kid});
    let jku = app.url("/.well-known/jwks.json");
    for (header, what) in [
        (
            json!({"alg": "EdDSA", "kid": kid, "jwk": jwk}),
            "embedded jwk",
        ),
        (
            json!({"alg": "EdDSA", "kid": kid, "jku": "http://127.0.0.1:9/jwks.json"}),
            "jku",
        ),
        (
            json!({"alg": "EdDSA", "kid": kid, "x5u": "http://127.0.0.1:9/cert.pem"}),
            "x5u",
        ),
    ] {
        refused(&app, &ed_signed(&header, &claims, &attacker), what).await;
    }
    // With the real key's signature such a header changes nothing (the
    // key is always the daemon's own, as for HS256: hardening::tokens).
    let ours_with_jku = json!({"alg": "EdDSA", "kid": kid, "jku": jku});
    app.list_users(&ed_signed(&ours_with_jku, &claims, &real))
        .await
        .ok_json();
    // And the daemon still serves the genuine token.
    app.list_users(&genuine).await.ok_json();
}

fn rand_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    seed
}

fn hex32(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}
