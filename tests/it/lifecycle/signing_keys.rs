//! Signing keys in process: a rotation retires the active key without
//! logging anyone out; housekeeping deletes a retired key only once no token
//! it signed can still be valid, and rotates a key that is too old.
//! Housekeeping is run with the server's settings and a clock moved forward.

use crate::harness::{TestApp, kid_of};
use reqwest::StatusCode;
use std::collections::BTreeMap;

/// The expected key states, by kid.
fn expect(keys: &[(&str, &str)]) -> BTreeMap<String, String> {
    keys.iter()
        .map(|(k, s)| (k.to_string(), s.to_string()))
        .collect()
}

#[actix_web::test]
async fn a_rotation_keeps_earlier_tokens_valid_and_signs_new_ones_with_the_new_key() {
    let app = TestApp::spawn().await;
    let before = app.admin_tokens().await;
    let old_kid = kid_of(&before.token);

    let new_kid = app.rotate_key().await;

    assert_ne!(new_kid, old_kid);
    assert_eq!(
        app.key_states(),
        expect(&[(&old_kid, "Retired"), (&new_kid, "Active")])
    );
    app.list_users(&before.token).await.ok_json();
    let refreshed = app.refresh_ok(&before.refresh_token).await;
    assert_eq!(kid_of(&refreshed.token), new_kid);
    assert_eq!(kid_of(&refreshed.refresh_token), new_kid);
    let after = app.admin_tokens().await;
    assert_eq!(kid_of(&after.token), new_kid);
    app.list_users(&after.token).await.ok_json();
}

#[actix_web::test]
async fn a_retired_key_is_deleted_once_nothing_it_signed_can_be_valid_and_not_before() {
    // Every token lives at most 60 s and there is no leeway.
    let app = TestApp::spawn_with(|s| {
        s.access_ttl_secs = 60;
        s.refresh_ttl_secs = 60;
        s.session_max_secs = 60;
        s.leeway_secs = 0;
    })
    .await;
    let old = app.admin_tokens().await;
    let old_kid = kid_of(&old.token);
    let new_kid = app.rotate_key().await;

    // 30 s later a token the old key signed may still be valid: kept.
    app.housekeeping_at(30).await;
    assert_eq!(
        app.key_states(),
        expect(&[(&old_kid, "Retired"), (&new_kid, "Active")]),
        "the retired key was deleted too early"
    );
    app.list_users(&old.token).await.ok_json();

    // 120 s later nothing it signed can be valid: deleted, from the store
    // and from the running keyring.
    app.housekeeping_at(120).await;
    assert_eq!(app.key_states(), expect(&[(&new_kid, "Active")]));
    assert_eq!(app.active_kid(), new_kid);
    let msg = app
        .list_users(&old.token)
        .await
        .context("a token signed with the deleted key")
        .error_message(StatusCode::UNAUTHORIZED);
    // Refused for its key, not for its age: the server's own clock has not
    // moved.
    assert!(msg.contains("Invalid token"), "{msg}");
    let resp = app.refresh(&old.refresh_token).await;
    resp.context("a refresh token of the deleted key")
        .error_message(StatusCode::UNAUTHORIZED);

    let fresh = app.admin_tokens().await;
    assert_eq!(kid_of(&fresh.token), new_kid);
    app.list_users(&fresh.token).await.ok_json();
    app.refresh_ok(&fresh.refresh_token).await;
}

#[actix_web::test]
async fn housekeeping_rotates_a_key_older_than_its_maximum_age_without_logging_anyone_out() {
    let app = TestApp::spawn_with(|s| s.key_max_age_secs = 1000).await;
    let before = app.admin_tokens().await;
    let old_kid = kid_of(&before.token);

    app.housekeeping_at(500).await;
    assert_eq!(app.key_states(), expect(&[(&old_kid, "Active")]));

    app.housekeeping_at(2000).await;
    let new_kid = app.active_kid();
    assert_ne!(new_kid, old_kid, "the old key was not rotated");
    assert_eq!(
        app.key_states(),
        expect(&[(&old_kid, "Retired"), (&new_kid, "Active")])
    );
    app.list_users(&before.token).await.ok_json();
    let fresh = app.admin_tokens().await;
    assert_eq!(kid_of(&fresh.token), new_kid);
}
