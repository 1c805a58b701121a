//! Refresh-token rotation with reuse detection, and the grace window that
//! keeps honest races (two tabs, a retried request) from killing a session.

use reqwest::StatusCode;

use crate::helpers::{
    TestApp, USER_PASSWORD, assert_status, clock_reaches, json_ok, spawn_app_with,
    start_of_a_second,
};

async fn user(app: &TestApp, name: &str) -> String {
    let admin = app.admin().await.token;
    app.create_user(&admin, name, &["read"]).await
}

#[actix_web::test]
async fn a_spent_refresh_token_replayed_after_the_grace_window_kills_the_whole_family() {
    let app = spawn_app_with(|s| s.refresh_grace_secs = 1).await;
    let id = user(&app, "vic").await;
    let stolen = app.login_ok("vic", USER_PASSWORD).await;
    let other_session = app.login_ok("vic", USER_PASSWORD).await;

    // The victim keeps refreshing; every successor is new and works.
    let first = app.refresh_ok(&stolen.refresh_token).await;
    let spent_by = engine_auth::unix_now();
    json_ok(app.own_roles(&first.token, &id).await).await;
    let newest = app.refresh_ok(&first.refresh_token).await;
    assert_ne!(newest.refresh_token, first.refresh_token);
    json_ok(app.own_roles(&newest.token, &id).await).await;

    // The thief replays the first token once the 1 s window is surely over.
    clock_reaches(spent_by + 2).await;
    let msg = assert_status(
        app.refresh(&stolen.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "replay of a spent refresh token",
    )
    .await;
    assert!(msg.contains("already used"), "{msg}");

    // The whole family is dead, the newest descendant included.
    for (what, token) in [
        ("the newest descendant", &newest.refresh_token),
        ("the middle token", &first.refresh_token),
        ("the stolen token again", &stolen.refresh_token),
    ] {
        let resp = app.refresh(token).await;
        assert_status(resp, StatusCode::UNAUTHORIZED, what).await;
    }
    // Another login session of the same user is unaffected; the victim can
    // log in again.
    app.refresh_ok(&other_session.refresh_token).await;
    let again = app.login_ok("vic", USER_PASSWORD).await;
    app.refresh_ok(&again.refresh_token).await;
}

#[actix_web::test]
async fn two_concurrent_refreshes_of_one_token_both_succeed_and_the_family_lives_on() {
    let app = spawn_app_with(|s| s.refresh_grace_secs = 60).await;
    let id = user(&app, "tabs").await;
    let start = app.login_ok("tabs", USER_PASSWORD).await;

    let (a, b) = tokio::join!(
        app.refresh(&start.refresh_token),
        app.refresh(&start.refresh_token)
    );
    let a = crate::helpers::pair_of(&json_ok(a).await);
    let b = crate::helpers::pair_of(&json_ok(b).await);
    assert_ne!(a.refresh_token, start.refresh_token);
    assert_ne!(b.refresh_token, start.refresh_token);
    assert_ne!(
        a.refresh_token, b.refresh_token,
        "siblings are distinct tokens"
    );

    // Either successor carries the session on, and so do theirs.
    json_ok(app.own_roles(&a.token, &id).await).await;
    json_ok(app.own_roles(&b.token, &id).await).await;
    let a2 = app.refresh_ok(&a.refresh_token).await;
    let b2 = app.refresh_ok(&b.refresh_token).await;
    app.refresh_ok(&a2.refresh_token).await;
    app.refresh_ok(&b2.refresh_token).await;
}

#[actix_web::test]
async fn a_sequential_retry_within_the_grace_window_gets_a_working_sibling() {
    let app = spawn_app_with(|s| s.refresh_grace_secs = 60).await;
    let id = user(&app, "retry").await;
    let start = app.login_ok("retry", USER_PASSWORD).await;

    let lost = app.refresh_ok(&start.refresh_token).await;
    let retried = app.refresh_ok(&start.refresh_token).await;
    assert_ne!(retried.refresh_token, lost.refresh_token);

    json_ok(app.own_roles(&retried.token, &id).await).await;
    let next = app.refresh_ok(&retried.refresh_token).await;
    app.refresh_ok(&next.refresh_token).await;
    // The response the client never saw is still a valid sibling.
    app.refresh_ok(&lost.refresh_token).await;
}

/// `--refresh-grace-secs 0` switches the grace window off: presenting a
/// spent token again is reuse, however soon it comes.
#[actix_web::test]
async fn with_a_zero_grace_window_an_immediate_replay_is_reuse() {
    let app = spawn_app_with(|s| s.refresh_grace_secs = 0).await;
    user(&app, "strict").await;
    let start = app.login_ok("strict", USER_PASSWORD).await;

    // Both requests within (most likely) one second of the server's clock.
    start_of_a_second().await;
    let next = app.refresh_ok(&start.refresh_token).await;
    let resp = app.refresh(&start.refresh_token).await;

    assert_status(
        resp,
        StatusCode::UNAUTHORIZED,
        "an immediate replay with refresh_grace_secs = 0",
    )
    .await;
    let resp = app.refresh(&next.refresh_token).await;
    assert_status(
        resp,
        StatusCode::UNAUTHORIZED,
        "the family after the replay",
    )
    .await;
}

/// A refresh token issued before sessions were named in the `jti` (a bare
/// random `jti` with its own record in the store) keeps working after an
/// upgrade: it rotates into a token of the new layout for the same
/// session, and replaying it afterwards still revokes the session.
#[actix_web::test]
async fn a_refresh_token_from_the_previous_store_layout_rotates_into_the_new_one() {
    use engine_auth::store::SessionRecord;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    let app = spawn_app_with(|s| s.refresh_grace_secs = 0).await;
    let id = user(&app, "upgraded").await;
    let store = &app.state.store;
    let now = app.clock.now();
    let family = uuid::Uuid::new_v4();
    let jti = "00112233445566778899aabbccddeeff";
    let session = SessionRecord {
        user_id: id.parse().expect("uuid"),
        created_at: now,
        expires_at: now + 86_400,
        last_exp: now + 3600,
        revoked_at: None,
        live: Vec::new(),
        spent: Vec::new(),
    };
    store
        .start_legacy_session(
            family,
            &engine_auth::tokens::hash_jti(jti),
            &session,
            now + 3600,
        )
        .expect("old-layout session");
    let active = store.active_kid().expect("active kid");
    let key = store
        .keys()
        .expect("keys")
        .into_iter()
        .find(|k| k.kid == active)
        .expect("active key record");
    let secret: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&key.secret_hex[i..i + 2], 16).expect("hex"))
        .collect();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(active);
    let claims = serde_json::json!({
        "_id": id, "refreshToken": true, "iat": now, "exp": now + 3600, "gen": 0, "jti": jti,
    });
    let old = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret))
        .expect("sign an old-layout token");

    let next = app.refresh_ok(&old).await;
    let new_jti = crate::helpers::claims_of(&next.refresh_token)["jti"]
        .as_str()
        .expect("jti")
        .to_string();
    assert!(
        new_jti.starts_with(&format!("{}.", family.simple())),
        "the successor names the old session: {new_jti}"
    );
    let newest = app.refresh_ok(&next.refresh_token).await;
    json_ok(app.own_roles(&newest.token, &id).await).await;

    let msg = assert_status(
        app.refresh(&old).await,
        StatusCode::UNAUTHORIZED,
        "replay of the spent old-layout token",
    )
    .await;
    assert!(msg.contains("already used"), "{msg}");
    assert_status(
        app.refresh(&newest.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "the session is revoked",
    )
    .await;
}
