//! Refresh-token rotation with reuse detection, and the grace window that
//! keeps honest races (two tabs, a retried request) from killing a session.

use crate::harness::{TestApp, USER_PASSWORD, start_of_a_second};
use reqwest::StatusCode;

async fn user(app: &TestApp, name: &str) -> String {
    let admin = app.admin_tokens().await.token;
    app.add_user(&admin, name, &["read"]).await
}

#[actix_web::test]
async fn a_spent_refresh_token_replayed_after_the_grace_window_kills_the_whole_family() {
    let app = TestApp::spawn_with(|s| s.refresh_grace_secs = 1).await;
    let id = user(&app, "vic").await;
    let stolen = app.login_ok("vic", USER_PASSWORD).await;
    let other_session = app.login_ok("vic", USER_PASSWORD).await;

    // The victim keeps refreshing; every successor is new and works.
    let first = app.refresh_ok(&stolen.refresh_token).await;
    app.roles_of(&first.token, &id).await.ok_json();
    let newest = app.refresh_ok(&first.refresh_token).await;
    assert_ne!(newest.refresh_token, first.refresh_token);
    app.roles_of(&newest.token, &id).await.ok_json();

    // The thief replays the first token once the 1 s window is over.
    app.clock.advance(2);
    let msg = app
        .refresh(&stolen.refresh_token)
        .await
        .context("replay of a spent refresh token")
        .error_message(StatusCode::UNAUTHORIZED);
    assert!(msg.contains("already used"), "{msg}");

    // The whole family is dead, the newest descendant included.
    for (what, token) in [
        ("the newest descendant", &newest.refresh_token),
        ("the middle token", &first.refresh_token),
        ("the stolen token again", &stolen.refresh_token),
    ] {
        let resp = app.refresh(token).await;
        resp.context(what).error_message(StatusCode::UNAUTHORIZED);
    }
    // Another login session of the same user is unaffected; the victim can
    // log in again.
    app.refresh_ok(&other_session.refresh_token).await;
    let again = app.login_ok("vic", USER_PASSWORD).await;
    app.refresh_ok(&again.refresh_token).await;
}

/// Two tabs (or a double-submitted request) refreshing one token at once
/// both get a successor, but a session is one chain: the first successor
/// used again retires the other (security review finding 8; before it,
/// both chains lived on independently).
#[actix_web::test]
async fn two_concurrent_refreshes_of_one_token_both_succeed_but_only_one_carries_on() {
    let app = TestApp::spawn_with(|s| s.refresh_grace_secs = 60).await;
    let id = user(&app, "tabs").await;
    let start = app.login_ok("tabs", USER_PASSWORD).await;

    let (a, b) = tokio::join!(
        app.refresh(&start.refresh_token),
        app.refresh(&start.refresh_token)
    );
    let a = a.token_pair();
    let b = b.token_pair();
    assert_ne!(a.refresh_token, start.refresh_token);
    assert_ne!(b.refresh_token, start.refresh_token);
    assert_ne!(
        a.refresh_token, b.refresh_token,
        "siblings are distinct tokens"
    );

    // Both access tokens work; one successor carries the session on.
    app.roles_of(&a.token, &id).await.ok_json();
    app.roles_of(&b.token, &id).await.ok_json();
    let a2 = app.refresh_ok(&a.refresh_token).await;
    app.roles_of(&a2.token, &id).await.ok_json();

    // The other is retired: using it is reuse, and the session ends.
    let msg = app
        .refresh(&b.refresh_token)
        .await
        .context("the retired sibling")
        .error_message(StatusCode::UNAUTHORIZED);
    assert!(msg.contains("already used"), "{msg}");
    app.refresh(&a2.refresh_token)
        .await
        .context("the chain that carried on, after the reuse")
        .error_message(StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_sequential_retry_within_the_grace_window_gets_a_working_sibling() {
    let app = TestApp::spawn_with(|s| s.refresh_grace_secs = 60).await;
    let id = user(&app, "retry").await;
    let start = app.login_ok("retry", USER_PASSWORD).await;

    let lost = app.refresh_ok(&start.refresh_token).await;
    let retried = app.refresh_ok(&start.refresh_token).await;
    assert_ne!(retried.refresh_token, lost.refresh_token);

    app.roles_of(&retried.token, &id).await.ok_json();
    let next = app.refresh_ok(&retried.refresh_token).await;
    let newest = app.refresh_ok(&next.refresh_token).await;
    // The response the client never saw was retired when its sibling was
    // used: whoever presents it now is replaying it.
    let msg = app
        .refresh(&lost.refresh_token)
        .await
        .context("the lost response's token, after its sibling carried on")
        .error_message(StatusCode::UNAUTHORIZED);
    assert!(msg.contains("already used"), "{msg}");
    app.refresh(&newest.refresh_token)
        .await
        .context("the session after the replay")
        .error_message(StatusCode::UNAUTHORIZED);
}

/// `--refresh-grace-secs 0` switches the grace window off: presenting a
/// spent token again is reuse, however soon it comes.
#[actix_web::test]
async fn with_a_zero_grace_window_an_immediate_replay_is_reuse() {
    let app = TestApp::spawn_with(|s| s.refresh_grace_secs = 0).await;
    user(&app, "strict").await;
    let start = app.login_ok("strict", USER_PASSWORD).await;

    // Both requests within (most likely) one second of the server's clock.
    start_of_a_second().await;
    let next = app.refresh_ok(&start.refresh_token).await;
    let resp = app.refresh(&start.refresh_token).await;

    resp.context("an immediate replay with refresh_grace_secs = 0")
        .error_message(StatusCode::UNAUTHORIZED);
    let resp = app.refresh(&next.refresh_token).await;
    resp.context("the family after the replay")
        .error_message(StatusCode::UNAUTHORIZED);
}

/// A refresh token issued before sessions were named in the `jti` (a bare
/// random `jti` with its own record in the store) keeps working after an
/// upgrade: it rotates into a token of the new layout for the same
/// session, and replaying it afterwards still revokes the session.
#[actix_web::test]
async fn a_refresh_token_from_the_previous_store_layout_rotates_into_the_new_one() {
    let app = TestApp::spawn_with(|s| s.refresh_grace_secs = 0).await;
    let id = user(&app, "upgraded").await;
    let (old, family) = app.legacy_refresh_token(&id);

    let next = app.refresh_ok(&old).await;
    let new_jti = crate::harness::claims_of(&next.refresh_token)["jti"]
        .as_str()
        .expect("jti")
        .to_string();
    assert!(
        new_jti.starts_with(&format!("{}.", family.simple())),
        "the successor names the old session: {new_jti}"
    );
    let newest = app.refresh_ok(&next.refresh_token).await;
    app.roles_of(&newest.token, &id).await.ok_json();

    let msg = app
        .refresh(&old)
        .await
        .context("replay of the spent old-layout token")
        .error_message(StatusCode::UNAUTHORIZED);
    assert!(msg.contains("already used"), "{msg}");
    app.refresh(&newest.refresh_token)
        .await
        .context("the session is revoked")
        .error_message(StatusCode::UNAUTHORIZED);
}
