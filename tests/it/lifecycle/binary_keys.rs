//! Key rotation on the real binary: SIGHUP (what `systemctl reload` sends)
//! and `engine-auth keys rotate` through the running daemon's admin socket,
//! then offline; tokens signed before stay valid, new ones name the new key.

use crate::harness::{Sandbox, kid_of, wait_until};

/// The kids in `rows` with the given state.
fn with_state(rows: &[(String, String)], state: &str) -> Vec<String> {
    rows.iter()
        .filter(|(_, s)| s == state)
        .map(|(k, _)| k.clone())
        .collect()
}

/// `keys list` never shows key material: no column looks like a 256-bit
/// hex secret.
fn assert_no_secrets(sb: &Sandbox) {
    let out = sb.cli_ok(&["keys", "list"], &[]);
    for field in out.split_whitespace() {
        assert!(
            !(field.len() >= 64 && field.chars().all(|c| c.is_ascii_hexdigit())),
            "keys list shows something like key material: {out}"
        );
    }
}

#[actix_web::test]
async fn sighup_rotates_the_key_and_tokens_issued_before_stay_valid() {
    let sb = Sandbox::new();
    let mut daemon = sb.start();
    let before = daemon.admin_tokens().await;
    let old_kid = kid_of(&before.token);
    assert_eq!(
        sb.keys_list(),
        vec![(old_kid.clone(), "Active".to_string())]
    );

    daemon.signal("HUP");
    wait_until(20, "two keys after SIGHUP", || sb.keys_list().len() == 2);

    let rows = sb.keys_list();
    assert_eq!(
        with_state(&rows, "Retired"),
        vec![old_kid.clone()],
        "{rows:?}"
    );
    let active = with_state(&rows, "Active");
    assert_eq!(active.len(), 1, "{rows:?}");
    assert_ne!(active[0], old_kid);
    assert_no_secrets(&sb);

    // Still running (SIGHUP's default action would have ended it).
    daemon.list_users(&before.token).await.ok_json();
    let refreshed = daemon.refresh_ok(&before.refresh_token).await;
    assert_eq!(kid_of(&refreshed.token), active[0]);
    assert_eq!(kid_of(&refreshed.refresh_token), active[0]);
    daemon.list_users(&refreshed.token).await.ok_json();
    let after = daemon.admin_tokens().await;
    assert_eq!(kid_of(&after.token), active[0]);
    daemon.list_users(&after.token).await.ok_json();
    daemon.refresh_ok(&after.refresh_token).await;
    daemon.terminate();
}

#[actix_web::test]
async fn keys_rotate_works_on_a_running_daemon_and_on_a_stopped_one() {
    let sb = Sandbox::new();
    let mut daemon = sb.start();
    let first = daemon.admin_tokens().await;
    let kid1 = kid_of(&first.token);

    let out = sb.cli_ok(&["keys", "rotate"], &[]);
    assert!(out.contains("new signing key"), "{out}");

    // Through the socket, so the running daemon signs with the new key at once.
    let rows = sb.keys_list();
    assert_eq!(with_state(&rows, "Retired"), vec![kid1.clone()], "{rows:?}");
    let kid2 = with_state(&rows, "Active").pop().expect("an active key");
    let second = daemon.admin_tokens().await;
    assert_eq!(kid_of(&second.token), kid2);
    daemon.list_users(&first.token).await.ok_json();
    let first = daemon.refresh_ok(&first.refresh_token).await;
    assert_eq!(kid_of(&first.token), kid2);

    // Offline: the CLI opens the store itself; the restarted daemon accepts
    // every earlier token and signs with the newest key.
    daemon.terminate();
    sb.cli_ok(&["keys", "rotate"], &[]);
    let rows = sb.keys_list();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let kid3 = with_state(&rows, "Active").pop().expect("an active key");
    assert!(kid3 != kid1 && kid3 != kid2);

    let mut daemon = sb.start();
    daemon.list_users(&first.token).await.ok_json();
    daemon.list_users(&second.token).await.ok_json();
    let third = daemon.refresh_ok(&second.refresh_token).await;
    assert_eq!(kid_of(&third.token), kid3);
    assert_eq!(kid_of(&daemon.admin_tokens().await.token), kid3);
    daemon.terminate();
}
