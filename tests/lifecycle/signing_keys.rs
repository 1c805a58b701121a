//! Signing keys in process: a rotation retires the active key without
//! logging anyone out; housekeeping deletes a retired key only once no token
//! it signed can still be valid, and rotates a key that is too old.
//! Housekeeping is run with the server's settings and a clock moved forward.

use engine_auth::accounts::Actor;
use engine_auth::audit::Origin;
use engine_auth::store::KeyState;
use reqwest::StatusCode;
use std::collections::BTreeMap;

use crate::helpers::{TestApp, assert_status, json_ok, kid_of, spawn_app, spawn_app_with};

/// Runs one round of housekeeping against the running server's store and
/// keyring, with its clock `ahead` seconds later than the server's.
async fn housekeeping_at(app: &TestApp, ahead: i64) {
    let state = app.state.clone();
    let now = app.clock.now().saturating_add_signed(ahead);
    tokio::task::spawn_blocking(move || {
        engine_auth::lifecycle::housekeeping(&state.store, &state.tokens, &state.settings, now)
    })
    .await
    .expect("housekeeping task")
    .expect("housekeeping");
}

/// Every stored key's state, by kid.
fn keys(app: &TestApp) -> BTreeMap<String, KeyState> {
    app.state
        .store
        .keys()
        .expect("keys")
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect()
}

fn expect(keys: &[(&str, KeyState)]) -> BTreeMap<String, KeyState> {
    keys.iter().map(|(k, s)| (k.to_string(), *s)).collect()
}

#[actix_web::test]
async fn a_rotation_keeps_earlier_tokens_valid_and_signs_new_ones_with_the_new_key() {
    let app = spawn_app().await;
    let before = app.admin().await;
    let old_kid = kid_of(&before.token);

    let new_kid = app
        .state
        .accounts()
        .rotate_signing_key(Actor::Operator, &Origin::Daemon)
        .await
        .expect("rotation");

    assert_ne!(new_kid, old_kid);
    assert_eq!(
        keys(&app),
        expect(&[(&old_kid, KeyState::Retired), (&new_kid, KeyState::Active)])
    );
    json_ok(app.list_users(&before.token).await).await;
    let refreshed = app.refresh_ok(&before.refresh_token).await;
    assert_eq!(kid_of(&refreshed.token), new_kid);
    assert_eq!(kid_of(&refreshed.refresh_token), new_kid);
    let after = app.admin().await;
    assert_eq!(kid_of(&after.token), new_kid);
    json_ok(app.list_users(&after.token).await).await;
}

#[actix_web::test]
async fn a_retired_key_is_deleted_once_nothing_it_signed_can_be_valid_and_not_before() {
    // Every token lives at most 60 s and there is no leeway.
    let app = spawn_app_with(|s| {
        s.access_ttl_secs = 60;
        s.refresh_ttl_secs = 60;
        s.session_max_secs = 60;
        s.leeway_secs = 0;
    })
    .await;
    let old = app.admin().await;
    let old_kid = kid_of(&old.token);
    let new_kid = app
        .state
        .accounts()
        .rotate_signing_key(Actor::Operator, &Origin::Daemon)
        .await
        .expect("rotation");

    // 30 s later a token the old key signed may still be valid: kept.
    housekeeping_at(&app, 30).await;
    assert_eq!(
        keys(&app),
        expect(&[(&old_kid, KeyState::Retired), (&new_kid, KeyState::Active)]),
        "the retired key was deleted too early"
    );
    json_ok(app.list_users(&old.token).await).await;

    // 120 s later nothing it signed can be valid: deleted, from the store
    // and from the running keyring.
    housekeeping_at(&app, 120).await;
    assert_eq!(keys(&app), expect(&[(&new_kid, KeyState::Active)]));
    assert_eq!(app.state.store.active_kid().expect("active kid"), new_kid);
    let msg = assert_status(
        app.list_users(&old.token).await,
        StatusCode::UNAUTHORIZED,
        "a token signed with the deleted key",
    )
    .await;
    // Refused for its key, not for its age: the server's own clock has not
    // moved.
    assert!(msg.contains("Invalid token"), "{msg}");
    let resp = app.refresh(&old.refresh_token).await;
    assert_status(
        resp,
        StatusCode::UNAUTHORIZED,
        "a refresh token of the deleted key",
    )
    .await;

    let fresh = app.admin().await;
    assert_eq!(kid_of(&fresh.token), new_kid);
    json_ok(app.list_users(&fresh.token).await).await;
    app.refresh_ok(&fresh.refresh_token).await;
}

#[actix_web::test]
async fn housekeeping_rotates_a_key_older_than_its_maximum_age_without_logging_anyone_out() {
    let app = spawn_app_with(|s| s.key_max_age_secs = 1000).await;
    let before = app.admin().await;
    let old_kid = kid_of(&before.token);

    housekeeping_at(&app, 500).await;
    assert_eq!(keys(&app), expect(&[(&old_kid, KeyState::Active)]));

    housekeeping_at(&app, 2000).await;
    let new_kid = app.state.store.active_kid().expect("active kid");
    assert_ne!(new_kid, old_kid, "the old key was not rotated");
    assert_eq!(
        keys(&app),
        expect(&[(&old_kid, KeyState::Retired), (&new_kid, KeyState::Active)])
    );
    json_ok(app.list_users(&before.token).await).await;
    let fresh = app.admin().await;
    assert_eq!(kid_of(&fresh.token), new_kid);
}
