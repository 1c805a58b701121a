//! The published key set: what is in it, at both addresses, how long it
//! may be cached, and how a new key enters it before it signs.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};
use reqwest::StatusCode;
use serde_json::json;

use super::{jwks, kids};
use crate::harness::{TestApp, b64, decode_jwt, eddsa, kid_of, send};
use engine_auth::keys::KeyAlg;

#[actix_web::test]
async fn hs256_secrets_are_never_published_and_the_set_is_cacheable_for_its_max_age() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    assert_eq!(decode_jwt(&token).0["alg"], "HS256");
    for url in [app.url("/.well-known/jwks.json"), app.api("/jwks.json")] {
        let reply = send(app.client.get(&url)).await;
        assert_eq!(reply.ok_json(), json!({"keys": []}), "{url}");
        assert_eq!(
            reply.header("cache-control"),
            Some("public, max-age=300"),
            "{url}"
        );
        assert!(
            reply
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{url}"
        );
    }
    let reply = send(app.client.post(app.url("/.well-known/jwks.json"))).await;
    reply.error(StatusCode::METHOD_NOT_ALLOWED);
}

#[actix_web::test]
async fn the_eddsa_key_is_published_without_its_private_half_and_verifies_the_tokens() {
    let app = TestApp::spawn_with(|s| eddsa(s, 120)).await;
    let pair = app.admin_tokens().await;
    let (header, claims) = decode_jwt(&pair.token);
    assert_eq!(header["alg"], "EdDSA");
    let set = jwks(&app).await;
    assert_eq!(
        set,
        send(app.client.get(app.api("/jwks.json"))).await.ok_json()
    );
    let reply = send(app.client.get(app.url("/.well-known/jwks.json"))).await;
    assert_eq!(reply.header("cache-control"), Some("public, max-age=120"));
    assert_eq!(kids(&set), [kid_of(&pair.token)]);
    let key = &set["keys"][0];
    let mut fields: Vec<&str> = key
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["alg", "crv", "kid", "kty", "use", "x"]);
    assert_eq!(
        (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
        (
            &json!("OKP"),
            &json!("Ed25519"),
            &json!("EdDSA"),
            &json!("sig")
        )
    );
    // The private key (its seed) appears in no form.
    let text = reply.text();
    for secret in app.key_secrets() {
        let bytes = engine_auth_hex(&secret);
        assert!(
            !text.contains(&secret) && !text.contains(&b64(&bytes)),
            "{text}"
        );
    }
    // jsonwebtoken verifies access and refresh tokens with the published key.
    let jwk: Jwk = serde_json::from_value(key.clone()).expect("an RFC 7517 key");
    let decoding = DecodingKey::from_jwk(&jwk).expect("an Ed25519 key");
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_required_spec_claims(&["exp"]);
    for token in [&pair.token, &pair.refresh_token] {
        let verified = jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &v)
            .expect("verifies with the published key");
        assert_eq!(verified.claims["_id"], claims["_id"]);
    }
    // The daemon itself accepts its EdDSA tokens.
    app.list_users(&pair.token).await.ok_json();
    app.refresh_ok(&pair.refresh_token).await;
}

fn engine_auth_hex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

#[actix_web::test]
async fn switching_to_eddsa_is_a_rotation_whose_key_is_published_before_it_signs() {
    let app = TestApp::spawn().await;
    let hs = app.admin_tokens().await;
    let hs_kid = kid_of(&hs.token);
    let clock = app.clock.clone();
    let dir = app.stop().await;

    let app = TestApp::spawn_in(dir, clock, |s| eddsa(s, 300)).await;
    let algs = app.key_algs();
    assert_eq!(algs.len(), 2, "{algs:?}");
    assert_eq!(algs[&hs_kid], "HS256");
    let ed_kid = app.active_kid();
    assert_eq!(algs[&ed_kid], "EdDSA");
    assert_eq!(app.key_states()[&hs_kid], "Retired");
    // Published at once, HS256 still not.
    assert_eq!(kids(&jwks(&app).await), [ed_kid.as_str()]);
    // Tokens signed before stay valid.
    app.list_users(&hs.token).await.ok_json();
    app.refresh_ok(&hs.refresh_token).await;
    // For one cache lifetime the previous key still signs: a verifier that
    // fetched the set just before the switch has not seen the new key yet.
    // (The server's clock is the system's, moved: a few seconds of
    // margin around each boundary, which `tokens.rs`' unit tests check to
    // the second.)
    let during = app.admin_tokens().await;
    assert_eq!(kid_of(&during.token), hs_kid);
    app.clock.advance(295);
    assert_eq!(kid_of(&app.admin_tokens().await.token), hs_kid);
    app.clock.advance(6);
    let after = app.admin_tokens().await;
    assert_eq!(kid_of(&after.token), ed_kid);
    assert_eq!(decode_jwt(&after.token).0["alg"], "EdDSA");
    app.list_users(&after.token).await.ok_json();
    app.list_users(&during.token).await.ok_json();

    // An EdDSA rotation: both keys published, the old one signing until
    // the new one has been published for the cache lifetime.
    let newer = app.rotate_key().await;
    let set = jwks(&app).await;
    assert_eq!(kids(&set), [newer.as_str(), ed_kid.as_str()]);
    assert_eq!(kid_of(&app.admin_tokens().await.token), ed_kid);
    app.clock.advance(295);
    assert_eq!(kid_of(&app.admin_tokens().await.token), ed_kid);
    app.clock.advance(6);
    assert_eq!(kid_of(&app.admin_tokens().await.token), newer);

    // The retired key signed until its successor had been published for
    // the cache lifetime (a few seconds ago); it stays published while
    // those tokens can be valid (refresh 12 h, leeway 60 s) plus one more
    // cache lifetime, then housekeeping deletes it.
    let life: i64 = 12 * 3600 + 60;
    app.housekeeping_at(life + 300 - 10).await;
    assert!(kids(&jwks(&app).await).contains(&ed_kid));
    app.housekeeping_at(life + 300 + 5).await;
    assert_eq!(kids(&jwks(&app).await), [newer.as_str()]);

    // Revoking every earlier key: the new key signs at once (nothing else
    // may), and the set holds only it.
    let revoked = app.revoke_previous_keys().await;
    assert_eq!(kids(&jwks(&app).await), [revoked.as_str()]);
    assert_eq!(kid_of(&app.admin_tokens().await.token), revoked);
}

#[actix_web::test]
async fn switching_from_eddsa_to_es256_publishes_both_kinds_of_key_and_keeps_old_tokens_valid() {
    let app = TestApp::spawn_with(|s| eddsa(s, 300)).await;
    let ed = app.admin_tokens().await;
    let ed_kid = kid_of(&ed.token);
    let clock = app.clock.clone();
    let dir = app.stop().await;

    let app = TestApp::spawn_in(dir, clock, |s| {
        eddsa(s, 300);
        s.signing_alg = KeyAlg::ES256;
    })
    .await;
    let ec_kid = app.active_kid();
    assert_eq!(app.key_algs()[&ec_kid], "ES256");
    // Both published, the new (active) one first: an EC key and an OKP key.
    let set = jwks(&app).await;
    assert_eq!(kids(&set), [ec_kid.as_str(), ed_kid.as_str()]);
    let ec = &set["keys"][0];
    assert_eq!(
        (&ec["kty"], &ec["crv"], &ec["alg"], &ec["use"]),
        (
            &json!("EC"),
            &json!("P-256"),
            &json!("ES256"),
            &json!("sig")
        )
    );
    assert!(ec.get("d").is_none(), "never the private scalar: {ec}");
    assert_eq!(set["keys"][1]["kty"], "OKP");
    // The EdDSA key signs for one more cache lifetime, then the ES256 one.
    assert_eq!(kid_of(&app.admin_tokens().await.token), ed_kid);
    app.clock.advance(301);
    let after = app.admin_tokens().await;
    assert_eq!(kid_of(&after.token), ec_kid);
    assert_eq!(decode_jwt(&after.token).0["alg"], "ES256");
    // Each token verifies with its published key (jsonwebtoken's JWK
    // path), and the daemon accepts both kinds.
    for (token, k, alg) in [
        (&after.token, &set["keys"][0], Algorithm::ES256),
        (&ed.token, &set["keys"][1], Algorithm::EdDSA),
    ] {
        let jwk: Jwk = serde_json::from_value(k.clone()).expect("a JWK");
        let mut v = Validation::new(alg);
        v.validate_exp = false;
        v.set_required_spec_claims::<&str>(&[]);
        let key = DecodingKey::from_jwk(&jwk).expect("its key");
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).expect("verifies");
        app.list_users(token).await.ok_json();
    }
    app.refresh_ok(&ed.refresh_token).await;
}
