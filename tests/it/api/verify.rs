//! Forward-auth (`/verify`): what a reverse proxy asks before it forwards
//! a request. The real proxies are in `frontdoor::proxies`; this is the
//! call itself: every credential it accepts and refuses, the role check,
//! the user headers, revocation at once.

use crate::harness::{ADMIN_PASSWORD, Reply, TestApp, USER_PASSWORD, forge, now, roles, send};
use jsonwebtoken::Algorithm;
use reqwest::Method;
use serde_json::json;

async fn verify(app: &TestApp, method: Method, query: &str, token: Option<&str>) -> Reply {
    send(app.request(method, &format!("/verify{query}"), token)).await
}

/// A 200 with an empty body and the user headers; returns (user, id, roles).
fn allowed(r: &Reply) -> (String, String, String) {
    assert_eq!(r.status(), 200, "{}: {}", r.what, r.text());
    assert!(r.body.is_empty(), "{}: body {}", r.what, r.text());
    let h = |name: &str| {
        r.header(name)
            .unwrap_or_else(|| panic!("{}: no {name}", r.what))
            .to_string()
    };
    (h("x-auth-user"), h("x-auth-user-id"), h("x-auth-roles"))
}

fn refused_401(r: &Reply) {
    r.error(401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{}", r.what);
    assert_eq!(r.header("x-auth-user"), None, "{}", r.what);
}

#[actix_web::test]
async fn a_valid_token_is_answered_with_the_user_headers_on_any_method() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app
        .create_user_ok(
            &admin,
            "Zoë Müller",
            USER_PASSWORD,
            roles(&["read", "flows"]),
        )
        .await;
    let zoe = app.login_ok("Zoë Müller", USER_PASSWORD).await;
    for method in [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ] {
        let r = verify(&app, method.clone(), "", Some(&zoe.token)).await;
        let (user, user_id, flags) = allowed(&r);
        // The header carries the username's UTF-8 bytes; the harness reads
        // them back lossily, so compare bytes.
        assert_eq!(user.as_bytes(), "Zoë Müller".as_bytes(), "{method}");
        assert_eq!(user_id, id, "{method}");
        assert_eq!(flags, "flows,read", "{method}");
    }
    let (_, _, flags) = allowed(&verify(&app, Method::GET, "", Some(&admin)).await);
    assert_eq!(flags, "admin,flows,configure,subscribe,write,read");
}

#[actix_web::test]
async fn roles_asked_for_must_all_be_held() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, alice) = app
        .user_with_token(&admin, "alice", &["read", "write"])
        .await;
    for q in [
        "?roles=read",
        "?roles=read,write",
        "?roles=",
        "?roles=write&roles=read",
        "?other=1",
    ] {
        allowed(&verify(&app, Method::GET, q, Some(&alice)).await);
    }
    for (q, missing) in [
        ("?roles=flows", "flows"),
        ("?roles=read,flows,admin", "admin,flows"),
        ("?roles=read&roles=subscribe", "subscribe"),
    ] {
        let r = verify(&app, Method::GET, q, Some(&alice)).await;
        assert_eq!(
            r.error_message(403),
            format!("Missing role(s): {missing}"),
            "{q}"
        );
        assert_eq!(r.header("x-auth-user"), None);
    }
    let r = verify(&app, Method::GET, "?roles=root", Some(&alice)).await;
    assert!(
        r.error_message(400).contains("unknown role"),
        "{}",
        r.text()
    );
    // The role check never comes before the credential check.
    refused_401(&verify(&app, Method::GET, "?roles=flows", None).await);
}

#[actix_web::test]
async fn missing_forged_expired_refresh_and_revoked_credentials_are_401() {
    let app = TestApp::spawn().await;
    let admin = app.admin_tokens().await;
    let (id, alice) = app.user_with_token(&admin.token, "alice", &["read"]).await;
    refused_401(&verify(&app, Method::GET, "", None).await);
    refused_401(&verify(&app, Method::GET, "", Some("not.a.token")).await);
    // A refresh token is not an access token.
    refused_401(&verify(&app, Method::GET, "", Some(&admin.refresh_token)).await);
    // Signed with another secret; expired though genuinely signed.
    let (kid, secret) = app.signing_key();
    let claims = crate::harness::claims_of(&alice);
    let header = crate::harness::header(Algorithm::HS256, Some(&kid));
    let forged = forge(&header, &claims, Algorithm::HS256, b"another secret");
    refused_401(&verify(&app, Method::GET, "", Some(&forged)).await);
    let mut old = claims.clone();
    old["iat"] = json!(now() - 7200);
    old["exp"] = json!(now() - 3600);
    let expired = forge(&header, &old, Algorithm::HS256, &secret);
    refused_401(&verify(&app, Method::GET, "", Some(&expired)).await);
    // Revocation takes effect at once: a role change, then deletion.
    allowed(&verify(&app, Method::GET, "", Some(&alice)).await);
    app.set_roles(&admin.token, &id, roles(&["write"]))
        .await
        .ok_json();
    refused_401(&verify(&app, Method::GET, "", Some(&alice)).await);
    let again = app.login_ok("alice", USER_PASSWORD).await;
    let (_, _, flags) = allowed(&verify(&app, Method::GET, "", Some(&again.token)).await);
    assert_eq!(flags, "write");
    app.delete_user(&admin.token, &id).await.ok_json();
    refused_401(&verify(&app, Method::GET, "", Some(&again.token)).await);
}

#[actix_web::test]
async fn a_cookie_mode_session_is_verified_by_its_access_cookie_until_it_logs_out() {
    let app = TestApp::spawn().await;
    let r = app
        .post_json(
            "/login",
            None,
            &json!({"username": "admin", "password": ADMIN_PASSWORD, "mode": "cookie"}),
        )
        .await;
    let token = r.ok_json()["token"].as_str().expect("token").to_string();
    let line = r
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("engine_auth_access="))
        .map(|(_, v)| v.clone())
        .expect("the access cookie");
    let mut parts = line.split("; ");
    let value = parts
        .next()
        .and_then(|p| p.strip_prefix("engine_auth_access="))
        .expect("value");
    assert_eq!(value, token, "the cookie is the access token");
    let mut attrs: Vec<&str> = parts.collect();
    attrs.sort_unstable();
    assert_eq!(
        attrs,
        ["HttpOnly", "Max-Age=600", "Path=/", "SameSite=Strict"]
    );
    let with_cookie = |cookie: String| {
        send(
            app.request(Method::GET, "/verify", None)
                .header("Cookie", cookie),
        )
    };
    let (user, _, _) = allowed(&with_cookie(format!("engine_auth_access={value}")).await);
    assert_eq!(user, "admin");
    // Among other cookies, too.
    allowed(&with_cookie(format!("a=1; engine_auth_access={value}; b=2")).await);
    // A bearer header, when present, is what counts.
    let r = send(
        app.request(Method::GET, "/verify", Some("not.a.token"))
            .header("Cookie", format!("engine_auth_access={value}")),
    )
    .await;
    refused_401(&r);
    // No other call reads the access cookie.
    let r = send(
        app.request(Method::GET, "/users", None)
            .header("Cookie", format!("engine_auth_access={value}")),
    )
    .await;
    r.error(401);
    // Logging out everywhere revokes it at once; a cookie logout clears it.
    app.logout(Some(&token), &json!({"all": true}))
        .await
        .ok_json();
    refused_401(&with_cookie(format!("engine_auth_access={value}")).await);
    refused_401(&with_cookie("engine_auth_access=".into()).await);
}
