//! Revoking the signing keys at once, for a suspected leak (review finding
//! 1: a local user read the key from the store and forged an admin token;
//! rotating did not stop the forgery, since a retired key verifies until
//! every token it signed has expired). `keys rotate --revoke-previous`
//! through the running daemon's admin socket or offline, and
//! `POST /keys/rotate` with `"revokePrevious": true`, delete every earlier
//! key: every token signed before, forged or genuine, access or refresh, is
//! refused with 401 from the next request on (never 500), while a plain
//! rotation keeps them valid as before and logins keep working.

use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Api, Sandbox, TestApp, TokenPair, USER_PASSWORD, claims_of, kid_of, now};

/// A token the attacker mints with the key it read: the admin's own
/// claims (id, roles, generation) with a fresh `iat`/`exp`, signed with
/// the active key under its `kid`.
fn forged_admin_token(app: &TestApp, genuine: &str) -> String {
    let mut claims = claims_of(genuine);
    let t = now();
    claims["iat"] = json!(t);
    claims["exp"] = json!(t + 3600);
    app.sign_with_real_key(Algorithm::HS256, &claims)
}

/// Every token in `pairs` (and `access`) is refused: access tokens by an
/// admin-only and a self-service call, refresh tokens by `/refresh`, both
/// with 401 "Invalid token" (the key that signed them is gone).
async fn assert_refused(api: &Api, user_id: &str, access: &[&str], pairs: &[&TokenPair]) {
    let tokens = access
        .iter()
        .copied()
        .chain(pairs.iter().map(|p| p.token.as_str()));
    for (i, token) in tokens.enumerate() {
        for reply in [
            api.list_users(token).await,
            api.roles_of(token, user_id).await,
        ] {
            let msg = reply
                .context(&format!("access token #{i} signed before the revocation"))
                .error_message(StatusCode::UNAUTHORIZED);
            assert!(msg.contains("Invalid token"), "{msg}");
        }
    }
    for (i, p) in pairs.iter().enumerate() {
        let msg = api
            .refresh(&p.refresh_token)
            .await
            .context(&format!("refresh token #{i} signed before the revocation"))
            .error_message(StatusCode::UNAUTHORIZED);
        assert!(msg.contains("Invalid token"), "{msg}");
    }
}

/// `POST /keys/rotate` with `revokePrevious`, as `token`.
async fn rotate(api: &Api, token: &str, revoke_previous: bool) -> Value {
    api.post_json(
        "/keys/rotate",
        Some(token),
        &json!({ "revokePrevious": revoke_previous }),
    )
    .await
    .ok_json()
}

#[actix_web::test]
async fn revoke_previous_over_http_refuses_a_forged_admin_token_at_once_and_nothing_500s() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await;
    let admin_id = claims_of(&admin.token)["_id"]
        .as_str()
        .expect("_id")
        .to_string();
    let (bob_id, bob) = app.user_with_tokens(&admin.token, "bob", &["read"]).await;
    let kid1 = kid_of(&admin.token);
    // The attack: a token minted with the key read from the store works as
    // the admin's own.
    let forged = forged_admin_token(&app, &admin.token);
    app.add_user(&forged, "mallory", &["admin"]).await;

    // A plain rotation changes nothing for them (the existing contract):
    // the retired key still verifies.
    let plain = rotate(&app, &admin.token, false).await;
    let kid2 = plain["kid"].as_str().expect("kid").to_string();
    assert_eq!(plain["revoked"], json!([]), "{plain}");
    assert_ne!(kid2, kid1);
    app.list_users(&forged).await.ok_json();
    app.list_users(&admin.token).await.ok_json();
    // A pair signed with the second key, to be revoked too.
    let second = app.login_ok("bob", USER_PASSWORD).await;
    assert_eq!(kid_of(&second.token), kid2);

    // The revocation, by the admin whose own token dies with it.
    let revoked = rotate(&app, &admin.token, true).await;
    let kid3 = revoked["kid"].as_str().expect("kid").to_string();
    let mut gone: Vec<&str> = revoked["revoked"]
        .as_array()
        .expect("revoked")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    gone.sort_unstable();
    let mut earlier = [kid1.as_str(), kid2.as_str()];
    earlier.sort_unstable();
    assert_eq!(gone, earlier, "{revoked}");
    assert_eq!(app.active_kid(), kid3);
    assert_eq!(
        app.key_states().into_iter().collect::<Vec<_>>(),
        [(kid3.clone(), "Active".to_string())]
    );

    assert_refused(&app, &admin_id, &[&forged], &[&admin]).await;
    assert_refused(&app, &bob_id, &[], &[&bob, &second]).await;
    // Logging out with a revoked refresh token (and a valid access token)
    // is a 401 too, never a 500.
    let fresh = app.admin_tokens().await;
    assert_eq!(kid_of(&fresh.token), kid3);
    app.logout(
        Some(&fresh.token),
        &json!({ "refreshToken": admin.refresh_token }),
    )
    .await
    .error(StatusCode::UNAUTHORIZED);
    // Everyone logs in again; the new tokens work and refresh.
    app.list_users(&fresh.token).await.ok_json();
    let next = app.refresh_ok(&fresh.refresh_token).await;
    app.list_users(&next.token).await.ok_json();
    let bob_again = app.login_ok("bob", USER_PASSWORD).await;
    app.roles_of(&bob_again.token, &bob_id).await.ok_json();
}

#[actix_web::test]
async fn only_an_admin_may_rotate_over_http_and_the_choice_must_be_explicit() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, user) = app
        .user_with_token(&admin, "carol", &["flows", "read"])
        .await;
    let kid = app.active_kid();
    let body = json!({ "revokePrevious": true });

    app.post_json("/keys/rotate", None, &body)
        .await
        .error(StatusCode::UNAUTHORIZED);
    app.post_json("/keys/rotate", Some(&user), &body)
        .await
        .error(StatusCode::FORBIDDEN);
    let msg = app
        .post_json("/keys/rotate", Some(&admin), &json!({}))
        .await
        .error_message(StatusCode::BAD_REQUEST);
    assert!(msg.contains("revokePrevious"), "{msg}");
    app.post_json(
        "/keys/rotate",
        Some(&admin),
        &json!({ "revokePrevious": "maybe" }),
    )
    .await
    .error(StatusCode::BAD_REQUEST);
    assert_eq!(app.active_kid(), kid, "a refused call rotated the key");
    app.list_users(&user).await.error(StatusCode::FORBIDDEN);
    app.list_users(&admin).await.ok_json();
}

/// The kids in `keys list` with `state`.
fn kids(sb: &Sandbox, state: &str) -> Vec<String> {
    sb.keys_list()
        .into_iter()
        .filter(|(_, s)| s == state)
        .map(|(k, _)| k)
        .collect()
}

#[actix_web::test]
async fn keys_rotate_revoke_previous_through_the_running_daemon_and_offline_refuses_earlier_tokens()
{
    let sb = Sandbox::new();
    let mut daemon = sb.start();
    let admin = daemon.admin_tokens().await;
    let admin_id = claims_of(&admin.token)["_id"]
        .as_str()
        .expect("_id")
        .to_string();
    let kid1 = kid_of(&admin.token);

    // Plain `keys rotate`: tokens signed before stay valid.
    let out = sb.cli_ok(&["keys", "rotate"], &[]);
    assert!(out.contains("stay valid"), "{out}");
    daemon.list_users(&admin.token).await.ok_json();
    let second = daemon.admin_tokens().await;
    let kid2 = kid_of(&second.token);
    assert_ne!(kid2, kid1);

    // Through the admin socket: the running daemon drops both keys at once.
    let out = sb.cli_ok(&["keys", "rotate", "--revoke-previous"], &[]);
    assert!(
        out.contains(&kid1) && out.contains(&kid2) && out.contains("refused"),
        "{out}"
    );
    let active = kids(&sb, "Active");
    assert_eq!(sb.keys_list().len(), 1, "{:?}", sb.keys_list());
    assert_refused(&daemon, &admin_id, &[], &[&admin, &second]).await;
    let third = daemon.admin_tokens().await;
    assert_eq!(vec![kid_of(&third.token)], active);
    daemon.list_users(&third.token).await.ok_json();

    // Audited: the new key, then each revoked one, by the CLI.
    let logs = daemon.logs();
    for kid in [&kid1, &kid2] {
        assert!(
            logs.lines()
                .any(|l| l.contains(&format!("event=key_revoked kid={kid} by=cli"))),
            "no key_revoked line for {kid}:\n{logs}"
        );
    }
    daemon.terminate();

    // Offline: the CLI opens the store itself; the restarted daemon
    // refuses what the revoked key signed.
    let out = sb.cli_ok(&["keys", "rotate", "--revoke-previous"], &[]);
    assert!(out.contains(&active[0]), "{out}");
    assert_eq!(sb.keys_list().len(), 1);
    let daemon = sb.start();
    assert_refused(&daemon, &admin_id, &[], &[&third]).await;
    daemon
        .list_users(&daemon.admin_token().await)
        .await
        .ok_json();
    sb.assert_logs_free_of(&[&admin.token, &second.token, &third.token]);
}
