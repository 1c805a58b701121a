//! Brute force by concurrency, and by sharing an address:
//!
//! - a burst of wrong passwords sent at once gets no more guesses than the
//!   same passwords sent one by one (an attempt counts from before its
//!   hash, not from its answer);
//! - a flood queues no more hashes than the daemon can serve soon: 429 per
//!   address, 503 when the hash queue is full, both with `Retry-After`;
//! - one attacker cannot lock out the others behind its address: garbage
//!   refresh tokens are limited on their own, and a trusted reverse proxy's
//!   `X-Forwarded-For` names the client (an untrusted peer's is ignored);
//! - a stolen access token cannot guess its user's current password
//!   without limit: the guesses are throttled like logins, and a few wrong
//!   ones revoke every token of the user.

use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};
use std::io::Write;
use std::time::Duration;

use super::throttle::throttled;
use crate::harness::{
    ADMIN_PASSWORD, Reply, TestApp, USER_PASSWORD, client_from, send, wait_until,
};

/// `n` requests at once, each on its own connection, built by `request(i)`;
/// the replies in the same order.
async fn burst(n: usize, request: impl Fn(usize) -> RequestBuilder) -> Vec<Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|i| actix_web::rt::spawn(send(request(i))))
        .collect();
    let mut replies = Vec::with_capacity(n);
    for t in tasks {
        replies.push(t.await.expect("request task"));
    }
    replies
}

fn count(replies: &[Reply], status: u16) -> usize {
    replies.iter().filter(|r| r.status() == status).count()
}

/// Every reply has one of `allowed`; every 429 and 503 says when to retry.
fn only(replies: &[Reply], allowed: &[u16]) {
    for r in replies {
        let s = r.status().as_u16();
        assert!(allowed.contains(&s), "{}: {s} {}", r.what, r.text());
        match s {
            429 => {
                throttled(r);
            }
            503 => {
                r.error(503);
                let secs: u64 = r
                    .header("retry-after")
                    .unwrap_or_else(|| panic!("{}: 503 without Retry-After", r.what))
                    .parse()
                    .expect("Retry-After is delta-seconds");
                assert!((1..=60).contains(&secs), "Retry-After {secs}");
            }
            _ => {}
        }
    }
}

/// Thresholds as given, a delay long enough to span the test, and hashes
/// slow enough (4 MiB in a debug build) that a whole burst is in flight
/// before the first hash ends.
async fn app(per_user: u32, per_address: u32) -> TestApp {
    app_with(per_user, per_address, 2, None).await
}

/// [`app`] with `hash_threads` (`max_concurrent_hashes`) and optionally a
/// trusted reverse proxy.
async fn app_with(
    per_user: u32,
    per_address: u32,
    hash_threads: usize,
    trusted_proxy: Option<&str>,
) -> TestApp {
    TestApp::spawn_with(|s| {
        s.throttle.per_user = per_user;
        s.throttle.per_address = per_address;
        s.throttle.base_delay = Duration::from_secs(60);
        s.throttle.max_delay = Duration::from_secs(600);
        s.argon2.memory_kib = 4096;
        s.max_concurrent_hashes = hash_threads;
        s.trusted_proxies = trusted_proxy
            .map(|p| p.parse().expect("a literal address"))
            .into_iter()
            .collect();
    })
    .await
}

fn login_body(username: &str, password: &str) -> Value {
    json!({ "username": username, "password": password })
}

#[actix_web::test]
async fn a_burst_of_wrong_logins_gets_no_more_guesses_than_the_threshold() {
    let app = app(5, 1_000).await;
    let attacker = client_from("127.0.0.21");
    let url = app.api("/login");
    let replies = burst(50, |i| {
        attacker
            .post(&url)
            .json(&login_body("admin", &format!("guess-{i:04}")))
    })
    .await;
    only(&replies, &[401, 429]);
    let mut guesses = count(&replies, 401);
    assert!(
        guesses <= 5,
        "{guesses} of 50 concurrent wrong logins were checked (threshold 5)"
    );
    // What the burst did not use, one guess at a time: five in all.
    loop {
        let r = app.login_from(&attacker, "admin", "one-more-guess").await;
        if r.status() == 429 {
            throttled(&r);
            break;
        }
        r.error(401);
        guesses += 1;
    }
    assert_eq!(guesses, 5, "checks of wrong passwords, burst and after");
    // The right password from there is not even checked now...
    throttled(&app.login_from(&attacker, "admin", ADMIN_PASSWORD).await);
    // ...and the owner, elsewhere, gets in.
    app.login_from(&client_from("127.0.0.22"), "admin", ADMIN_PASSWORD)
        .await
        .token_pair();
}

#[actix_web::test]
async fn a_burst_spraying_usernames_from_one_address_is_capped_at_the_address() {
    let app = app(1_000, 10).await;
    let sprayer = client_from("127.0.0.23");
    let url = app.api("/login");
    let replies = burst(50, |i| {
        sprayer
            .post(&url)
            .json(&login_body(&format!("user{i}"), "password-1"))
    })
    .await;
    only(&replies, &[401, 429]);
    let guesses = count(&replies, 401);
    assert!(
        guesses <= 10,
        "{guesses} of 50 concurrent sprayed logins were checked (address threshold 10)"
    );
    app.login_from(&client_from("127.0.0.22"), "admin", ADMIN_PASSWORD)
        .await
        .token_pair();
}

/// A flood from many addresses, each within its own limits: beyond what the
/// hash threads can serve soon, logins are answered 503 at once instead of
/// queueing (so a login's wait stays bounded: bench/ measures it).
#[actix_web::test]
async fn a_flood_from_many_addresses_gets_503_beyond_the_hash_queue() {
    let app = app_with(1_000_000, 1_000_000, 1, None).await;
    let clients: Vec<Client> = (1..=40)
        .map(|i| client_from(&format!("127.0.1.{i}")))
        .collect();
    let url = app.api("/login");
    let replies = burst(40, |i| {
        clients[i]
            .post(&url)
            .json(&login_body(&format!("flood{i}"), "wrong-password"))
    })
    .await;
    only(&replies, &[401, 503]);
    assert!(
        count(&replies, 503) > 0,
        "40 concurrent logins on one hash thread all queued"
    );
    // Once the queue has drained, logins are served again.
    app.login_from(&client_from("127.0.0.22"), "admin", ADMIN_PASSWORD)
        .await
        .token_pair();
}

/// Clients that hang up while their password is being checked: however
/// their request ends (its future dropped mid-check, or run to the end),
/// each attempt counts as a failure (hanging up escapes nothing) and none
/// stays counted as in flight (which would refuse the address for good).
#[actix_web::test]
async fn clients_hanging_up_mid_check_count_and_leave_nothing_in_flight() {
    // Enough hash threads for all six to be checked at once (one address
    // has at most that many checks in flight).
    let app = app_with(1_000, 1_000, 6, None).await;
    for i in 0..6 {
        let body = login_body("admin", &format!("guess-{i:04}")).to_string();
        let request = format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", app.port)).expect("connect");
        socket.write_all(request.as_bytes()).expect("send");
        drop(socket);
    }
    wait_until(30, "six failed checks, none in flight", || {
        app.throttle_checks() == (0, 6)
    });
    app.login_ok("admin", ADMIN_PASSWORD).await;
}

#[actix_web::test]
async fn garbage_refresh_tokens_never_block_logins_or_valid_refreshes() {
    let app = app(5, 5).await;
    let shared = client_from("127.0.0.24");
    let pair = app
        .login_from(&shared, "admin", ADMIN_PASSWORD)
        .await
        .token_pair();
    for i in 0..20 {
        let r = app
            .refresh_from(&shared, &format!("garbage.{i}.token"))
            .await;
        if i < 5 {
            r.error(401);
        } else {
            throttled(&r);
        }
    }
    // Garbage is limited on its own: the right password and a genuine
    // refresh token from the same address still work.
    app.login_from(&shared, "admin", ADMIN_PASSWORD)
        .await
        .token_pair();
    app.refresh_from(&shared, &pair.refresh_token)
        .await
        .token_pair();
}

/// A request as the reverse proxy at `proxy` forwards it for `client`.
fn via(proxy: &Client, app: &TestApp, path: &str, client: &str, body: &Value) -> RequestBuilder {
    proxy
        .post(app.api(path))
        .header("X-Forwarded-For", client)
        .json(body)
}

/// Behind a local reverse proxy every client reaches the daemon from
/// 127.0.0.1. With the proxy trusted, each forwarded client is counted on
/// its own full address: `fd00:1::b` brute-forcing and spraying garbage
/// does not touch `fd00:1::c`, although both share a /64.
#[actix_web::test]
async fn behind_a_trusted_proxy_each_forwarded_client_is_counted_on_its_own() {
    let app = app_with(5, 20, 2, Some("127.0.0.1")).await;
    let proxy = client_from("127.0.0.1");
    let (b, c) = ("fd00:1::b", "fd00:1::c");
    let right = login_body("admin", ADMIN_PASSWORD);
    let c_pair = send(via(&proxy, &app, "/login", c, &right))
        .await
        .token_pair();
    for i in 0..20 {
        let garbage = json!({ "refreshToken": format!("garbage.{i}.token") });
        let r = send(via(&proxy, &app, "/refresh", b, &garbage)).await;
        assert!([401, 429].contains(&r.status().as_u16()), "{}", r.text());
    }
    for i in 0..5 {
        let wrong = login_body("admin", &format!("guess-{i:04}"));
        send(via(&proxy, &app, "/login", b, &wrong))
            .await
            .error(401);
    }
    throttled(&send(via(&proxy, &app, "/login", b, &right)).await);
    // The neighbour logs in and refreshes as if nothing happened.
    send(via(&proxy, &app, "/login", c, &right))
        .await
        .token_pair();
    let refresh = json!({ "refreshToken": c_pair.refresh_token });
    send(via(&proxy, &app, "/refresh", c, &refresh))
        .await
        .token_pair();
    // A chain through two proxies names the client before them.
    send(via(&proxy, &app, "/login", "fd00:1::d, 127.0.0.1", &right))
        .await
        .token_pair();
}

/// Only a configured proxy is believed: anyone else who sends
/// `X-Forwarded-For` is counted on its own address however it rotates the
/// header.
#[actix_web::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = app_with(3, 1_000, 2, Some("127.0.0.1")).await;
    let liar = client_from("127.0.0.25");
    for i in 0..3 {
        let wrong = login_body("admin", &format!("guess-{i:04}"));
        send(via(&liar, &app, "/login", &format!("fd00:2::{i}"), &wrong))
            .await
            .error(401);
    }
    let right = login_body("admin", ADMIN_PASSWORD);
    throttled(&send(via(&liar, &app, "/login", "fd00:2::99", &right)).await);
    throttled(&send(via(&liar, &app, "/login", "127.0.0.26", &right)).await);
}

/// A victim's access token in an attacker's hands, and the victim's own
/// session: (user id, the victim's token pair, the victim's client).
async fn victim(
    app: &TestApp,
    name: &str,
    at: &str,
) -> (String, crate::harness::TokenPair, Client) {
    let admin = app.admin_token().await;
    let id = app.add_user(&admin, name, &["read"]).await;
    let client = client_from(at);
    let pair = app
        .login_from(&client, name, USER_PASSWORD)
        .await
        .token_pair();
    (id, pair, client)
}

fn change(current: &str) -> Value {
    json!({ "password": "taken-over-password", "currentPassword": current })
}

#[actix_web::test]
async fn guessing_the_current_password_with_a_stolen_token_ends_after_a_few_guesses() {
    let app = app(5, 1_000).await;
    let (id, stolen, own) = victim(&app, "victim", "127.0.0.27").await;
    let thief = app.calling_from("127.0.0.28");
    let mut statuses = Vec::new();
    for i in 0..60 {
        let r = thief
            .set_password(&stolen.token, &id, change(&format!("guess-{i:04}")))
            .await;
        assert!(
            [401, 403, 429].contains(&r.status().as_u16()),
            "guess {i}: {} {}",
            r.status(),
            r.text()
        );
        statuses.push(r.status().as_u16());
    }
    let checked = statuses.iter().filter(|s| **s == 403).count();
    assert!(
        checked <= 5,
        "{checked} of 60 guesses of currentPassword were checked: {statuses:?}"
    );
    // The right one comes too late: the stolen token is revoked...
    let r = thief
        .set_password(&stolen.token, &id, change(USER_PASSWORD))
        .await;
    r.error(401);
    // ...and so is the victim's session (the thief may hold it too).
    app.refresh_from(&own, &stolen.refresh_token)
        .await
        .error(401);
    // The password is unchanged: the victim logs in with it again.
    app.login_from(&own, "victim", USER_PASSWORD)
        .await
        .token_pair();
}

#[actix_web::test]
async fn a_burst_of_current_password_guesses_gets_no_more_than_the_threshold() {
    let app = app(5, 1_000).await;
    let (id, stolen, own) = victim(&app, "victim", "127.0.0.29").await;
    let thief = client_from("127.0.0.30");
    let url = app.api(&format!("/user/password/{id}"));
    let replies = burst(30, |i| {
        thief
            .patch(&url)
            .bearer_auth(&stolen.token)
            .json(&change(&format!("guess-{i:04}")))
    })
    .await;
    only(&replies, &[401, 403, 429]);
    let mut checked = count(&replies, 403);
    assert!(
        checked <= 5,
        "{checked} of 30 concurrent guesses of currentPassword were checked"
    );
    // What the burst did not use, one guess at a time, until the token
    // stops working: five checks in all.
    let guess = |current: &str| {
        send(
            thief
                .patch(&url)
                .bearer_auth(&stolen.token)
                .json(&change(current)),
        )
    };
    loop {
        let r = guess("one-more-guess").await;
        match r.status().as_u16() {
            403 => checked += 1,
            401 => break,
            _ => {
                throttled(&r);
            }
        }
    }
    assert_eq!(
        checked, 5,
        "checks of wrong current passwords, burst and after"
    );
    guess(USER_PASSWORD).await.error(401);
    app.login_from(&own, "victim", USER_PASSWORD)
        .await
        .token_pair();
}

/// The current password shares the login's count for (user, address): from
/// an address throttled for that user, even the right one is not checked.
#[actix_web::test]
async fn the_current_password_is_not_checked_from_a_throttled_address() {
    let app = app(3, 1_000).await;
    let (id, stolen, own) = victim(&app, "victim", "127.0.0.31").await;
    let thief = app.calling_from("127.0.0.32");
    for i in 0..3 {
        thief
            .login("victim", &format!("guess-{i:04}"))
            .await
            .error(401);
    }
    throttled(
        &thief
            .set_password(&stolen.token, &id, change(USER_PASSWORD))
            .await,
    );
    // Nothing changed: the victim's password and token still work, and
    // from the victim's own address the change goes through.
    app.login_from(&own, "victim", USER_PASSWORD)
        .await
        .token_pair();
    app.calling_from("127.0.0.31")
        .set_password(&stolen.token, &id, change(USER_PASSWORD))
        .await
        .ok_json();
}
