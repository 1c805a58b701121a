//! The user database, and the only module that touches the storage engine
//! (redb, through `kv`): users and
//! their case-insensitive username index, signing keys, login sessions and
//! metadata (schema version, counts, active key id). This file holds the
//! [`Store`] handle, its error type and the re-exports; each child owns one
//! kind of record or one job:
//!
//! - `kv`: the engine (redb) as trees of bytes, atomic writes across trees;
//! - `open`: opening, the cheap start-up checks, seeding an empty store;
//! - `migrate`: the one-time move of a store written by sled (the engine
//!   before redb) into redb;
//! - `users`: user records, the username index and the counts in `meta`;
//! - `keys`: signing-key records, rotation, deletion of retired keys;
//! - `apikeys`: API keys (service accounts), stored by their SHA-256;
//! - `audit`: the last 10,000 security events and each user's last login;
//! - `sessions`: login sessions, and `rotation`, the rules of refresh-token
//!   rotation applied to one session's record;
//! - `legacy`: everything about older on-disk layouts, with its removal plan;
//! - `commit`: the group-commit flusher every write ends in;
//! - `codec`: records to bytes and back, transaction error plumbing;
//! - `cache`: the request path's in-memory user views;
//! - `check` and [`maintenance`]: the full scan (`engine-auth check`) and
//!   offline compaction (`engine-auth compact`), with `files` for the
//!   filesystem steps compaction takes;
//! - [`backup`]: the backup file (a logical dump of every tree, taken at one
//!   instant) and restoring one into a fresh store swapped in atomically.
//!
//! Every write is one transaction across the trees it touches (or one
//! compare-and-swap) and is made durable before the call returns (a
//! durable redb commit, shared by the writers of a moment: see `commit`),
//! so a caller that answers 200 after a write never acknowledges something
//! a SIGKILL or a power cut could take back.
//!
//! Every write goes through [`Store::write`]: a storage failure (a full
//! disk) is kept and logged once, since redb refuses every later write of
//! the process after an I/O error; [`Store::storage_failure`] is what `/health` and the
//! watchdog ask. Every write also holds the export gate shared, which
//! [`Store::export`] takes exclusively: a backup sees no write half done.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

mod apikeys;
mod audit;
pub mod backup;
mod cache;
mod check;
mod codec;
mod commit;
mod files;
mod keys;
mod kv;
mod legacy;
mod listing;
pub mod maintenance;
mod mfa;
mod migrate;
mod open;
mod rotation;
mod sessions;
#[cfg(test)]
mod testing;
mod users;

pub use crate::keys::{KeyRecord, KeyState};
pub use apikeys::{ApiKeyRecord, KeyHash, TOUCH_INTERVAL_SECS};
pub use audit::{AUDIT_KEPT, AuditRecord, LastLogin};
pub use cache::UserView;
pub use kv::{DATA_FILE, Db};
pub use legacy::RefreshRecord;
pub use maintenance::{Compacted, Counts, Scan};
pub use mfa::{MfaRecord, MfaRefusal, OtpProof};
pub use migrate::KEPT as SLED_KEPT;
#[doc(hidden)]
pub use migrate::write_sled_store;
pub use open::{Opened, SCHEMA_VERSION};
pub use rotation::{Exchange, Refusal};
pub use sessions::{
    NewSession, Pruned, SessionClient, SessionCounts, SessionRecord, SessionToken, USER_AGENT_MAX,
};
pub use users::{Recovered, UserRecord, new_user_record};

/// Keys of the `meta` tree.
const META_SCHEMA: &[u8] = b"schema_version";
const META_ADMINS: &[u8] = b"admin_count";
const META_ACTIVE_KID: &[u8] = b"active_kid";
/// Users, and entries of the username index: kept by every transaction that
/// adds or removes one.
const META_USERS: &[u8] = b"user_count";
const META_NAMES: &[u8] = b"name_count";
/// Present once every session is in its user's list (`user_sessions`).
const META_SESSION_LISTS: &[u8] = b"session_lists";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is in use by a running daemon (or another engine-auth process): {0}")]
    InUse(PathBuf),
    #[error(
        "no space left on the file system of {0}: the store cannot be opened until some is freed; then start again"
    )]
    NoSpace(PathBuf),
    #[error("no store at {0}: start the daemon once to create it, or pass the right --data-dir")]
    Missing(PathBuf),
    #[error(
        "the store at {path} failed its checks: {why}. Refusing to start rather than lose or re-seed data; restore it from a backup"
    )]
    Invalid { path: PathBuf, why: String },
    #[error("no such user")]
    NotFound,
    #[error("username is already taken")]
    UsernameTaken,
    #[error("the change would leave no admin")]
    LastAdmin,
    #[error("storage failure: {0}")]
    Storage(#[from] redb::Error),
    #[error("a stored record cannot be read: {0}")]
    Decode(String),
    /// The fsync a write ends in failed: the write may not be durable.
    #[error("cannot flush the store at {} to disk", path.display())]
    Flush {
        path: PathBuf,
        #[source]
        source: redb::Error,
    },
    /// A file operation of compaction or of its clean-up failed.
    #[error("{what} {}", path.display())]
    Io {
        /// What failed, e.g. "cannot sync".
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The filesystem lacks what the operation needs; nothing was changed.
    #[error("{what}; the store was left as it was")]
    Unsupported {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// `compact` with a time limit ran out of it before the swap; the store
    /// is as it was.
    #[error("compaction ran out of its time limit before the swap; the store is unchanged")]
    OutOfTime,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// A fault of the storage rather than of one record or request: an I/O
    /// error (a full disk: ENOSPC), damage redb found, or a failed flush.
    /// redb keeps an I/O error and refuses every later write of this
    /// process (`PreviousIo`), even once the disk has room again: only a
    /// restart makes the store writable.
    pub fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            StoreError::Flush { .. }
                | StoreError::Storage(
                    redb::Error::Io(_)
                        | redb::Error::PreviousIo
                        | redb::Error::Corrupted(_)
                        | redb::Error::DatabaseClosed
                        | redb::Error::LockPoisoned(_)
                )
        )
    }
}

/// The first storage failure of a write, shared by every clone of a
/// [`Store`]: what `/health`, the watchdog and the logs report.
#[derive(Default)]
struct Health {
    failure: OnceLock<String>,
}

/// Handle to the open store; cheap to clone (engine handles are shared).
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    db: kv::Db,
    users: kv::Tree,
    names: kv::Tree,
    keys: kv::Tree,
    meta: kv::Tree,
    refresh: kv::Tree,
    sessions: kv::Tree,
    /// Per user, the ids of its sessions, oldest first (see `sessions`).
    user_sessions: kv::Tree,
    /// API keys by the SHA-256 of the key, key id → that hash, owner →
    /// its key ids (see `apikeys`).
    api_keys: kv::Tree,
    api_key_ids: kv::Tree,
    user_api_keys: kv::Tree,
    /// The recent security events and each user's last login (see `audit`),
    /// and the events recorded but not yet written there.
    audit: kv::Tree,
    pending_audit: Arc<audit::Pending>,
    flusher: Arc<commit::GroupCommit>,
    cache: Arc<cache::Cache>,
    health: Arc<Health>,
    /// Held shared by every write ([`Store::write`]) for its whole length
    /// (transaction and flush), exclusively by [`Store::export`]: a backup
    /// is the store at one instant, between writes.
    export_gate: Arc<RwLock<()>>,
}

impl Store {
    /// The store's directory inside a data dir (it holds [`DATA_FILE`]).
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("store")
    }

    fn invalid(&self, why: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            path: self.path.clone(),
            why: why.into(),
        }
    }

    /// Forces everything written so far onto the disk.
    pub fn flush(&self) -> Result<()> {
        // The leader of a flush writes the queued audit events first, so
        // the same durable commit carries them.
        let flushed = self
            .flusher
            .flush(&self.db, || {
                self.write_pending_events().map_err(|e| match e {
                    StoreError::Storage(e) => e,
                    other => redb::Error::Corrupted(other.to_string()),
                })
            })
            .map_err(|source| StoreError::Flush {
                path: self.path.clone(),
                source,
            });
        self.noting_failure(flushed)
    }

    /// Runs one write (every public write goes through here), noting a
    /// storage failure it ends in: see [`Store::storage_failure`].
    fn write<T>(&self, write: impl FnOnce() -> Result<T>) -> Result<T> {
        // Never taken twice by one thread: no write runs inside another.
        let _shared = self
            .export_gate
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        self.noting_failure(write())
    }

    fn noting_failure<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result
            && e.is_storage_failure()
        {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            if self.health.failure.set(why.clone()).is_ok() {
                log::error!(
                    "storage failed, every write is refused from now on: {why}. Free disk space \
                     (if full) and restart engine-auth: the store reopens with everything \
                     acknowledged. /health answers 503 and, under systemd, the watchdog \
                     pings stop so that systemd restarts it"
                );
            }
        }
        result
    }

    /// The first storage failure of a write (a full disk, an I/O error, a
    /// failed flush), if any. Once set, this process cannot write again:
    /// the engine keeps the error. Reads still work.
    pub fn storage_failure(&self) -> Option<&str> {
        self.health.failure.get().map(String::as_str)
    }

    /// Disk flushes performed so far (fewer than writes under concurrency).
    pub fn flush_count(&self) -> u64 {
        self.flusher.flush_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_failure_of_a_write_is_kept_and_a_refusal_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        let refused = s.write(|| Err::<(), _>(StoreError::UsernameTaken));
        assert!(refused.is_err());
        let undecodable = s.write(|| Err::<(), _>(StoreError::Decode("x".into())));
        assert!(undecodable.is_err());
        assert_eq!(s.storage_failure(), None);
        let enospc = std::io::Error::from_raw_os_error(28);
        let full = s.write(|| Err::<(), _>(StoreError::Storage(redb::Error::Io(enospc))));
        assert!(full.is_err());
        let clone = s.clone();
        let failure = clone.storage_failure().expect("kept, for every clone");
        assert!(failure.contains("No space left on device"), "{failure}");
        // The first failure is the one reported.
        let _ = s.write(|| Err::<(), _>(StoreError::Storage(redb::Error::PreviousIo)));
        assert_eq!(s.storage_failure(), Some(failure));
    }
}
