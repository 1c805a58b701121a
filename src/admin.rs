//! Administration while the daemon runs. sled lets one process hold the
//! store, so the daemon listens on `<data-dir>/admin.sock` (mode 0600, the
//! daemon's user; root reaches it too) and the CLI sends it one JSON request
//! per line and reads one JSON response line. When no daemon answers, the
//! CLI opens the store itself and runs the very same [`execute`].
//!
//! Requests may carry a password, so they are never logged.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::domain::{Password, Roles, Username};
use crate::lifecycle;
use crate::password::Hasher;
use crate::store::{Store, UserRecord, new_user_record};
use crate::tokens::Tokens;

pub const SOCKET_NAME: &str = "admin.sock";

/// Longest request line accepted (a 1 KiB password and a 256-char name fit).
const MAX_REQUEST: u64 = 16 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    UserAdd {
        username: String,
        password: String,
        roles: u8,
    },
    UserList,
    UserPasswd {
        username: String,
        password: String,
    },
    UserRoles {
        username: String,
        roles: u8,
    },
    UserDelete {
        username: String,
    },
    /// Revoke every token of the user.
    UserLogout {
        username: String,
    },
    RecoverAdmin {
        username: String,
        password: String,
    },
    KeysRotate,
    KeysList,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// What the CLI prints (stdout on success, the error on failure).
    pub output: String,
}

/// What a request may touch.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub hasher: &'a Hasher,
    /// The running daemon's token issuer (reloaded after a rotation);
    /// `None` offline.
    pub tokens: Option<&'a Tokens>,
    pub now: u64,
}

fn user(store: &Store, name: &str) -> anyhow::Result<UserRecord> {
    store
        .user_by_name(name)?
        .ok_or_else(|| anyhow::anyhow!("no user named {name:?}"))
}

fn password(p: String) -> anyhow::Result<Password> {
    Password::parse(p).map_err(anyhow::Error::msg)
}

macro_rules! audit {
    ($($arg:tt)+) => {
        log::info!(target: "engine_auth::audit", "{} by=cli", format_args!($($arg)+))
    };
}

/// Runs one request against the store; returns what to print.
pub fn execute(ctx: &Ctx, req: Request) -> anyhow::Result<String> {
    let Ctx {
        store, hasher, now, ..
    } = *ctx;
    Ok(match req {
        Request::UserAdd {
            username,
            password: pw,
            roles,
        } => {
            let username = Username::parse(&username).map_err(anyhow::Error::msg)?;
            let hash = hasher.hash_blocking(&password(pw)?)?;
            let rec = new_user_record(&username, hash, Roles::from_bits(roles), now);
            store.create_user(&rec)?;
            audit!(
                "event=user_created user={:?} id={} roles={}",
                rec.username,
                rec.id,
                rec.roles
            );
            rec.id.to_string()
        }
        Request::UserList => {
            let mut out = String::new();
            for name in store.usernames()? {
                let rec = user(store, &name)?;
                out.push_str(&format!("{}\t{}\t{}\n", rec.id, rec.roles, rec.username));
            }
            out.pop();
            out
        }
        Request::UserPasswd {
            username,
            password: pw,
        } => {
            let rec = user(store, &username)?;
            let hash = hasher.hash_blocking(&password(pw)?)?;
            store.set_password_hash(rec.id, hash, now)?;
            audit!(
                "event=user_password_changed user={:?} id={}",
                rec.username,
                rec.id
            );
            format!(
                "password of {:?} changed; its tokens are revoked",
                rec.username
            )
        }
        Request::UserRoles { username, roles } => {
            let rec = user(store, &username)?;
            let rec = store.set_roles(rec.id, Roles::from_bits(roles), now)?;
            audit!(
                "event=user_roles_changed user={:?} id={} roles={}",
                rec.username,
                rec.id,
                rec.roles
            );
            format!(
                "roles of {:?} are now {}; its tokens are revoked",
                rec.username, rec.roles
            )
        }
        Request::UserDelete { username } => {
            let rec = user(store, &username)?;
            store.delete_user(rec.id)?;
            audit!("event=user_deleted user={:?} id={}", rec.username, rec.id);
            format!("deleted {:?}", rec.username)
        }
        Request::UserLogout { username } => {
            let rec = user(store, &username)?;
            store.revoke_all_tokens(rec.id, now)?;
            audit!("event=logout_all user={:?} id={}", rec.username, rec.id);
            format!("every token of {:?} is revoked", rec.username)
        }
        Request::RecoverAdmin {
            username,
            password: pw,
        } => {
            let username = Username::parse(&username).map_err(anyhow::Error::msg)?;
            let hash = hasher.hash_blocking(&password(pw)?)?;
            let id = store.recover_admin(&username, hash, now)?.user.id;
            audit!("event=admin_recovered user={username} id={id}");
            format!("{username} has a new password and every role")
        }
        Request::KeysRotate => {
            let kid = lifecycle::rotate_key(store, ctx.tokens, now)?;
            format!(
                "new signing key {kid}; tokens signed with the previous key stay valid until they expire"
            )
        }
        Request::KeysList => {
            let mut out = String::from("kid\tstate\tage_secs\tretired_secs_ago");
            for k in store.keys()? {
                out.push_str(&format!(
                    "\n{}\t{:?}\t{}\t{}",
                    k.kid,
                    k.state,
                    now.saturating_sub(k.created_at),
                    k.retired_at
                        .map_or("-".into(), |t| now.saturating_sub(t).to_string())
                ));
            }
            out
        }
    })
}

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

/// Binds the socket (replacing a stale one: we hold the store lock, so no
/// other daemon owns it) and serves requests on a thread of its own,
/// one connection at a time: administration is rare and this keeps every
/// write serialised.
pub fn serve(
    data_dir: &Path,
    store: Store,
    hasher: Hasher,
    tokens: Tokens,
    clock: impl Fn() -> u64 + Send + 'static,
) -> anyhow::Result<AdminSocket> {
    let path = socket_path(data_dir);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .map_err(|e| anyhow::anyhow!("cannot bind admin socket {}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    // Non-blocking accept polled every 100 ms: stopping must not depend on
    // the socket file still existing (an operator may have removed it).
    listener.set_nonblocking(true)?;
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
                let ctx = Ctx {
                    store: &store,
                    hasher: &hasher,
                    tokens: Some(&tokens),
                    now: clock(),
                };
                if let Err(e) = conn
                    .set_nonblocking(false)
                    .map_err(anyhow::Error::from)
                    .and_then(|_| handle(&ctx, conn))
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

fn handle(ctx: &Ctx, conn: UnixStream) -> anyhow::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = String::new();
    BufReader::new((&conn).take(MAX_REQUEST)).read_line(&mut line)?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(req) => match execute(ctx, req) {
            Ok(output) => Response { ok: true, output },
            Err(e) => Response {
                ok: false,
                output: format!("{e:#}"),
            },
        },
        Err(e) => Response {
            ok: false,
            output: format!("bad request: {e}"),
        },
    };
    let mut conn = conn;
    serde_json::to_writer(&mut conn, &response)?;
    conn.write_all(b"\n")?;
    Ok(())
}

/// Sends a request to a running daemon. `Ok(None)` when no daemon listens
/// (no socket, or a stale one): the caller then works on the store itself.
pub fn send(data_dir: &Path, req: &Request) -> anyhow::Result<Option<Response>> {
    let path = socket_path(data_dir);
    let mut conn = match UnixStream::connect(&path) {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => anyhow::bail!("cannot reach the daemon at {}: {e}", path.display()),
    };
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    serde_json::to_writer(&mut conn, req)?;
    conn.write_all(b"\n")?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line)?;
    Ok(Some(serde_json::from_str(&line)?))
}
