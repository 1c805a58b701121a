//! Independent verifiers against the real binary: PyJWT's `PyJWKClient`
//! and the `jose` npm package run as services that fetched the daemon's
//! key set and keep it for its `max-age` (3 s here, so the test waits
//! little). Both verify a token, keep verifying across a rotation (jose
//! never fetching sooner than the max-age, even for an unknown `kid`: the
//! daemon must publish a key before it signs with it), and refuse tokens
//! whose key has been deleted once their cached set has expired.

use std::time::{Duration, Instant};

use crate::harness::{Sandbox, Verifier, VerifierKind, claims_of, kid_of, store, with_payload};

const MAX_AGE: u64 = 3;

/// Sleeps until `secs` (plus a margin) have passed since `since`.
fn wait_past(since: Instant, secs: u64) {
    let until = since + Duration::from_millis(secs * 1000 + 600);
    if let Some(left) = until.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
}

async fn follows_rotation_and_refuses_deleted_keys(kind: VerifierKind, alg: &str) {
    let sb = Sandbox::new();
    let max_age = MAX_AGE.to_string();
    let mut daemon = sb
        .daemon()
        .args(&["--signing-alg", alg, "--jwks-max-age-secs", &max_age])
        .start();
    let rows = sb.cli_ok(&["keys", "list"], &[]);
    assert!(rows.lines().next().unwrap().contains("alg"), "{rows}");
    assert!(
        rows.contains(&format!("\t{alg}\t")),
        "keys list shows the algorithm: {rows}"
    );

    let first = daemon.admin_tokens().await;
    let admin_id = claims_of(&first.token)["_id"].as_str().unwrap().to_string();
    let k1 = kid_of(&first.token);
    let url = daemon.url("/.well-known/jwks.json");
    let mut v = Verifier::start(kind, &url, MAX_AGE, alg);
    assert_eq!(
        crate::harness::decode_jwt(&first.token).0["alg"],
        alg,
        "signed with {alg}"
    );
    let fetched = Instant::now();
    assert_eq!(v.verify(&first.token), Ok(admin_id.clone()));
    // A control: the verifier does check (a changed payload is refused).
    let mut claims = claims_of(&first.token);
    claims["roles"] = serde_json::json!(255);
    assert!(v.verify(&with_payload(&first.token, &claims)).is_err());

    // A rotation (an admin's POST /keys/rotate: done when it answers). The
    // new key is published at once but signs only once verifiers' cached
    // sets have expired; meanwhile k1 signs.
    let rotate = serde_json::json!({"revokePrevious": false});
    daemon
        .post_json("/keys/rotate", Some(&first.token), &rotate)
        .await
        .ok_json();
    let rotated = Instant::now();
    assert_eq!(sb.keys_list().len(), 2);
    let during = daemon.admin_tokens().await;
    assert_eq!(
        kid_of(&during.token),
        k1,
        "a key signed before it was published long enough"
    );
    assert_eq!(v.verify(&during.token), Ok(admin_id.clone()));
    assert_eq!(v.verify(&first.token), Ok(admin_id.clone()));

    // Key times are whole seconds: the new key waits up to one more.
    wait_past(rotated.max(fetched), MAX_AGE + 1);
    let after = daemon.admin_tokens().await;
    let k2 = kid_of(&after.token);
    assert_ne!(k2, k1);
    assert_eq!(
        v.verify(&after.token),
        Ok(admin_id.clone()),
        "{kind:?} after the rotation"
    );
    assert_eq!(v.verify(&first.token), Ok(admin_id.clone()));
    assert_eq!(v.verify(&during.token), Ok(admin_id.clone()));

    // Every earlier key deleted (a suspected leak): the new key signs at
    // once, and once the verifier's set has expired, what the deleted keys
    // signed is refused.
    sb.cli_ok(&["keys", "rotate", "--revoke-previous"], &[]);
    let revoked = Instant::now();
    let last = daemon.admin_tokens().await;
    let k3 = kid_of(&last.token);
    assert!(k3 != k1 && k3 != k2);
    wait_past(revoked, MAX_AGE);
    assert_eq!(v.verify(&last.token), Ok(admin_id.clone()));
    for (what, token) in [("k1", &first.token), ("k2", &after.token)] {
        let refused = v.verify(token);
        assert!(
            refused.is_err(),
            "{kind:?} accepted a token of deleted key {what}"
        );
    }
    // A verifier starting now refuses them too.
    v.fresh();
    assert!(v.verify(&first.token).is_err());
    assert_eq!(v.verify(&last.token), Ok(admin_id));
    drop(v);

    // The private keys were never logged.
    daemon.terminate();
    let secrets = store::key_secrets(&sb.data());
    assert!(!secrets.is_empty());
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    sb.assert_logs_free_of(&refs);
}

#[actix_web::test]
async fn pyjwt_verifies_across_a_rotation_and_refuses_a_deleted_key() {
    follows_rotation_and_refuses_deleted_keys(VerifierKind::PyJwt, "EdDSA").await;
}

#[actix_web::test]
async fn jose_verifies_across_a_rotation_and_refuses_a_deleted_key() {
    follows_rotation_and_refuses_deleted_keys(VerifierKind::Jose, "EdDSA").await;
}

#[actix_web::test]
async fn pyjwt_verifies_es256_across_a_rotation_and_refuses_a_deleted_key() {
    follows_rotation_and_refuses_deleted_keys(VerifierKind::PyJwt, "ES256").await;
}

#[actix_web::test]
async fn jose_verifies_es256_across_a_rotation_and_refuses_a_deleted_key() {
    follows_rotation_and_refuses_deleted_keys(VerifierKind::Jose, "ES256").await;
}
