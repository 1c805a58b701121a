//! Opening the store: the engine's file, the cheap start-up checks that
//! refuse a damaged store without reading every record, and the one-time
//! seed of an empty store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::codec::{decode, encode, from_tx, read_u64};
use super::commit::GroupCommit;
use super::files;
use super::kv::{DATA_FILE, Db, Transactional};
use super::users::{fold_key, id_of_entry, name_entry};
use super::{
    KeyRecord, KeyState, META_ACTIVE_KID, META_ADMINS, META_NAMES, META_SCHEMA, META_SESSION_LISTS,
    META_USERS, Result, Store, StoreError, UserRecord, maintenance, migrate,
};

/// Bumped whenever the on-disk record layout changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

/// What [`Store::open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// Nothing stored yet: the caller must [`Store::initialize`] it.
    Empty,
    /// An initialised store that passed its checks.
    Ready,
}

/// A full disk (or quota), not a damaged store: opening needs to write.
fn no_space(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{QuotaExceeded, StorageFull};
    matches!(e.kind(), StorageFull | QuotaExceeded)
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir` and checks it.
    /// Also finishes what an interrupted `engine-auth compact` left (see
    /// [`maintenance::compact`]) and, once, records the counts in a store
    /// written before they were kept.
    pub fn open(data_dir: &Path, cache_capacity_bytes: u64) -> Result<(Store, Opened)> {
        let store = Self::open_unchecked(data_dir, cache_capacity_bytes)?;
        // redb opens a store without writing, so a full disk would only
        // show at the first write: refused here, as `NoSpace`.
        files::require_space(&store.path)?;
        let opened = store.check()?;
        if opened == Opened::Ready {
            migrate::forget_kept(data_dir);
        }
        // Only with the lock held: no compaction can be running then. Not
        // fatal: the copy is garbage whatever it holds, and `compact`
        // removes it too.
        if let Err(e) = maintenance::remove_abandoned_copy(data_dir) {
            log::warn!("{:#}", anyhow::Error::new(e));
        }
        Ok((store, opened))
    }

    /// The store with its lock held, without any check: for
    /// [`Store::open`], and for `engine-auth check`, which reports
    /// everything wrong with a store that start-up would refuse.
    pub fn open_unchecked(data_dir: &Path, cache_capacity_bytes: u64) -> Result<Store> {
        let path = Self::path_in(data_dir);
        // A store written by sled, the engine before redb, moves to redb
        // once (verified, kill-safe: see `migrate`).
        migrate::finish_or_migrate(data_dir, cache_capacity_bytes)?;
        std::fs::create_dir_all(&path).map_err(|e| files::io_error(&path, "cannot create", e))?;
        let db = Db::open(&path.join(DATA_FILE), cache_capacity_bytes)
            .map_err(|e| open_error(&path, e))?;
        // Once per open: the store directory and its file are durable
        // entries of the data dir, so a power cut after the first start
        // cannot leave a data dir without its store.
        files::sync_tree(&path)?;
        files::sync_dir(data_dir)?;
        Self::from_db(path.clone(), db)
    }

    /// The store over an open database, named `path` in errors (a copy
    /// being checked is named after the store it will replace).
    pub(super) fn from_db(path: PathBuf, db: Db) -> Result<Store> {
        let invalid = |e: redb::Error| StoreError::Invalid {
            path: path.clone(),
            why: e.to_string(),
        };
        let store = Store {
            users: db.open_tree("users").map_err(invalid)?,
            names: db.open_tree("usernames").map_err(invalid)?,
            keys: db.open_tree("keys").map_err(invalid)?,
            meta: db.open_tree("meta").map_err(invalid)?,
            refresh: db.open_tree("refresh_tokens").map_err(invalid)?,
            sessions: db.open_tree("sessions").map_err(invalid)?,
            user_sessions: db.open_tree("user_sessions").map_err(invalid)?,
            api_keys: db.open_tree("api_keys").map_err(invalid)?,
            api_key_ids: db.open_tree("api_key_ids").map_err(invalid)?,
            user_api_keys: db.open_tree("user_api_keys").map_err(invalid)?,
            audit: db.open_tree("audit").map_err(invalid)?,
            path,
            db,
            flusher: Arc::new(GroupCommit::default()),
            pending_audit: Arc::default(),
            cache: Arc::default(),
            health: Arc::default(),
            export_gate: Arc::default(),
        };
        Ok(store)
    }

    /// Opens a store that must already exist (offline CLI commands never
    /// create one).
    pub fn open_existing(data_dir: &Path, cache_capacity_bytes: u64) -> Result<Store> {
        let path = Self::path_in(data_dir);
        if !path.join(DATA_FILE).exists() && !migrate::is_sled_store(&path) {
            return Err(StoreError::Missing(data_dir.to_path_buf()));
        }
        match Self::open(data_dir, cache_capacity_bytes)? {
            (store, Opened::Ready) => Ok(store),
            (_, Opened::Empty) => Err(StoreError::Missing(data_dir.to_path_buf())),
        }
    }

    /// An empty store (first start, or a first start killed before its
    /// seed was committed) is `Empty`; anything else must carry our schema
    /// version, plausible counts, a readable first user, an index entry
    /// that finds its user, and a readable active key. Reads a few
    /// keys, never every record: start-up time and memory do not grow with
    /// the users. The full scan is [`Store::scan`] (`engine-auth check`); a
    /// store without counts gets it once here, and is refused if it fails.
    pub(super) fn check(&self) -> Result<Opened> {
        let version = self.meta.get(META_SCHEMA)?;
        let Some(version) = version else {
            if self.users.is_empty()?
                && self.names.is_empty()?
                && self.keys.is_empty()?
                && self.meta.is_empty()?
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
        if self.meta.get(META_SESSION_LISTS)?.is_none() {
            self.list_sessions()?;
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

    /// A first start: the store is built and seeded in `store.new` (whatever
    /// an earlier, interrupted first start left there is removed first),
    /// made durable, and only then renamed to `store`, so a power cut
    /// during a first start leaves either no store, and the next start is a
    /// first start again, or a seeded one: never a half-made store
    /// (`powercut`'s cuts during a first start).
    pub fn create_seeded(
        data_dir: &Path,
        cache_capacity_bytes: u64,
        admin: &UserRecord,
        key: &KeyRecord,
    ) -> Result<()> {
        let live = Self::path_in(data_dir);
        let staging = data_dir.join("store.new");
        if std::fs::symlink_metadata(&staging).is_ok() {
            std::fs::remove_dir_all(&staging)
                .map_err(|e| files::io_error(&staging, "cannot remove", e))?;
        }
        {
            let db = create_db(&staging, cache_capacity_bytes)?;
            let store = Self::from_db(staging.clone(), db)?;
            store.initialize(admin, key)?;
        }
        files::sync_tree(&staging)?;
        std::fs::rename(&staging, &live)
            .map_err(|e| files::io_error(&live, "cannot rename the new store to", e))?;
        files::sync_dir(data_dir)
    }

    /// Writes the first admin, the first signing key and the schema version
    /// in one transaction, then flushes. Only valid on an `Empty` store.
    pub fn initialize(&self, admin: &UserRecord, key: &KeyRecord) -> Result<()> {
        self.write(|| {
            if !self.meta.is_empty()? || !self.users.is_empty()? {
                return Err(self.invalid("refusing to seed a store that already holds data"));
            }
            (&self.users, &self.names, &self.keys, &self.meta)
                .transaction(|(users, names, keys, meta)| {
                    users.insert(admin.id.as_bytes(), encode(admin))?;
                    names.insert(fold_key(&admin.username), name_entry(admin))?;
                    keys.insert(key.kid.as_bytes(), encode(key))?;
                    meta.insert(META_ACTIVE_KID, key.kid.as_bytes())?;
                    meta.insert(META_ADMINS, 1u64.to_be_bytes())?;
                    meta.insert(META_USERS, 1u64.to_be_bytes())?;
                    meta.insert(META_NAMES, 1u64.to_be_bytes())?;
                    meta.insert(META_SESSION_LISTS, b"1")?;
                    meta.insert(META_SCHEMA, SCHEMA_VERSION.to_string().as_bytes())?;
                    Ok(())
                })
                .map_err(from_tx)?;
            self.flush()
        })
    }
}

/// Creates the store directory `dir` (which must not exist) and its empty
/// database: for a first start, compaction's copy, a restore and the
/// migration from sled.
pub(super) fn create_db(dir: &Path, cache_capacity_bytes: u64) -> Result<Db> {
    std::fs::create_dir(dir).map_err(|e| match e.kind() {
        _ if no_space(&e) => StoreError::NoSpace(dir.to_path_buf()),
        _ => files::io_error(dir, "cannot create", e),
    })?;
    Db::open(&dir.join(DATA_FILE), cache_capacity_bytes).map_err(|e| open_error(dir, e))
}

/// What opening the database in the store directory `path` failed with, in
/// the store's words.
pub(super) fn open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.to_path_buf()),
        redb::DatabaseError::Storage(redb::StorageError::Io(ref io)) if no_space(io) => {
            StoreError::NoSpace(path.to_path_buf())
        }
        other => StoreError::Invalid {
            path: path.to_path_buf(),
            why: format!("its database cannot be opened ({other})"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{counts, key, raw, reopen, seeded, user};
    use super::*;
    use crate::domain::Roles;

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
    fn counts_that_do_not_fit_are_recounted_and_damage_is_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        seeded(dir.path(), 3);
        let tamper = |f: &dyn Fn(&super::super::kv::Tree)| {
            let db = raw(dir.path());
            f(&db.open_tree("meta").unwrap());
            db.flush().unwrap();
        };
        let open_err = || reopen(dir.path()).err().unwrap().to_string();
        // Counts that are unreadable or do not fit one another (as after an
        // earlier version, which keeps no user count, ran on the store) are
        // counted again.
        let stale: [&dyn Fn(&super::super::kv::Tree); 3] = [
            &|meta| {
                meta.insert(META_NAMES, &[1u8, 2][..]).unwrap();
            },
            &|meta| {
                meta.insert(META_USERS, 2u64.to_be_bytes()).unwrap();
            },
            &|meta| {
                meta.insert(META_USERS, 0u64.to_be_bytes()).unwrap();
                meta.insert(META_NAMES, 0u64.to_be_bytes()).unwrap();
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
            meta.insert(META_ADMINS, 7u64.to_be_bytes()).unwrap();
        });
        assert!(open_err().contains("admin count is 7"), "{}", open_err());
        // ...and otherwise found by the full scan (`engine-auth check`).
        tamper(&|meta| {
            meta.insert(META_ADMINS, 3u64.to_be_bytes()).unwrap();
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
            meta.insert(META_ADMINS, 1u64.to_be_bytes()).unwrap();
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
    fn offline_open_never_creates() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Store::open_existing(dir.path(), 1 << 20),
            Err(StoreError::Missing(_))
        ));
        assert!(!Store::path_in(dir.path()).exists());
    }
}
