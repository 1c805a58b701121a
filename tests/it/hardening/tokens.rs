//! Forged and misused tokens. Each attack is first shown to be meaningful:
//! the same claims, genuinely signed, are accepted; only the one thing the
//! attack changes makes the difference. Every refusal is a JSON 401, on a
//! bearer-protected call and on `/refresh` alike.

use crate::harness::{
    ADMIN_PASSWORD, TestApp, TokenPair, b64, b64_json, decode_jwt, forge, header, now,
    random_secret,
};
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

async fn app() -> TestApp {
    // Refreshes with bad tokens count as failures per address; keep the
    // throttle out of the way of sending dozens of them.
    TestApp::spawn_with(|s| {
        s.throttle.per_address = 1_000_000;
        s.throttle.per_user = 1_000_000;
    })
    .await
}

/// Genuine claims of the admin's current tokens, to forge variants of.
struct Genuine {
    access: Value,
    refresh: Value,
    kid: String,
    secret: Vec<u8>,
}

async fn genuine(app: &TestApp) -> Genuine {
    let TokenPair {
        token: access,
        refresh_token: refresh,
    } = app.login_ok("admin", ADMIN_PASSWORD).await;
    let (kid, secret) = app.signing_key();
    let (header, access) = decode_jwt(&access);
    assert_eq!(header["kid"].as_str(), Some(kid.as_str()));
    Genuine {
        access,
        refresh: decode_jwt(&refresh).1,
        kid,
        secret,
    }
}

fn hs256(kid: &str) -> Value {
    header(Algorithm::HS256, Some(kid))
}

/// Asserts `token` is refused as a bearer token (401 on an admin call) and,
/// as a refresh token, on `/refresh`. Returns the bearer refusal message.
async fn refused(app: &TestApp, token: &str) -> String {
    let m = app.get("/users", Some(token)).await.error_message(401);
    app.refresh_from(&app.client, token).await.error(401);
    m
}

async fn accepted_as_bearer(app: &TestApp, token: &str) {
    app.get("/users", Some(token)).await.ok_json();
}

#[actix_web::test]
async fn genuinely_signed_forgeries_are_accepted_control() {
    // Without this, every refusal below could just be a broken forge().
    let app = app().await;
    let g = genuine(&app).await;
    let token = forge(&hs256(&g.kid), &g.access, Algorithm::HS256, &g.secret);
    accepted_as_bearer(&app, &token).await;
    assert_eq!(app.users(&token).await, ["admin"]);
    let refresh = forge(&hs256(&g.kid), &g.refresh, Algorithm::HS256, &g.secret);
    app.refresh_from(&app.client, &refresh).await.token_pair();
}

#[actix_web::test]
async fn alg_none_in_any_spelling_is_refused() {
    let app = app().await;
    let g = genuine(&app).await;
    // A signature that would be right for HS256, and the genuine token's
    // own signature.
    let sig = forge(&hs256(&g.kid), &g.access, Algorithm::HS256, &g.secret);
    let sig = sig.rsplit('.').next().expect("signature").to_string();
    let issued = app.admin_token().await;
    let issued_sig = issued.rsplit('.').next().expect("signature").to_string();
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        let with_kid = json!({"alg": alg, "typ": "JWT", "kid": g.kid});
        let without_kid = json!({"alg": alg, "typ": "JWT"});
        for header in [with_kid, without_kid] {
            let unsigned = format!("{}.{}.", b64_json(&header), b64_json(&g.access));
            refused(&app, &unsigned).await;
            refused(&app, &format!("{unsigned}{sig}")).await;
            refused(&app, &format!("{unsigned}{issued_sig}")).await;
            let unsigned_refresh = format!("{}.{}.", b64_json(&header), b64_json(&g.refresh));
            refused(&app, &unsigned_refresh).await;
        }
    }
    app.assert_alive().await;
}

#[actix_web::test]
async fn other_algorithms_are_refused_even_with_the_real_key() {
    let app = app().await;
    let g = genuine(&app).await;
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let header = json!({"alg": format!("{alg:?}"), "typ": "JWT", "kid": g.kid});
        refused(&app, &forge(&header, &g.access, alg, &g.secret)).await;
        refused(&app, &forge(&header, &g.refresh, alg, &g.secret)).await;
    }
    // Algorithm confusion: an asymmetric alg in the header, "verified" with
    // the HMAC secret, or with a made-up signature of the right length.
    for alg in ["RS256", "RS512", "PS256", "ES256", "ES384", "EdDSA"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": g.kid});
        let hmac_signed = forge(&header, &g.access, Algorithm::HS256, &g.secret);
        refused(&app, &hmac_signed).await;
        let message = format!("{}.{}", b64_json(&header), b64_json(&g.access));
        refused(&app, &format!("{message}.{}", b64(&[0x41; 256]))).await;
    }
    app.assert_alive().await;
}

#[actix_web::test]
async fn a_kid_that_names_no_key_is_refused_whatever_it_contains() {
    let app = app().await;
    let g = genuine(&app).await;
    let mut kids: Vec<Value> = vec![
        json!("0000000000000000"),
        json!("../../etc/passwd"),
        json!("../../../../../../dev/null"),
        json!("/dev/null"),
        json!("file:///etc/passwd"),
        json!("' OR '1'='1"),
        json!(""),
        json!(" "),
        json!(format!("{}\u{0}", g.kid)),
        json!(format!("{} ", g.kid)),
        json!("k".repeat(8_000)),
        json!(123),
        json!(null),
        json!([g.kid]),
        json!({"kid": g.kid}),
    ];
    // The kid in another case, when it has letters to change: a kid of 16
    // hex digits has none about once in 1,850 keys (CI met one), and then
    // its upper case is the real kid, rightly accepted.
    let upper = g.kid.to_uppercase();
    if upper != g.kid {
        kids.push(json!(upper));
    }
    for kid in &kids {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
        // Signed with the real key: the kid alone must make it fail.
        refused(
            &app,
            &forge(&header, &g.access, Algorithm::HS256, &g.secret),
        )
        .await;
        // Signed with what a path-reading server would find there.
        refused(&app, &forge(&header, &g.access, Algorithm::HS256, b"")).await;
        refused(&app, &forge(&header, &g.refresh, Algorithm::HS256, b"")).await;
    }
    // No kid at all.
    let header = json!({"alg": "HS256", "typ": "JWT"});
    refused(
        &app,
        &forge(&header, &g.access, Algorithm::HS256, &g.secret),
    )
    .await;
    app.assert_alive().await;
}

#[actix_web::test]
async fn jku_jwk_and_x5u_headers_are_ignored_and_never_fetched() {
    let app = app().await;
    let g = genuine(&app).await;
    // A "key server" the attacker points at; the daemon must never call it.
    let trap = TcpListener::bind("127.0.0.1:0").expect("bind");
    trap.set_nonblocking(true).expect("nonblocking");
    let trap_url = format!(
        "http://127.0.0.1:{}/jwks.json",
        trap.local_addr().expect("addr").port()
    );
    let evil = random_secret();
    let jwk = json!({"kty": "oct", "kid": "attacker", "alg": "HS256", "k": b64(&evil)});
    let headers = [
        json!({"alg": "HS256", "kid": g.kid, "jku": trap_url}),
        json!({"alg": "HS256", "kid": "attacker", "jku": trap_url}),
        json!({"alg": "HS256", "jku": trap_url}),
        json!({"alg": "HS256", "kid": g.kid, "jwk": jwk}),
        json!({"alg": "HS256", "kid": "attacker", "jwk": jwk}),
        json!({"alg": "HS256", "jwk": jwk}),
        json!({"alg": "HS256", "kid": g.kid, "x5u": trap_url}),
        json!({"alg": "HS256", "kid": g.kid, "x5c": [b64(&evil)]}),
    ];
    for header in &headers {
        refused(&app, &forge(header, &g.access, Algorithm::HS256, &evil)).await;
        refused(&app, &forge(header, &g.refresh, Algorithm::HS256, &evil)).await;
    }
    std::thread::sleep(Duration::from_millis(200));
    match trap.accept() {
        Ok((mut s, peer)) => {
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap_or(0);
            panic!(
                "the daemon fetched the attacker's key URL from {peer}: {:?}",
                String::from_utf8_lossy(&buf[..n])
            )
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
    }
    // Ignored means ignored: with the real key's signature, such headers
    // change nothing.
    let header = json!({"alg": "HS256", "kid": g.kid, "jku": trap_url});
    accepted_as_bearer(
        &app,
        &forge(&header, &g.access, Algorithm::HS256, &g.secret),
    )
    .await;
    app.assert_alive().await;
}

#[actix_web::test]
async fn expired_and_not_yet_valid_tokens_are_refused_with_a_reason() {
    let app = app().await;
    let g = genuine(&app).await;
    let t = now();
    let sign = |claims: &Value| forge(&hs256(&g.kid), claims, Algorithm::HS256, &g.secret);
    let with = |base: &Value, iat: u64, exp: u64| {
        let mut c = base.clone();
        c["iat"] = json!(iat);
        c["exp"] = json!(exp);
        c
    };
    // Expired well beyond the 60 s leeway.
    let m = refused(&app, &sign(&with(&g.access, t - 7200, t - 3600))).await;
    assert_eq!(m, "Token expired");
    let expired_refresh = sign(&with(&g.refresh, t - 7200, t - 3600));
    refused(&app, &expired_refresh).await;
    let m = app.refresh(&expired_refresh).await.error_message(401);
    assert!(m.to_lowercase().contains("expired"), "{m}");
    // Issued an hour in the future (a clock set ahead, or a forgery).
    let m = refused(&app, &sign(&with(&g.access, t + 3600, t + 4200))).await;
    assert!(m.contains("future"), "{m}");
    refused(&app, &sign(&with(&g.refresh, t + 3600, t + 4200))).await;
    // Times that are not numbers, negative, or absurd.
    for (iat, exp) in [
        (json!(-1), json!(t + 600)),
        (json!(t), json!(-1)),
        (json!(t), json!("never")),
        (json!(t), json!(1.5e300)),
        (json!(u64::MAX), json!(u64::MAX)),
        (json!(t), json!(null)),
    ] {
        let mut c = g.access.clone();
        c["iat"] = iat;
        c["exp"] = exp;
        refused(&app, &sign(&c)).await;
    }
    // Controls within the leeway (a Pi's clock may lag): 10 and 30 s past
    // exp still pass, for access and refresh tokens alike.
    for past in [10, 30] {
        accepted_as_bearer(&app, &sign(&with(&g.access, t - 600 - past, t - past))).await;
        let refresh = sign(&with(&g.refresh, t - 600 - past, t - past));
        app.refresh(&refresh).await.token_pair();
    }
    app.assert_alive().await;
}

#[actix_web::test]
async fn malformed_tokens_are_401() {
    let app = app().await;
    let g = genuine(&app).await;
    let good = forge(&hs256(&g.kid), &g.access, Algorithm::HS256, &g.secret);
    let parts: Vec<&str> = good.split('.').collect();
    let cases = vec![
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        parts[0].to_string(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{good}.{}", parts[2]),
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            &parts[2][..parts[2].len() - 2]
        ),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            // The same signature bytes in standard, padded base64: always
            // a different string (44 characters, not 43).
            base64::prelude::BASE64_STANDARD.encode(
                base64::prelude::BASE64_URL_SAFE_NO_PAD
                    .decode(parts[2])
                    .expect("signature")
            )
        ),
        format!("{}.{}.{}", b64(b"not json"), parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], b64(b"not json"), parts[2]),
        format!("{}.{}.{}", parts[0], b64(b"[]"), parts[2]),
        format!("{}.{}.{}", b64(&[0xff, 0xfe]), parts[1], parts[2]),
        "a".repeat(12_000),
        "eyJ".repeat(3_000),
        "garbage".into(),
        "a.b.c".into(),
        good.replace('.', ""),
        format!("{good}.extra"),
        good[..good.len() - 3].to_string(),
        "eyJhbGciOiJIUzI1NiJ9.e30.".into(),
    ];
    for token in &cases {
        refused(&app, token).await;
    }
    // Odd Authorization headers around a valid token.
    for value in [
        format!("Basic {good}"),
        format!("Bearer{good}"),
        format!("Token {good}"),
        "Bearer".to_string(),
        "Bearer ".to_string(),
        good.clone(),
    ] {
        let r = crate::harness::send(
            app.client
                .get(app.api("/users"))
                .header("Authorization", value),
        )
        .await;
        r.error(401);
    }
    // Only the bearer header carries tokens: one in the query string is
    // ignored, whatever it is called.
    for query in ["token", "access_token", "accessToken", "authorization"] {
        let url = format!("{}?{query}={good}", app.api("/users"));
        crate::harness::send(app.client.get(url)).await.error(401);
    }
    // The control: the same token in the header works.
    accepted_as_bearer(&app, &good).await;
    app.assert_alive().await;
}

#[actix_web::test]
async fn tokens_signed_by_a_retired_and_deleted_key_are_refused() {
    let app = app().await;
    let TokenPair {
        token: old_access,
        refresh_token: old_refresh,
    } = app.login_ok("admin", ADMIN_PASSWORD).await;
    let TokenPair {
        refresh_token: unused_old_refresh,
        ..
    } = app.login_ok("admin", ADMIN_PASSWORD).await;
    let (old_kid, old_secret) = app.signing_key();
    assert_eq!(
        decode_jwt(&old_access).0["kid"].as_str(),
        Some(old_kid.as_str())
    );

    let new_kid = app.rotate_key().await;
    assert_ne!(new_kid, old_kid);
    // Retired, not deleted: earlier tokens still work (no one logged out).
    accepted_as_bearer(&app, &old_access).await;
    let newer_refresh = app
        .refresh_from(&app.client, &old_refresh)
        .await
        .token_pair()
        .refresh_token;
    let TokenPair {
        token: kept_access,
        refresh_token: kept_refresh,
    } = app.login_ok("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        decode_jwt(&kept_access).0["kid"].as_str(),
        Some(new_kid.as_str())
    );

    // Delete every retired key, as housekeeping does once nothing they
    // signed can still be valid, and reload the keyring. (Running
    // housekeeping itself with the clock moved forward would also prune
    // the sessions this test still wants to use.)
    app.delete_retired_keys().await;
    let kids: Vec<String> = app.key_states().into_keys().collect();
    assert_eq!(kids, vec![new_kid.clone()], "the retired key was deleted");

    // A token signed with the deleted key, even one that has not expired.
    let m = refused(&app, &old_access).await;
    assert_eq!(m, "Invalid token");
    let m = app
        .refresh_from(&app.client, &unused_old_refresh)
        .await
        .error_message(401);
    assert_eq!(m, "Invalid token");
    // An attacker who once stole the deleted key cannot mint new tokens
    // with it either (fresh times, the old kid).
    let mut fresh = decode_jwt(&kept_access).1;
    fresh["iat"] = json!(now());
    fresh["exp"] = json!(now() + 600);
    refused(
        &app,
        &forge(&hs256(&old_kid), &fresh, Algorithm::HS256, &old_secret),
    )
    .await;
    // Tokens of the new key are unaffected.
    accepted_as_bearer(&app, &kept_access).await;
    app.refresh_from(&app.client, &kept_refresh)
        .await
        .token_pair();
    app.refresh_from(&app.client, &newer_refresh)
        .await
        .token_pair();
    app.assert_alive().await;
}
