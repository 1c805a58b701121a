//! Look-alike and invisible usernames (security review finding 7): a name
//! that looks like `admin` must not become a second account. Compatibility
//! and canonical variants fold to one name (409), invisible and formatting
//! characters and Latin mixed with Cyrillic or Greek letters are refused
//! (400). Users created before these rules keep their names and log in by
//! them, `engine-auth check` reports the pairs that are now one name, and
//! the CLI prints such names escaped so they cannot hide or reorder text.

use serde_json::Value;
use std::path::Path;

use crate::harness::{
    ADMIN_PASSWORD, Sandbox, TestApp, USER_PASSWORD, claims_of, roles, store, text,
};

const INVISIBLE: &str = "Username must not contain invisible or formatting characters";
const MIXED: &str = "Username must not mix Latin, Greek and Cyrillic letters";
const TAKEN: &str = "Username is already taken";

/// The `_id` claim of a login's access token: who logged in.
async fn login_id(app: &TestApp, name: &str, password: &str) -> String {
    let pair = app.login_ok(name, password).await;
    claims_of(&pair.token)["_id"]
        .as_str()
        .expect("_id claim")
        .to_string()
}

#[actix_web::test]
async fn look_alikes_of_admin_are_refused_or_are_admin() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let admin_id = login_id(&app, "admin", ADMIN_PASSWORD).await;
    let attempts: [(&str, u16, &str); 9] = [
        // NFKC: fullwidth letters are the plain ones.
        ("ａｄｍｉｎ", 409, TAKEN),
        ("ＡＤＭＩＮ", 409, TAKEN),
        ("ad\u{200b}min", 400, INVISIBLE),
        ("admin\u{feff}", 400, INVISIBLE),
        ("adm\u{ad}in", 400, INVISIBLE),
        ("\u{202e}nimda", 400, INVISIBLE),
        ("admin\u{3164}", 400, INVISIBLE),
        // A Cyrillic а, then a Greek ο.
        ("\u{430}dmin", 400, MIXED),
        ("adm\u{3bf}n", 400, MIXED),
    ];
    for (name, status, message) in attempts {
        let r = app
            .create_user(&token, name, USER_PASSWORD, roles(&["read"]))
            .await;
        assert_eq!(r.error_message(status), message, "{name:?}");
    }
    // Decomposed first, then the precomposed spelling (and its capital):
    // one name.
    app.add_user(&token, "a\u{300}dmin", &["read"]).await;
    for name in ["\u{e0}dmin", "\u{c0}DMIN", "A\u{300}DMIN"] {
        let r = app
            .create_user(&token, name, USER_PASSWORD, roles(&["read"]))
            .await;
        assert_eq!(r.error_message(409), TAKEN, "{name:?}");
    }
    // A name in one script only is fine.
    app.add_user(&token, "админ", &["read"]).await;
    assert_eq!(
        app.users(&token).await,
        ["admin", "a\u{300}dmin", "админ"],
        "nothing else was created"
    );
    // The variants are the same users, also at login.
    assert_eq!(login_id(&app, "ａｄｍｉｎ", ADMIN_PASSWORD).await, admin_id);
    let decomposed = login_id(&app, "a\u{300}dmin", USER_PASSWORD).await;
    assert_eq!(
        login_id(&app, "\u{e0}dmin", USER_PASSWORD).await,
        decomposed
    );
    app.assert_alive().await;
}

/// Writes a user as an older engine-auth did: the record (a copy of the
/// admin's, so its password is [`ADMIN_PASSWORD`], with the read role
/// only) and an index entry under the fold of that time (case mapping,
/// no NFKC), the counts moved on. Names today's rules refuse are fine.
/// Returns its id.
fn add_old_user(data_dir: &Path, name: &str) -> String {
    let admin_key = store::user_record_key(data_dir, "admin");
    let raw = store::Raw::open(data_dir);
    let mut rec: Value =
        serde_json::from_slice(&raw.get("users", &admin_key).expect("the admin's record"))
            .expect("a JSON record");
    let id = uuid::Uuid::new_v4();
    rec["id"] = Value::String(id.to_string());
    rec["username"] = Value::String(name.to_string());
    rec["roles"] = Value::from(1);
    raw.put(
        "users",
        id.as_bytes(),
        &serde_json::to_vec(&rec).expect("JSON"),
    );
    let old_key = name.to_lowercase().to_uppercase().to_lowercase();
    let mut entry = id.as_bytes().to_vec();
    entry.extend_from_slice(name.as_bytes());
    raw.put("usernames", old_key.as_bytes(), &entry);
    for count in ["user_count", "name_count"] {
        let n = raw.get("meta", count.as_bytes()).expect("a recorded count");
        let n = u64::from_be_bytes(n.try_into().expect("8 bytes")) + 1;
        raw.put("meta", count.as_bytes(), &n.to_be_bytes());
    }
    id.to_string()
}

#[actix_web::test]
async fn users_from_before_the_rules_keep_logging_in_by_their_own_names() {
    let app = TestApp::spawn().await;
    let admin_id = login_id(&app, "admin", ADMIN_PASSWORD).await;
    let clock = app.clock.clone();
    let dir = app.stop().await;
    // One name with admin now, one now refused, one decomposed (its old
    // key is not today's), one mixing scripts.
    let fullwidth = add_old_user(dir.path(), "ａｄｍｉｎ");
    let rlo = add_old_user(dir.path(), "\u{202e}nimda");
    let decomposed = add_old_user(dir.path(), "a\u{300}lice");
    let mixed = add_old_user(dir.path(), "\u{430}dmin");
    drop(store::open_released(dir.path()));
    let app = TestApp::spawn_in(dir, clock, |_| {}).await;

    for (name, id) in [
        ("admin", &admin_id),
        ("ADMIN", &admin_id),
        ("ａｄｍｉｎ", &fullwidth),
        ("ＡＤＭＩＮ", &fullwidth),
        ("\u{202e}nimda", &rlo),
        ("a\u{300}lice", &decomposed),
        ("A\u{300}LICE", &decomposed),
        ("\u{430}dmin", &mixed),
    ] {
        assert_eq!(&login_id(&app, name, ADMIN_PASSWORD).await, id, "{name:?}");
    }
    let token = app.admin_token().await;
    // Their names, in any case, are still taken.
    for name in ["ＡＤＭＩＮ", "a\u{300}lice", "A\u{300}LICE"] {
        let r = app
            .create_user(&token, name, USER_PASSWORD, roles(&["read"]))
            .await;
        assert_eq!(r.error_message(409), TAKEN, "{name:?}");
    }
    assert_eq!(app.users(&token).await.len(), 5);
    // Deleting the fullwidth one removes its own index entry, not the
    // admin's (both fold to `admin` now); then its spelling is the admin's.
    app.delete_user(&token, &fullwidth).await.ok_json();
    assert_eq!(login_id(&app, "admin", ADMIN_PASSWORD).await, admin_id);
    assert_eq!(login_id(&app, "ａｄｍｉｎ", ADMIN_PASSWORD).await, admin_id);
    assert_eq!(app.users(&token).await.len(), 4);
    let dir = app.stop().await;
    let scan = Sandbox::new().cli_as_given(
        &["check", "--data-dir", dir.path().to_str().expect("utf-8")],
        &[],
    );
    assert!(
        scan.status.success(),
        "check: {}{}",
        text(&scan.stdout),
        text(&scan.stderr)
    );
}

/// Through the binary: `check` reports the old pair that is one name now,
/// without failing, and `user list` prints the right-to-left override
/// escaped, offline and through the running daemon's socket.
#[actix_web::test]
async fn check_reports_same_names_and_the_cli_escapes_what_would_reorder_the_terminal() {
    let sb = Sandbox::new();
    let mut daemon = sb.start();
    daemon.admin_tokens().await;
    daemon.terminate();
    add_old_user(&sb.data(), "ａｄｍｉｎ");
    add_old_user(&sb.data(), "\u{202e}nimda");
    add_old_user(&sb.data(), "ad\u{200b}min");

    let report = sb.cli_ok(&["check"], &[]);
    assert!(report.contains("consistent"), "{report}");
    let same: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("same username\t"))
        .collect();
    assert_eq!(same.len(), 1, "{report}");
    assert!(
        same[0].starts_with("same username\t\"admin\", \"ａｄｍｉｎ\": "),
        "{report}"
    );

    let expect_escaped = |listing: &str| {
        assert!(
            !listing.contains('\u{202e}') && !listing.contains('\u{200b}'),
            "{listing:?}"
        );
        let names: Vec<&str> = listing
            .lines()
            .filter_map(|l| l.rsplit('\t').next())
            .collect();
        for name in ["admin", "ａｄｍｉｎ", "\\u{202e}nimda", "ad\\u{200b}min"] {
            assert!(names.contains(&name), "{name:?} in {listing:?}");
        }
    };
    expect_escaped(&sb.cli_ok(&["user", "list"], &[]));
    let mut daemon = sb.start();
    expect_escaped(&sb.cli_ok(&["user", "list"], &[]));
    // The old names still log in.
    daemon.login_ok("\u{202e}nimda", ADMIN_PASSWORD).await;
    daemon.login_ok("ad\u{200b}min", ADMIN_PASSWORD).await;
    daemon.terminate();
}
