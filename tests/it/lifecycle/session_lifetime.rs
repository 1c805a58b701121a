//! The absolute session lifetime: however often a session is refreshed, it
//! ends `session_max_secs` after its login. Time is simulated by moving the
//! server's clock forward.

use crate::harness::{TestApp, USER_PASSWORD, claims_of};
use reqwest::StatusCode;

const SESSION_MAX: u64 = 100;

#[actix_web::test]
async fn a_chain_of_valid_refreshes_stops_at_the_sessions_absolute_end() {
    // Refresh tokens would live 1000 s and the leeway is 60 s, so at
    // +105 s the chain's last token still verifies: only the session's end
    // (login + 100 s) can refuse it.
    let app = TestApp::spawn_with(|s| {
        s.session_max_secs = SESSION_MAX;
        s.refresh_ttl_secs = 1000;
        s.leeway_secs = 60;
    })
    .await;
    let admin = app.admin_tokens().await.token;
    let id = app.add_user(&admin, "sess", &["read"]).await;
    let login = app.login_ok("sess", USER_PASSWORD).await;
    let login_iat = claims_of(&login.token)["iat"].as_u64().expect("iat");

    // Half-way through, refreshing works and a second session starts.
    app.clock.set_offset(50);
    let halfway = app.refresh_ok(&login.refresh_token).await;
    app.roles_of(&halfway.token, &id).await.ok_json();
    let later_session = app.login_ok("sess", USER_PASSWORD).await;

    // Past the end of the first session.
    app.clock.set_offset(SESSION_MAX as i64 + 5);
    let exp = claims_of(&halfway.refresh_token)["exp"]
        .as_u64()
        .expect("exp");
    assert!(
        exp + 60 > login_iat + SESSION_MAX + 5,
        "the test needs the refresh token itself to still verify"
    );
    let msg = app
        .refresh(&halfway.refresh_token)
        .await
        .context("refresh after the session's absolute end")
        .error_message(StatusCode::UNAUTHORIZED);
    assert!(msg.contains("Session expired"), "{msg}");

    // The session that started later, and a new login, still work.
    app.refresh_ok(&later_session.refresh_token).await;
    let fresh = app.login_ok("sess", USER_PASSWORD).await;
    app.refresh_ok(&fresh.refresh_token).await;
}
