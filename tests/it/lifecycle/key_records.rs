//! A store whose signing keys cannot be used stops start-up with a clear
//! message and a non-zero exit, rather than minting a new key that would
//! silently log everyone out. Two ways to break them: through the store's
//! public API (a key record whose secret is not a 256-bit hex string) and
//! underneath it, with the engine itself (a record that is not a key at all).

use crate::harness::{Sandbox, store};

/// A daemon ran once on the dir (store seeded, one login) and was stopped.
async fn seeded() -> Sandbox {
    let sb = Sandbox::new();
    let mut daemon = sb.start();
    daemon.admin_tokens().await;
    daemon.terminate();
    sb
}

/// Runs `engine-auth serve` and expects it to exit on its own, failing;
/// returns its log.
fn serve_expecting_refusal(sb: &Sandbox) -> String {
    let mut daemon = sb.daemon().spawn();
    let status = daemon.wait_exit_unless_ready();
    let log = daemon.logs();
    assert!(
        !status.success(),
        "the daemon started on unusable keys:\n{log}"
    );
    log
}

#[actix_web::test]
async fn a_key_with_a_malformed_secret_stops_start_up_and_nothing_is_reseeded() {
    let sb = seeded().await;
    store::write_malformed_active_key(&sb.data(), "badkey");

    let log = serve_expecting_refusal(&sb);

    assert!(log.contains("signing key"), "{log}");
    let (active, keys, users) = store::key_and_user_counts(&sb.data());
    assert_eq!(active, "badkey", "no key was minted");
    assert_eq!(keys, 2);
    assert_eq!(users, 1);
}

#[actix_web::test]
async fn an_unreadable_key_record_stops_start_up_and_nothing_is_reseeded() {
    let sb = seeded().await;
    let (kid, _, _) = store::key_and_user_counts(&sb.data());
    {
        let raw = store::Raw::open(&sb.data());
        assert!(
            raw.get("keys", kid.as_bytes()).is_some(),
            "keys are stored by kid"
        );
        raw.put("keys", kid.as_bytes(), b"\x00 not a key record");
    }

    let log = serve_expecting_refusal(&sb);

    assert!(log.contains("signing keys"), "{log}");
    assert!(log.contains("Refusing to start"), "{log}");
    let raw = store::Raw::open(&sb.data());
    assert_eq!(raw.len("keys"), 1, "no key was minted");
    assert_eq!(
        raw.get("keys", kid.as_bytes()).as_deref(),
        Some(&b"\x00 not a key record"[..])
    );
    assert_eq!(raw.len("users"), 1, "no admin re-seeded");
}
