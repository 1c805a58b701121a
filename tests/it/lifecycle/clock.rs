//! README "When the clock is wrong": a Raspberry Pi may issue tokens before
//! NTP corrects its clock. Simulated by setting the server's clock
//! off while tokens are issued, then correct again when they are presented.

use crate::harness::{TestApp, claims_of};
use reqwest::StatusCode;

#[actix_web::test]
async fn tokens_issued_while_the_clock_was_ahead_are_refused_as_from_the_future() {
    // Slightly ahead (within the 60 s leeway), then an hour ahead.
    let app = TestApp::spawn().await;
    app.clock.set_offset(30);
    let slightly = app.admin_tokens().await;
    app.clock.set_offset(3600);
    let ahead = app.admin_tokens().await;

    // NTP corrects the clock.
    app.clock.set_offset(0);

    let msg = app
        .list_users(&ahead.token)
        .await
        .context("an access token issued an hour ahead")
        .error_message(StatusCode::UNAUTHORIZED);
    assert!(msg.contains("future"), "{msg}");
    let msg = app
        .refresh(&ahead.refresh_token)
        .await
        .context("a refresh token issued an hour ahead")
        .error_message(StatusCode::UNAUTHORIZED);
    assert!(msg.contains("future"), "{msg}");

    // Within the leeway nothing is refused, and logging in again works.
    app.list_users(&slightly.token).await.ok_json();
    app.refresh_ok(&slightly.refresh_token).await;
    let fresh = app.admin_tokens().await;
    app.list_users(&fresh.token).await.ok_json();
}

#[actix_web::test]
async fn tokens_issued_while_the_clock_was_behind_expire_but_the_refresh_token_still_works() {
    let app = TestApp::spawn().await;
    app.clock.set_offset(-3600);
    let behind = app.admin_tokens().await;

    app.clock.set_offset(0);

    // The access token looks an hour old: expired (10 min + 60 s leeway).
    let msg = app
        .list_users(&behind.token)
        .await
        .context("an access token issued an hour behind")
        .error_message(StatusCode::UNAUTHORIZED);
    assert!(msg.contains("expired"), "{msg}");
    // The refresh token (12 h) and its session (7 days) are still good.
    let next = app.refresh_ok(&behind.refresh_token).await;
    app.list_users(&next.token).await.ok_json();
    let iat = |t: &str| claims_of(t)["iat"].as_u64().expect("iat");
    assert!(
        iat(&next.token) >= iat(&behind.token) + 3000,
        "issued on the corrected clock"
    );
    app.refresh_ok(&next.refresh_token).await;
}
