//! SIGKILL right after a 200: every user, password, login, rotation and
//! revocation the daemon acknowledged is on disk, and a restart never
//! seeds the store again. Each phase kills the daemon straight after the
//! operation it checks, so no later write's flush can hide a missing one.

use serde_json::json;

use crate::harness::{Daemon, Sandbox, decode_jwt, roles};

const REFRESHES: usize = 30;
/// Zero grace: any replay of a spent token, however soon, is reuse.
const FLAGS: [&str; 2] = ["--refresh-grace-secs", "0"];

fn restart_after_sigkill(mut daemon: Daemon, sb: &Sandbox) -> Daemon {
    daemon.sigkill();
    sb.daemon().args(&FLAGS).start()
}

#[actix_web::test]
async fn sigkill_after_a_stream_of_refreshes_loses_no_accepted_rotation() {
    let sb = Sandbox::new();
    let daemon = sb.daemon().args(&FLAGS).start();

    // A login, killed at once: its session is on disk.
    let login = daemon.admin_tokens().await;
    let daemon = restart_after_sigkill(daemon, &sb);

    // A stream of refreshes from that login, killed right after the last 200.
    let mut chain = vec![daemon.refresh_ok(&login.refresh_token).await];
    for _ in 1..REFRESHES {
        let last = chain.last().expect("chain").refresh_token.clone();
        chain.push(daemon.refresh_ok(&last).await);
    }
    let daemon = restart_after_sigkill(daemon, &sb);

    // The last token the client got is still valid: its rotation was
    // flushed before its 200.
    let last = chain.last().expect("chain");
    let next = daemon.refresh_ok(&last.refresh_token).await;
    daemon.list_users(&next.token).await.ok_json();

    // An earlier, spent token: the spend survived the SIGKILL too, so
    // presenting it again is reuse (zero grace: no need to wait).
    let msg = daemon
        .refresh(&chain[4].refresh_token)
        .await
        .error_message(401);
    assert!(msg.contains("already used"), "{msg}");
    // ... and the family is dead.
    daemon.refresh(&next.refresh_token).await.error(401);
}

#[actix_web::test]
async fn sigkill_right_after_a_200_loses_nothing_and_a_restart_never_reseeds() {
    let sb = Sandbox::new();
    let original = "original-admin-pw";
    let mut secrets: Vec<String> = vec![original.into(), "something-else".into()];

    // First start: the admin password comes from the environment.
    let daemon = sb
        .daemon()
        .args(&FLAGS)
        .env("ENGINE_AUTH_ADMIN_PASSWORD", original)
        .start();
    assert!(
        !sb.data().join("initial-admin-password").exists(),
        "no generated password file when one was configured"
    );
    let admin = daemon.login_ok("admin", original).await;
    secrets.extend([admin.token.clone(), admin.refresh_token.clone()]);
    let kim = daemon
        .create_user_ok(&admin.token, "kim", "kim-pw-1", roles(&["read", "write"]))
        .await;
    let mut daemon = daemon;
    daemon.sigkill();

    // Second start, with a different admin password in the environment.
    let daemon = sb
        .daemon()
        .args(&FLAGS)
        .env("ENGINE_AUTH_ADMIN_PASSWORD", "something-else")
        .start();
    // The signing key is in the store: a token from before still verifies.
    assert_eq!(daemon.users(&admin.token).await, ["admin", "kim"]);
    let kept = daemon.login_ok("kim", "kim-pw-1").await;
    assert_eq!(decode_jwt(&kept.token).1["roles"], json!(3));
    daemon.login_ok("admin", original).await;
    daemon.login("admin", "something-else").await.error(401);
    assert!(!sb.data().join("initial-admin-password").exists());

    // A password change, killed at once.
    let body = json!({ "password": "kim-pw-2" });
    daemon
        .set_password(&admin.token, &kim, body)
        .await
        .ok_json();
    let daemon = restart_after_sigkill(daemon, &sb);
    daemon.login("kim", "kim-pw-1").await.error(401);
    let kept = daemon.login_ok("kim", "kim-pw-2").await;
    let ended = daemon.login_ok("kim", "kim-pw-2").await;
    secrets.extend([kept.token.clone(), ended.token.clone()]);

    // One session logged out, killed at once.
    let body = json!({ "refreshToken": ended.refresh_token });
    daemon.logout(Some(&kept.token), &body).await.ok_json();
    let daemon = restart_after_sigkill(daemon, &sb);
    let r = daemon.refresh(&ended.refresh_token).await;
    r.context("the logged-out session").error(401);
    let kept = daemon.refresh_ok(&kept.refresh_token).await;

    // Every session logged out, killed at once.
    let body = json!({ "all": true });
    daemon.logout(Some(&kept.token), &body).await.ok_json();
    let mut daemon = restart_after_sigkill(daemon, &sb);
    daemon.list_users(&kept.token).await.error(401);
    let r = daemon.refresh(&kept.refresh_token).await;
    r.context("after logout all").error(401);
    daemon.login_ok("kim", "kim-pw-2").await;
    daemon.terminate();

    // Authentication events are logged (with user and peer), secrets never.
    let logs = sb.all_logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("login") && l.contains("kim") && l.contains("127.0.0.1")),
        "one log line per login, with username and peer address:\n{logs}"
    );
    secrets.extend(["kim-pw-1".into(), "kim-pw-2".into()]);
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    sb.assert_logs_free_of(&refs);
}
