//! A stopped daemon's store, opened by the test: through the store's own
//! API, or underneath it with the engine's trees (to damage records the API
//! would never write). Every function waits briefly for the store's lock,
//! which a process that just exited may still hold a moment.

use engine_auth::store::{
    DATA_FILE, Db, KeyRecord, KeyState, Opened, Store, StoreError, maintenance,
};
use std::path::{Path, PathBuf};

pub use engine_auth::store::DATA_FILE as DATA_FILE_NAME;

use super::wait_until;

const CACHE: u64 = 1 << 20;

/// Opens the store in `data_dir` once whoever held it has let go; asserts
/// it opens as a ready (already seeded, consistent) store.
pub fn open_released(data_dir: &Path) -> Store {
    let mut store = None;
    wait_until(
        10,
        "the store's lock to be released",
        || match Store::open(data_dir, CACHE) {
            Ok((s, opened)) => {
                assert_eq!(opened, Opened::Ready);
                store = Some(s);
                true
            }
            Err(StoreError::InUse(_)) => false,
            Err(e) => panic!("the store does not open: {e}"),
        },
    );
    store.expect("opened")
}

/// Writes an active signing key whose secret is not a 256-bit hex string.
pub fn write_malformed_active_key(data_dir: &Path, kid: &str) {
    let now = engine_auth::clock::unix_now();
    let bad = KeyRecord {
        kid: kid.into(),
        secret_hex: "not a 256-bit hex secret".into(),
        alg: Default::default(),
        created_at: now,
        state: KeyState::Active,
        retired_at: None,
    };
    open_released(data_dir)
        .rotate_key(&bad, now)
        .expect("write the key record");
}

/// Every stored key's secret (hex) in a stopped daemon's store.
pub fn key_secrets(data_dir: &Path) -> Vec<String> {
    open_released(data_dir)
        .keys()
        .expect("keys")
        .into_iter()
        .map(|k| k.secret_hex)
        .collect()
}

/// (active kid, number of keys, number of users).
pub fn key_and_user_counts(data_dir: &Path) -> (String, usize, usize) {
    let store = open_released(data_dir);
    (
        store.active_kid().expect("active kid"),
        store.keys().expect("keys").len(),
        store.user_count(),
    )
}

/// The key of the record of the user called `name` in the `users` tree.
pub fn user_record_key(data_dir: &Path, name: &str) -> Vec<u8> {
    open_released(data_dir)
        .user_by_name(name)
        .expect("read")
        .unwrap_or_else(|| panic!("no user {name:?}"))
        .id
        .as_bytes()
        .to_vec()
}

/// `DATA_DIR/store`, the live store's directory.
pub fn store_path(data_dir: &Path) -> PathBuf {
    Store::path_in(data_dir)
}

/// Where `compact` builds its copy.
pub fn compact_copy_path(data_dir: &Path) -> PathBuf {
    maintenance::copy_path(data_dir)
}

/// Replaces the (stopped) store of `data_dir` by a sled store holding the
/// same records: what a build before the move to redb left, for the next
/// open to migrate. Durable when it returns.
pub fn downgrade_to_sled(data_dir: &Path) {
    let trees = Raw::open(data_dir).0.records().expect("every record");
    std::fs::remove_dir_all(store_path(data_dir)).expect("remove the redb store");
    engine_auth::store::write_sled_store(data_dir, &trees).expect("write the sled store");
}

/// The store's trees, under the store's API.
pub struct Raw(Db);

impl Raw {
    /// The live store of `data_dir`.
    pub fn open(data_dir: &Path) -> Raw {
        Raw::open_at(&store_path(data_dir))
    }

    /// The store directory `path` (e.g. [`compact_copy_path`]), created
    /// if missing.
    pub fn open_at(path: &Path) -> Raw {
        std::fs::create_dir_all(path).expect("create the store directory");
        let mut db = None;
        wait_until(10, "the store's lock to be released", || {
            match Db::open(&path.join(DATA_FILE), CACHE) {
                Ok(d) => {
                    db = Some(d);
                    true
                }
                Err(_) => false,
            }
        });
        Raw(db.expect("opened"))
    }

    /// Writes one record and flushes.
    pub fn put(&self, tree: &str, key: &[u8], value: &[u8]) {
        let t = self.0.open_tree(tree).expect("tree");
        t.insert(key, value).expect("insert");
        self.0.flush().expect("flush");
    }

    pub fn get(&self, tree: &str, key: &[u8]) -> Option<Vec<u8>> {
        let t = self.0.open_tree(tree).expect("tree");
        t.get(key).expect("get")
    }

    pub fn len(&self, tree: &str) -> usize {
        let n = self.0.open_tree(tree).expect("tree").len().expect("len");
        usize::try_from(n).expect("a count")
    }
}
