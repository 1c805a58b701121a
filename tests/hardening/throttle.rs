//! Brute force: failed logins and refreshes from one address are slowed
//! down (429 with `Retry-After`) after a threshold, the right password from
//! that address does not get through during the delay (it is never even
//! checked), but the real user on another address is never locked out. The
//! throttle's tables stay bounded however many names an attacker tries.

use std::time::Duration;

use crate::helpers::{
    ADMIN_PASSWORD, Reply, TestApp, USER_PASSWORD, client_from, spawn_app_with, token_pair,
};

/// Thresholds small enough to reach quickly, a delay long enough to span
/// the test (so "still throttled" never races the clock).
async fn app(per_user: u32, per_address: u32) -> TestApp {
    spawn_app_with(|s| {
        s.throttle.per_user = per_user;
        s.throttle.per_address = per_address;
        s.throttle.base_delay = Duration::from_secs(60);
        s.throttle.max_delay = Duration::from_secs(600);
    })
    .await
}

/// Asserts a 429 with a sane `Retry-After`; returns its seconds.
fn throttled(r: &Reply) -> u64 {
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
        attempts.push(r.status);
        throttled(&r);
    }
    assert!(
        attempts.iter().all(|s| *s == 429),
        "a 200 came through during the delay: {attempts:?}"
    );
    // Case variants of the name are the same account to the throttle.
    throttled(&app.login_from(&attacker, "ADMIN", ADMIN_PASSWORD).await);
    // The owner, from another address, gets in at once.
    token_pair(&app.login_from(&owner, "admin", ADMIN_PASSWORD).await);
    // The attacker is still throttled after the owner's success.
    throttled(&app.login_from(&attacker, "admin", ADMIN_PASSWORD).await);
    app.assert_alive().await;
}

#[actix_web::test]
async fn spraying_many_usernames_from_one_address_hits_the_address_limit() {
    let app = app(1_000, 10).await;
    let admin = app.admin_token().await;
    app.create_user_ok(&admin, "carol", &["read"]).await;
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
    token_pair(
        &app.login_from(&client_from("127.0.0.4"), "carol", USER_PASSWORD)
            .await,
    );
    app.assert_alive().await;
}

#[actix_web::test]
async fn refreshes_with_garbage_tokens_are_throttled_per_address() {
    let app = app(1_000, 5).await;
    let owner = client_from("127.0.0.2");
    let (_, refresh) = token_pair(&app.login_from(&owner, "admin", ADMIN_PASSWORD).await);
    let attacker = client_from("127.0.0.1");
    for i in 0..5 {
        app.refresh_from(&attacker, &format!("garbage.{i}.token"))
            .await
            .error(401);
    }
    throttled(&app.refresh_from(&attacker, "garbage.5.token").await);
    // Even a genuine refresh token is not looked at from that address...
    throttled(&app.refresh_from(&attacker, &refresh).await);
    // ...so it was not spent, and its owner refreshes from its own address.
    token_pair(&app.refresh_from(&owner, &refresh).await);
    // Logins from the attacker's address share the address's delay.
    throttled(&app.login_from(&attacker, "admin", ADMIN_PASSWORD).await);
    app.assert_alive().await;
}

#[actix_web::test]
async fn the_throttle_tables_stay_bounded_under_thousands_of_usernames() {
    const MAX_ENTRIES: usize = 200;
    let app = spawn_app_with(|s| {
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
    let engine_auth::throttle::Entries {
        addresses,
        user_addresses: pairs,
    } = app.state.throttle.entries();
    assert!(
        addresses <= MAX_ENTRIES,
        "{addresses} address entries for a cap of {MAX_ENTRIES}"
    );
    assert!(
        pairs <= MAX_ENTRIES,
        "{pairs} (username, address) entries for a cap of {MAX_ENTRIES}"
    );
    app.assert_alive().await;
    token_pair(
        &app.login_from(&client_from("127.0.0.9"), "admin", ADMIN_PASSWORD)
            .await,
    );
}

/// Resident memory of this process (the test server runs in it), bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Reproducer for a defect: the tables are bounded in entries, not bytes.
/// Login does not limit the username's length before throttling, and the
/// (username, address) table keys on the case-folded name, which can be
/// three times longer than the name sent (`ΐ` folds to three characters).
/// A name filling the 16 KiB body limit thus pins ~48 KiB per entry; at the
/// default 10 000 entries that is ~480 MiB, from one address, in memory a
/// Raspberry Pi does not have. Enable once login caps the name (e.g. treat
/// a name over 256 characters as unknown without recording it, or key the
/// table by a hash of the folded name).
#[actix_web::test]
async fn the_throttle_tables_stay_small_in_bytes_under_huge_usernames() {
    let app = spawn_app_with(|s| {
        s.throttle.per_user = 1_000_000;
        s.throttle.per_address = 1_000_000;
        s.argon2.memory_kib = 8;
        s.workers = 2;
    })
    .await;
    app.assert_alive().await;
    let before = rss_bytes();
    let app = std::rc::Rc::new(app);
    let mut batch = Vec::new();
    for i in 0..2000usize {
        let app = app.clone();
        batch.push(actix_web::rt::spawn(async move {
            let name = format!("{i}{}", "ΐ".repeat(8_000));
            app.login(&name, "wrong-password").await.error(401);
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
    let grown = rss_bytes().saturating_sub(before);
    let pairs = app.state.throttle.entries().user_addresses;
    assert!(
        grown < 32 << 20,
        "{pairs} throttle entries made the process grow by {} MiB",
        grown >> 20
    );
}
