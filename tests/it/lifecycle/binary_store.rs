//! Offline store upkeep with the real binary: `engine-auth check` (the full
//! scan start-up no longer does) and `engine-auth compact` (rewrite and
//! atomic swap), both refused while the daemon holds the store, and a copy
//! left by an interrupted compaction that must not stop the next start.

use crate::harness::{Sandbox, USER_PASSWORD, store, text};

const USERS: [&str; 3] = ["ann", "bob", "cy"];

/// A daemon ran on the dir, three users were added through the CLI, and
/// it was stopped.
fn dir_with_users() -> Sandbox {
    let sb = Sandbox::new();
    let mut daemon = sb.start();
    for name in USERS {
        sb.cli_ok(
            &["user", "add", name, "--roles", "read"],
            &[("ENGINE_AUTH_PASSWORD", USER_PASSWORD)],
        );
    }
    daemon.terminate();
    sb
}

#[actix_web::test]
async fn check_and_compact_refuse_a_running_daemon_and_work_on_a_stopped_one() {
    let sb = dir_with_users();

    let out = sb.cli_ok(&["check"], &[]);
    assert!(out.contains("users\t4 (recorded 4)"), "{out}");
    assert!(out.contains("admins\t1 (recorded 1)"), "{out}");
    assert!(out.contains("usernames\t4 (recorded 4)"), "{out}");
    assert!(out.lines().any(|l| l == "consistent"), "{out}");

    let mut daemon = sb.start();
    for cmd in ["check", "compact"] {
        let out = sb.cli(&[cmd], &[]);
        assert!(!out.status.success(), "{cmd} ran beside the daemon");
        assert!(
            text(&out.stderr).contains("in use"),
            "{}",
            text(&out.stderr)
        );
    }
    daemon.terminate();

    let out = sb.cli_ok(&["compact"], &[]);
    assert!(out.starts_with("compacted "), "{out}");
    assert!(out.contains("4 users"), "{out}");
    assert!(!store::compact_copy_path(&sb.data()).exists());
    let out = sb.cli_ok(&["check"], &[]);
    assert!(out.lines().any(|l| l == "consistent"), "{out}");

    // The daemon serves the compacted store: every user is there.
    let daemon = sb.start();
    daemon.admin_tokens().await;
    for name in USERS {
        daemon.login_ok(name, USER_PASSWORD).await;
    }
}

#[actix_web::test]
async fn compact_if_over_leaves_a_lean_store_and_refuses_a_nonsense_ratio() {
    // Before the very first start (the unit's ExecStartPre= runs first):
    // nothing to do, exit 0, and nothing created.
    let fresh = Sandbox::new();
    let out = fresh.cli_ok(&["compact", "--if-over", "3"], &[]);
    assert!(out.contains("no store yet"), "{out}");
    assert!(!store::store_path(&fresh.data()).exists());
    // Plain `compact` still says there is nothing there, and fails.
    assert!(!fresh.cli(&["compact"], &[]).status.success());

    let sb = dir_with_users();
    // A compaction swaps in another directory: the inode tells.
    let inode = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(store::store_path(&sb.data()))
            .expect("store")
            .ino()
    };
    let before = inode();

    // What the systemd unit runs before each start.
    let out = sb.cli_ok(&["compact", "--if-over", "3"], &[]);
    assert!(out.contains("not over 3x + 1 MiB, left as it is"), "{out}");
    assert_eq!(inode(), before, "the store was rewritten");
    // Without --if-over it is rewritten: the inode check can fail.
    sb.cli_ok(&["compact"], &[]);
    assert_ne!(inode(), before, "compact kept the directory");

    for bad in ["0.5", "-1", "nan", "inf", "three"] {
        let out = sb.cli(&["compact", &format!("--if-over={bad}")], &[]);
        assert_eq!(out.status.code(), Some(2), "--if-over {bad} was taken");
        assert!(
            text(&out.stderr).contains("at least 1"),
            "{}",
            text(&out.stderr)
        );
    }

    // A time limit needs --if-over, and at least a second.
    for args in [
        &["compact", "--max-seconds", "30"][..],
        &["compact", "--if-over", "3", "--max-seconds", "0"][..],
    ] {
        let out = sb.cli(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?} was taken");
    }
    let out = sb.cli_ok(&["compact", "--if-over", "3", "--max-seconds", "30"], &[]);
    assert!(out.contains("left as it is"), "{out}");

    // Beside a running daemon it is refused like `compact`, so an
    // ExecStartPre= can never touch a store in use.
    let daemon = sb.start();
    let out = sb.cli(&["compact", "--if-over", "3"], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("in use"),
        "{}",
        text(&out.stderr)
    );
    daemon.admin_tokens().await;
}

#[actix_web::test]
async fn check_reports_a_damaged_record_and_exits_non_zero() {
    let sb = dir_with_users();
    let victim = store::user_record_key(&sb.data(), "bob");
    store::Raw::open(&sb.data()).put("users", &victim, b"\x00 not a user");

    let out = sb.cli(&["check"], &[]);

    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success(),
        "check passed a damaged store: {stdout}"
    );
    assert!(stdout.contains("users\t4"), "{stdout}");
    assert!(
        stderr.contains("user record") && stderr.contains("inconsistent"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn check_fix_counts_repairs_counts_an_earlier_version_left_stale() {
    let sb = dir_with_users();
    {
        // An earlier version deleted a user: it keeps no user count.
        let raw = store::Raw::open(&sb.data());
        raw.put("meta", b"user_count", &5u64.to_be_bytes());
        raw.put("meta", b"name_count", &5u64.to_be_bytes());
    }

    let out = sb.cli(&["check"], &[]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("the recorded user count is 5, the store holds 4"),
        "{}",
        text(&out.stderr)
    );
    let out = sb.cli_ok(&["check", "--fix-counts"], &[]);
    assert!(out.contains("counts rewritten"), "{out}");
    assert!(out.contains("users\t4 (recorded 4)"), "{out}");
    sb.cli_ok(&["check"], &[]);
}

#[actix_web::test]
async fn a_copy_left_by_an_interrupted_compaction_does_not_stop_the_daemon() {
    let sb = dir_with_users();
    // As if `compact` was killed half-way through writing its copy.
    let copy = store::compact_copy_path(&sb.data());
    store::Raw::open_at(&copy).put("users", b"partial", b"copy");

    let daemon = sb.start();

    for name in USERS {
        daemon.login_ok(name, USER_PASSWORD).await;
    }
    assert!(!copy.exists(), "the abandoned copy is still there");
    assert!(daemon.logs().contains("interrupted"), "{}", daemon.logs());
}
