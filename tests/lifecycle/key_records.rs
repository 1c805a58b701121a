//! A store whose signing keys cannot be used stops start-up with a clear
//! message and a non-zero exit, rather than minting a new key that would
//! silently log everyone out. Two ways to break them: through the store's
//! public API (a key record whose secret is not a 256-bit hex string) and
//! underneath it, with sled itself (a record that is not a key at all;
//! `open_sled` opens it with the segment size the store was made with).

use engine_auth::store::{KeyRecord, KeyState, Store, open_sled};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{ADMIN_PASSWORD, Daemon, DaemonDir, bin, free_port};

/// Runs `engine-auth serve` on `data_dir` and expects it to exit on its
/// own; a daemon that starts serving instead is killed and reported.
fn serve_expecting_refusal(data_dir: &Path) -> Output {
    let mut child = bin()
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--argon2-memory-kib", "256", "--argon2-iterations", "1"])
        .env("ENGINE_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn engine-auth serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "the daemon started on unusable keys: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// A daemon ran once on the dir (store seeded, one login) and was stopped.
fn seeded_dir() -> DaemonDir {
    let dir = DaemonDir::new();
    let daemon = Daemon::start(&dir, &[]);
    daemon.login_ok("admin", ADMIN_PASSWORD);
    daemon.terminate();
    dir
}

#[test]
fn a_key_with_a_malformed_secret_stops_start_up_and_nothing_is_reseeded() {
    let dir = seeded_dir();
    let bad = KeyRecord {
        kid: "badkey".into(),
        secret_hex: "not a 256-bit hex secret".into(),
        created_at: engine_auth::unix_now(),
        state: KeyState::Active,
        retired_at: None,
    };
    {
        let (store, _) = Store::open(&dir.data(), 1 << 20).expect("open the stopped store");
        store
            .rotate_key(&bad, engine_auth::unix_now())
            .expect("write the key record");
    }

    let out = serve_expecting_refusal(&dir.data());

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("signing key"), "{stderr}");
    let (store, _) = Store::open(&dir.data(), 1 << 20).expect("reopen");
    assert_eq!(
        store.active_kid().expect("active kid"),
        "badkey",
        "no key was minted"
    );
    assert_eq!(store.keys().expect("keys").len(), 2);
    assert_eq!(store.user_count(), 1);
}

#[test]
fn an_unreadable_key_record_stops_start_up_and_nothing_is_reseeded() {
    let dir = seeded_dir();
    let store_dir = Store::path_in(&dir.data());
    let kid = {
        let (store, _) = Store::open(&dir.data(), 1 << 20).expect("open the stopped store");
        store.active_kid().expect("active kid")
    };
    {
        // sled releases its file lock a moment after the last handle drops
        // (its thread pool may still hold one): retry briefly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let db = loop {
            match open_sled(&store_dir, 1 << 20) {
                Ok(db) => break db,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("sled: {e:?}"),
            }
        };
        let keys = db.open_tree("keys").expect("keys tree");
        assert!(
            keys.get(kid.as_bytes()).expect("get").is_some(),
            "keys are stored by kid"
        );
        keys.insert(kid.as_bytes(), &b"\x00 not a key record"[..])
            .expect("insert");
        db.flush().expect("flush");
    }

    let out = serve_expecting_refusal(&dir.data());

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("signing keys"), "{stderr}");
    assert!(stderr.contains("Refusing to start"), "{stderr}");
    let db = open_sled(&store_dir, 1 << 20).expect("sled");
    let keys = db.open_tree("keys").expect("keys tree");
    assert_eq!(keys.len(), 1, "no key was minted");
    assert_eq!(
        keys.get(kid.as_bytes()).expect("get").as_deref(),
        Some(&b"\x00 not a key record"[..])
    );
    assert_eq!(
        db.open_tree("users").expect("users").len(),
        1,
        "no admin re-seeded"
    );
}
