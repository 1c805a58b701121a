//! Does a failed login take as long for an unknown user as for a known
//! user with a wrong password? (If not, timing tells an attacker which
//! usernames exist.) Starts a real engine-auth in-process with the
//! production argon2 parameters and throttling out of the way, sends N
//! logins of each kind, interleaved so drift hits both alike, and prints
//! the medians and their ratio. A statistical check, not a test: run it on
//! a quiet machine.
//!
//!   cargo run --release --example login_timing -- [--n 60]

use engine_auth::config::Settings;
use engine_auth::startup::Application;
use std::time::{Duration, Instant};

const ADMIN_PASSWORD: &str = "timing-admin-password";

fn main() -> anyhow::Result<()> {
    let mut n: usize = 60;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--n", Some(v)) => n = v.parse()?,
            _ => anyhow::bail!("usage: login_timing [--n N]"),
        }
    }
    let dir = tempfile::tempdir()?;
    let mut s = Settings::new(dir.path());
    s.listen = "127.0.0.1:0".parse()?;
    s.workers = 1;
    s.admin_password = Some(ADMIN_PASSWORD.into());
    s.throttle.per_user = u32::MAX;
    s.throttle.per_address = u32::MAX;
    let argon2 = s.argon2;

    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = match Application::build(s).await {
                Ok(app) => app,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok((app.port(), app.handle())));
            if let Err(e) = app.run_until_stopped().await {
                eprintln!("server stopped with an error: {e:#}");
            }
        })
    });
    let (port, handle) = rx.recv()??;
    let url = format!("http://127.0.0.1:{port}/api/v1/auth/login");
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()?;
    // `pw` is any JSON: a number is read as its digits, as the original
    // reads it (coercion must not change the timing either).
    let login = |user: &str, pw: serde_json::Value| -> anyhow::Result<Duration> {
        let body = serde_json::json!({ "username": user, "password": pw });
        let start = Instant::now();
        let resp = client.post(&url).json(&body).send()?;
        let status = resp.status();
        resp.bytes()?;
        let took = start.elapsed();
        anyhow::ensure!(status == 401, "{user}: expected 401, got {status}");
        Ok(took)
    };
    // Warm-up: connection, the dummy hash (computed once at start-up),
    // caches.
    for i in 0..5 {
        login("admin", format!("warm-up-{i}").into())?;
        login(&format!("nobody-{i}"), "warm-up".into())?;
    }
    let (mut unknown, mut known) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut unknown_num, mut known_num) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let pw = serde_json::Value::from(format!("wrong-password-{i}"));
        let num = serde_json::Value::from(10_000_000 + i);
        let nobody = format!("no-such-user-{i}@home.com");
        // Alternate which goes first.
        if i % 2 == 0 {
            unknown.push(login(&nobody, pw.clone())?);
            known.push(login("admin", pw)?);
            unknown_num.push(login(&nobody, num.clone())?);
            known_num.push(login("admin", num)?);
        } else {
            known.push(login("admin", pw.clone())?);
            unknown.push(login(&nobody, pw)?);
            known_num.push(login("admin", num.clone())?);
            unknown_num.push(login(&nobody, num)?);
        }
    }
    let (mu, mk) = (median(&mut unknown), median(&mut known));
    println!(
        "login timing: {n} logins each, argon2id m={} KiB t={} p={}, 1 worker",
        argon2.memory_kib, argon2.iterations, argon2.parallelism
    );
    println!(
        "  unknown user:          median {:>8.2} ms  (p10 {:.2}, p90 {:.2})",
        ms(mu),
        ms(pct(&unknown, 10)),
        ms(pct(&unknown, 90))
    );
    println!(
        "  known user, wrong pw:  median {:>8.2} ms  (p10 {:.2}, p90 {:.2})",
        ms(mk),
        ms(pct(&known, 10)),
        ms(pct(&known, 90))
    );
    println!(
        "  ratio unknown/known:   {:.3}",
        mu.as_secs_f64() / mk.as_secs_f64()
    );
    let (mun, mkn) = (median(&mut unknown_num), median(&mut known_num));
    println!(
        "  password as a number (coerced): unknown median {:.2} ms, known median {:.2} ms, ratio {:.3}",
        ms(mun),
        ms(mkn),
        mun.as_secs_f64() / mkn.as_secs_f64()
    );

    actix_web::rt::System::new().block_on(handle.stop(true));
    let _ = server.join();
    Ok(())
}

/// Sorts `v` and returns its median.
fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The `p`th percentile of a sorted slice.
fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
