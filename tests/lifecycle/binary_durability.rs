//! SIGKILL right after a 200: every login, rotation and revocation the
//! daemon acknowledged is on disk. Each phase kills the daemon straight
//! after the operation it checks, so no later write's flush can hide a
//! missing one.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, Daemon, DaemonDir, TokenPair, USER_PASSWORD, all_roles};

const REFRESHES: usize = 30;
/// Zero grace: any replay of a spent token after its second is reuse.
const FLAGS: [&str; 2] = ["--refresh-grace-secs", "0"];

fn restart_after_sigkill(daemon: Daemon, dir: &DaemonDir) -> Daemon {
    daemon.kill9();
    Daemon::start(dir, &FLAGS)
}

#[test]
fn sigkill_after_a_stream_of_refreshes_loses_no_accepted_rotation() {
    let dir = DaemonDir::new();
    let daemon = Daemon::start(&dir, &FLAGS);

    // A login, killed at once: its session is on disk.
    let login = daemon.login_ok("admin", ADMIN_PASSWORD);
    let daemon = restart_after_sigkill(daemon, &dir);

    // A stream of refreshes from that login, killed right after the last 200.
    let mut chain = vec![daemon.refresh_ok(&login.refresh_token)];
    let mut early_spent_at = 0;
    for i in 1..REFRESHES {
        let last = chain.last().expect("chain").refresh_token.clone();
        chain.push(daemon.refresh_ok(&last));
        if i == 4 {
            // chain[4] was spent no later than this second.
            early_spent_at = engine_auth::unix_now();
        }
    }
    let daemon = restart_after_sigkill(daemon, &dir);

    // The last token the client got is still valid: its rotation was
    // flushed before its 200.
    let last = chain.last().expect("chain");
    let next = daemon.refresh_ok(&last.refresh_token);
    assert_eq!(daemon.list_users(&next.token), StatusCode::OK);

    // An earlier, spent token: the spend survived the SIGKILL too, so
    // presenting it again (outside the zero grace window) is reuse.
    while engine_auth::unix_now() <= early_spent_at {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let resp = daemon.refresh(&chain[4].refresh_token);
    let status = resp.status();
    let text = resp.text().unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "replay of a spent token: {text}"
    );
    assert!(text.contains("already used"), "{text}");
    // ... and the family is dead.
    let resp = daemon.refresh(&next.refresh_token);
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    daemon.terminate();
}

#[test]
fn sigkill_right_after_a_revocation_does_not_bring_tokens_back() {
    let dir = DaemonDir::new();
    let daemon = Daemon::start(&dir, &FLAGS);
    let admin = daemon.login_ok("admin", ADMIN_PASSWORD);
    let body = json!({ "username": "kim", "password": USER_PASSWORD, "roles": all_roles() });
    let resp = daemon.send(Method::POST, "/user", Some(&admin.token), Some(&body));
    assert_eq!(resp.status(), StatusCode::OK);
    let kept = daemon.login_ok("kim", USER_PASSWORD);
    let ended = daemon.login_ok("kim", USER_PASSWORD);

    // One session logged out, killed at once.
    let body = json!({ "refreshToken": ended.refresh_token });
    let resp = daemon.send(Method::POST, "/logout", Some(&kept.token), Some(&body));
    assert_eq!(resp.status(), StatusCode::OK);
    let daemon = restart_after_sigkill(daemon, &dir);
    let resp = daemon.refresh(&ended.refresh_token);
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the logged-out session"
    );
    let kept: TokenPair = daemon.refresh_ok(&kept.refresh_token);

    // Every session logged out, killed at once.
    let body = json!({ "all": true });
    let resp = daemon.send(Method::POST, "/logout", Some(&kept.token), Some(&body));
    assert_eq!(resp.status(), StatusCode::OK);
    let daemon = restart_after_sigkill(daemon, &dir);
    assert_eq!(daemon.list_users(&kept.token), StatusCode::UNAUTHORIZED);
    let resp = daemon.refresh(&kept.refresh_token);
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "after logout all");
    daemon.login_ok("kim", USER_PASSWORD);
    daemon.terminate();
}
