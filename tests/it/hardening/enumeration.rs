//! User enumeration: nothing an unauthenticated client sees may tell an
//! unknown username from a known one with a wrong password: not the
//! status, not a byte of the body, not the headers, not when throttling
//! starts, not the time a failure takes after an argon2 parameter change
//! (the one timing check here has a thirtyfold margin; finer timing is
//! measured by `examples/login_timing.rs`).

use crate::harness::{Reply, TestApp, USER_PASSWORD, client_from};
use serde_json::json;

/// Everything but `date`, which is allowed to differ.
fn visible(r: &Reply) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(n, _)| n != "date")
        .cloned()
        .collect();
    headers.sort();
    (r.status().as_u16(), headers, r.body.clone())
}

async fn app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.throttle.per_user = 3;
        s.throttle.per_address = 1_000;
        s.throttle.base_delay = std::time::Duration::from_secs(60);
    })
    .await
}

#[actix_web::test]
async fn unknown_users_and_wrong_passwords_get_byte_identical_answers() {
    let app = app().await;
    let admin = app.admin_token().await;
    app.add_user(&admin, "known@home.com", &["read"]).await;
    let pairs = [
        (
            ("known@home.com", "wrong-password"),
            ("unknown@home.com", "wrong-password"),
        ),
        (
            ("KNOWN@HOME.COM", "wrong-password"),
            ("nobody", "wrong-password"),
        ),
        (("admin", "x"), ("ghost", "x")),
        (("admin", ""), ("", "")),
        // Even a correct password of *another* user changes nothing.
        (
            ("admin", USER_PASSWORD),
            ("unknown@home.com", USER_PASSWORD),
        ),
    ];
    for (i, ((k_user, k_pw), (u_user, u_pw))) in pairs.into_iter().enumerate() {
        // A fresh address per pair keeps the throttle out of it.
        let c = client_from(&format!("127.0.5.{}", i + 1));
        let known = app.login_from(&c, k_user, k_pw).await;
        let unknown = app.login_from(&c, u_user, u_pw).await;
        known.error(401);
        assert_eq!(
            visible(&known),
            visible(&unknown),
            "{k_user:?} vs {u_user:?}:\n{}\n{}",
            known.text(),
            unknown.text()
        );
    }
    app.assert_alive().await;
}

#[actix_web::test]
async fn throttling_starts_at_the_same_attempt_for_known_and_unknown_users() {
    let app = app().await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    let c_known = client_from("127.0.6.1");
    let c_unknown = client_from("127.0.6.2");
    for i in 0..5 {
        let pw = format!("wrong-{i}");
        known.push(app.login_from(&c_known, "admin", &pw).await);
        unknown.push(app.login_from(&c_unknown, "no-such-user", &pw).await);
    }
    let statuses = |v: &[Reply]| v.iter().map(|r| r.status()).collect::<Vec<_>>();
    assert_eq!(statuses(&known), [401, 401, 401, 429, 429]);
    assert_eq!(statuses(&known), statuses(&unknown));
    for (k, u) in known.iter().zip(&unknown) {
        assert_eq!(
            visible(k),
            visible(u),
            "known vs unknown:\n{}\n{}",
            k.text(),
            u.text()
        );
    }
    app.assert_alive().await;
}

/// Coerced bodies (a number, an array, `null` for the strings) answer an
/// unknown user exactly as a known one with a wrong password.
#[actix_web::test]
async fn coerced_bodies_tell_nothing_either() {
    let app = app().await;
    let admin = app.admin_token().await;
    app.add_user(&admin, "known@home.com", &["read"]).await;
    let bodies = [
        (
            json!({"username": "known@home.com", "password": 12345678}),
            json!({"username": "unknown@home.com", "password": 12345678}),
        ),
        (
            json!({"username": ["known@home.com"], "password": [true]}),
            json!({"username": ["unknown@home.com"], "password": [true]}),
        ),
        (
            json!({"username": "known@home.com", "password": null}),
            json!({"username": null, "password": null}),
        ),
    ];
    for (i, (k, u)) in bodies.iter().enumerate() {
        let c = client_from(&format!("127.0.7.{}", i + 1));
        let known = app.login_body_from(&c, k).await;
        let unknown = app.login_body_from(&c, u).await;
        known.error(401);
        assert_eq!(visible(&known), visible(&unknown), "{k} vs {u}");
    }
}

/// After an argon2 parameter change (`tune-argon2`), a user whose stored
/// hash has the old, slower parameters fails slowly; an unknown user must
/// fail as slowly, or timing tells which names exist. The contrast here is
/// large (4 MiB, 2 passes against the tests' 256 KiB, 1 pass: some
/// thirtyfold), so the check has a wide margin: unknown users must take at
/// least a third of the old user's time (before the fix: a few percent).
#[actix_web::test]
async fn failed_logins_take_as_long_for_unknown_users_after_a_parameter_change() {
    let app = TestApp::spawn_with(|s| {
        s.argon2.memory_kib = 4 * 1024;
        s.argon2.iterations = 2;
    })
    .await;
    let admin = app.admin_token().await;
    app.add_user(&admin, "old-hash@home.com", &["read"]).await;
    let clock = app.clock.clone();
    let dir = app.stop().await;
    // The harness's cheap parameters from now on.
    let app = TestApp::spawn_in(dir, clock, |s| {
        s.throttle.per_user = 1_000;
        s.throttle.per_address = 1_000;
    })
    .await;
    let median = |mut v: Vec<std::time::Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..7 {
        let started = std::time::Instant::now();
        app.login("old-hash@home.com", &format!("wrong-{i}"))
            .await
            .error(401);
        known.push(started.elapsed());
        let started = std::time::Instant::now();
        app.login(&format!("nobody-{i}@home.com"), &format!("wrong-{i}"))
            .await
            .error(401);
        unknown.push(started.elapsed());
    }
    let (known, unknown) = (median(known), median(unknown));
    assert!(
        unknown * 3 >= known,
        "unknown user {unknown:?} vs a user with an older hash {known:?}: timing tells them apart"
    );
}
