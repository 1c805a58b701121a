//! Security review finding 8: the grace window must not fork a session.
//! Twenty concurrent refreshes of one token used to give up to eight
//! siblings that all rotated independently, so a thief who replayed a
//! token within the window got an undetected parallel session. A session
//! has one chain: a retry within the window still gets a sibling, but the
//! first successor used for a further refresh retires the others, and any
//! other used afterwards is reuse (the whole session is revoked).

use crate::harness::{TestApp, TokenPair, USER_PASSWORD};
use reqwest::StatusCode;

const GRACE: u64 = 10;
const RACERS: u8 = 20;

async fn spawn() -> (TestApp, String) {
    let app = TestApp::spawn_with(|s| {
        s.refresh_grace_secs = GRACE;
        // Victim and thief share 127.0.0.1 here, and every probe of a
        // revoked session is a failure; throttling is tested elsewhere.
        s.throttle.per_address = 1000;
    })
    .await;
    let admin = app.admin_tokens().await.token;
    let id = app.add_user(&admin, "gw", &["read"]).await;
    (app, id)
}

/// `RACERS` concurrent refreshes of `token`, each from its own address (a
/// thief replaying from many places; the refusals then stay off the
/// throttle of 127.0.0.1). Returns the successors issued, all distinct;
/// every other racer was refused with 401.
async fn race(app: &TestApp, token: &str) -> Vec<TokenPair> {
    let mut racers = tokio::task::JoinSet::new();
    for i in 1..=RACERS {
        let api = app.calling_from(&format!("127.0.8.{i}"));
        let token = token.to_owned();
        racers.spawn(async move { api.refresh(&token).await });
    }
    let mut successors: Vec<TokenPair> = Vec::new();
    while let Some(reply) = racers.join_next().await {
        let reply = reply.expect("a racer panicked");
        if reply.status() == StatusCode::OK {
            successors.push(reply.token_pair());
        } else {
            reply
                .context("a racer that got no successor")
                .error(StatusCode::UNAUTHORIZED);
        }
    }
    let mut distinct: Vec<&str> = successors.iter().map(|p| &*p.refresh_token).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), successors.len(), "successors are distinct");
    assert!(!distinct.contains(&token), "every successor is new");
    successors
}

/// A login raced by `RACERS` refreshes: the first token and its successors
/// (at least two, or the test would prove nothing).
async fn raced_session(app: &TestApp) -> (TokenPair, Vec<TokenPair>) {
    let start = app.login_ok("gw", USER_PASSWORD).await;
    let successors = race(app, &start.refresh_token).await;
    assert!(
        successors.len() >= 2,
        "the grace window gives retries siblings: {} successors",
        successors.len()
    );
    (start, successors)
}

/// Refreshes with `first`, then with `second` (another successor of the
/// same token): the second is reuse, and afterwards no refresh token of
/// the session works.
async fn assert_fork_is_reuse(
    app: &TestApp,
    start: &TokenPair,
    successors: &[TokenPair],
    (first, second): (usize, usize),
    when: &str,
) {
    let carried_on = app.refresh_ok(&successors[first].refresh_token).await;
    let msg = app
        .refresh(&successors[second].refresh_token)
        .await
        .context(&format!(
            "{when}: successor #{second} used after successor #{first}"
        ))
        .error_message(StatusCode::UNAUTHORIZED);
    assert!(msg.contains("already used"), "{when}: {msg}");

    let mut every = vec![&carried_on.refresh_token, &start.refresh_token];
    every.extend(successors.iter().map(|p| &p.refresh_token));
    for (i, token) in every.into_iter().enumerate() {
        app.refresh(token)
            .await
            .context(&format!(
                "{when}: refresh token #{i} of the revoked session"
            ))
            .error(StatusCode::UNAUTHORIZED);
    }
}

#[actix_web::test]
async fn after_the_window_two_successors_of_one_token_cannot_both_carry_on() {
    let (app, _) = spawn().await;
    // Several pairs, each in a session of its own (the first trip revokes).
    for (first, second) in [(0, 1), (1, 0), (usize::MAX, 0)] {
        let (start, successors) = raced_session(&app).await;
        let first = first.min(successors.len() - 1);
        app.clock.advance(GRACE as i64 + 1);
        assert_fork_is_reuse(
            &app,
            &start,
            &successors,
            (first, second),
            "after the window",
        )
        .await;
    }
}

#[actix_web::test]
async fn a_thief_replaying_within_the_window_gets_no_parallel_session() {
    let (app, _) = spawn().await;
    let (start, successors) = raced_session(&app).await;
    // Neither side waits: the second use comes within the same window.
    let last = successors.len() - 1;
    assert_fork_is_reuse(&app, &start, &successors, (last, 0), "within the window").await;
}

#[actix_web::test]
async fn without_a_replay_the_one_chain_lives_on() {
    let (app, id) = spawn().await;
    let (_, successors) = raced_session(&app).await;
    // The client keeps one of the responses; the others are never used.
    let mut current = successors.last().expect("a successor").clone();
    for _ in 0..3 {
        app.clock.advance(GRACE as i64 + 1);
        current = app.refresh_ok(&current.refresh_token).await;
        app.roles_of(&current.token, &id).await.ok_json();
    }
}

#[actix_web::test]
async fn a_response_lost_within_the_window_can_be_retried() {
    let (app, id) = spawn().await;
    let start = app.login_ok("gw", USER_PASSWORD).await;

    // The first response never reaches the client; it retries late in
    // the window and gets a working successor.
    let lost = app.refresh_ok(&start.refresh_token).await;
    app.clock.advance(GRACE as i64 - 1);
    let retried = app.refresh_ok(&start.refresh_token).await;
    assert_ne!(retried.refresh_token, lost.refresh_token);
    app.roles_of(&retried.token, &id).await.ok_json();

    // Its chain carries on, across windows.
    let next = app.refresh_ok(&retried.refresh_token).await;
    app.clock.advance(GRACE as i64 + 1);
    let next = app.refresh_ok(&next.refresh_token).await;
    app.roles_of(&next.token, &id).await.ok_json();
}
