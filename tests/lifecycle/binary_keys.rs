//! Key rotation on the real binary: SIGHUP (what `systemctl reload` sends)
//! and `engine-auth keys rotate` through the running daemon's admin socket,
//! then offline; tokens signed before stay valid, new ones name the new key.

use reqwest::StatusCode;

use crate::helpers::{ADMIN_PASSWORD, Daemon, DaemonDir, cli_ok, keys_list, kid_of, wait_until};

/// The kids in `rows` with the given state.
fn with_state(rows: &[(String, String)], state: &str) -> Vec<String> {
    rows.iter()
        .filter(|(_, s)| s == state)
        .map(|(k, _)| k.clone())
        .collect()
}

/// `keys list` never shows key material: no column looks like a 256-bit
/// hex secret.
fn assert_no_secrets(dir: &std::path::Path) {
    let out = cli_ok(dir, &["keys", "list"], &[]);
    for field in out.split_whitespace() {
        assert!(
            !(field.len() >= 64 && field.chars().all(|c| c.is_ascii_hexdigit())),
            "keys list shows something like key material: {out}"
        );
    }
}

#[test]
fn sighup_rotates_the_key_and_tokens_issued_before_stay_valid() {
    let dir = DaemonDir::new();
    let daemon = Daemon::start(&dir, &[]);
    let before = daemon.login_ok("admin", ADMIN_PASSWORD);
    let old_kid = kid_of(&before.token);
    assert_eq!(
        keys_list(&dir.data()),
        vec![(old_kid.clone(), "Active".to_string())]
    );

    daemon.signal("HUP");
    wait_until(20, "two keys after SIGHUP", || {
        keys_list(&dir.data()).len() == 2
    });

    let rows = keys_list(&dir.data());
    assert_eq!(
        with_state(&rows, "Retired"),
        vec![old_kid.clone()],
        "{rows:?}"
    );
    let active = with_state(&rows, "Active");
    assert_eq!(active.len(), 1, "{rows:?}");
    assert_ne!(active[0], old_kid);
    assert_no_secrets(&dir.data());

    // Still running (SIGHUP's default action would have ended it).
    assert_eq!(daemon.list_users(&before.token), StatusCode::OK);
    let refreshed = daemon.refresh_ok(&before.refresh_token);
    assert_eq!(kid_of(&refreshed.token), active[0]);
    assert_eq!(kid_of(&refreshed.refresh_token), active[0]);
    assert_eq!(daemon.list_users(&refreshed.token), StatusCode::OK);
    let after = daemon.login_ok("admin", ADMIN_PASSWORD);
    assert_eq!(kid_of(&after.token), active[0]);
    assert_eq!(daemon.list_users(&after.token), StatusCode::OK);
    daemon.refresh_ok(&after.refresh_token);
    daemon.terminate();
}

#[test]
fn keys_rotate_works_on_a_running_daemon_and_on_a_stopped_one() {
    let dir = DaemonDir::new();
    let daemon = Daemon::start(&dir, &[]);
    let first = daemon.login_ok("admin", ADMIN_PASSWORD);
    let kid1 = kid_of(&first.token);

    let out = cli_ok(&dir.data(), &["keys", "rotate"], &[]);
    assert!(out.contains("new signing key"), "{out}");

    // Through the socket, so the running daemon signs with the new key at once.
    let rows = keys_list(&dir.data());
    assert_eq!(with_state(&rows, "Retired"), vec![kid1.clone()], "{rows:?}");
    let kid2 = with_state(&rows, "Active").pop().expect("an active key");
    let second = daemon.login_ok("admin", ADMIN_PASSWORD);
    assert_eq!(kid_of(&second.token), kid2);
    assert_eq!(daemon.list_users(&first.token), StatusCode::OK);
    let first = daemon.refresh_ok(&first.refresh_token);
    assert_eq!(kid_of(&first.token), kid2);

    // Offline: the CLI opens the store itself; the restarted daemon accepts
    // every earlier token and signs with the newest key.
    daemon.terminate();
    cli_ok(&dir.data(), &["keys", "rotate"], &[]);
    let rows = keys_list(&dir.data());
    assert_eq!(rows.len(), 3, "{rows:?}");
    let kid3 = with_state(&rows, "Active").pop().expect("an active key");
    assert!(kid3 != kid1 && kid3 != kid2);

    let daemon = Daemon::start(&dir, &[]);
    assert_eq!(daemon.list_users(&first.token), StatusCode::OK);
    assert_eq!(daemon.list_users(&second.token), StatusCode::OK);
    let third = daemon.refresh_ok(&second.refresh_token);
    assert_eq!(kid_of(&third.token), kid3);
    assert_eq!(
        kid_of(&daemon.login_ok("admin", ADMIN_PASSWORD).token),
        kid3
    );
    daemon.terminate();
}
