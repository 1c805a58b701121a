//! The audit log of the real binary: one line per security event (login
//! ok / failed / throttled, refresh, reuse detected, logout, user created /
//! changed / deleted, a token guessing its user's password, key rotated) with a UTC time, the event, the
//! username, the user id where known and the client address; and never a
//! secret: the whole captured log is scanned for every password, token and
//! token signature the run used, the generated admin password, and any run
//! of 64 hex digits (what a signing key looks like).

use serde_json::json;
use std::path::Path;

use crate::harness::{Sandbox, TokenPair, decode_jwt, roles, wait_until};

fn wait_for(log: &Path, what: &str) -> String {
    let read = || std::fs::read_to_string(log).unwrap_or_default();
    wait_until(20, &format!("{what:?} in the log"), || {
        read().contains(what)
    });
    read()
}

/// Lines of the audit target whose message starts with `event=<event>`,
/// parsed as a log reader would: `[TIME LEVEL TARGET] MESSAGE` (so text
/// inside a quoted username cannot pass for an event).
fn events<'a>(log: &'a str, event: &str) -> Vec<&'a str> {
    let tag = format!("event={event} ");
    log.lines()
        .filter(|l| {
            l.split_once("] ").is_some_and(|(prefix, message)| {
                prefix.ends_with(" engine_auth::audit") && message.starts_with(&tag)
            })
        })
        .collect()
}

/// Exactly one line for `event` that contains every one of `parts`;
/// returns it.
fn one<'a>(log: &'a str, event: &str, parts: &[&str]) -> &'a str {
    let hits: Vec<&str> = events(log, event)
        .into_iter()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one event={event} line with {parts:?}, found {hits:?}; log:\n{log}"
    );
    hits[0]
}

/// The longest run of hex digits in `s`.
fn longest_hex_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[actix_web::test]
async fn the_audit_log_has_one_line_per_security_event_and_no_secret() {
    let sb = Sandbox::new();
    let d = sb
        .daemon()
        .no_admin_password()
        .args(&["--refresh-grace-secs", "0", "--throttle-after", "2"])
        .start();
    let data = sb.data();
    let log_path = d.log_path().to_path_buf();
    // `d` calls from 127.0.0.1, `other` from 127.0.0.2.
    let other = d.calling_from("127.0.0.2");
    // Every secret this run handles, to look for in the log at the end.
    let mut secrets: Vec<String> = Vec::new();
    let generated = std::fs::read_to_string(data.join("initial-admin-password"))
        .expect("a generated admin password");
    let admin_pw = generated.trim_end().to_string();
    secrets.push(admin_pw.clone());
    let (alice_pw, alice_pw2) = ("alice-first-pw".to_string(), "alice-second-pw".to_string());
    let wrong = ["wrong-guess-one", "wrong-guess-two", "wrong-guess-three"];
    secrets.extend([alice_pw.clone(), alice_pw2.clone()]);
    secrets.extend(wrong.iter().map(|s| s.to_string()));

    // login_ok
    let admin = d.login_ok("admin", &admin_pw).await;
    let admin_id = decode_jwt(&admin.token).1["_id"]
        .as_str()
        .expect("_id")
        .to_string();
    secrets.extend([admin.token.clone(), admin.refresh_token.clone()]);
    let admin_token = admin.token.as_str();
    // user_created
    let alice_id = d
        .create_user_ok(admin_token, "alice", &alice_pw, roles(&["read"]))
        .await;
    // login_failed, twice, then throttled (threshold 2)
    for pw in &wrong[..2] {
        d.login("alice", pw).await.error(401);
    }
    d.login("alice", wrong[2]).await.error(429);
    // A forged log line in a username stays inside its quotes.
    let forged =
        "mallory\n[2020-01-01T00:00:00Z INFO  engine_auth::audit] event=login_ok user=\"admin\"";
    d.login(forged, "whatever-pw").await.error(401);
    // refresh, then reuse of the spent token: zero grace, so the replay is
    // reuse however soon it comes
    let refreshed = d.refresh_ok(&admin.refresh_token).await;
    secrets.extend([refreshed.token, refreshed.refresh_token]);
    d.refresh(&admin.refresh_token).await.error(401);
    d.refresh("not.a.token").await.error(401);
    // user changed: roles and password
    d.set_roles(admin_token, &alice_id, roles(&["read", "write"]))
        .await
        .ok_json();
    d.set_password(admin_token, &alice_id, json!({"password": alice_pw2}))
        .await
        .ok_json();
    // login_ok from another address (alice is throttled on 127.0.0.1)
    let alice = other.login_ok("alice", &alice_pw2).await;
    secrets.extend([alice.token.clone(), alice.refresh_token.clone()]);
    // logout (one session), logout_all (self), logout_all (by the admin)
    let body = json!({"refreshToken": alice.refresh_token});
    other.logout(Some(&alice.token), &body).await.ok_json();
    let body = json!({"all": true});
    other.logout(Some(&alice.token), &body).await.ok_json();
    d.logout_user(admin_token, &alice_id).await.ok_json();
    // password_change_failed twice with a token used from 127.0.0.3, and
    // the second (threshold 2) is password_guessing: alice is logged out
    // everywhere (logout_all)
    let third = d.calling_from("127.0.0.3");
    let stolen = third.login_ok("alice", &alice_pw2).await;
    secrets.extend([stolen.token.clone(), stolen.refresh_token.clone()]);
    secrets.push("alice-third-pw".into());
    for pw in &wrong[..2] {
        let body = json!({"password": "alice-third-pw", "currentPassword": pw});
        third
            .set_password(&stolen.token, &alice_id, body)
            .await
            .error(403);
    }
    third.roles_of(&stolen.token, &alice_id).await.error(401);
    // user_deleted
    d.delete_user(admin_token, &alice_id).await.ok_json();
    // key rotated (SIGHUP, as `systemctl reload` sends it)
    d.signal("HUP");
    wait_for(&log_path, "event=key_rotated");
    // A token signed with the new key is logged like any other.
    let TokenPair {
        token,
        refresh_token,
    } = d.login_ok("admin", &admin_pw).await;
    secrets.extend([token, refresh_token]);
    d.signal("TERM");
    let log = wait_for(&log_path, "store flushed");

    // One line per event, with the username (Debug-quoted), id and peer.
    let peer1 = "peer=127.0.0.1";
    let peer2 = "peer=127.0.0.2";
    let peer3 = "peer=127.0.0.3";
    let admin_q = "user=\"admin\"";
    let alice_q = "user=\"alice\"";
    let admin_idp = format!("id={admin_id}");
    let alice_idp = format!("id={alice_id}");
    assert_eq!(events(&log, "login_ok").len(), 4, "{log}");
    one(&log, "login_ok", &[alice_q, &alice_idp, peer2]);
    one(
        &log,
        "user_created",
        &[alice_q, &alice_idp, "by=\"admin\"", peer1],
    );
    assert_eq!(events(&log, "login_failed").len(), 3, "{log}");
    assert_eq!(
        events(&log, "login_failed")
            .iter()
            .filter(|l| l.contains(alice_q) && l.contains(peer1))
            .count(),
        2
    );
    one(&log, "throttled", &[alice_q, "retry_after=", peer1]);
    one(&log, "refresh", &[admin_q, &admin_idp, peer1]);
    one(
        &log,
        "refresh_reuse_detected",
        &[admin_q, &admin_idp, peer1],
    );
    one(&log, "refresh_failed", &[peer1]);
    one(
        &log,
        "user_roles_changed",
        &[alice_q, &alice_idp, "by=\"admin\"", peer1],
    );
    one(
        &log,
        "user_password_changed",
        &[alice_q, &alice_idp, "by=\"admin\"", peer1],
    );
    one(&log, "logout", &[alice_q, &alice_idp, peer2]);
    one(&log, "logout_all", &[alice_q, &alice_idp, peer2]);
    one(
        &log,
        "logout_all",
        &[alice_q, &alice_idp, "by=\"admin\"", peer1],
    );
    assert_eq!(
        events(&log, "password_change_failed")
            .iter()
            .filter(|l| l.contains(alice_q) && l.contains(&alice_idp) && l.contains(peer3))
            .count(),
        2,
        "{log}"
    );
    let guessing = one(&log, "password_guessing", &[alice_q, &alice_idp, peer3]);
    assert!(guessing.contains(" WARN "), "{guessing}");
    one(&log, "logout_all", &[alice_q, &alice_idp, peer3]);
    one(
        &log,
        "user_deleted",
        &[alice_q, &alice_idp, "by=\"admin\"", peer1],
    );
    let rotated = one(&log, "key_rotated", &["kid="]);
    assert_eq!(log.matches("event=key_rotated").count(), 1);
    // Times are UTC (RFC 3339 with Z): "[2026-01-02T03:04:05Z INFO ...".
    for line in log.lines().filter(|l| l.contains("engine_auth::audit")) {
        let stamp = line
            .strip_prefix('[')
            .and_then(|l| l.split(' ').next())
            .unwrap_or_else(|| panic!("audit line without a timestamp: {line}"));
        assert!(stamp.ends_with('Z') && stamp.contains('T'), "{line}");
    }
    assert!(rotated.contains("engine_auth::audit"));
    // The forged line did not become a line of its own.
    assert!(
        !log.lines().any(|l| l.starts_with("[2020-01-01")),
        "a username forged a log line:\n{log}"
    );
    one(&log, "login_failed", &["mallory\\n[2020-01-01", peer1]);

    // No secret anywhere in the log: passwords, tokens, token parts.
    for s in &secrets {
        assert!(!s.is_empty());
        let mut needles = vec![s.as_str()];
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() == 3 {
            needles.push(parts[2]); // the signature
            needles.push(parts[1]); // the claims
        }
        for n in needles {
            assert!(
                !log.contains(n),
                "a secret ({}…) is in the log:\n{log}",
                &n[..n.len().min(8)]
            );
        }
    }
    assert!(!log.contains("$argon2"), "a password hash is in the log");
    // Signing keys are 64 hex digits; nothing of that shape may appear.
    for line in log.lines() {
        assert!(
            longest_hex_run(line) < 64,
            "key-like hex in the log: {line}"
        );
    }
}
