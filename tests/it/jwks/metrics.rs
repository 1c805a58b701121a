//! `--metrics-listen`: every metric exercised by real requests, the scrape
//! checked by Debian's `promtool check metrics` (package `prometheus`,
//! installed by .ci/run), and the values moving as the requests say.
//! Counters are process-wide (other tests in this binary add to them), so
//! they are compared as at least what this test did; gauges read this
//! server's store and are exact.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{
    ADMIN_PASSWORD, TestApp, free_port, http_client, metrics_on, roles, send, totp_at,
};

/// Series (name and sorted labels, as `name{a="1",b="2"}`) → value.
type Scrape = BTreeMap<String, f64>;

fn parse(text: &str) -> Scrape {
    let mut out = Scrape::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
        let key = match series.split_once('{') {
            None => series.to_string(),
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
        };
        out.insert(key, value);
    }
    out
}

fn get(s: &Scrape, series: &str) -> f64 {
    *s.get(series).unwrap_or_else(|| {
        panic!(
            "{series} is not in the scrape:\n{}",
            s.keys().cloned().collect::<Vec<_>>().join("\n")
        )
    })
}

async fn scrape(port: u16) -> (String, Scrape) {
    let reply = send(http_client().get(format!("http://127.0.0.1:{port}/metrics"))).await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        reply.header("content-type")
    );
    let text = reply.text();
    let parsed = parse(&text);
    (text, parsed)
}

/// `promtool check metrics` on `text`: its findings, if any.
fn promtool(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install Debian's `prometheus` package (.ci/run does)"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\n--- the scrape:\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[actix_web::test]
async fn every_metric_moves_and_promtool_accepts_the_scrape() {
    let port = free_port();
    let app = TestApp::spawn_with(|s| {
        metrics_on(s, port);
        s.throttle.per_user = 1;
    })
    .await;
    let (_, before) = scrape(port).await;
    // The metrics are on their own listener only.
    send(app.client.get(app.url("/metrics")))
        .await
        .error(StatusCode::NOT_FOUND);

    // Logins: ok, failed, then throttled.
    let pair = app.admin_tokens().await;
    let mut throttled = false;
    for _ in 0..10 {
        let r = app.login("ghost", "wrong-password-1").await;
        match r.status() {
            StatusCode::UNAUTHORIZED => continue,
            StatusCode::TOO_MANY_REQUESTS => {
                throttled = true;
                break;
            }
            other => panic!("login of an unknown user answered {other}"),
        }
    }
    assert!(throttled, "the wrong logins were never throttled");
    // A wrong one-time password (enabling two-factor authentication).
    let secret = app
        .post_json(
            "/mfa/generate",
            Some(&pair.token),
            &json!({"password": ADMIN_PASSWORD}),
        )
        .await
        .ok_json()["secret"]
        .as_str()
        .expect("a TOTP secret")
        .to_string();
    let now = app.clock.now();
    let valid: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|t| totp_at(&secret, *t))
        .collect();
    let wrong = ["000000", "111111", "222222"]
        .into_iter()
        .find(|c| !valid.iter().any(|v| v == c))
        .unwrap();
    app.post_json("/mfa/enable", Some(&pair.token), &json!({"otp": wrong}))
        .await
        .error(StatusCode::FORBIDDEN);
    // A refresh, then the spent token replayed after the grace window.
    app.refresh_ok(&pair.refresh_token).await;
    app.clock.advance(11);
    app.refresh(&pair.refresh_token)
        .await
        .error(StatusCode::UNAUTHORIZED);
    // An API key, a rotation, a path no route serves.
    let admin = app.admin_token().await;
    app.post_json(
        "/apikeys",
        Some(&admin),
        &json!({"name": "scraper", "roles": roles(&["read"])}),
    )
    .await
    .ok_json();
    app.rotate_key().await;
    send(app.client.get(app.url("/no/such/path")))
        .await
        .error(StatusCode::NOT_FOUND);

    let (text, after) = scrape(port).await;
    promtool(&text);

    let grew = |series: &str, by: f64| {
        let (b, a) = (
            before.get(series).copied().unwrap_or(0.0),
            get(&after, series),
        );
        assert!(a >= b + by, "{series}: {b} -> {a}, expected at least +{by}");
    };
    grew(r#"engine_auth_logins_total{outcome="ok"}"#, 2.0);
    grew(r#"engine_auth_logins_total{outcome="failed"}"#, 1.0);
    grew(r#"engine_auth_logins_total{outcome="throttled"}"#, 1.0);
    grew("engine_auth_otp_failures_total", 1.0);
    grew(r#"engine_auth_refreshes_total{outcome="ok"}"#, 1.0);
    grew(r#"engine_auth_refreshes_total{outcome="failed"}"#, 1.0);
    grew("engine_auth_refresh_reuse_detected_total", 1.0);
    grew(
        r#"engine_auth_http_requests_total{method="POST",route="/api/v1/auth/login",status="2xx"}"#,
        2.0,
    );
    grew(
        r#"engine_auth_http_requests_total{method="POST",route="/api/v1/auth/login",status="4xx"}"#,
        2.0,
    );
    grew(
        r#"engine_auth_http_requests_total{method="GET",route="unmatched",status="4xx"}"#,
        1.0,
    );
    grew(
        r#"engine_auth_http_request_duration_seconds_count{route="/api/v1/auth/login"}"#,
        4.0,
    );
    grew(
        r#"engine_auth_http_request_duration_seconds_bucket{le="+Inf",route="/api/v1/auth/refresh"}"#,
        2.0,
    );
    grew("engine_auth_password_hash_duration_seconds_count", 3.0);
    grew("engine_auth_store_fsyncs_total", 4.0);
    grew("engine_auth_store_fsync_duration_seconds_count", 4.0);
    // Gauges of this server's store, exact.
    assert_eq!(get(&after, "engine_auth_users"), 1.0);
    assert_eq!(get(&after, "engine_auth_api_keys"), 1.0);
    assert!(get(&after, "engine_auth_sessions") >= 2.0);
    assert_eq!(
        get(
            &after,
            r#"engine_auth_signing_keys{alg="HS256",state="active"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &after,
            r#"engine_auth_signing_keys{alg="HS256",state="retired"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &after,
            r#"engine_auth_signing_keys{alg="EdDSA",state="active"}"#
        ),
        0.0
    );
    assert!(get(&after, "engine_auth_store_disk_bytes") > 0.0);
    assert!(get(&after, "engine_auth_store_live_bytes") > 0.0);
    assert!(get(&after, "engine_auth_password_hashes_in_flight") >= 0.0);
    assert!(get(&after, "engine_auth_password_hashes_queued") >= 0.0);
    let start = get(&after, "process_start_time_seconds");
    assert!(
        start > 1.7e9 && start <= crate::harness::now() as f64,
        "{start}"
    );
    let build = format!(
        r#"engine_auth_build_info{{target="{}-unknown-linux-gnu",version="{}"}}"#,
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(get(&after, &build), 1.0);
    // No username, token or key in any label.
    for secret in ["ghost", &pair.token, &pair.refresh_token] {
        assert!(!text.contains(secret));
    }
}
