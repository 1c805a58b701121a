//! Offline store upkeep with the real binary: `engine-auth check` (the full
//! scan start-up no longer does) and `engine-auth compact` (rewrite and
//! atomic swap), both refused while the daemon holds the store, and a copy
//! left by an interrupted compaction that must not stop the next start.

use engine_auth::store::{Store, maintenance, open_sled};
use std::path::Path;

use crate::helpers::{ADMIN_PASSWORD, Daemon, DaemonDir, USER_PASSWORD, cli, cli_ok};

const USERS: [&str; 3] = ["ann", "bob", "cy"];

/// A daemon ran on the dir, three users were added through the CLI, and
/// it was stopped.
fn dir_with_users() -> DaemonDir {
    let dir = DaemonDir::new();
    let daemon = Daemon::start(&dir, &[]);
    for name in USERS {
        cli_ok(
            &dir.data(),
            &["user", "add", name, "--roles", "read"],
            &[("ENGINE_AUTH_PASSWORD", USER_PASSWORD)],
        );
    }
    daemon.terminate();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn segment_size(data: &Path) -> String {
    let conf = std::fs::read(Store::path_in(data).join("conf")).expect("sled conf");
    text(&conf).lines().next().unwrap_or_default().to_string()
}

#[test]
fn check_and_compact_refuse_a_running_daemon_and_work_on_a_stopped_one() {
    let dir = dir_with_users();
    let data = dir.data();

    let out = cli_ok(&data, &["check"], &[]);
    assert!(out.contains("users\t4 (recorded 4)"), "{out}");
    assert!(out.contains("admins\t1 (recorded 1)"), "{out}");
    assert!(out.contains("usernames\t4 (recorded 4)"), "{out}");
    assert!(out.lines().any(|l| l == "consistent"), "{out}");

    let daemon = Daemon::start(&dir, &[]);
    for cmd in ["check", "compact"] {
        let out = cli(&data, &[cmd], &[]);
        assert!(!out.status.success(), "{cmd} ran beside the daemon");
        assert!(
            text(&out.stderr).contains("in use"),
            "{}",
            text(&out.stderr)
        );
    }
    daemon.terminate();

    let out = cli_ok(&data, &["compact"], &[]);
    assert!(out.starts_with("compacted "), "{out}");
    assert!(out.contains("4 users"), "{out}");
    assert!(!maintenance::copy_path(&data).exists());
    assert_eq!(
        segment_size(&data),
        format!("segment_size: {}", engine_auth::store::SEGMENT_SIZE)
    );
    let out = cli_ok(&data, &["check"], &[]);
    assert!(out.lines().any(|l| l == "consistent"), "{out}");

    // The daemon serves the compacted store: every user is there.
    let daemon = Daemon::start(&dir, &[]);
    daemon.login_ok("admin", ADMIN_PASSWORD);
    for name in USERS {
        daemon.login_ok(name, USER_PASSWORD);
    }
}

#[test]
fn compact_if_over_leaves_a_lean_store_and_refuses_a_nonsense_ratio() {
    // Before the very first start (the unit's ExecStartPre= runs first):
    // nothing to do, exit 0, and nothing created.
    let fresh = DaemonDir::new();
    let out = cli_ok(&fresh.data(), &["compact", "--if-over", "3"], &[]);
    assert!(out.contains("no store yet"), "{out}");
    assert!(!Store::path_in(&fresh.data()).exists());
    // Plain `compact` still says there is nothing there, and fails.
    assert!(!cli(&fresh.data(), &["compact"], &[]).status.success());

    let dir = dir_with_users();
    let data = dir.data();
    // A compaction swaps in another directory: the inode tells.
    let inode = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(Store::path_in(&data))
            .expect("store")
            .ino()
    };
    let before = inode();

    // What the systemd unit runs before each start.
    let out = cli_ok(&data, &["compact", "--if-over", "3"], &[]);
    assert!(out.contains("not over 3x + 1 MiB, left as it is"), "{out}");
    assert_eq!(inode(), before, "the store was rewritten");
    // Without --if-over it is rewritten: the inode check can fail.
    cli_ok(&data, &["compact"], &[]);
    assert_ne!(inode(), before, "compact kept the directory");

    for bad in ["0.5", "-1", "nan", "inf", "three"] {
        let out = cli(&data, &["compact", &format!("--if-over={bad}")], &[]);
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
        let out = cli(&data, args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?} was taken");
    }
    let out = cli_ok(
        &data,
        &["compact", "--if-over", "3", "--max-seconds", "30"],
        &[],
    );
    assert!(out.contains("left as it is"), "{out}");

    // Beside a running daemon it is refused like `compact`, so an
    // ExecStartPre= can never touch a store in use.
    let daemon = Daemon::start(&dir, &[]);
    let out = cli(&data, &["compact", "--if-over", "3"], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("in use"),
        "{}",
        text(&out.stderr)
    );
    daemon.login_ok("admin", ADMIN_PASSWORD);
}

#[test]
fn check_reports_a_damaged_record_and_exits_non_zero() {
    let dir = dir_with_users();
    let data = dir.data();
    let victim = {
        let (store, _) = Store::open(&data, 1 << 20).expect("open the stopped store");
        store.user_by_name("bob").expect("read").expect("bob").id
    };
    {
        let db = open_sled(&Store::path_in(&data), 1 << 20).expect("sled");
        db.open_tree("users")
            .expect("users tree")
            .insert(victim.as_bytes(), &b"\x00 not a user"[..])
            .expect("insert");
        db.flush().expect("flush");
    }

    let out = cli(&data, &["check"], &[]);

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

#[test]
fn check_fix_counts_repairs_counts_an_earlier_version_left_stale() {
    let dir = dir_with_users();
    let data = dir.data();
    {
        // An earlier version deleted a user: it keeps no user count.
        let db = open_sled(&Store::path_in(&data), 1 << 20).expect("sled");
        let meta = db.open_tree("meta").expect("meta tree");
        meta.insert("user_count", &5u64.to_be_bytes()[..])
            .expect("insert");
        meta.insert("name_count", &5u64.to_be_bytes()[..])
            .expect("insert");
        db.flush().expect("flush");
    }

    let out = cli(&data, &["check"], &[]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("the recorded user count is 5, the store holds 4"),
        "{}",
        text(&out.stderr)
    );
    let out = cli_ok(&data, &["check", "--fix-counts"], &[]);
    assert!(out.contains("counts rewritten"), "{out}");
    assert!(out.contains("users\t4 (recorded 4)"), "{out}");
    cli_ok(&data, &["check"], &[]);
}

#[test]
fn a_copy_left_by_an_interrupted_compaction_does_not_stop_the_daemon() {
    let dir = dir_with_users();
    let data = dir.data();
    // As if `compact` was killed half-way through writing its copy.
    let copy = maintenance::copy_path(&data);
    {
        let db = open_sled(&copy, 1 << 20).expect("sled");
        db.open_tree("users")
            .expect("users tree")
            .insert(&b"partial"[..], &b"copy"[..])
            .expect("insert");
        db.flush().expect("flush");
    }

    let daemon = Daemon::start(&dir, &[]);

    for name in USERS {
        daemon.login_ok(name, USER_PASSWORD);
    }
    assert!(!copy.exists(), "the abandoned copy is still there");
    assert!(daemon.logs().contains("interrupted"), "{}", daemon.logs());
}
