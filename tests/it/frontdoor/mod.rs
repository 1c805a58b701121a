//! The gateway's front door: engine-auth deciding for the other services
//! behind a real reverse proxy (`cargo test --test it frontdoor::`). The
//! proxies are Debian's (`nginx`, `caddy`), started by the tests on
//! loopback ports with the configurations shipped in
//! `examples/forward-auth/`, in front of [`Upstream`], a small service that
//! records what reached it; Node-RED (from npm, `tests/node-red/`) with
//! the shipped `examples/node-red/` adminAuth asking engine-auth
//! (`node_red`); and the MQTT broker backend at the protocol level (`mqtt`).

mod mqtt;
mod node_red;
mod proxies;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one request that reached the upstream carried.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub path: String,
    /// Header names lower-cased, values as sent (lossy UTF-8).
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A protected service: answers 200 "upstream" to everything, remembering
/// each request it saw.
pub struct Upstream {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, hits, stop) = (seen.clone(), hits.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    // Recorded before the answer is sent, so a test that has
                    // its response finds the request in `last()`.
                    serve(conn, |s| {
                        seen.lock().expect("seen").push(s);
                        hits.fetch_add(1, Ordering::SeqCst);
                    });
                }
            })
        };
        Upstream {
            port,
            seen,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .expect("seen")
            .last()
            .cloned()
            .expect("the upstream saw a request")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request head (the proxies send no body here), records it, and
/// answers.
fn serve(conn: TcpStream, record: impl FnOnce(Seen)) -> Option<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).ok()?;
    let request_line = String::from_utf8_lossy(&line).into_owned();
    let path = request_line.split(' ').nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_until(b'\n', &mut line).ok()?;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.is_empty() {
            break;
        }
        let (n, v) = text.split_once(':')?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    record(Seen { path, headers });
    let mut conn = conn;
    let _ = conn.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: close\r\n\r\nupstream",
    );
    Some(())
}
