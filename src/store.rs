//! The user database. This is the only module that touches sled: users, the
//! case-insensitive username index, signing keys and metadata (schema
//! version, admin count, active key id) all live here.
//!
//! Every write is one sled transaction across the trees it touches and is
//! flushed to disk before the call returns, so a caller that answers 200
//! after a write never acknowledges something a SIGKILL could take back.
//! sled's own timed flush is switched off; we do not rely on it.
//!
//! `meta` also keeps the number of users and index entries, updated in the
//! same transactions as the records, so opening the store reads a handful
//! of keys whatever its size. The full scan (every record decoded, the index
//! against the users, the counts against both) is [`Store::scan`], run by
//! `engine-auth check`; offline compaction is in [`maintenance`].

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use uuid::Uuid;

use crate::domain::{Roles, Username};

mod cache;
pub mod maintenance;
mod sessions;
pub use cache::UserView;
pub use maintenance::{Compacted, Scan};
pub use sessions::{Exchange, FamilyRecord, RefreshRecord, SessionToken};

/// Bumped whenever the on-disk record layout changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

const META_SCHEMA: &[u8] = b"schema_version";
const META_ADMINS: &[u8] = b"admin_count";
const META_ACTIVE_KID: &[u8] = b"active_kid";
/// Users, and entries of the username index: kept by every transaction that
/// adds or removes one. Stores written before they existed get them from a
/// one-off scan at their first open ([`Store::open`]).
const META_USERS: &[u8] = b"user_count";
const META_NAMES: &[u8] = b"name_count";

/// sled log segment size for new stores. sled 0.34 reclaims a segment only
/// once most of it is garbage, so with its default (512 KiB) a store grew to
/// 8-10x its live data under steady overwrites; see `benches/store_space.rs`
/// and the README's figures. sled records the size in the store's `conf`
/// file and refuses another one, so older stores keep theirs until
/// `engine-auth compact` rewrites them.
pub const SEGMENT_SIZE: usize = 32 * 1024;
/// sled 0.34's default: every store made before [`SEGMENT_SIZE`] was set.
const LEGACY_SEGMENT_SIZE: usize = 512 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is in use by a running daemon (or another engine-auth process): {0}")]
    InUse(PathBuf),
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
    Sled(#[from] sled::Error),
    #[error("a stored record cannot be read: {0}")]
    Decode(String),
    /// `compact` with a time limit ran out of it before the swap; the store
    /// is as it was.
    #[error("compaction ran out of its time limit before the swap; the store is unchanged")]
    OutOfTime,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One user as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    /// argon2id in PHC string format.
    pub password_hash: String,
    /// The role bitmask ([`Roles::bits`]).
    pub roles: u8,
    /// Unix seconds.
    pub created_at: u64,
    pub updated_at: u64,
    /// Bumped by every change that must revoke the user's tokens (password,
    /// roles, "log out everywhere"). Tokens carry the generation they were
    /// issued under; a mismatch is a revoked token. A counter rather than a
    /// timestamp, so a login in the same second as a change still works.
    #[serde(default)]
    pub generation: u64,
}

impl UserRecord {
    pub fn roles(&self) -> Roles {
        Roles::from_bits(self.roles)
    }
    fn is_admin(&self) -> bool {
        self.roles().admin
    }
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Active,
    Retired,
}

/// A signing key. The secret never appears in `Debug` output.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub kid: String,
    /// 32 bytes from the OS, hex-encoded.
    pub secret_hex: String,
    pub created_at: u64,
    pub state: KeyState,
    /// When it stopped signing; it verifies until every token it signed has
    /// expired, then it is deleted.
    #[serde(default)]
    pub retired_at: Option<u64>,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("state", &self.state)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// What [`Store::open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// Nothing stored yet: the caller must [`Store::initialize`] it.
    Empty,
    /// An initialised store that passed its checks.
    Ready,
}

/// Handle to the open store; cheap to clone (sled handles are shared).
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    users: sled::Tree,
    names: sled::Tree,
    keys: sled::Tree,
    meta: sled::Tree,
    refresh: sled::Tree,
    families: sled::Tree,
    flusher: Arc<GroupCommit>,
    cache: Arc<cache::Cache>,
}

/// Group commit: concurrent writers share fsyncs. A writer takes a ticket
/// after its transaction committed; if no flush is running it becomes the
/// leader and flushes for every ticket taken so far, else it waits. Writers
/// arriving during a flush are covered by the next one. On an SD card an
/// fsync costs 5-20 ms, so under load this is what keeps throughput up.
struct GroupCommit {
    state: Mutex<CommitState>,
    done: Condvar,
    flushes: AtomicU64,
}

#[derive(Default)]
struct CommitState {
    /// Tickets handed out.
    requested: u64,
    /// Every ticket up to this one is durable (or failed: `last_error`).
    completed: u64,
    in_progress: bool,
    last_error: Option<String>,
    /// Tickets the last flush covered.
    last_batch: u64,
}

/// How long a flush leader waits for more writers under concurrency.
const COMMIT_DELAY: std::time::Duration = std::time::Duration::from_micros(200);

impl GroupCommit {
    fn flush(&self, db: &sled::Db) -> Result<()> {
        let lock = || self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = lock();
        st.requested += 1;
        let ticket = st.requested;
        loop {
            if st.completed >= ticket {
                return match &st.last_error {
                    None => Ok(()),
                    Some(e) => Err(StoreError::Decode(format!("flush failed: {e}"))),
                };
            }
            if st.in_progress {
                st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            st.in_progress = true;
            // Commit delay (PostgreSQL's commit_delay, made adaptive): when
            // the last flush covered several writers, others are probably
            // about to ask; wait a moment so this flush covers them too.
            // A lone writer never waits. On a fast disk this is what keeps
            // syncs per write low; on an SD card the slow fsync batches
            // writers anyway.
            if st.last_batch > 1 {
                drop(st);
                std::thread::sleep(COMMIT_DELAY);
                st = lock();
            }
            let target = st.requested;
            st.last_batch = target - st.completed;
            drop(st);
            let result = db.flush();
            self.flushes.fetch_add(1, Ordering::Relaxed);
            st = lock();
            st.in_progress = false;
            st.completed = target;
            // A later successful flush covers earlier writes too, so the
            // latest outcome is the truth for every ticket up to `target`.
            st.last_error = result.err().map(|e| e.to_string());
            self.done.notify_all();
        }
    }
}

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

fn from_tx(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising these plain structs to JSON cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

fn read_u64(v: Option<sled::IVec>) -> Result<u64> {
    match v {
        None => Ok(0),
        Some(b) => {
            let arr: [u8; 8] = b
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Decode("admin count".into()))?;
            Ok(u64::from_be_bytes(arr))
        }
    }
}

/// Index value: 16 id bytes followed by the username as given.
fn name_entry(rec: &UserRecord) -> Vec<u8> {
    let mut v = rec.id.as_bytes().to_vec();
    v.extend_from_slice(rec.username.as_bytes());
    v
}

impl Store {
    /// The sled directory inside a data dir.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("store")
    }

    /// Opens (creating if needed) the store in `data_dir` and checks it.
    /// Also finishes what an interrupted `engine-auth compact` left (see
    /// [`maintenance::compact`]) and, once, records the counts in a store
    /// written before they were kept.
    pub fn open(data_dir: &Path, cache_capacity_bytes: u64) -> Result<(Store, Opened)> {
        let store = Self::open_unchecked(data_dir, cache_capacity_bytes)?;
        let opened = store.check()?;
        // Only with the lock held: no compaction can be running then. Not
        // fatal: the copy is garbage whatever it holds, and `compact`
        // removes it too.
        if let Err(e) = maintenance::remove_abandoned_copy(data_dir) {
            log::warn!("{e}");
        }
        Ok((store, opened))
    }

    /// The store with its lock held, without any check: for
    /// [`Store::open`], and for `engine-auth check`, which reports
    /// everything wrong with a store that start-up would refuse.
    pub fn open_unchecked(data_dir: &Path, cache_capacity_bytes: u64) -> Result<Store> {
        let path = Self::path_in(data_dir);
        let db = open_sled(&path, cache_capacity_bytes).map_err(|e| match e {
            sled::Error::Io(ref io) if io.to_string().contains("could not acquire lock") => {
                StoreError::InUse(path.clone())
            }
            other => StoreError::Invalid {
                path: path.clone(),
                why: format!("sled cannot open it ({other})"),
            },
        })?;
        Self::from_db(path, db)
    }

    fn from_db(path: PathBuf, db: sled::Db) -> Result<Store> {
        let invalid = |e: sled::Error| StoreError::Invalid {
            path: path.clone(),
            why: e.to_string(),
        };
        let store = Store {
            users: db.open_tree("users").map_err(invalid)?,
            names: db.open_tree("usernames").map_err(invalid)?,
            keys: db.open_tree("keys").map_err(invalid)?,
            meta: db.open_tree("meta").map_err(invalid)?,
            refresh: db.open_tree("refresh_tokens").map_err(invalid)?,
            families: db.open_tree("sessions").map_err(invalid)?,
            path,
            db,
            flusher: Arc::new(GroupCommit {
                state: Mutex::new(CommitState::default()),
                done: Condvar::new(),
                flushes: AtomicU64::new(0),
            }),
            cache: Arc::default(),
        };
        Ok(store)
    }

    /// Opens a store that must already exist (offline CLI commands never
    /// create one).
    pub fn open_existing(data_dir: &Path, cache_capacity_bytes: u64) -> Result<Store> {
        let path = Self::path_in(data_dir);
        if !path.join("db").exists() {
            return Err(StoreError::Missing(data_dir.to_path_buf()));
        }
        match Self::open(data_dir, cache_capacity_bytes)? {
            (store, Opened::Ready) => Ok(store),
            (_, Opened::Empty) => Err(StoreError::Missing(data_dir.to_path_buf())),
        }
    }

    fn invalid(&self, why: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            path: self.path.clone(),
            why: why.into(),
        }
    }

    /// An empty store (first start, or a first start killed before its
    /// seed was committed) is `Empty`; anything else must carry our schema
    /// version, plausible counts, a readable first user, an index entry
    /// that finds its user, and a readable active key. Reads a few
    /// keys, never every record: start-up time and memory do not grow with
    /// the users. The full scan is [`Store::scan`] (`engine-auth check`); a
    /// store without counts gets it once here, and is refused if it fails.
    fn check(&self) -> Result<Opened> {
        let version = self.meta.get(META_SCHEMA)?;
        let Some(version) = version else {
            if self.users.is_empty()
                && self.names.is_empty()
                && self.keys.is_empty()
                && self.meta.is_empty()
            {
                return Ok(Opened::Empty);
            }
            return Err(self.invalid("it holds data but no schema version"));
        };
        let version: u32 = std::str::from_utf8(&version)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.invalid("unreadable schema version"))?;
        if version != SCHEMA_VERSION {
            return Err(self.invalid(format!(
                "schema version {version}, this build reads version {SCHEMA_VERSION}"
            )));
        }
        let count = |key: &[u8]| -> Result<Option<u64>> {
            self.meta
                .get(key)?
                .map(|v| read_u64(Some(v)))
                .transpose()
                .map_err(|_| self.invalid(format!("unreadable {}", String::from_utf8_lossy(key))))
        };
        let admins = count(META_ADMINS)?.unwrap_or(0);
        // The user and index counts are derived data: missing (a store from
        // before they were kept), unreadable or implausible (an earlier
        // version ran on the store and did not keep them), they are counted
        // again, which refuses a damaged store as every start used to.
        match (count(META_USERS), count(META_NAMES)) {
            (Ok(Some(users)), Ok(Some(names)))
                if admins >= 1 && admins <= users && names == users => {}
            (Ok(None), _) | (_, Ok(None)) => self.recount()?,
            (users, names) => {
                let show = |c: Result<Option<u64>>| {
                    c.ok()
                        .flatten()
                        .map_or("unreadable".to_string(), |n| n.to_string())
                };
                log::warn!(
                    "the stored counts do not fit ({} users, {} index entries, {admins} admins): counting again",
                    show(users),
                    show(names)
                );
                self.recount()?;
            }
        }
        let users = count(META_USERS)?.unwrap_or(0);
        let names = count(META_NAMES)?.unwrap_or(0);
        if admins == 0 || admins > users {
            return Err(self.invalid(format!(
                "the admin count ({admins}) does not fit the user count ({users})"
            )));
        }
        if names != users {
            return Err(self.invalid(format!(
                "the username index ({names} entries) does not match the users ({users})"
            )));
        }
        // Not `last()` as well: sled's reverse iteration links in a 1 MiB
        // constant (its maximal key), a sixth of the binary.
        let Some((_, first)) = self.users.first()? else {
            return Err(self.invalid(format!("no user records, {users} counted")));
        };
        decode::<UserRecord>(&first).map_err(|e| self.invalid(format!("user record: {e}")))?;
        let first_name = self.names.first()?.map(|(_, entry)| id_of_entry(&entry));
        match first_name {
            Some(Ok(id)) if self.users.contains_key(id.as_bytes())? => {}
            _ => return Err(self.invalid("the username index does not match the users")),
        }
        let keys = self
            .keys()
            .map_err(|e| self.invalid(format!("signing keys: {e}")))?;
        let active = self.active_kid()?;
        if !keys
            .iter()
            .any(|k| k.kid == active && k.state == KeyState::Active)
        {
            return Err(self.invalid("the active signing key is missing"));
        }
        Ok(Opened::Ready)
    }

    /// Counts users and index entries again and records them: every user
    /// decoded and counted, the index counted, refused if they disagree or
    /// the admin count is wrong (what every start did before), then the
    /// counts, committed and flushed. Run once on a store written before the
    /// counts were kept, when they do not fit, and by `check --fix-counts`.
    pub fn recount(&self) -> Result<()> {
        let scan = self.count_users()?;
        if let Some(problem) = scan.problems.first() {
            return Err(self.invalid(match scan.problems.len() {
                1 => problem.clone(),
                n => format!("{problem} (and {} more problems)", n - 1),
            }));
        }
        let mut batch = sled::Batch::default();
        batch.insert(META_USERS, &scan.users.to_be_bytes());
        batch.insert(META_NAMES, &scan.names.to_be_bytes());
        self.meta.apply_batch(batch)?;
        self.flush()?;
        log::info!(
            "recorded the user count ({} users) in the store: later starts skip the full scan",
            scan.users
        );
        Ok(())
    }

    /// Writes the first admin, the first signing key and the schema version
    /// in one transaction, then flushes. Only valid on an `Empty` store.
    pub fn initialize(&self, admin: &UserRecord, key: &KeyRecord) -> Result<()> {
        if !self.meta.is_empty() || !self.users.is_empty() {
            return Err(self.invalid("refusing to seed a store that already holds data"));
        }
        (&self.users, &self.names, &self.keys, &self.meta)
            .transaction(|(users, names, keys, meta)| {
                users.insert(admin.id.as_bytes(), encode(admin))?;
                names.insert(fold_key(&admin.username), name_entry(admin))?;
                keys.insert(key.kid.as_bytes(), encode(key))?;
                meta.insert(META_ACTIVE_KID, key.kid.as_bytes())?;
                meta.insert(META_ADMINS, &1u64.to_be_bytes())?;
                meta.insert(META_USERS, &1u64.to_be_bytes())?;
                meta.insert(META_NAMES, &1u64.to_be_bytes())?;
                meta.insert(META_SCHEMA, SCHEMA_VERSION.to_string().as_bytes())?;
                Ok(())
            })
            .map_err(from_tx)?;
        self.flush()
    }

    /// Forces everything written so far onto the disk.
    pub fn flush(&self) -> Result<()> {
        self.flusher.flush(&self.db)
    }

    /// Disk flushes performed so far (fewer than writes under concurrency).
    pub fn flush_count(&self) -> u64 {
        self.flusher.flushes.load(Ordering::Relaxed)
    }

    pub fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>> {
        self.users
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// The request path's view of a user (roles, generation, name), from
    /// memory when possible.
    pub fn user_view(&self, id: Uuid) -> Result<Option<Arc<UserView>>> {
        if let Some(v) = self.cache.user(&id) {
            return Ok(Some(v));
        }
        let epoch = self.cache.epoch();
        let Some(rec) = self.user_by_id(id)? else {
            return Ok(None);
        };
        let view = Arc::new(UserView::from(&rec));
        self.cache.fill_user(epoch, view.clone());
        Ok(Some(view))
    }

    /// GET /users' answer (the JSON array of [`Store::usernames`]), built
    /// once and kept until a user is created or deleted.
    pub fn usernames_json(&self) -> Result<Arc<[u8]>> {
        if let Some(list) = self.cache.list() {
            return Ok(list);
        }
        let epoch = self.cache.epoch();
        let list: Arc<[u8]> = encode(&self.usernames()?).into();
        self.cache.fill_list(epoch, list.clone());
        Ok(list)
    }

    /// Looks a user up by name, case-insensitively. Any string is accepted;
    /// one that is not a valid username simply finds nobody.
    pub fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>> {
        let Some(entry) = self.names.get(crate::domain::fold(name).as_bytes())? else {
            return Ok(None);
        };
        let id = id_of_entry(&entry)?;
        self.user_by_id(id)
    }

    /// Usernames as given, ordered case-insensitively; reads only the index.
    pub fn usernames(&self) -> Result<Vec<String>> {
        self.names
            .iter()
            .map(|item| {
                let (_, v) = item?;
                if v.len() < 16 {
                    return Err(StoreError::Decode("username index entry".into()));
                }
                String::from_utf8(v[16..].to_vec())
                    .map_err(|_| StoreError::Decode("username index entry".into()))
            })
            .collect()
    }

    pub fn user_count(&self) -> usize {
        read_count(&self.meta, META_USERS) as usize
    }

    /// Adds a user; fails with `UsernameTaken` if the folded name exists.
    pub fn create_user(&self, rec: &UserRecord) -> Result<()> {
        let key = fold_key(&rec.username);
        (&self.users, &self.names, &self.meta)
            .transaction(|(users, names, meta)| {
                if names.get(&key)?.is_some() {
                    return abort(StoreError::UsernameTaken);
                }
                users.insert(rec.id.as_bytes(), encode(rec))?;
                names.insert(key.as_slice(), name_entry(rec))?;
                adjust_user_count(meta, 1)?;
                if rec.is_admin() {
                    adjust_admins(meta, 1)?;
                }
                Ok(())
            })
            .map_err(from_tx)?;
        self.cache.invalidate(&rec.id);
        self.flush()
    }

    /// Replaces a user's roles; refuses to demote the last admin.
    pub fn set_roles(&self, id: Uuid, roles: Roles, now: u64) -> Result<UserRecord> {
        self.update(id, |rec| {
            rec.roles = roles.bits();
            rec.updated_at = now;
            rec.generation += 1;
        })
    }

    /// Replaces a hash computed with outdated parameters, only if the
    /// stored hash is still `old` (a concurrent password change wins). Does
    /// not revoke tokens: the password did not change. Returns whether it
    /// replaced the hash.
    pub fn upgrade_password_hash(&self, id: Uuid, old: &str, new: String) -> Result<bool> {
        let replaced = self
            .users
            .transaction(|users| {
                let Some(cur) = users.get(id.as_bytes())? else {
                    return Ok(false);
                };
                let mut rec: UserRecord = match decode(&cur) {
                    Ok(r) => r,
                    Err(e) => return abort(e),
                };
                if rec.password_hash != old {
                    return Ok(false);
                }
                rec.password_hash = new.clone();
                users.insert(id.as_bytes(), encode(&rec))?;
                Ok(true)
            })
            .map_err(from_tx)?;
        if replaced {
            self.flush()?;
        }
        Ok(replaced)
    }

    /// Revokes every token issued to the user so far.
    pub fn revoke_all_tokens(&self, id: Uuid, now: u64) -> Result<UserRecord> {
        self.update(id, |rec| {
            rec.updated_at = now;
            rec.generation += 1;
        })
    }

    /// Replaces a user's password hash.
    pub fn set_password_hash(&self, id: Uuid, hash: String, now: u64) -> Result<UserRecord> {
        self.update(id, |rec| {
            rec.password_hash = hash.clone();
            rec.updated_at = now;
            rec.generation += 1;
        })
    }

    fn update(&self, id: Uuid, change: impl Fn(&mut UserRecord)) -> Result<UserRecord> {
        let rec = (&self.users, &self.meta)
            .transaction(|(users, meta)| {
                let Some(old) = users.get(id.as_bytes())? else {
                    return abort(StoreError::NotFound);
                };
                let old: UserRecord = match decode(&old) {
                    Ok(r) => r,
                    Err(e) => return abort(e),
                };
                let mut new = old.clone();
                change(&mut new);
                match (old.is_admin(), new.is_admin()) {
                    (true, false) => adjust_admins(meta, -1)?,
                    (false, true) => adjust_admins(meta, 1)?,
                    _ => {}
                }
                users.insert(id.as_bytes(), encode(&new))?;
                Ok(new)
            })
            .map_err(from_tx)?;
        self.cache.invalidate(&id);
        self.flush()?;
        Ok(rec)
    }

    /// Deletes a user; refuses to delete the last admin.
    pub fn delete_user(&self, id: Uuid) -> Result<UserRecord> {
        let rec = (&self.users, &self.names, &self.meta)
            .transaction(|(users, names, meta)| {
                let Some(old) = users.remove(id.as_bytes())? else {
                    return abort(StoreError::NotFound);
                };
                let old: UserRecord = match decode(&old) {
                    Ok(r) => r,
                    Err(e) => return abort(e),
                };
                names.remove(fold_key(&old.username))?;
                adjust_user_count(meta, -1)?;
                if old.is_admin() {
                    adjust_admins(meta, -1)?;
                }
                Ok(old)
            })
            .map_err(from_tx)?;
        self.cache.invalidate(&id);
        self.flush()?;
        Ok(rec)
    }

    /// All signing keys, oldest first.
    pub fn keys(&self) -> Result<Vec<KeyRecord>> {
        let mut keys = self
            .keys
            .iter()
            .map(|item| decode::<KeyRecord>(&item?.1))
            .collect::<Result<Vec<_>>>()?;
        keys.sort_by_key(|k| k.created_at);
        Ok(keys)
    }

    pub fn active_kid(&self) -> Result<String> {
        let v = self
            .meta
            .get(META_ACTIVE_KID)?
            .ok_or_else(|| self.invalid("no active signing key recorded"))?;
        String::from_utf8(v.to_vec()).map_err(|_| self.invalid("unreadable active key id"))
    }
}

impl Store {
    /// Makes `new` the signing key and retires the current one, atomically.
    pub fn rotate_key(&self, new: &KeyRecord, now: u64) -> Result<()> {
        (&self.keys, &self.meta)
            .transaction(|(keys, meta)| {
                let active = meta.get(META_ACTIVE_KID)?;
                if let Some(old) = match active {
                    Some(kid) => keys.get(&kid)?,
                    None => None,
                } {
                    let mut old: KeyRecord = match decode(&old) {
                        Ok(k) => k,
                        Err(e) => return abort(e),
                    };
                    old.state = KeyState::Retired;
                    old.retired_at = Some(now);
                    keys.insert(old.kid.as_bytes(), encode(&old))?;
                }
                keys.insert(new.kid.as_bytes(), encode(new))?;
                meta.insert(META_ACTIVE_KID, new.kid.as_bytes())?;
                Ok(())
            })
            .map_err(from_tx)?;
        self.flush()
    }

    /// Deletes retired keys retired before `cutoff` (no token they signed
    /// can still be valid). Returns the deleted key ids.
    pub fn delete_retired_keys(&self, cutoff: u64) -> Result<Vec<String>> {
        let mut gone = Vec::new();
        for k in self.keys()? {
            if k.state == KeyState::Retired && k.retired_at.is_some_and(|t| t < cutoff) {
                self.keys.remove(k.kid.as_bytes())?;
                gone.push(k.kid);
            }
        }
        if !gone.is_empty() {
            self.flush()?;
        }
        Ok(gone)
    }
}

fn fold_key(username: &str) -> Vec<u8> {
    crate::domain::fold(username).into_bytes()
}

fn id_of_entry(entry: &[u8]) -> Result<Uuid> {
    entry
        .get(..16)
        .and_then(|b| Uuid::from_slice(b).ok())
        .ok_or_else(|| StoreError::Decode("username index entry".into()))
}

/// Keeps `admin_count` in step with the users, inside the same transaction,
/// so that two concurrent demotions cannot both pass the last-admin check.
fn adjust_admins(meta: &TransactionalTree, delta: i64) -> TxResult<()> {
    let current = match read_u64(meta.get(META_ADMINS)?) {
        Ok(n) => n,
        Err(e) => return abort(e),
    };
    let next = current as i64 + delta;
    if next < 1 {
        return abort(StoreError::LastAdmin);
    }
    meta.insert(META_ADMINS, &(next as u64).to_be_bytes())?;
    Ok(())
}

/// Keeps `user_count` and `name_count` in step with the users and the index,
/// inside the transaction that adds or removes one.
fn adjust_user_count(meta: &TransactionalTree, delta: i64) -> TxResult<()> {
    for key in [META_USERS, META_NAMES] {
        let current = match read_u64(meta.get(key)?) {
            Ok(n) => n,
            Err(e) => return abort(e),
        };
        let next = current.saturating_add_signed(delta);
        meta.insert(key, &next.to_be_bytes())?;
    }
    Ok(())
}

/// A count from `meta`; 0 when absent or unreadable (`check` refuses a store
/// whose counts are unreadable, so this is only for display).
fn read_count(meta: &sled::Tree, key: &[u8]) -> u64 {
    meta.get(key)
        .ok()
        .flatten()
        .and_then(|v| read_u64(Some(v)).ok())
        .unwrap_or(0)
}

/// Opens the sled directory `path` (creating it if needed) with the segment
/// size it was created with: [`SEGMENT_SIZE`] for new stores, the size in
/// its `conf` file for older ones (sled refuses any other, and names the
/// right one). No timed flush: every write path flushes. For the store
/// itself, compaction, and tests or benchmarks that look underneath it.
pub fn open_sled(path: &Path, cache_capacity_bytes: u64) -> sled::Result<sled::Db> {
    let config = |segment_size| {
        sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity_bytes)
            .flush_every_ms(None)
            .segment_size(segment_size)
    };
    match config(SEGMENT_SIZE).open() {
        // "cannot change the io buffer size across restarts. please change
        // it back to N": a store made with another segment size.
        Err(sled::Error::Unsupported(why)) if why.contains("io buffer size") => {
            let recorded = why
                .rsplit(' ')
                .next()
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(LEGACY_SEGMENT_SIZE);
            config(recorded).open()
        }
        other => other,
    }
}

/// Validates a username for callers that create records outside the API.
pub fn new_user_record(
    username: &Username,
    password_hash: String,
    roles: Roles,
    now: u64,
) -> UserRecord {
    UserRecord {
        id: Uuid::new_v4(),
        username: username.as_str().to_owned(),
        password_hash,
        roles: roles.bits(),
        created_at: now,
        updated_at: now,
        generation: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyRecord {
        KeyRecord {
            kid: "k1".into(),
            secret_hex: "00".repeat(32),
            created_at: 1,
            state: KeyState::Active,
            retired_at: None,
        }
    }

    fn user(name: &str, roles: Roles) -> UserRecord {
        new_user_record(
            &Username::parse(name).unwrap(),
            "$argon2id$x".into(),
            roles,
            1,
        )
    }

    #[test]
    fn seed_reopen_and_last_admin_rules() {
        let dir = tempfile::tempdir().unwrap();
        let admin = user("admin", Roles::ALL);
        {
            let (s, opened) = Store::open(dir.path(), 1 << 20).unwrap();
            assert_eq!(opened, Opened::Empty);
            s.initialize(&admin, &key()).unwrap();
            assert!(s.initialize(&admin, &key()).is_err());
            let bob = user("Bob", Roles::from_bits(1));
            s.create_user(&bob).unwrap();
            assert!(matches!(
                s.create_user(&user("BOB", Roles::from_bits(1))),
                Err(StoreError::UsernameTaken)
            ));
            assert!(matches!(
                s.set_roles(admin.id, Roles::from_bits(1), 2),
                Err(StoreError::LastAdmin)
            ));
            assert!(matches!(
                s.delete_user(admin.id),
                Err(StoreError::LastAdmin)
            ));
            s.set_roles(bob.id, Roles::ALL, 2).unwrap();
            s.set_roles(admin.id, Roles::from_bits(1), 2).unwrap();
            assert!(matches!(s.delete_user(bob.id), Err(StoreError::LastAdmin)));
            assert_eq!(
                s.usernames().unwrap(),
                vec!["admin".to_string(), "Bob".to_string()]
            );
            assert_eq!(s.user_by_name("bOb").unwrap().unwrap().id, bob.id);
        }
        let (s, opened) = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(opened, Opened::Ready);
        assert_eq!(s.user_count(), 2);
        assert!(matches!(
            Store::open(dir.path(), 1 << 20),
            Err(StoreError::InUse(_))
        ));
    }

    #[test]
    fn wrong_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
            s.initialize(&user("admin", Roles::ALL), &key()).unwrap();
            s.meta.insert(META_SCHEMA, b"99").unwrap();
            s.flush().unwrap();
        }
        let err = Store::open(dir.path(), 1 << 20).err().unwrap().to_string();
        assert!(err.contains("schema version 99"), "{err}");
        // `engine-auth check` still scans it, and says so.
        let s = maintenance::open_for_check(dir.path(), 1 << 20).unwrap();
        let scan = s.scan().unwrap();
        assert_eq!(
            scan.problems,
            vec!["schema version \"99\", this build reads version 1".to_string()]
        );
    }

    #[test]
    fn key_rotation_retires_and_deletes_old_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        s.initialize(&user("admin", Roles::ALL), &key()).unwrap();
        let mut k2 = key();
        k2.kid = "k2".into();
        s.rotate_key(&k2, 50).unwrap();
        assert_eq!(s.active_kid().unwrap(), "k2");
        let keys = s.keys().unwrap();
        assert_eq!(
            keys.iter().find(|k| k.kid == "k1").unwrap().retired_at,
            Some(50)
        );
        assert!(s.delete_retired_keys(50).unwrap().is_empty());
        assert_eq!(s.delete_retired_keys(51).unwrap(), vec!["k1".to_string()]);
        assert_eq!(s.keys().unwrap().len(), 1);
    }

    #[test]
    fn concurrent_writers_share_flushes_and_all_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..64).map(|i| format!("user{i}")).collect();
        {
            let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
            s.initialize(&user("admin", Roles::ALL), &key()).unwrap();
            let before = s.flush_count();
            std::thread::scope(|scope| {
                for chunk in names.chunks(8) {
                    let s = s.clone();
                    scope.spawn(move || {
                        for n in chunk {
                            s.create_user(&user(n, Roles::from_bits(1))).unwrap();
                        }
                    });
                }
            });
            assert!(s.flush_count() > before);
        }
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        for n in &names {
            assert!(s.user_by_name(n).unwrap().is_some(), "{n} lost");
        }
    }

    /// `Store::open`, retried while sled's threads still hold the lock of
    /// a handle just dropped (seen on a loaded machine).
    fn reopen(dir: &Path) -> Result<(Store, Opened)> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Store::open(dir, 1 << 20) {
                Err(StoreError::InUse(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                other => return other,
            }
        }
    }

    /// `maintenance::compact`, retried as [`reopen`] is.
    fn compact(dir: &Path) -> Result<Compacted> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match maintenance::compact(dir, 1 << 20) {
                Err(StoreError::InUse(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                other => return other,
            }
        }
    }

    /// The sled database underneath, retried as [`reopen`] is.
    fn raw(dir: &Path) -> sled::Db {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match open_sled(&Store::path_in(dir), 1 << 20) {
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                other => return other.unwrap(),
            }
        }
    }

    /// The user whose record start-up never reads (it reads the first).
    fn not_first(users: &[UserRecord]) -> Uuid {
        users.iter().map(|u| u.id).max().unwrap()
    }

    fn counts(s: &Store) -> [u64; 3] {
        [META_USERS, META_NAMES, META_ADMINS].map(|k| read_count(&s.meta, k))
    }

    /// A seeded store with `n` extra users, closed.
    fn seeded(dir: &Path, n: usize) -> Vec<UserRecord> {
        let (s, _) = reopen(dir).unwrap();
        s.initialize(&user("admin", Roles::ALL), &key()).unwrap();
        let users: Vec<_> = (0..n)
            .map(|i| user(&format!("user{i}"), Roles::from_bits(1)))
            .collect();
        for u in &users {
            s.create_user(u).unwrap();
        }
        users
    }

    #[test]
    fn counts_are_kept_in_meta_across_creates_deletes_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 5);
        let (s, _) = reopen(dir.path()).unwrap();
        assert_eq!(counts(&s), [6, 6, 1]);
        assert_eq!(s.user_count(), 6);
        s.delete_user(users[0].id).unwrap();
        // Refused changes leave the counts alone.
        assert!(s.create_user(&user("USER1", Roles::from_bits(1))).is_err());
        let admin2 = user("admin2", Roles::ALL);
        s.create_user(&admin2).unwrap();
        assert_eq!(counts(&s), [6, 6, 2]);
        s.delete_user(admin2.id).unwrap();
        assert_eq!(counts(&s), [5, 5, 1]);
        drop(s);
        let (s, _) = reopen(dir.path()).unwrap();
        assert_eq!(s.user_count(), 5);
        let scan = s.scan().unwrap();
        assert!(scan.is_consistent(), "{:?}", scan.problems);
        assert_eq!((scan.users, scan.names, scan.admins), (5, 5, 1));
        assert_eq!(scan.recorded, [Some(5), Some(5), Some(1)]);
    }

    #[test]
    fn a_store_without_counts_gets_them_at_its_first_open() {
        let dir = tempfile::tempdir().unwrap();
        seeded(dir.path(), 3);
        {
            // As the previous build left it: no user or index count.
            let db = raw(dir.path());
            let meta = db.open_tree("meta").unwrap();
            meta.remove(META_USERS).unwrap();
            meta.remove(META_NAMES).unwrap();
            db.flush().unwrap();
        }
        let (s, opened) = reopen(dir.path()).unwrap();
        assert_eq!(opened, Opened::Ready);
        assert_eq!(counts(&s), [4, 4, 1]);
        drop(s);
        // Flushed: still there on the next open, which does not rescan.
        let db = raw(dir.path());
        let meta = db.open_tree("meta").unwrap();
        assert_eq!(read_count(&meta, META_USERS), 4);
        assert_eq!(read_count(&meta, META_NAMES), 4);
    }

    #[test]
    fn a_store_without_counts_and_a_damaged_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 3);
        {
            let db = raw(dir.path());
            let meta = db.open_tree("meta").unwrap();
            meta.remove(META_USERS).unwrap();
            meta.remove(META_NAMES).unwrap();
            db.open_tree("users")
                .unwrap()
                .insert(users[1].id.as_bytes(), &b"\x00garbage"[..])
                .unwrap();
            db.flush().unwrap();
        }
        let err = reopen(dir.path()).err().unwrap().to_string();
        assert!(err.contains("user record"), "{err}");
        assert!(err.contains("Refusing to start"), "{err}");
    }

    #[test]
    fn counts_that_do_not_fit_are_recounted_and_damage_is_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        seeded(dir.path(), 3);
        let tamper = |f: &dyn Fn(&sled::Tree)| {
            let db = raw(dir.path());
            f(&db.open_tree("meta").unwrap());
            db.flush().unwrap();
        };
        let open_err = || reopen(dir.path()).err().unwrap().to_string();
        // Counts that are unreadable or do not fit one another (as after an
        // earlier version, which keeps no user count, ran on the store) are
        // counted again.
        let stale: [&dyn Fn(&sled::Tree); 3] = [
            &|meta| {
                meta.insert(META_NAMES, &[1u8, 2][..]).unwrap();
            },
            &|meta| {
                meta.insert(META_USERS, &2u64.to_be_bytes()).unwrap();
            },
            &|meta| {
                meta.insert(META_USERS, &0u64.to_be_bytes()).unwrap();
                meta.insert(META_NAMES, &0u64.to_be_bytes()).unwrap();
            },
        ];
        for f in stale {
            tamper(f);
            let (s, opened) = reopen(dir.path()).unwrap();
            assert_eq!(opened, Opened::Ready);
            assert_eq!(counts(&s), [4, 4, 1]);
        }
        // A wrong admin count is damage, not staleness (every version keeps
        // it): refused when start-up can tell, i.e. when it does not fit...
        tamper(&|meta| {
            meta.insert(META_ADMINS, &7u64.to_be_bytes()).unwrap();
        });
        assert!(open_err().contains("admin count is 7"), "{}", open_err());
        // ...and otherwise found by the full scan (`engine-auth check`).
        tamper(&|meta| {
            meta.insert(META_ADMINS, &3u64.to_be_bytes()).unwrap();
        });
        {
            let (s, _) = reopen(dir.path()).unwrap();
            let scan = s.scan().unwrap();
            assert_eq!(
                scan.problems,
                vec!["the recorded admin count is 3, the store holds 1".to_string()]
            );
        }
        // The first user record (in key order) is not a user record.
        tamper(&|meta| {
            meta.insert(META_ADMINS, &1u64.to_be_bytes()).unwrap();
        });
        let first = {
            let (s, _) = reopen(dir.path()).unwrap();
            s.users.first().unwrap().unwrap().0
        };
        {
            let db = raw(dir.path());
            db.open_tree("users")
                .unwrap()
                .insert(&first, &b"{}"[..])
                .unwrap();
            db.flush().unwrap();
        }
        assert!(open_err().contains("user record"), "{}", open_err());
    }

    #[test]
    fn the_full_scan_finds_what_start_up_does_not_look_at() {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 20);
        // A record in the middle of the tree, damaged; and a stale count
        // that is still plausible.
        let mut ids: Vec<_> = users.iter().map(|u| u.id).collect();
        ids.sort();
        let victim = ids[ids.len() / 2];
        {
            let db = raw(dir.path());
            db.open_tree("users")
                .unwrap()
                .insert(victim.as_bytes(), &b"\xffnot json"[..])
                .unwrap();
            let meta = db.open_tree("meta").unwrap();
            meta.insert(META_USERS, &20u64.to_be_bytes()).unwrap();
            meta.insert(META_NAMES, &20u64.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let (s, opened) = reopen(dir.path()).unwrap();
        assert_eq!(opened, Opened::Ready);
        let scan = s.scan().unwrap();
        assert!(!scan.is_consistent());
        assert_eq!(scan.users, 21);
        let all = scan.problems.join("\n");
        assert!(all.contains("user record"), "{all}");
        assert!(
            all.contains("the recorded user count is 20, the store holds 21"),
            "{all}"
        );
    }

    #[test]
    fn fix_counts_rewrites_counts_that_are_all_that_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 4);
        {
            let db = raw(dir.path());
            let meta = db.open_tree("meta").unwrap();
            meta.insert(META_USERS, &3u64.to_be_bytes()).unwrap();
            meta.insert(META_NAMES, &3u64.to_be_bytes()).unwrap();
            meta.insert(META_ADMINS, &2u64.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        {
            let (s, _) = reopen(dir.path()).unwrap();
            assert_eq!(s.scan().unwrap().problem_count, 3);
            let scan = s.fix_counts().unwrap();
            assert!(scan.is_consistent(), "{:?}", scan.problems);
            assert_eq!(counts(&s), [5, 5, 1]);
        }
        // With a damaged record it changes nothing.
        {
            let db = raw(dir.path());
            db.open_tree("users")
                .unwrap()
                .insert(not_first(&users).as_bytes(), &b"junk"[..])
                .unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert(META_ADMINS, &2u64.to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let (s, _) = reopen(dir.path()).unwrap();
        let err = s.fix_counts().err().unwrap().to_string();
        assert!(err.contains("user record"), "{err}");
        assert_eq!(counts(&s), [5, 5, 2]);
    }

    #[test]
    fn stores_with_sleds_default_segments_still_open_and_compact_moves_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = Store::path_in(dir.path());
        {
            // What the previous build made: sled's default segment size.
            let db = sled::Config::new()
                .path(&path)
                .flush_every_ms(None)
                .open()
                .unwrap();
            drop(db);
        }
        let conf = || std::fs::read(path.join("conf")).unwrap();
        let segment = |c: Vec<u8>| {
            String::from_utf8_lossy(&c)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(segment(conf()), "segment_size: 524288");
        let users = {
            let (s, opened) = reopen(dir.path()).unwrap();
            assert_eq!(opened, Opened::Empty);
            s.initialize(&user("admin", Roles::ALL), &key()).unwrap();
            let users: Vec<_> = (0..50)
                .map(|i| user(&format!("u{i}"), Roles::from_bits(1)))
                .collect();
            for u in &users {
                s.create_user(u).unwrap();
            }
            for u in &users[..10] {
                s.set_roles(u.id, Roles::from_bits(3), 5).unwrap();
            }
            let fam = FamilyRecord {
                user_id: users[0].id,
                created_at: 0,
                expires_at: 1000,
                last_exp: 100,
                revoked_at: None,
                live: Vec::new(),
                spent: Vec::new(),
            };
            s.start_session(Uuid::from_u128(7), &[7; 32], &fam, 100)
                .unwrap();
            users
        };
        assert_eq!(segment(conf()), "segment_size: 524288");
        let done = compact(dir.path()).unwrap();
        assert_eq!(done.users, 51);
        assert!(done.entries > 100, "{done:?}");
        assert_eq!(segment(conf()), format!("segment_size: {SEGMENT_SIZE}"));
        assert!(!maintenance::copy_path(dir.path()).exists());
        let (s, opened) = reopen(dir.path()).unwrap();
        assert_eq!(opened, Opened::Ready);
        assert_eq!(counts(&s), [51, 51, 1]);
        for u in &users {
            let got = s.user_by_name(&u.username).unwrap().unwrap();
            assert_eq!(got.id, u.id);
        }
        assert_eq!(s.user_by_id(users[3].id).unwrap().unwrap().roles, 3);
        let fam = s.family(Uuid::from_u128(7)).unwrap().unwrap();
        assert_eq!((fam.user_id, fam.live.len()), (users[0].id, 1));
        assert_eq!(s.active_kid().unwrap(), "k1");
        assert!(s.scan().unwrap().is_consistent());
        // Compacting needs the store to itself.
        assert!(matches!(
            maintenance::compact(dir.path(), 1 << 20),
            Err(StoreError::InUse(_))
        ));
    }

    #[test]
    fn compact_if_over_rewrites_only_a_store_over_the_ratio() {
        use maintenance::{COMPACT_SLACK_BYTES as SLACK, Outcome, compact_if_over, footprint};
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 20);
        // Fresh and small: sled's own files are far over 3x its few KiB of
        // data, but within the slack.
        match compact_if_over(dir.path(), 1 << 20, 3.0, SLACK, None).unwrap() {
            Outcome::NotNeeded(f) => assert!(f.ratio() > 3.0 && !f.exceeds(3.0, SLACK), "{f:?}"),
            other => panic!("a fresh store was compacted: {other:?}"),
        }
        // Durable overwrites leave sled's log larger than the data. (Making
        // a store big enough to pass the 1 MiB slack takes ~20k fsyncs: the
        // slack is 0 for this part.)
        let before = {
            let (s, _) = reopen(dir.path()).unwrap();
            for round in 0..50u64 {
                for u in &users {
                    s.set_roles(u.id, Roles::from_bits(1 + (round % 2) as u8), round)
                        .unwrap();
                }
            }
            footprint(&s).unwrap()
        };
        assert!(
            before.exceeds(3.0, 0),
            "not bloated enough to test: {before:?}"
        );
        // A ratio it is under: left alone.
        let high = before.ratio() * 2.0;
        assert!(matches!(
            compact_if_over(dir.path(), 1 << 20, high, 0, None).unwrap(),
            Outcome::NotNeeded(_)
        ));
        // Out of time (a deadline already past): abandoned before the swap,
        // the copy removed, the store as it was.
        let now = Some(std::time::Instant::now());
        match compact_if_over(dir.path(), 1 << 20, 3.0, 0, now).unwrap() {
            Outcome::OutOfTime(f) => assert_eq!(f.live_bytes, before.live_bytes),
            other => panic!("a compaction past its deadline went on: {other:?}"),
        }
        assert!(!maintenance::copy_path(dir.path()).exists());
        {
            let (s, _) = reopen(dir.path()).unwrap();
            assert!(footprint(&s).unwrap().exceeds(3.0, 0), "it was compacted");
        }
        let done = match compact_if_over(dir.path(), 1 << 20, 3.0, 0, None).unwrap() {
            Outcome::Compacted(done) => done,
            other => panic!("a bloated store was left: {other:?}"),
        };
        assert_eq!(done.users, 21);
        assert!(done.bytes_after < before.disk_bytes, "{done:?} {before:?}");
        let (s, _) = reopen(dir.path()).unwrap();
        assert_eq!(s.user_by_id(users[7].id).unwrap().unwrap().roles, 2);
        assert!(s.scan().unwrap().is_consistent());
    }

    #[test]
    fn a_copy_left_by_an_interrupted_compaction_is_dropped_and_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 5);
        let copy = maintenance::copy_path(dir.path());
        // Killed half-way through the copy: a sled directory with part of it.
        {
            let db = open_sled(&copy, 1 << 20).unwrap();
            db.open_tree("users")
                .unwrap()
                .insert(users[0].id.as_bytes(), &b"partial"[..])
                .unwrap();
            db.flush().unwrap();
        }
        std::fs::write(copy.join("stray"), b"x").unwrap();
        let (s, opened) = reopen(dir.path()).unwrap();
        assert_eq!(opened, Opened::Ready);
        assert!(!copy.exists(), "the abandoned copy was not removed");
        assert_eq!(s.user_count(), 6);
        assert!(s.scan().unwrap().is_consistent());
        drop(s);
        // And compaction works afterwards.
        compact(dir.path()).unwrap();
        let (s, _) = reopen(dir.path()).unwrap();
        assert_eq!(s.user_count(), 6);
    }

    #[test]
    fn a_compacted_store_keeps_the_owner_and_modes_of_the_original() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // As a systemd DynamicUser daemon (UMask=0077) left it, compacted by
        // root (CI runs as root). Only root may hand files to another user:
        // run by anyone else, the files keep their owner's ids and the test
        // checks the modes and that the ids are kept.
        let me = std::fs::metadata("/proc/self").unwrap();
        let (uid, gid) = if me.uid() == 0 {
            (4242, 4343)
        } else {
            (me.uid(), me.gid())
        };
        let dir = tempfile::tempdir().unwrap();
        seeded(dir.path(), 3);
        let live = Store::path_in(dir.path());
        let all = |root: &Path| {
            let mut out = vec![root.to_path_buf()];
            let mut i = 0;
            while i < out.len() {
                if out[i].is_dir() {
                    let kids: Vec<_> = std::fs::read_dir(&out[i])
                        .unwrap()
                        .map(|e| e.unwrap().path())
                        .collect();
                    out.extend(kids);
                }
                i += 1;
            }
            out
        };
        for p in all(&live) {
            let mode = if p.is_dir() { 0o700 } else { 0o600 };
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
        compact(dir.path()).unwrap();
        for p in all(&live) {
            let m = std::fs::metadata(&p).unwrap();
            assert_eq!((m.uid(), m.gid()), (uid, gid), "{}", p.display());
            let want = if p.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(m.mode() & 0o7777, want, "{}", p.display());
        }
    }

    #[test]
    fn offline_open_never_creates() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Store::open_existing(dir.path(), 1 << 20),
            Err(StoreError::Missing(_))
        ));
        assert!(!Store::path_in(dir.path()).exists());
    }
}
