//! Tokens that must be refused for what they claim: tampered payloads,
//! incomplete or unknown claims, forged roles, the wrong kind of token,
//! deleted users, another instance. Where the server's real signing key is
//! needed (`TestApp::sign_with_real_key`), the forgery differs from a
//! genuine token in exactly the respect under test; the control that such
//! forgeries are accepted when nothing is changed, and the attacks on the
//! token format itself (`alg`, `kid`, signatures, malformed, expired and
//! future tokens, the bearer header) are in `hardening::tokens`.

use crate::harness::{
    TestApp, USER_PASSWORD, decode_jwt, id_of, message, random_secret, roles, sign, with_payload,
};
use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn assert_bearer_refused(app: &crate::harness::TestApp, token: &str) -> Value {
    app.get("/users", Some(token))
        .await
        .error(StatusCode::UNAUTHORIZED)
}

#[actix_web::test]
async fn a_token_signed_with_another_key_is_refused() {
    let app = TestApp::spawn().await;
    let pair = app.admin_tokens().await;
    let (header, access) = decode_jwt(&pair.token);
    let (_, refresh) = decode_jwt(&pair.refresh_token);
    let kid = header["kid"].as_str().expect("kid");

    let forged = sign(Algorithm::HS256, Some(kid), &random_secret(), &access);
    assert_bearer_refused(&app, &forged).await;
    let forged_refresh = sign(Algorithm::HS256, Some(kid), &random_secret(), &refresh);
    app.refresh(&forged_refresh)
        .await
        .error(StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_tampered_payload_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = id_of(&app.get_user_by_name(&admin, "admin").await.ok_json());
    let pair = {
        app.create_user_ok(&admin, "eve", USER_PASSWORD, roles(&["read"]))
            .await;
        app.login_ok("eve", USER_PASSWORD).await
    };
    let (_, claims) = decode_jwt(&pair.token);

    let mut more_roles = claims.clone();
    more_roles["roles"] = json!(159);
    let mut other_id = claims.clone();
    other_id["_id"] = json!(admin_id);
    let mut longer = claims.clone();
    longer["exp"] = json!(claims["exp"].as_u64().unwrap() + 86400);
    for payload in [more_roles, other_id, longer] {
        assert_bearer_refused(&app, &with_payload(&pair.token, &payload)).await;
    }

    let (_, r) = decode_jwt(&pair.refresh_token);
    let mut r_other = r.clone();
    r_other["_id"] = json!(admin_id);
    app.refresh(&with_payload(&pair.refresh_token, &r_other))
        .await
        .error(StatusCode::UNAUTHORIZED);
    // The genuine token still works (the user itself is fine).
    let eve_id = claims["_id"].as_str().unwrap();
    app.roles_of(&pair.token, eve_id).await.ok_json();
}

#[actix_web::test]
async fn forged_claims_with_the_real_key_are_refused_when_incomplete_or_unknown() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, claims) = decode_jwt(&admin);
    let (_, secret) = app.signing_key();

    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut no_id = claims.clone();
    no_id.as_object_mut().unwrap().remove("_id");
    let mut bad_id = claims.clone();
    bad_id["_id"] = json!("admin");
    let mut unknown_id = claims.clone();
    unknown_id["_id"] = json!(uuid::Uuid::new_v4().to_string());
    let mut no_roles = claims.clone();
    no_roles.as_object_mut().unwrap().remove("roles");
    let mut string_exp = claims.clone();
    string_exp["exp"] = json!("9999999999");
    for payload in [no_exp, no_id, bad_id, unknown_id, no_roles, string_exp] {
        let forged = app.sign_with_real_key(Algorithm::HS256, &payload);
        assert_bearer_refused(&app, &forged).await;
    }

    // The real key under another kid, or under none.
    let other_kid = sign(Algorithm::HS256, Some("no-such-key"), &secret, &claims);
    assert_bearer_refused(&app, &other_kid).await;
    let no_kid = sign(Algorithm::HS256, None, &secret, &claims);
    assert_bearer_refused(&app, &no_kid).await;
}

#[actix_web::test]
async fn forged_admin_roles_in_a_genuinely_signed_token_do_not_make_an_admin() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, token) = app.user_with_token(&admin, "climber", &["read"]).await;
    let (_, mut claims) = decode_jwt(&token);
    claims["roles"] = json!(255);

    let forged = app.sign_with_real_key(Algorithm::HS256, &claims);

    // Authenticated (the signature is good) but the stored roles decide.
    app.roles_of(&forged, &id).await.ok_json();
    app.get("/users", Some(&forged))
        .await
        .error(StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_refresh_token_is_not_an_access_token_and_vice_versa() {
    let app = TestApp::spawn().await;
    let pair = app.admin_tokens().await;

    assert_bearer_refused(&app, &pair.refresh_token).await;
    let admin_id = decode_jwt(&pair.token).1["_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.roles_of(&pair.refresh_token, &admin_id)
        .await
        .error(StatusCode::UNAUTHORIZED);
    app.refresh(&pair.token)
        .await
        .error(StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_genuinely_signed_hybrid_token_is_not_an_access_token() {
    let app = TestApp::spawn().await;
    let pair = app.admin_tokens().await;
    let (_, mut claims) = decode_jwt(&pair.token);
    claims["refreshToken"] = json!(true);

    let hybrid = app.sign_with_real_key(Algorithm::HS256, &claims);

    assert_bearer_refused(&app, &hybrid).await;
    // And a refresh token that does not say so is no refresh token.
    let (_, r) = decode_jwt(&pair.refresh_token);
    let mut not_refresh = r.clone();
    not_refresh["refreshToken"] = json!(false);
    app.refresh(&app.sign_with_real_key(Algorithm::HS256, &not_refresh))
        .await
        .error(StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn expired_tokens_are_refused_with_a_message_saying_so() {
    let app = TestApp::spawn_with(|s| {
        s.access_ttl_secs = 1;
        s.refresh_ttl_secs = 1;
        s.leeway_secs = 0;
    })
    .await;
    let pair = app.admin_tokens().await;
    // exp = iat + 1 in whole seconds: 3 s later on the server's clock both
    // are past.
    app.clock.advance(3);

    let body = assert_bearer_refused(&app, &pair.token).await;
    assert!(message(&body).to_lowercase().contains("expired"), "{body}");
    let body = app
        .refresh(&pair.refresh_token)
        .await
        .error(StatusCode::UNAUTHORIZED);
    assert!(message(&body).to_lowercase().contains("expired"), "{body}");
    // A fresh login works again.
    app.users(&app.admin_token().await).await;
}

#[actix_web::test]
async fn a_deleted_users_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, pair) = app.user_with_tokens(&admin, "leaver", &["read"]).await;

    app.delete_user(&admin, &id).await.ok_json();

    app.assert_all_revoked(&id, &[&pair], "revoked").await;
    // Re-creating the name makes a new user; the old tokens stay dead.
    let new_id = app
        .create_user_ok(&admin, "leaver", USER_PASSWORD, roles(&["read"]))
        .await;
    app.assert_all_revoked(&new_id, &[&pair], "revoked").await;
}

#[actix_web::test]
async fn a_token_from_another_instance_is_refused() {
    let app = TestApp::spawn().await;
    let other = TestApp::spawn().await;
    let foreign = other.admin_tokens().await;

    assert_bearer_refused(&app, &foreign.token).await;
    app.refresh(&foreign.refresh_token)
        .await
        .error(StatusCode::UNAUTHORIZED);
    // Each is fine at home.
    other.users(&foreign.token).await;
}
