//! The daemon's end of the admin socket: one thread, one connection at a
//! time (administration is rare, and this keeps every admin write
//! serialised), each request run on a current-thread runtime of its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::execute::execute;
use super::protocol::{Output, Request, Response};
use crate::accounts::Accounts;
use crate::clock::Clock;
use crate::password::Hasher;
use crate::store::Store;
use crate::tokens::Tokens;

pub const SOCKET_NAME: &str = "admin.sock";

/// Longest request line accepted (a 1 KiB password and a 256-char name fit).
const MAX_REQUEST: u64 = 16 * 1024;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// The running socket thread; [`AdminSocket::stop`] ends it (and releases
/// its handle on the store).
pub struct AdminSocket {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AdminSocket {
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the socket thread owns.
struct Daemon {
    store: Store,
    hasher: Hasher,
    tokens: Tokens,
    clock: Clock,
}

/// Binds the socket (replacing a stale one: we hold the store lock, so no
/// other daemon owns it) and serves it on a thread of its own.
pub fn serve(
    data_dir: &Path,
    store: Store,
    hasher: Hasher,
    tokens: Tokens,
    clock: Clock,
) -> anyhow::Result<AdminSocket> {
    let path = socket_path(data_dir);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .map_err(|e| anyhow::anyhow!("cannot bind admin socket {}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    // Non-blocking accept polled every 100 ms: stopping must not depend on
    // the socket file still existing (an operator may have removed it).
    listener.set_nonblocking(true)?;
    let daemon = Daemon {
        store,
        hasher,
        tokens,
        clock,
    };
    let thread = std::thread::Builder::new()
        .name("admin-socket".into())
        .spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let conn = match listener.accept() {
                    Ok((conn, _)) => conn,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                    Err(e) => {
                        log::warn!("admin socket: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                if let Err(e) = conn
                    .set_nonblocking(false)
                    .map_err(anyhow::Error::from)
                    .and_then(|_| handle(&daemon, &runtime, conn))
                {
                    log::warn!("admin socket: {e:#}");
                }
            }
        })?;
    Ok(AdminSocket {
        path,
        stop,
        thread: Some(thread),
    })
}

/// Only root and the daemon's own user may administer it. The file mode
/// (0600) already says so; the kernel's word on the peer holds even if the
/// mode was changed or the socket was reached through a descriptor passed
/// on.
fn peer_allowed(conn: &UnixStream) -> anyhow::Result<bool> {
    let peer = rustix::net::sockopt::socket_peercred(conn)?;
    let uid = peer.uid.as_raw();
    Ok(uid == 0 || uid == rustix::process::geteuid().as_raw())
}

fn handle(
    daemon: &Daemon,
    runtime: &tokio::runtime::Runtime,
    conn: UnixStream,
) -> anyhow::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let response: Response = if !peer_allowed(&conn)? {
        log::warn!("admin socket: refused a peer that is neither root nor the daemon's user");
        Err("only root and the daemon's user may use the admin socket".into())
    } else {
        let mut line = String::new();
        BufReader::new((&conn).take(MAX_REQUEST)).read_line(&mut line)?;
        match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let accounts = Accounts {
                    store: &daemon.store,
                    hasher: &daemon.hasher,
                    clock: &daemon.clock,
                    tokens: Some(&daemon.tokens),
                    throttle: None,
                };
                runtime
                    .block_on(execute(accounts, req))
                    .map_err(|e| format!("{e:#}"))
            }
            Err(e) => Err(format!("bad request: {e}")),
        }
    };
    let mut conn = conn;
    // A client that stops reading must not hold the socket thread.
    conn.set_write_timeout(Some(Duration::from_secs(60)))?;
    serde_json::to_writer(&mut conn, &response)?;
    conn.write_all(b"\n")?;
    if let Ok(Output::Backup { data, .. }) = &response {
        conn.write_all(&data.0)?;
        log::info!("admin socket: sent a backup of {} bytes", data.0.len());
    }
    Ok(())
}
