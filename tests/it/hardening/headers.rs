//! Security headers: `X-Content-Type-Options: nosniff` and
//! `Cache-Control: no-store` on every response the application produces,
//! errors included (every [`Reply`] in this suite checks both; here every
//! status the API can give is provoked on purpose), and
//! `Strict-Transport-Security` only on responses served over TLS (the TLS
//! client is the harness's [`https`], pinned as a LAN client would pin the
//! self-signed daemon).

use crate::harness::{
    ADMIN_PASSWORD, Reply, TestApp, USER_PASSWORD, free_port, https, raw_request, roles,
    self_signed_tls, send,
};
use reqwest::Method;
use serde_json::json;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

fn assert_no_hsts(r: &Reply) {
    assert_eq!(
        r.header("strict-transport-security"),
        None,
        "{}: HSTS over plain HTTP",
        r.what
    );
}

#[actix_web::test]
async fn every_kind_of_response_carries_the_security_headers_and_no_hsts_over_http() {
    let app = TestApp::spawn_with(|s| {
        s.throttle.per_user = 2;
        s.throttle.base_delay = Duration::from_secs(60);
    })
    .await;
    let admin = app.admin_token().await;
    app.add_user(&admin, "plain", &["read"]).await;
    let user_token = app.login_ok("plain", USER_PASSWORD).await.token;
    let admin_id = crate::harness::decode_jwt(&admin).1["_id"]
        .as_str()
        .expect("_id")
        .to_string();
    let mut replies: Vec<(u16, Reply)> = vec![
        (
            200,
            send(app.client.get(format!("{}/health", app.address))).await,
        ),
        (
            200,
            send(app.client.get(format!("{}/api/v1/docs/json", app.address))).await,
        ),
        (200, app.login("admin", ADMIN_PASSWORD).await),
        (200, app.get("/users", Some(&admin)).await),
        (400, app.post_bytes("/login", None, b"{".to_vec()).await),
        (401, app.get("/users", None).await),
        (401, app.login("plain", "wrong-password").await),
        (403, app.get("/users", Some(&user_token)).await),
        (404, app.get("/nope", None).await),
        (
            404,
            app.get(
                &format!("/user/roles/{}", uuid::Uuid::new_v4()),
                Some(&admin),
            )
            .await,
        ),
        (405, send(app.request(Method::PUT, "/login", None)).await),
        (409, {
            let body = json!({"username": "PLAIN", "password": USER_PASSWORD, "roles": roles(&[])});
            app.post_json("/user", Some(&admin), &body).await
        }),
        (
            409,
            send(app.request(Method::DELETE, &format!("/user/{admin_id}"), Some(&admin))).await,
        ),
        (
            413,
            app.post_bytes("/login", None, vec![b' '; 20_000]).await,
        ),
        (
            415,
            send(app.request(Method::POST, "/login", None).body("{}")).await,
        ),
        (401, app.login("plain", "wrong-password").await),
        (429, app.login("plain", "wrong-password").await),
    ];
    replies.push((200, raw_request(app.port, b"GET /health HTTP/1.0\r\n\r\n")));
    for (status, r) in &replies {
        assert_eq!(r.status(), *status, "{}: {}", r.what, r.text());
        r.assert_security_headers();
        assert_no_hsts(r);
    }
    app.assert_alive().await;
}

#[actix_web::test]
async fn hsts_is_sent_over_tls_only_and_the_pinned_self_signed_certificate_serves() {
    let plain_port = free_port();
    let app = TestApp::spawn_with(|s| self_signed_tls(s, plain_port)).await;
    let pin = app.self_signed_pin();

    let login = format!("{{\"username\":\"admin\",\"password\":\"{ADMIN_PASSWORD}\"}}");
    let requests = [
        (
            200,
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_string(),
        ),
        (
            200,
            format!(
                "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{login}",
                login.len()
            ),
        ),
        (
            401,
            "GET /api/v1/auth/users HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        ),
        (
            404,
            "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        ),
        (
            405,
            "PUT /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        ),
    ];
    for (status, req) in &requests {
        let r = https(app.port, &pin, req).expect("TLS exchange with the pinned certificate");
        assert_eq!(r.status(), *status, "{}: {}", r.what, r.text());
        let hsts = r.header("strict-transport-security").unwrap_or_default();
        assert!(
            hsts.starts_with("max-age=")
                && hsts["max-age=".len()..].parse::<u64>().is_ok_and(|s| s > 0),
            "{}: HSTS over TLS is {hsts:?}",
            r.what
        );
        // The same request on the plain listener: no HSTS.
        let plain = raw_request(plain_port, req.as_bytes());
        assert_eq!(plain.status(), *status, "{}: {}", plain.what, plain.text());
        assert_no_hsts(&plain);
    }
    // A client pinned to another certificate refuses the handshake.
    let wrong = "00:".repeat(31) + "00";
    assert!(https(app.port, &wrong, &requests[0].1).is_err());
    // Plain HTTP spoken to the TLS port is never served.
    let mut s = TcpStream::connect(("127.0.0.1", app.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut buf);
    assert!(
        !buf.starts_with(b"HTTP/1.1 200"),
        "plain HTTP answered on the TLS port"
    );
    // Garbage in place of a ClientHello does not stop TLS service.
    let _ = raw_tls_garbage(app.port);
    https(app.port, &pin, &requests[0].1).expect("TLS still serves");
}

fn raw_tls_garbage(port: u16) -> std::io::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.write_all(b"\x16\x03\x01\xff\xff")?;
    s.write_all(&[0xAA; 4096])?;
    Ok(())
}
