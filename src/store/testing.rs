//! What the store's unit tests share: sample records, a seeded store, and
//! opening with retries while another handle lets go of the store's lock.

use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::kv::Db;
use super::users::read_count;
use super::{
    Compacted, KeyRecord, KeyState, META_ADMINS, META_NAMES, META_USERS, Opened, Result, Store,
    StoreError, UserRecord, maintenance, new_user_record,
};
use crate::domain::{Roles, Username};

pub fn key() -> KeyRecord {
    KeyRecord {
        kid: "k1".into(),
        secret_hex: "00".repeat(32),
        alg: Default::default(),
        created_at: 1,
        state: KeyState::Active,
        retired_at: None,
    }
}

pub fn user(name: &str, roles: Roles) -> UserRecord {
    new_user_record(
        &Username::parse(name).unwrap(),
        "$argon2id$x".into(),
        roles,
        1,
    )
}

/// Runs `f` again while it fails with "in use", for up to 10 s: a store
/// just dropped by another thread may still be locked.
pub fn retried<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match f() {
            Err(StoreError::InUse(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => return other,
        }
    }
}

/// `Store::open`, retried.
pub fn reopen(dir: &Path) -> Result<(Store, Opened)> {
    retried(|| Store::open(dir, 1 << 20))
}

/// `maintenance::compact`, retried.
pub fn compact(dir: &Path) -> Result<Compacted> {
    retried(|| maintenance::compact(dir, 1 << 20))
}

/// The database underneath.
pub fn raw(dir: &Path) -> Db {
    retried(|| maintenance::reopen(&Store::path_in(dir), 1 << 20)).unwrap()
}

/// A sled store (what builds before redb wrote) in `dir` holding the
/// records of a seeded store with `n` extra users.
pub fn sled_store(dir: &Path, n: usize) -> Vec<UserRecord> {
    let (_seeded, trees, users) = dumped(n);
    super::migrate::write_sled_store(dir, &trees).unwrap();
    users
}

/// Every record of a seeded store with `n` extra users, tree by tree, and
/// the users; the store stays in the returned directory.
pub fn dumped(n: usize) -> (tempfile::TempDir, super::kv::Records, Vec<UserRecord>) {
    let src = tempfile::tempdir().unwrap();
    let users = seeded(src.path(), n);
    let trees = records(src.path());
    (src, trees, users)
}

/// Every record of the (closed) store in `dir`, tree by tree.
pub fn records(dir: &Path) -> super::kv::Records {
    raw(dir).records().unwrap()
}

/// The user whose record start-up never reads (it reads the first).
pub fn not_first(users: &[UserRecord]) -> Uuid {
    users.iter().map(|u| u.id).max().unwrap()
}

/// The recorded users, index entries and admins.
pub fn counts(s: &Store) -> [u64; 3] {
    [META_USERS, META_NAMES, META_ADMINS].map(|k| read_count(&s.meta, k))
}

/// A seeded store with `n` extra users, closed.
pub fn seeded(dir: &Path, n: usize) -> Vec<UserRecord> {
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
