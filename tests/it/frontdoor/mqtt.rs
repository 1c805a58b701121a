//! The MQTT broker's auth backend, at the protocol level: the requests
//! mosquitto-go-auth's HTTP backend sends (`backends/http.go`: POST with a
//! JSON body and `Content-Type: application/json` in its default params
//! mode, `PostForm` in its form mode), and the answers it acts on (2xx
//! allows, anything else denies). No broker plugin can be installed here:
//! the plugin is C and Go built against mosquitto, not a Debian package.

use crate::harness::{ADMIN_PASSWORD, Reply, TestApp, USER_PASSWORD, client_from, send, totp_at};
use reqwest::Client;
use serde_json::{Value, json};

/// The two parameter modes of the backend.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Json,
    Form,
}

const MODES: [Mode; 2] = [Mode::Json, Mode::Form];

/// One backend request as the plugin sends it.
async fn ask(app: &TestApp, client: &Client, mode: Mode, check: &str, params: &Value) -> Reply {
    let url = app.api(&format!("/mqtt/{check}"));
    let rb = client.post(url).header("User-Agent", "mosquitto-2.0.18");
    let rb = match mode {
        Mode::Json => rb.json(params),
        Mode::Form => {
            // url.Values: every value a string (acc as its decimal text).
            let pairs: Vec<(String, String)> = params
                .as_object()
                .expect("object")
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect();
            let body = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                .collect::<Vec<_>>()
                .join("&");
            rb.header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
        }
    };
    send(rb).await
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn allows(r: &Reply, what: &str) {
    assert_eq!(r.status(), 200, "{what}: {}", r.text());
    assert_eq!(r.json(), json!({"ok": true, "error": ""}), "{what}");
}

fn denies(r: &Reply, what: &str) {
    assert_eq!(r.status(), 403, "{what}: {}", r.text());
    r.error(403);
}

fn user(name: &str, password: &str) -> Value {
    json!({"username": name, "password": password, "clientid": "sensor-7"})
}

fn acl(name: &str, acc: i64) -> Value {
    json!({"username": name, "topic": "plant/line-1/temp", "clientid": "sensor-7", "acc": acc})
}

#[actix_web::test]
async fn the_user_check_takes_passwords_and_access_tokens_in_both_modes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, alice) = app.user_with_token(&admin, "alice", &["read"]).await;
    let (bob_id, bob) = app.user_with_token(&admin, "bob", &["write"]).await;
    let c = &app.client;
    for mode in MODES {
        let m = format!("{mode:?}");
        allows(
            &ask(&app, c, mode, "user", &user("alice", USER_PASSWORD)).await,
            &m,
        );
        allows(
            &ask(&app, c, mode, "user", &user("ALICE", USER_PASSWORD)).await,
            &m,
        );
        denies(
            &ask(&app, c, mode, "user", &user("alice", "wrong password")).await,
            &m,
        );
        denies(
            &ask(&app, c, mode, "user", &user("nobody", USER_PASSWORD)).await,
            &m,
        );
        // An access token as the password: the named user's only.
        allows(
            &ask(&app, c, mode, "user", &user("alice", &alice)).await,
            &m,
        );
        denies(&ask(&app, c, mode, "user", &user("bob", &alice)).await, &m);
        denies(
            &ask(
                &app,
                c,
                mode,
                "user",
                &user("alice", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"),
            )
            .await,
            &m,
        );
    }
    // Revocation is immediate: bob's token after a role change.
    allows(
        &ask(&app, c, Mode::Json, "user", &user("bob", &bob)).await,
        "bob",
    );
    app.set_roles(&admin, &bob_id, crate::harness::roles(&["read"]))
        .await
        .ok_json();
    denies(
        &ask(&app, c, Mode::Json, "user", &user("bob", &bob)).await,
        "revoked",
    );
    // Invalid parameters and bodies.
    let r = ask(&app, c, Mode::Json, "user", &json!({"username": "alice"})).await;
    r.error(400);
    let r = send(
        c.post(app.api("/mqtt/user"))
            .header("Content-Type", "text/plain")
            .body("username=alice"),
    )
    .await;
    r.error(415);
}

#[actix_web::test]
async fn superuser_is_the_admin_flag_and_acl_the_role_bits() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.user_with_token(&admin, "alice", &["read", "subscribe"])
        .await;
    app.user_with_token(&admin, "bob", &["read", "write"]).await;
    let c = &app.client;
    for mode in MODES {
        let m = format!("{mode:?}");
        allows(
            &ask(&app, c, mode, "superuser", &json!({"username": "admin"})).await,
            &m,
        );
        denies(
            &ask(&app, c, mode, "superuser", &json!({"username": "alice"})).await,
            &m,
        );
        denies(
            &ask(&app, c, mode, "superuser", &json!({"username": "nobody"})).await,
            &m,
        );
        for (who, acc, ok) in [
            ("alice", 1, true),
            ("alice", 2, false),
            ("alice", 3, false),
            ("alice", 4, true),
            ("bob", 1, true),
            ("bob", 2, true),
            ("bob", 3, true),
            ("bob", 4, false),
            ("alice", 0, false),
            ("alice", 8, false),
            ("nobody", 1, false),
        ] {
            let r = ask(&app, c, mode, "acl", &acl(who, acc)).await;
            let what = format!("{m} {who} acc={acc}");
            if ok {
                allows(&r, &what);
            } else {
                denies(&r, &what);
            }
        }
    }
    let r = ask(
        &app,
        c,
        Mode::Form,
        "acl",
        &json!({"username": "bob", "topic": "t", "acc": "x"}),
    )
    .await;
    r.error(400);
}

#[actix_web::test]
async fn only_the_configured_broker_addresses_may_ask() {
    let app = TestApp::spawn().await;
    let other = client_from("127.0.0.2");
    denies(
        &ask(
            &app,
            &other,
            Mode::Json,
            "superuser",
            &json!({"username": "admin"}),
        )
        .await,
        "127.0.0.2",
    );
    denies(
        &ask(
            &app,
            &other,
            Mode::Json,
            "user",
            &user("admin", ADMIN_PASSWORD),
        )
        .await,
        "127.0.0.2",
    );
    let app =
        TestApp::spawn_with(|s| s.mqtt_backend_clients = vec!["127.0.0.2".parse().expect("ip")])
            .await;
    allows(
        &ask(
            &app,
            &other,
            Mode::Json,
            "superuser",
            &json!({"username": "admin"}),
        )
        .await,
        "configured",
    );
    denies(
        &ask(
            &app,
            &app.client,
            Mode::Json,
            "superuser",
            &json!({"username": "admin"}),
        )
        .await,
        "127.0.0.1 no longer",
    );
}

#[actix_web::test]
async fn wrong_passwords_are_throttled_with_logins_and_a_two_factor_user_needs_a_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, carol) = app.user_with_token(&admin, "carol", &["read"]).await;
    let c = &app.client;
    // Turn two-factor authentication on for carol.
    let body = app
        .post_json(
            "/mfa/generate",
            Some(&carol),
            &json!({"password": USER_PASSWORD}),
        )
        .await
        .ok_json();
    let secret = body["secret"].as_str().expect("secret").to_string();
    app.post_json(
        "/mfa/enable",
        Some(&carol),
        &json!({"otp": totp_at(&secret, app.clock.now())}),
    )
    .await
    .ok_json();
    let r = ask(&app, c, Mode::Json, "user", &user("carol", USER_PASSWORD)).await;
    assert!(r.error_message(403).contains("two-factor"), "{}", r.text());
    allows(
        &ask(&app, c, Mode::Json, "user", &user("carol", &carol)).await,
        "carol's token",
    );
    // The login throttle counts the broker's wrong passwords (per user,
    // from this address: 5 by default), and they count for logins too.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            ask(
                &app,
                c,
                Mode::Json,
                "user",
                &user("admin", "wrong password"),
            )
            .await
            .status()
            .as_u16(),
        );
    }
    assert!(statuses.contains(&429), "never throttled: {statuses:?}");
    assert_eq!(app.login("admin", ADMIN_PASSWORD).await.status(), 429);
}

#[actix_web::test]
async fn an_api_key_connects_under_its_id_and_the_acl_is_the_keys() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, dave) = app
        .user_with_token(&admin, "dave", &["read", "write", "subscribe"])
        .await;
    let body =
        json!({"name": "sensor gateway", "roles": crate::harness::roles(&["read", "subscribe"])});
    let created = app
        .post_json("/apikeys", Some(&dave), &body)
        .await
        .ok_json();
    let (id, key) = (
        created["id"].as_str().expect("id").to_string(),
        created["key"].as_str().expect("key").to_string(),
    );
    let c = &app.client;
    for mode in MODES {
        let m = format!("{mode:?}");
        allows(&ask(&app, c, mode, "user", &user(&id, &key)).await, &m);
        // Under the owner's name the broker would later ask with the
        // owner's roles: refused.
        denies(&ask(&app, c, mode, "user", &user("dave", &key)).await, &m);
        denies(
            &ask(
                &app,
                c,
                mode,
                "user",
                &user(&id, "eak_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            )
            .await,
            &m,
        );
        allows(&ask(&app, c, mode, "acl", &acl(&id, 1)).await, &m);
        allows(&ask(&app, c, mode, "acl", &acl(&id, 4)).await, &m);
        denies(&ask(&app, c, mode, "acl", &acl(&id, 2)).await, &m);
        // dave himself may write.
        allows(&ask(&app, c, mode, "acl", &acl("dave", 2)).await, &m);
        denies(
            &ask(&app, c, mode, "superuser", &json!({"username": id})).await,
            &m,
        );
    }
    // Revoked: refused at once, the connect and the ACL alike.
    app.delete(&format!("/apikeys/{id}"), Some(&dave))
        .await
        .ok_json();
    denies(
        &ask(&app, c, Mode::Json, "user", &user(&id, &key)).await,
        "revoked",
    );
    denies(
        &ask(&app, c, Mode::Json, "acl", &acl(&id, 1)).await,
        "revoked",
    );
}
