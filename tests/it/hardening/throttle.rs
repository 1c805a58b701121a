//! Brute force: failed logins and refreshes from one address are slowed
//! down (429 with `Retry-After`) after a threshold, the right password from
//! that address does not get through during the delay (it is never even
//! checked), but the real user on another address is never locked out. The
//! throttle's tables stay bounded however many names an attacker tries.

use crate::harness::{ADMIN_PASSWORD, Reply, Sandbox, TestApp, USER_PASSWORD, client_from};
use std::time::Duration;

/// Thresholds small enough to reach quickly, a delay long enough to span
/// the test (so "still throttled" never races the clock).
async fn app(per_user: u32, per_address: u32) -> TestApp {
    TestApp::spawn_with(|s| {
        s.throttle.per_user = per_user;
        s.throttle.per_address = per_address;
        s.throttle.base_delay = Duration::from_secs(60);
        s.throttle.max_delay = Duration::from_secs(600);
    })
    .await
}

/// Asserts a 429 with a sane `Retry-After`; returns its seconds.
pub(super) fn throttled(r: &Reply) -> u64 {
    let m = r.error_message(429);
    assert!(m.contains("retry"), "{m}");
    let secs: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("{}: 429 without Retry-After", r.what))
        .parse()
        .expect("Retry-After is delta-seconds");
    assert!((1..=600).contains(&secs), "Retry-After {secs}");
    secs
}

#[actix_web::test]
async fn failed_logins_are_throttled_per_address_without_locking_the_user_out() {
    let app = app(3, 1_000).await;
    let attacker = client_from("127.0.0.1");
    let owner = client_from("127.0.0.2");

    for guess in ["guess-0001", "guess-0002", "guess-0003"] {
        app.login_from(&attacker, "admin", guess).await.error(401);
    }
    // From now on the attacker's address gets 429, for wrong guesses and,
    // crucially, for the right password: it is not even checked.
    let mut attempts = Vec::new();
    for pw in ["guess-0004", ADMIN_PASSWORD, "guess-0005", ADMIN_PASSWORD] {
        let r = app.login_from(&attacker, "admin", pw).await;
        attempts.push(r.status());
        throttled(&r);
    }
    assert!(
        attempts.iter().all(|s| *s == 429),
        "a 200 came through during the delay: {attempts:?}"
    );
    // Case variants of the name are the same account to the throttle.
    throttled(&app.login_from(&attacker, "ADMIN", ADMIN_PASSWORD).await);
    // The owner, from another address, gets in at once.
    app.login_from(&owner, "admin", ADMIN_PASSWORD)
        .await
        .token_pair();
    // The attacker is still throttled after the owner's success.
    throttled(&app.login_from(&attacker, "admin", ADMIN_PASSWORD).await);
    app.assert_alive().await;
}

#[actix_web::test]
async fn spraying_many_usernames_from_one_address_hits_the_address_limit() {
    let app = app(1_000, 10).await;
    let admin = app.admin_token().await;
    app.add_user(&admin, "carol", &["read"]).await;
    let sprayer = client_from("127.0.0.3");
    for i in 0..10 {
        app.login_from(&sprayer, &format!("user{i}"), "password-1")
            .await
            .error(401);
    }
    // A name this address never tried, and an existing user's right
    // password: both throttled at the address.
    throttled(&app.login_from(&sprayer, "someone-new", "password-1").await);
    throttled(&app.login_from(&sprayer, "carol", USER_PASSWORD).await);
    // Carol, elsewhere, is fine.
    app.login_from(&client_from("127.0.0.4"), "carol", USER_PASSWORD)
        .await
        .token_pair();
    app.assert_alive().await;
}

/// Garbage refresh tokens cost no hash and carry no credential: they are
/// limited per address on their own, and never hold back a token that
/// verifies or a login (`throttle_bursts` has the address-sharing attack).
#[actix_web::test]
async fn refreshes_with_garbage_tokens_are_throttled_on_their_own() {
    let app = app(1_000, 5).await;
    let owner = client_from("127.0.0.2");
    let refresh = app
        .login_from(&owner, "admin", ADMIN_PASSWORD)
        .await
        .token_pair()
        .refresh_token;
    let attacker = client_from("127.0.0.1");
    for i in 0..5 {
        app.refresh_from(&attacker, &format!("garbage.{i}.token"))
            .await
            .error(401);
    }
    throttled(&app.refresh_from(&attacker, "garbage.5.token").await);
    // Another address's garbage is its own count.
    app.refresh_from(&owner, "garbage.6.token").await.error(401);
    // A genuine refresh token verifies, so the limit does not apply to it,
    // from either address; nor to logins.
    let refresh = app.refresh_from(&attacker, &refresh).await.token_pair();
    app.refresh_from(&owner, &refresh.refresh_token)
        .await
        .token_pair();
    app.login_from(&attacker, "admin", ADMIN_PASSWORD)
        .await
        .token_pair();
    app.assert_alive().await;
}

#[actix_web::test]
async fn the_throttle_tables_stay_bounded_under_thousands_of_usernames() {
    const MAX_ENTRIES: usize = 200;
    let app = TestApp::spawn_with(|s| {
        s.throttle.per_user = 1_000_000;
        s.throttle.per_address = 1_000_000;
        s.throttle.max_entries = MAX_ENTRIES;
        s.workers = 2;
        // Every unknown-user login costs a (dummy) hash: make it the
        // cheapest argon2 allows, so thousands fit in a debug-build test.
        s.argon2.memory_kib = 8;
    })
    .await;
    // 3000 distinct usernames from 300 addresses, 8 requests in flight.
    let clients: Vec<_> = (0..300u32)
        .map(|i| client_from(&format!("127.0.{}.{}", 2 + i / 200, 1 + i % 200)))
        .collect();
    let app = std::rc::Rc::new(app);
    let mut batch = Vec::new();
    for i in 0..3000usize {
        let app = app.clone();
        let client = clients[i % clients.len()].clone();
        batch.push(actix_web::rt::spawn(async move {
            let r = app
                .login_from(
                    &client,
                    &format!("sprayed-{i}@example.com"),
                    "wrong-password",
                )
                .await;
            r.error(401);
        }));
        if batch.len() == 8 {
            for h in batch.drain(..) {
                h.await.expect("login task");
            }
        }
    }
    for h in batch {
        h.await.expect("login task");
    }
    let (addresses, pairs) = app.throttle_len();
    assert!(
        addresses <= MAX_ENTRIES,
        "{addresses} address entries for a cap of {MAX_ENTRIES}"
    );
    assert!(
        pairs <= MAX_ENTRIES,
        "{pairs} (username, address) entries for a cap of {MAX_ENTRIES}"
    );
    app.assert_alive().await;
    app.login_from(&client_from("127.0.0.9"), "admin", ADMIN_PASSWORD)
        .await
        .token_pair();
}

/// Reproducer for a defect, fixed since: the tables were bounded in
/// entries, not bytes. The (username, address) table keys on the
/// case-folded name, which can be three times longer than the name sent
/// (`ΐ` folds to three characters), so a name filling the 16 KiB body limit
/// pinned ~48 KiB per entry: ~480 MiB at the default 10 000 entries, from
/// one address. Measured on the built binary as a child process, so that
/// nothing else (no other test's server) grows the figure.
#[actix_web::test]
async fn the_throttle_tables_stay_small_in_bytes_under_huge_usernames() {
    let sb = Sandbox::new();
    let daemon = sb
        .daemon()
        .args(&[
            "--throttle-after",
            "1000000",
            "--throttle-address-after",
            "1000000",
        ])
        .args(&[
            "--argon2-memory-kib",
            "8",
            "--argon2-iterations",
            "1",
            "--workers",
            "2",
        ])
        .start();
    daemon.assert_alive().await;
    let before = daemon.rss_bytes();
    // Eight in flight from eight addresses: one address may have only as
    // many checks in flight as there are hash threads.
    let clients: Vec<_> = (1..=8)
        .map(|i| std::rc::Rc::new(daemon.calling_from(&format!("127.0.3.{i}"))))
        .collect();
    let mut batch = Vec::new();
    for i in 0..2000usize {
        let client = clients[i % clients.len()].clone();
        batch.push(actix_web::rt::spawn(async move {
            let name = format!("{i}{}", "ΐ".repeat(8_000));
            client.login(&name, "wrong-password").await.error(401);
        }));
        if batch.len() == 8 {
            for h in batch.drain(..) {
                h.await.expect("login task");
            }
        }
    }
    for h in batch {
        h.await.expect("login task");
    }
    let grown = daemon.rss_bytes().saturating_sub(before);
    assert!(
        grown < 32 << 20,
        "2000 failed logins with huge names made the daemon grow by {} MiB",
        grown >> 20
    );
    daemon.assert_alive().await;
}

/// Coercion changes how a password is read, never whether it is checked:
/// the number 12345678 is the password "12345678", verified by argon2 like
/// any other, and wrong coerced passwords count as failures like any other.
#[actix_web::test]
async fn coerced_passwords_are_verified_and_throttled_like_any_other() {
    let app = app(3, 1_000).await;
    let admin = app.admin_token().await;
    app.create_user_ok(
        &admin,
        "digits",
        "12345678",
        crate::harness::roles(&["read"]),
    )
    .await;
    let attacker = client_from("127.0.0.3");
    let login = |pw: serde_json::Value| serde_json::json!({ "username": "digits", "password": pw });
    app.login_body_from(&attacker, &login(serde_json::json!(12345678)))
        .await
        .token_pair();
    for wrong in [
        serde_json::json!(12345679),
        serde_json::json!([87654321]),
        serde_json::json!(null),
    ] {
        app.login_body_from(&attacker, &login(wrong))
            .await
            .error(401);
    }
    // Throttled now, for the right password in any form.
    for right in [serde_json::json!(12345678), serde_json::json!("12345678")] {
        throttled(&app.login_body_from(&attacker, &login(right)).await);
    }
}
