//! What the tokens carry: decoded without verification and compared with
//! the documented claims. The contract allows extra claims; the only ones
//! allowed here are the token-lifecycle claims README documents (`gen`, and
//! `jti` on refresh tokens), so nothing else (a username, a hash) can leak
//! into a token unnoticed.

use crate::harness::{TestApp, USER_PASSWORD, decode_jwt, id_of, keys, now, roles};
use serde_json::json;

/// The claims minus the documented extras, sorted.
fn documented_claims(claims: &serde_json::Value, extras: &[&str]) -> Vec<String> {
    keys(claims)
        .into_iter()
        .filter(|k| !extras.contains(&k.as_str()))
        .collect()
}

#[actix_web::test]
async fn access_token_claims_are_exactly_the_documented_ones() {
    let app = TestApp::spawn().await;
    let pair = app.admin_tokens().await;
    let admin_id = id_of(&app.get_user_by_name(&pair.token, "admin").await.ok_json());

    let (header, claims) = decode_jwt(&pair.token);

    assert_eq!(header["alg"], json!("HS256"));
    assert!(
        header["kid"].as_str().is_some_and(|k| !k.is_empty()),
        "header names its key: {header}"
    );
    assert_eq!(
        documented_claims(&claims, &["gen"]),
        vec!["_id", "exp", "iat", "roles"],
        "{claims}"
    );
    assert_eq!(claims["_id"], json!(admin_id));
    assert_eq!(claims["roles"], json!(159));
    let iat = claims["iat"].as_u64().expect("iat is a number");
    let exp = claims["exp"].as_u64().expect("exp is a number");
    assert_eq!(exp - iat, 600);
    // Issued "now" (loosely: seconds since the epoch, not milliseconds).
    assert!(iat.abs_diff(now()) < 300, "iat {iat} vs now {}", now());
}

#[actix_web::test]
async fn refresh_token_claims_are_exactly_the_documented_ones() {
    let app = TestApp::spawn().await;
    let pair = app.admin_tokens().await;
    let (_, access) = decode_jwt(&pair.token);

    let (header, claims) = decode_jwt(&pair.refresh_token);

    assert_eq!(header["alg"], json!("HS256"));
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(
        documented_claims(&claims, &["gen", "jti"]),
        vec!["_id", "exp", "iat", "refreshToken"],
        "{claims}"
    );
    assert_eq!(claims["_id"], access["_id"]);
    assert_eq!(claims["refreshToken"], json!(true));
    let iat = claims["iat"].as_u64().expect("iat is a number");
    let exp = claims["exp"].as_u64().expect("exp is a number");
    assert_eq!(exp - iat, 43200);
}

#[actix_web::test]
async fn role_bits_follow_the_documented_table() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let cases: [(&[&str], u64); 9] = [
        (&["flows", "subscribe", "write", "read"], 23),
        (&["read"], 1),
        (&["write"], 2),
        (&["subscribe"], 4),
        (&["configure"], 8),
        (&["flows"], 16),
        (&["admin"], 128),
        (&[], 0),
        (
            &["admin", "flows", "configure", "subscribe", "write", "read"],
            159,
        ),
    ];
    for (i, (flags, bits)) in cases.into_iter().enumerate() {
        let name = format!("bits-{i}");
        let id = app
            .create_user_ok(&admin, &name, USER_PASSWORD, roles(flags))
            .await;
        let pair = app.login_ok(&name, USER_PASSWORD).await;
        let (_, claims) = decode_jwt(&pair.token);
        assert_eq!(claims["roles"], json!(bits), "{flags:?}");
        assert_eq!(claims["_id"], json!(id));
    }
}

#[actix_web::test]
async fn lifetimes_follow_the_settings() {
    let app = TestApp::spawn_with(|s| {
        s.access_ttl_secs = 120;
        s.refresh_ttl_secs = 3600;
    })
    .await;
    let pair = app.admin_tokens().await;
    let (_, a) = decode_jwt(&pair.token);
    let (_, r) = decode_jwt(&pair.refresh_token);
    assert_eq!(a["exp"].as_u64().unwrap() - a["iat"].as_u64().unwrap(), 120);
    assert_eq!(
        r["exp"].as_u64().unwrap() - r["iat"].as_u64().unwrap(),
        3600
    );
}
