//! The user database. This is the only module that touches sled: users, the
//! case-insensitive username index, signing keys and metadata (schema
//! version, admin count, active key id) all live here.
//!
//! Every write is one sled transaction across the trees it touches and is
//! flushed to disk before the call returns, so a caller that answers 200
//! after a write never acknowledges something a SIGKILL could take back.
//! sled's own timed flush is switched off; we do not rely on it.

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
mod sessions;
pub use cache::UserView;
pub use sessions::{Exchange, FamilyRecord, RefreshRecord, SessionToken};

/// Bumped whenever the on-disk record layout changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

const META_SCHEMA: &[u8] = b"schema_version";
const META_ADMINS: &[u8] = b"admin_count";
const META_ACTIVE_KID: &[u8] = b"active_kid";

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
    pub fn open(data_dir: &Path, cache_capacity_bytes: u64) -> Result<(Store, Opened)> {
        let path = Self::path_in(data_dir);
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(cache_capacity_bytes)
            .flush_every_ms(None)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(ref io) if io.to_string().contains("could not acquire lock") => {
                    StoreError::InUse(path.clone())
                }
                other => StoreError::Invalid {
                    path: path.clone(),
                    why: format!("sled cannot open it ({other})"),
                },
            })?;
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
            path: path.clone(),
            db,
            flusher: Arc::new(GroupCommit {
                state: Mutex::new(CommitState::default()),
                done: Condvar::new(),
                flushes: AtomicU64::new(0),
            }),
            cache: Arc::default(),
        };
        let opened = store.check()?;
        Ok((store, opened))
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
    /// version, readable users, a consistent index and a readable active key.
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
        let mut admins = 0u64;
        let mut count = 0usize;
        for item in self.users.iter() {
            let (_, v) = item?;
            let rec: UserRecord =
                decode(&v).map_err(|e| self.invalid(format!("user record: {e}")))?;
            count += 1;
            if rec.is_admin() {
                admins += 1;
            }
        }
        if count != self.names.len() {
            return Err(self.invalid("the username index does not match the users"));
        }
        if admins == 0 || read_u64(self.meta.get(META_ADMINS)?)? != admins {
            return Err(self.invalid("the admin count does not match the users"));
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
        self.users.len()
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
