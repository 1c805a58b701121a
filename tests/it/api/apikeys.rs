//! API keys (service accounts) over HTTP: created shown once, used as a
//! bearer wherever a token works (and on `/verify`) with the key's roles
//! within the owner's current ones, revoked, expired, forged, and refused
//! what only the user itself may do.

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Reply, TestApp, USER_PASSWORD, roles, send};

async fn create(app: &TestApp, token: &str, name: &str, flags: &[&str]) -> Reply {
    app.post_json(
        "/apikeys",
        Some(token),
        &json!({"name": name, "roles": roles(flags)}),
    )
    .await
}

/// Creates a key; returns (id, key).
async fn create_ok(app: &TestApp, token: &str, name: &str, flags: &[&str]) -> (String, String) {
    let body = create(app, token, name, flags).await.ok_json();
    let id = body["id"].as_str().expect("id").to_string();
    let key = body["key"].as_str().expect("key").to_string();
    (id, key)
}

async fn verify(app: &TestApp, key: &str) -> Reply {
    send(app.request(Method::GET, "/verify", Some(key))).await
}

fn list_of(r: &Reply) -> Vec<Value> {
    r.ok_json().as_array().expect("an array").clone()
}

#[actix_web::test]
async fn a_key_is_shown_once_and_works_as_a_bearer() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let body = create(&app, &admin, "backup job", &["admin", "read"])
        .await
        .ok_json();
    let mut fields: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    fields.sort();
    assert_eq!(fields, ["id", "key"]);
    let key = body["key"].as_str().unwrap();
    let id = body["id"].as_str().unwrap();
    uuid::Uuid::parse_str(id).unwrap();
    let raw = key.strip_prefix("eak_").expect("the eak_ prefix");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .expect("base64url");
    assert_eq!(bytes.len(), 32, "256 bits");
    let (_, other) = create_ok(&app, &admin, "second", &["read"]).await;
    assert_ne!(other, key);

    // An admin key works on an admin call.
    app.list_users(key).await.ok_json();

    // Listed without the key or anything of it.
    let listed = app.get("/apikeys", Some(&admin)).await;
    assert!(!listed.text().contains(raw), "GET /apikeys shows the key");
    let entry = list_of(&listed)
        .into_iter()
        .find(|k| k["id"] == id)
        .expect("listed");
    let mut fields: Vec<_> = entry.as_object().unwrap().keys().cloned().collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "createdAt",
            "expiresAt",
            "id",
            "lastUsedAt",
            "name",
            "owner",
            "ownerId",
            "roles"
        ]
    );
    assert_eq!(entry["name"], "backup job");
    assert_eq!(entry["owner"], "admin");
    assert_eq!(entry["roles"], roles(&["admin", "read"]));
    assert!(entry["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(entry["expiresAt"], Value::Null);
}

#[actix_web::test]
async fn verify_shows_the_owner_and_the_roles_within_the_owners() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (alice_id, alice) = app
        .user_with_token(&admin, "alice", &["read", "write", "flows"])
        .await;
    let (_, key) = create_ok(&app, &alice, "dashboard", &["read", "write"]).await;
    let r = verify(&app, &key).await;
    assert_eq!(r.status(), 200, "{}", r.text());
    assert_eq!(r.header("x-auth-user"), Some("alice"));
    assert_eq!(r.header("x-auth-user-id"), Some(alice_id.as_str()));
    assert_eq!(r.header("x-auth-roles"), Some("write,read"));
    // The key's roles, not the owner's.
    let r = send(app.request(Method::GET, "/verify?roles=flows", Some(&key))).await;
    r.error(403);

    // Owner demoted: the key's roles shrink at once.
    app.set_roles(&admin, &alice_id, roles(&["read"]))
        .await
        .ok_json();
    let r = verify(&app, &key).await;
    assert_eq!(r.header("x-auth-roles"), Some("read"), "{}", r.text());

    // Owner deleted: the key is refused at once, and is gone with it.
    app.delete_user(&admin, &alice_id).await.ok_json();
    verify(&app, &key).await.error(401);
    app.get("/users", Some(&key)).await.error(401);
    let left = list_of(&app.get("/apikeys", Some(&admin)).await);
    assert!(left.is_empty(), "{left:?}");
}

#[actix_web::test]
async fn a_key_has_at_most_its_creators_roles_and_a_valid_name_and_expiry() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, alice) = app.user_with_token(&admin, "alice", &["read"]).await;
    let m = create(&app, &alice, "too much", &["read", "write"])
        .await
        .error_message(403);
    assert!(m.contains("roles"), "{m}");
    create(&app, &alice, "x", &["admin"]).await.error(403);
    create_ok(&app, &alice, "just read", &["read"]).await;
    create_ok(&app, &alice, "nothing", &[]).await;

    for name in [
        json!(""),
        json!("a\u{0}b"),
        json!("tab\there"),
        json!("x".repeat(101)),
    ] {
        let r = app
            .post_json(
                "/apikeys",
                Some(&alice),
                &json!({"name": name, "roles": roles(&["read"])}),
            )
            .await;
        r.error(400);
    }
    create_ok(&app, &alice, &"é".repeat(100), &["read"]).await;
    for expires in ["yesterday", "2020-01-01T00:00:00Z", "2030-01-01", ""] {
        let r = app
            .post_json(
                "/apikeys",
                Some(&alice),
                &json!({"name": "k", "roles": roles(&["read"]), "expiresAt": expires}),
            )
            .await;
        r.error(400);
    }
    // Missing name or roles: the schema's 400.
    app.post_json("/apikeys", Some(&alice), &json!({"name": "k"}))
        .await
        .error(400);
    app.post_json("/apikeys", Some(&alice), &json!({"roles": roles(&[])}))
        .await
        .error(400);
    app.post_json("/apikeys", None, &json!({"name": "k", "roles": roles(&[])}))
        .await
        .error(401);
}

#[actix_web::test]
async fn revoked_and_expired_keys_are_refused_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, alice) = app.user_with_token(&admin, "alice", &["read"]).await;
    let (id, key) = create_ok(&app, &alice, "k", &["read"]).await;
    verify(&app, &key).await;
    assert_eq!(verify(&app, &key).await.status(), 200);
    app.delete(&format!("/apikeys/{id}"), Some(&alice))
        .await
        .ok_json();
    verify(&app, &key).await.error(401);
    app.delete(&format!("/apikeys/{id}"), Some(&alice))
        .await
        .error(404);
    app.delete("/apikeys/not-a-uuid", Some(&alice))
        .await
        .error(400);

    // Expiry: in an hour, then the clock moves past it.
    let body = app
        .post_json(
            "/apikeys",
            Some(&alice),
            &json!({"name": "temp", "roles": roles(&["read"]), "expiresAt": rfc3339_in(&app, 3600)}),
        )
        .await
        .ok_json();
    let key = body["key"].as_str().unwrap().to_string();
    assert_eq!(verify(&app, &key).await.status(), 200);
    let listed = list_of(&app.get("/apikeys", Some(&alice)).await);
    let entry = listed.iter().find(|k| k["id"] == body["id"]).unwrap();
    assert!(entry["expiresAt"].as_str().unwrap().ends_with('Z'));
    app.clock.advance(3601);
    verify(&app, &key).await.error(401);
    app.roles_of(&key, "00000000-0000-0000-0000-000000000000")
        .await
        .error(401);
}

/// `secs` from the server's clock, as RFC 3339 UTC.
fn rfc3339_in(app: &TestApp, secs: u64) -> String {
    engine_auth::clock::utc_rfc3339((app.clock.now() + secs) * 1000)
}

#[actix_web::test]
async fn forged_keys_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, key) = create_ok(&app, &admin, "k", &["admin"]).await;
    let random = format!(
        "eak_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32])
    );
    let truncated = &key[..key.len() - 1];
    let other_prefix = format!("xak_{}", &key[4..]);
    let longer = format!("{key}A");
    for forged in [
        random.as_str(),
        truncated,
        other_prefix.as_str(),
        longer.as_str(),
        "eak_",
    ] {
        verify(&app, forged).await.error(401);
        app.list_users(forged).await.error(401);
    }
    // An empty bearer.
    let r = send(
        app.request(Method::GET, "/users", None)
            .header("authorization", "Bearer "),
    )
    .await;
    r.error(401);
    app.list_users(&key).await.ok_json();
}

#[actix_web::test]
async fn a_key_cannot_manage_keys_passwords_or_two_factor_authentication() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (alice_id, alice) = app
        .user_with_token(&admin, "alice", &["read", "write"])
        .await;
    let (own_id, key) = create_ok(&app, &alice, "k", &["read", "write"]).await;
    let (admin_key_id, admin_key) = create_ok(&app, &admin, "adm", &["admin"]).await;
    let refused = |r: Reply| {
        let m = r.error_message(403);
        assert!(m.starts_with("An API key cannot"), "{}: {m}", r.what);
    };
    refused(create(&app, &key, "more", &["read"]).await);
    refused(app.get("/apikeys", Some(&key)).await);
    refused(app.delete(&format!("/apikeys/{own_id}"), Some(&key)).await);
    refused(
        app.delete(&format!("/apikeys/{own_id}"), Some(&admin_key))
            .await,
    );
    refused(
        app.set_password(
            &key,
            &alice_id,
            json!({"password": "a-new-password", "currentPassword": USER_PASSWORD}),
        )
        .await,
    );
    refused(
        app.set_password(&admin_key, &alice_id, json!({"password": "a-new-password"}))
            .await,
    );
    refused(
        app.post_json(
            "/mfa/generate",
            Some(&key),
            &json!({"password": USER_PASSWORD}),
        )
        .await,
    );
    refused(
        app.post_json("/mfa/enable", Some(&key), &json!({"otp": "123456"}))
            .await,
    );
    refused(
        app.post_json("/mfa/disable", Some(&key), &json!({"otp": "123456"}))
            .await,
    );
    refused(app.logout(Some(&key), &json!({"all": true})).await);
    // Nothing changed: the token and both keys still work.
    app.roles_of(&alice, &alice_id).await.ok_json();
    assert_eq!(verify(&app, &key).await.status(), 200);
    let all = list_of(&app.get("/apikeys", Some(&admin)).await);
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|k| k["id"] == admin_key_id));
}

#[actix_web::test]
async fn users_list_their_own_keys_admins_every_key_and_uses_are_recorded() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (alice_id, alice) = app.user_with_token(&admin, "alice", &["read"]).await;
    let (_, bob) = app.user_with_token(&admin, "bob", &["read"]).await;
    let (alice_key_id, alice_key) = create_ok(&app, &alice, "a", &["read"]).await;
    let (bob_key_id, _) = create_ok(&app, &bob, "b", &["read"]).await;
    create_ok(&app, &admin, "adm", &["read"]).await;

    let mine = list_of(&app.get("/apikeys", Some(&alice)).await);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], alice_key_id);
    assert_eq!(mine[0]["ownerId"], alice_id);
    assert_eq!(mine[0]["owner"], "alice");
    assert_eq!(mine[0]["lastUsedAt"], Value::Null);
    assert_eq!(list_of(&app.get("/apikeys", Some(&admin)).await).len(), 3);

    // Another user's key: 404 to a non-admin, revocable by an admin.
    app.delete(&format!("/apikeys/{bob_key_id}"), Some(&alice))
        .await
        .error(404);
    app.delete(&format!("/apikeys/{bob_key_id}"), Some(&admin))
        .await
        .ok_json();
    assert!(list_of(&app.get("/apikeys", Some(&bob)).await).is_empty());

    // The first use is recorded (off the request path: poll briefly).
    assert_eq!(verify(&app, &alice_key).await.status(), 200);
    let mut used = Value::Null;
    for _ in 0..100 {
        used = list_of(&app.get("/apikeys", Some(&alice)).await)[0]["lastUsedAt"].clone();
        if !used.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let first = used
        .as_str()
        .expect("lastUsedAt set after the first use")
        .to_string();
    // Within the hour, later uses write nothing.
    app.clock.advance(120);
    assert_eq!(verify(&app, &alice_key).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let again = list_of(&app.get("/apikeys", Some(&alice)).await)[0]["lastUsedAt"].clone();
    assert_eq!(again, first.as_str());
}
