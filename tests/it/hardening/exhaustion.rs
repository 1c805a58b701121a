//! Disk exhaustion (security review, finding 5). Sessions per user were
//! unlimited: logins filled a small data dir. A full disk then broke every
//! write for good while `/health`, `healthcheck` and the watchdog kept
//! saying all was well. Each 429 wrote an audit line, so a flood of
//! unauthenticated requests grew the log without bound.
//!
//! - 60 logins of one user leave 50 live sessions (the default cap): the
//!   oldest ten refresh tokens are refused.
//! - Throttled floods write a handful of audit lines and one summary, not
//!   one line each.
//! - With the data dir on a tiny tmpfs that is filled up, a write fails
//!   (500), `/health` answers 503 and `healthcheck` fails; after the space is
//!   freed and the daemon restarted, everything acknowledged is there.
//!   Mounting takes root (ours or password-less sudo's): without it this
//!   test fails rather than skips.

use crate::harness::{TestApp, USER_PASSWORD};

#[actix_web::test]
async fn sixty_logins_of_one_user_leave_fifty_sessions_and_end_the_oldest_ten() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, first) = app.user_with_tokens(&admin, "alice", &["read"]).await;
    let mut pairs = vec![first];
    for _ in 1..60 {
        pairs.push(app.login_ok("alice", USER_PASSWORD).await);
    }
    assert_eq!(app.live_sessions_of(&id), 50);
    for (i, pair) in pairs.iter().enumerate() {
        let reply = app.refresh(&pair.refresh_token).await;
        if i < 10 {
            reply.context(&format!("login {i}")).error(401);
        } else {
            reply.context(&format!("login {i}")).token_pair();
        }
    }
    // Rotating kept them 50; another user's sessions are their own.
    assert_eq!(app.live_sessions_of(&id), 50);
    let (bob, _) = app.user_with_tokens(&admin, "bob", &["read"]).await;
    assert_eq!(app.live_sessions_of(&bob), 1);
    assert_eq!(app.live_sessions_of(&id), 50);
}
