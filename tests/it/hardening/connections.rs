//! Many slow or idle connections must not pin the daemon: connections that
//! send nothing, half a request head, a head one byte at a time, or go
//! quiet after a request are closed by the server within a bounded time
//! (the request head must arrive within 5 s, keep-alive ends after 10 s),
//! and while they are open the API keeps answering.

use crate::harness::{ADMIN_PASSWORD, TestApp};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Generous on purpose: the server's own deadline is 5 s; this only has to
/// tell "closed by the server" from "held open forever".
const CLOSED_WITHIN: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Connects and sends nothing.
    Idle,
    /// Sends part of a request head, then nothing.
    PartialHead,
    /// Sends a request head one byte every 300 ms, never finishing it.
    Trickle,
    /// Sends one whole request, reads the answer, then stays connected
    /// (keep-alive) without sending another.
    KeepAliveIdle,
    /// Sends a complete head announcing a 100-byte body, then one byte.
    StalledBody,
}

/// Opens a connection that behaves as `kind`; the thread returns how long
/// the server took to close it (`None`: still open after `CLOSED_WITHIN`).
fn misbehave(port: u16, kind: Kind, stop: Arc<AtomicBool>) -> JoinHandle<Option<Duration>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    std::thread::spawn(move || {
        let start = Instant::now();
        let head = b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: appl";
        match kind {
            Kind::Idle => {}
            Kind::PartialHead => s.write_all(head).expect("write"),
            Kind::KeepAliveIdle => {
                s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    .expect("write");
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).expect("the first answer");
                assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "keep-alive request");
            }
            Kind::StalledBody => s
                .write_all(
                    b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n\
                      Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
                )
                .expect("write"),
            Kind::Trickle => {
                s.set_nonblocking(true).expect("nonblocking");
                for b in head.iter().cycle() {
                    if start.elapsed() > CLOSED_WITHIN || stop.load(Ordering::Relaxed) {
                        return None;
                    }
                    // A write error means the server hung up.
                    if s.write_all(&[*b]).is_err() {
                        return Some(start.elapsed());
                    }
                    let mut buf = [0u8; 1024];
                    match s.read(&mut buf) {
                        Ok(0) => return Some(start.elapsed()),
                        Ok(_) => {} // e.g. a 408; the close follows
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return Some(start.elapsed()),
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
                return None;
            }
        }
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let mut buf = [0u8; 1024];
        loop {
            if start.elapsed() > CLOSED_WITHIN || stop.load(Ordering::Relaxed) {
                return None;
            }
            match s.read(&mut buf) {
                Ok(0) => return Some(start.elapsed()),
                Ok(_) => {} // a 408 before the close is fine
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Some(start.elapsed()),
            }
        }
    })
}

#[actix_web::test]
async fn two_hundred_idle_or_slow_connections_are_closed_and_never_pin_the_only_worker() {
    // One worker: if slow clients could pin it, the API would stop.
    let app = TestApp::spawn().await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut conns = Vec::new();
    for i in 0..200 {
        let kind = match i % 10 {
            0..=3 => Kind::Idle,
            4..=6 => Kind::PartialHead,
            7 | 8 => Kind::KeepAliveIdle,
            _ => Kind::Trickle,
        };
        conns.push((kind, misbehave(app.port, kind, stop.clone())));
    }
    // While they hang on, the API answers, including a login (a hash).
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        app.assert_alive().await;
        app.login_ok("admin", ADMIN_PASSWORD).await;
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
    let mut open = Vec::new();
    let mut slowest = Duration::ZERO;
    for (kind, handle) in conns {
        match handle.join().expect("connection thread") {
            Some(d) => slowest = slowest.max(d),
            None => open.push(kind),
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert!(
        open.is_empty(),
        "{} connections were still open after {CLOSED_WITHIN:?}: {open:?}",
        open.len()
    );
    eprintln!("slowest close: {slowest:?}");
    app.assert_alive().await;
    app.login_ok("admin", ADMIN_PASSWORD).await;
}

/// Reproducer for a defect, not a regression test yet: a client that sends
/// a complete head announcing a body and then stalls is never cut off
/// (actix has no body-read deadline and nothing in engine-auth adds one).
/// Each such connection holds a file descriptor forever; with systemd's
/// default soft limit of 1024 descriptors about a thousand of them make the
/// daemon refuse every new connection ("Too many open files"). Run with
/// `cargo test --test it -- --ignored` once the daemon bounds body
/// reads (e.g. a timeout around request handling answering 408).
#[actix_web::test]
async fn connections_that_stall_in_the_body_are_closed() {
    let app = TestApp::spawn().await;
    let stop = Arc::new(AtomicBool::new(false));
    let conns: Vec<_> = (0..20)
        .map(|_| misbehave(app.port, Kind::StalledBody, stop.clone()))
        .collect();
    let open = conns
        .into_iter()
        .filter_map(|h| h.join().expect("thread").is_none().then_some(()))
        .count();
    assert_eq!(
        open, 0,
        "{open} of 20 stalled-body connections still open after {CLOSED_WITHIN:?}"
    );
    app.assert_alive().await;
}
