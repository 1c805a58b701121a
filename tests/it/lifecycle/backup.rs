//! Backup and restore with the real binary: the restore drill (backups
//! online and offline, later changes, a damaged store refused with the
//! newest backup named, restore, who signs in), damaged backups refused
//! before anything is touched, restore refused beside a running daemon,
//! `--keep`, and a backup taken under concurrent writes.

use serde_json::json;
use sha2::{Digest, Sha256};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::harness::{Sandbox, USER_PASSWORD, roles, store, text};

const NEW_PASSWORD: &str = "a-new-password-after-the-backup";

fn backups_in(sb: &Sandbox) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(sb.data().join("backups"))
        .map(|d| d.map(|e| e.expect("entry").path()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

fn scratch(sb: &Sandbox, name: &str) -> PathBuf {
    sb.data().parent().expect("sandbox root").join(name)
}

#[actix_web::test]
async fn restore_drill_brings_back_the_users_and_revokes_every_earlier_token() {
    let sb = Sandbox::new();
    let mut daemon = sb.start();
    let admin = daemon.admin_tokens().await;
    let ann = daemon.add_user(&admin.token, "ann", &["read"]).await;
    let bob = daemon
        .add_user(&admin.token, "bob", &["read", "write"])
        .await;
    daemon.add_user(&admin.token, "cy", &["read"]).await;
    let ann_before = daemon.login_ok("ann", USER_PASSWORD).await;

    // Online, through the admin socket: the default path, mode 0600.
    let out = sb.cli_ok(&["backup"], &[]);
    assert!(out.contains("through the running daemon"), "{out}");
    assert!(out.contains("4 users"), "{out}");
    let online = backups_in(&sb);
    assert_eq!(online.len(), 1, "{online:?}");
    let name = online[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("engine-auth-") && name.ends_with("Z.backup"),
        "{name}"
    );
    assert_eq!(mode(&online[0]), 0o600);
    assert_eq!(mode(&sb.data().join("backups")), 0o700);
    // Self-describing: the header says what it is.
    let file = std::fs::read(&online[0]).unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(file.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(header["format"], "engine-auth-backup");
    assert_eq!(header["version"], 1);
    assert_eq!(header["users"], 4);
    assert_eq!(header["admins"], 1);
    // An arbitrary --output, through the daemon too.
    let elsewhere = scratch(&sb, "online.backup");
    sb.cli_ok(&["backup", "--output", elsewhere.to_str().unwrap()], &[]);
    assert_eq!(mode(&elsewhere), 0o600);

    // Changes after the backup.
    daemon
        .set_password(&admin.token, &ann, json!({ "password": NEW_PASSWORD }))
        .await
        .ok_json();
    daemon.delete_user(&admin.token, &bob).await.ok_json();
    daemon.add_user(&admin.token, "dan", &["read"]).await;
    let ann_after = daemon.login_ok("ann", NEW_PASSWORD).await;
    let dan_after = daemon.login_ok("dan", USER_PASSWORD).await;
    let admin_after = daemon.admin_tokens().await;
    daemon.terminate();

    // Offline, directly on the store, elsewhere: holds the changes.
    let offline = scratch(&sb, "offline.backup");
    let out = sb.cli_ok(&["backup", "--output", offline.to_str().unwrap()], &[]);
    assert!(out.contains("from the stopped daemon's store"), "{out}");
    assert_eq!(mode(&offline), 0o600);
    assert_eq!(backups_in(&sb), online, "--output wrote into backups/");

    // Damage: the store's data file overwritten.
    let db = store::store_path(&sb.data()).join(store::DATA_FILE_NAME);
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::write(&db, vec![0x5a; len as usize]).unwrap();
    let mut refused = sb.daemon().spawn();
    assert!(!refused.wait_exit_unless_ready().success());
    let logs = refused.logs();
    let command = format!(
        "engine-auth restore {} --data-dir {}",
        online[0].display(),
        sb.data().display()
    );
    assert!(
        logs.contains(&command),
        "the refusal names no restore:\n{logs}"
    );

    let out = sb.cli_ok(&["restore", online[0].to_str().unwrap()], &[]);
    for said in [
        "users\t4 (1 admins)",
        "sessions\t",
        "signing keys\t1",
        "API keys\t0",
        "not restored",
    ] {
        assert!(out.contains(said), "{said:?} missing from:\n{out}");
    }
    let kept: Vec<_> = std::fs::read_dir(sb.data())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("store.before-restore-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let out = sb.cli_ok(&["check"], &[]);
    assert!(out.lines().any(|l| l == "consistent"), "{out}");

    let daemon = sb.start();
    // As at backup time: ann's old password, bob back, dan gone.
    daemon.login_ok("ann", USER_PASSWORD).await;
    assert_eq!(daemon.login("ann", NEW_PASSWORD).await.status(), 401);
    daemon.login_ok("bob", USER_PASSWORD).await;
    daemon.login_ok("cy", USER_PASSWORD).await;
    assert_eq!(daemon.login("dan", USER_PASSWORD).await.status(), 401);
    // Every token issued before the restore, before or after the backup.
    daemon
        .assert_all_revoked(&ann, &[&ann_before, &ann_after], "restored")
        .await;
    assert_eq!(daemon.users(&daemon.admin_token().await).await.len(), 4);
    for pair in [&admin, &admin_after, &dan_after] {
        assert_eq!(daemon.list_users(&pair.token).await.status(), 401);
        assert_eq!(daemon.refresh(&pair.refresh_token).await.status(), 401);
    }
    drop(daemon);

    // The offline backup restores onto a new machine's empty data dir.
    let other = Sandbox::new();
    let out = other.cli_ok(&["restore", offline.to_str().unwrap()], &[]);
    assert!(out.contains("there was no store to replace"), "{out}");
    let daemon = other.start();
    daemon.login_ok("ann", NEW_PASSWORD).await;
    daemon.login_ok("dan", USER_PASSWORD).await;
    assert_eq!(daemon.login("bob", USER_PASSWORD).await.status(), 401);
}

/// Recomputes the trailer of an edited backup, so only the edit is wrong.
fn resealed(body_lines: &[&str]) -> Vec<u8> {
    let mut body = body_lines.join("\n").into_bytes();
    body.push(b'\n');
    let sum: String = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    body.extend(format!("{{\"sha256\":\"{sum}\"}}\n").into_bytes());
    body
}

#[actix_web::test]
async fn a_damaged_backup_is_refused_before_anything_is_touched() {
    let sb = Sandbox::new();
    let mut daemon = sb.start();
    let admin = daemon.admin_token().await;
    daemon.add_user(&admin, "ann", &["read"]).await;
    daemon.terminate();
    let good = scratch(&sb, "good.backup");
    sb.cli_ok(&["backup", "--output", good.to_str().unwrap()], &[]);
    let bytes = std::fs::read(&good).unwrap();
    let text_of = String::from_utf8(bytes.clone()).unwrap();
    let lines: Vec<&str> = text_of.lines().collect();

    let mut flipped = bytes.clone();
    let at = bytes.len() / 2;
    flipped[at] ^= 0x01;
    let newer_header = lines[0].replace("\"version\":1", "\"version\":2");
    let mut newer = vec![newer_header.as_str()];
    newer.extend(&lines[1..lines.len() - 1]);
    let bad_record = lines[1..lines.len() - 1]
        .iter()
        .map(|l| {
            if l.contains("\"tree\":\"users\"") {
                // A user record that is not one, properly checksummed.
                r#"{"tree":"users","key":"AAAAAAAAAAAAAAAAAAAAAA==","value":"bm90IGEgdXNlcg=="}"#
            } else {
                l
            }
        })
        .collect::<Vec<_>>();
    let mut undecodable = vec![lines[0]];
    undecodable.extend(bad_record);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("one byte flipped", flipped, ""),
        (
            "truncated",
            bytes[..bytes.len() * 2 / 3].to_vec(),
            "truncated",
        ),
        (
            "cut at a line end",
            {
                let end = text_of.rfind("\n{\"sha256\"").unwrap() + 1;
                bytes[..end].to_vec()
            },
            "",
        ),
        (
            "a newer format version",
            resealed(&newer),
            "format version 2",
        ),
        (
            "a record that does not decode",
            resealed(&undecodable),
            "user record",
        ),
        (
            "not a backup",
            b"hello\n".to_vec(),
            "not an engine-auth backup",
        ),
        ("empty", Vec::new(), "no header"),
    ];
    let inode = || {
        std::fs::metadata(store::store_path(&sb.data()))
            .unwrap()
            .ino()
    };
    let before = inode();
    for (what, content, says) in cases {
        let path = scratch(&sb, "bad.backup");
        std::fs::write(&path, &content).unwrap();
        let out = sb.cli(&["restore", path.to_str().unwrap()], &[]);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{what}: restored");
        assert!(
            err.contains("not a usable backup") && err.contains(says),
            "{what}: {err}"
        );
        assert!(err.contains("nothing was changed"), "{what}: {err}");
        assert_eq!(inode(), before, "{what}: the store was replaced");
    }
    let names: Vec<_> = std::fs::read_dir(sb.data())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("store.")),
        "left behind: {names:?}"
    );
    let daemon = sb.start();
    daemon.login_ok("ann", USER_PASSWORD).await;
}

#[actix_web::test]
async fn restore_is_refused_while_the_daemon_runs_and_keep_prunes() {
    let sb = Sandbox::new();
    let daemon = sb.start();
    let admin = daemon.admin_tokens().await;
    for _ in 0..3 {
        sb.cli_ok(&["backup"], &[]);
    }
    let all = backups_in(&sb);
    assert_eq!(all.len(), 3);
    let out = sb.cli(&["restore", all[0].to_str().unwrap()], &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("daemon is running") && err.contains("stop it first"),
        "{err}"
    );
    // Nothing happened to the running daemon or its store.
    assert_eq!(daemon.users(&admin.token).await, vec!["admin".to_string()]);
    daemon.refresh_ok(&admin.refresh_token).await;

    // A stray file in backups/ is not one of ours: never pruned.
    let stray = sb.data().join("backups").join("notes.txt");
    std::fs::write(&stray, "mine").unwrap();
    let out = sb.cli_ok(&["backup", "--keep", "2"], &[]);
    assert!(out.contains("deleted 2"), "{out}");
    let left = backups_in(&sb);
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&stray));
    assert!(
        left.contains(&all[2]),
        "the newest earlier backup was deleted"
    );
    assert!(!left.contains(&all[0]) && !left.contains(&all[1]));
    for bad in ["0", "-1", "x"] {
        let out = sb.cli(&["backup", "--keep", bad], &[]);
        assert_eq!(out.status.code(), Some(2), "--keep {bad} was taken");
    }
}

#[actix_web::test]
async fn a_backup_taken_under_concurrent_writes_restores_to_a_consistent_store() {
    let sb = Sandbox::new();
    let mut daemon = sb.start();
    let admin = daemon.admin_token().await;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (stop, done) = (stop.clone(), done.clone());
            let (url, token) = (daemon.api("/user"), admin.clone());
            let login = daemon.api("/login");
            std::thread::spawn(move || {
                // One address each: the throttle counts logins per address.
                let ip: std::net::IpAddr = format!("127.0.0.{}", w + 2).parse().unwrap();
                let client = reqwest::blocking::Client::builder()
                    .no_proxy()
                    .local_address(ip)
                    .build()
                    .unwrap();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let name = format!("w{w}-{i}");
                    let body = json!({ "username": name, "password": USER_PASSWORD, "roles": roles(&["read"]) });
                    let r = client.post(&url).bearer_auth(&token).json(&body).send().unwrap();
                    assert!(r.status().is_success(), "{}", r.status());
                    let body = json!({ "username": name, "password": USER_PASSWORD });
                    // A session written too; a throttled login (429) is fine.
                    let r = client.post(&login).json(&body).send().unwrap();
                    assert!(r.status().is_success() || r.status() == 429, "{}", r.status());
                    done.fetch_add(1, Ordering::SeqCst);
                    i += 1;
                }
            })
        })
        .collect();
    let mut files = Vec::new();
    for n in 0..3 {
        while done.load(Ordering::SeqCst) < 10 * (n + 1) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let path = scratch(&sb, &format!("busy-{n}.backup"));
        sb.cli_ok(&["backup", "--output", path.to_str().unwrap()], &[]);
        files.push(path);
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    daemon.terminate();
    let mut users_seen = Vec::new();
    for path in &files {
        let out = sb.cli_ok(&["restore", path.to_str().unwrap()], &[]);
        users_seen.push(
            out.lines()
                .find(|l| l.contains("users\t"))
                .unwrap()
                .to_string(),
        );
        let out = sb.cli_ok(&["check"], &[]);
        assert!(out.lines().any(|l| l == "consistent"), "{path:?}: {out}");
    }
    assert_ne!(
        users_seen[0], users_seen[2],
        "no writes between the backups: {users_seen:?}"
    );
}
