//! The one-time move of a store written by sled 0.34 (every build before
//! the store moved to redb) into redb, at the first open by a build that
//! reads redb.
//!
//! # Why it cannot lose anything
//!
//! `<data-dir>/store` holds a sled store (its `db` file, no [`DATA_FILE`])
//! until the very step that replaces it, and a complete, verified redb
//! store after it:
//!
//! 1. sled's store is opened as before (its lock held throughout, so a
//!    second process waits outside; a snapshot sled never finished is
//!    dropped first, as every sled open did), and every tree is copied,
//!    record for record, into a new store built in `store.migrating` (what
//!    an interrupted migration left there is deleted first: nobody needs
//!    it while `store` is still sled's).
//! 2. The copy is made durable, closed, opened again from disk and
//!    compared with sled's: the same trees, each with the same keys and
//!    values in the same order. It gets the original's owner and modes,
//!    every file and directory in it is fsynced, and so is the data dir.
//! 3. `renameat2(RENAME_EXCHANGE)` swaps the two directories in one step
//!    and the data dir is fsynced: a cut before shows sled's store (and the
//!    migration runs again), a cut after shows the verified copy.
//! 4. The sled store, now at `store.migrating`, is renamed to `store.sled`
//!    ([`KEPT`]) and kept until the migrated store has started once: the
//!    next open after that deletes it. An open that finds `store` migrated
//!    and `store.migrating` still there (a cut between 3 and 4) finishes
//!    step 4.
//!
//! Filesystems without `RENAME_EXCHANGE` refuse, leaving sled's store as it
//! was, as `compact` does. The power-cut harness cuts during migrations
//! (`powercut::maintenance`).

use std::path::{Path, PathBuf};

use super::files::{adopt_owner_and_mode, io_error, remove_torn_snapshots, sync_dir, sync_tree};
use super::kv::{Batch, DATA_FILE};
use super::maintenance::{exchange, reopen};
use super::open::create_db;
use super::{Result, Store, StoreError};

/// Where the copy is built (and, for a moment after the swap, where sled's
/// store is).
const STAGING: &str = "store.migrating";
/// Where sled's store is kept until the migrated one has started once.
pub const KEPT: &str = "store.sled";
/// Written into [`KEPT`] by the first open of the migrated store; the open
/// after that deletes the kept store.
const STARTED: &str = "engine-auth-migrated-store-started";
/// sled's default tree, which engine-auth never wrote.
const SLED_DEFAULT_TREE: &[u8] = b"__sled__default";
/// sled 0.34's default segment size: every store made before engine-auth
/// set its own has it.
const LEGACY_SEGMENT_SIZE: usize = 512 * 1024;
/// The segment size engine-auth gave new sled stores (from 7c7e64f).
const SEGMENT_SIZE: usize = 32 * 1024;

/// Whether the store directory `store` holds a store sled wrote.
pub fn is_sled_store(store: &Path) -> bool {
    store.join("db").exists() && !store.join(DATA_FILE).exists()
}

/// What [`finish_or_migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub trees: usize,
    pub records: u64,
    pub kept: PathBuf,
}

/// Run by every open before the engine opens `store`: migrates a sled
/// store, or finishes the last step of a migration a cut interrupted.
pub(super) fn finish_or_migrate(data_dir: &Path, cache_bytes: u64) -> Result<Option<Migrated>> {
    let live = Store::path_in(data_dir);
    let staging = data_dir.join(STAGING);
    if live.join(DATA_FILE).exists() {
        if is_sled_store(&staging) {
            // Cut between steps 3 and 4.
            let kept = keep(data_dir, &staging)?;
            log::info!(
                "finished moving the store to redb; the sled store is kept at {}",
                kept.display()
            );
        } else if std::fs::symlink_metadata(&staging).is_ok() {
            remove(data_dir, &staging)?;
        }
        return Ok(None);
    }
    if !is_sled_store(&live) {
        return Ok(None);
    }
    let done = migrate(data_dir, &live, &staging, cache_bytes)?;
    log::info!(
        "moved the store from sled to redb: {} records in {} trees, copied and verified; the sled \
         store is kept at {} until the new one has started once",
        done.records,
        done.trees,
        done.kept.display()
    );
    Ok(Some(done))
}

fn migrate(data_dir: &Path, live: &Path, staging: &Path, cache_bytes: u64) -> Result<Migrated> {
    remove_torn_snapshots(live)?;
    // sled's lock first: a process migrating meanwhile makes this one
    // refuse ("in use") before it touches that one's copy.
    let sled = open_sled(live, cache_bytes)?;
    if std::fs::symlink_metadata(staging).is_ok() {
        remove(data_dir, staging)?;
    }
    let failed = |e: sled::Error| StoreError::Invalid {
        path: live.to_path_buf(),
        why: format!("the sled store cannot be read for its move to redb ({e})"),
    };
    let mut trees: Vec<(String, sled::Tree)> = Vec::new();
    for name in sled.tree_names() {
        let tree = sled.open_tree(&name).map_err(failed)?;
        if &name[..] == SLED_DEFAULT_TREE && tree.is_empty() {
            continue;
        }
        let name = String::from_utf8(name.to_vec()).map_err(|_| StoreError::Invalid {
            path: live.to_path_buf(),
            why: "a sled tree whose name is not UTF-8".into(),
        })?;
        trees.push((name, tree));
    }
    let mut records = 0u64;
    {
        let db = create_db(staging, cache_bytes)?;
        for (name, from) in &trees {
            let to = db.open_tree(name)?;
            let mut batch = Batch::default();
            for (n, item) in from.iter().enumerate() {
                let (k, v) = item.map_err(failed)?;
                batch.insert(k, v);
                records += 1;
                if (n + 1) % 1024 == 0 {
                    to.apply_batch(std::mem::take(&mut batch))?;
                }
            }
            to.apply_batch(batch)?;
        }
        db.flush()?;
    }
    // Step 2: read back from disk and compared.
    {
        let copy = reopen(staging, cache_bytes)?;
        let differs = |why: String| StoreError::Invalid {
            path: live.to_path_buf(),
            why: format!(
                "its copy for the move to redb differs ({why}); the sled store was left as it was"
            ),
        };
        let mut names: Vec<&str> = trees.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        let got = copy.tree_names()?;
        if got.iter().map(String::as_str).ne(names.iter().copied()) {
            return Err(differs(format!("trees {got:?}, not {names:?}")));
        }
        for (name, from) in &trees {
            let to = copy.open_tree(name)?;
            let mut copied = to.iter();
            for item in from.iter() {
                let (k, v) = item.map_err(failed)?;
                match copied.next().transpose()? {
                    Some((ck, cv)) if ck[..] == k[..] && cv[..] == v[..] => {}
                    _ => return Err(differs(format!("tree {name:?}"))),
                }
            }
            if copied.next().is_some() {
                return Err(differs(format!("tree {name:?} has more records")));
            }
        }
    }
    adopt_owner_and_mode(staging, live)?;
    sync_tree(staging)?;
    sync_dir(data_dir)?;
    // Step 3, sled's lock still held.
    exchange(staging, live)?;
    sync_dir(data_dir)?;
    let count = trees.len();
    drop(trees);
    drop(sled);
    let kept = keep(data_dir, staging)?;
    Ok(Migrated {
        trees: count,
        records,
        kept,
    })
}

/// Step 4: sled's store (at `from`) moves to [`KEPT`], or beside it when
/// an older kept store is there.
fn keep(data_dir: &Path, from: &Path) -> Result<PathBuf> {
    let mut kept = data_dir.join(KEPT);
    let mut n = 1;
    while std::fs::symlink_metadata(&kept).is_ok() {
        n += 1;
        kept = data_dir.join(format!("{KEPT}.{n}"));
    }
    std::fs::rename(from, &kept)
        .map_err(|e| io_error(&kept, "cannot rename the sled store to", e))?;
    sync_dir(data_dir)?;
    Ok(kept)
}

fn remove(data_dir: &Path, path: &Path) -> Result<()> {
    std::fs::remove_dir_all(path).map_err(|e| io_error(path, "cannot remove", e))?;
    sync_dir(data_dir)
}

/// Called once the store in `data_dir` opened and passed its checks: the
/// first such open after a migration marks the kept sled store, the next
/// one deletes it. Failures only warn: the kept store is a spare.
pub(super) fn forget_kept(data_dir: &Path) {
    let kept = data_dir.join(KEPT);
    if !kept.is_dir() {
        return;
    }
    let marker = kept.join(STARTED);
    let done = if marker.exists() {
        std::fs::remove_dir_all(&kept)
            .and_then(|()| std::fs::File::open(data_dir)?.sync_all())
            .map(|()| {
                log::info!(
                    "deleted the sled store kept at {} (the migrated store has started before)",
                    kept.display()
                )
            })
    } else {
        std::fs::write(&marker, b"")
    };
    if let Err(e) = done {
        log::warn!("the sled store kept at {}: {e}", kept.display());
    }
}

/// Opens the sled store in `path` with the segment size it was made with:
/// engine-auth's, or sled's default for stores made before it set one
/// (sled refuses any other, and names the right one). No timed flush:
/// nothing is written to it.
fn open_sled(path: &Path, cache_bytes: u64) -> Result<sled::Db> {
    let config = |segment_size| {
        sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .segment_size(segment_size)
    };
    let opened = match config(SEGMENT_SIZE).open() {
        // "cannot change the io buffer size across restarts. please change
        // it back to N": a store made with another segment size.
        Err(sled::Error::Unsupported(why)) if why.contains("io buffer size") => {
            config(recorded_segment_size(&why)).open()
        }
        other => other,
    };
    opened.map_err(|e| match e {
        sled::Error::Io(ref io) if io.to_string().contains("could not acquire lock") => {
            StoreError::InUse(path.to_path_buf())
        }
        other => StoreError::Invalid {
            path: path.to_path_buf(),
            why: format!("sled cannot open it to move it to redb ({other})"),
        },
    })
}

/// The segment size a store was made with, from sled's refusal to open it
/// with another ("... please change it back to N").
fn recorded_segment_size(refusal: &str) -> usize {
    refusal
        .rsplit(' ')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(LEGACY_SEGMENT_SIZE)
}

/// A sled store in `data_dir` holding `trees` as given: what a build
/// before redb left. For tests of the migration (here and in the power-cut
/// harness, through the hidden `engine-auth debug-make-sled-store`).
pub fn write_sled_store(data_dir: &Path, trees: &super::kv::Records) -> Result<()> {
    let path = Store::path_in(data_dir);
    let failed = |e: sled::Error| StoreError::Invalid {
        path: path.clone(),
        why: e.to_string(),
    };
    let db = sled::Config::new()
        .path(&path)
        .flush_every_ms(None)
        .segment_size(SEGMENT_SIZE)
        .open()
        .map_err(failed)?;
    for (name, records) in trees {
        let tree = db.open_tree(name).map_err(failed)?;
        for (k, v) in records {
            tree.insert(&k[..], &v[..]).map_err(failed)?;
        }
    }
    db.flush().map_err(failed)?;
    drop(db);
    sync_tree(&path)?;
    sync_dir(data_dir)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{counts, raw, records, reopen, seeded};
    use super::super::{Opened, maintenance};
    use super::*;
    use crate::domain::Roles;

    type Trees = super::super::kv::Records;

    /// A store as the daemon builds it (users, a session), read out tree by
    /// tree: what a sled store of the same data held.
    fn sample() -> (tempfile::TempDir, Trees, [u8; 32]) {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 40);
        {
            let (s, _) = reopen(dir.path()).unwrap();
            s.set_roles(users[3].id, Roles::from_bits(3), 5).unwrap();
            let mut session = super::super::sessions::tests::new_session(users[0].id, 7, 0);
            session.id = uuid::Uuid::from_u128(7);
            s.start_session(&session).unwrap();
        }
        let trees = records(dir.path());
        let digest = raw(dir.path()).digest().unwrap();
        (dir, trees, digest)
    }

    #[test]
    fn a_sled_store_moves_to_redb_verified_and_the_old_one_is_kept_until_started() {
        let (_src, trees, digest) = sample();
        let dir = tempfile::tempdir().unwrap();
        write_sled_store(dir.path(), &trees).unwrap();
        assert!(is_sled_store(&Store::path_in(dir.path())));
        let kept = dir.path().join(KEPT);
        {
            let (s, opened) = reopen(dir.path()).unwrap();
            assert_eq!(opened, Opened::Ready);
            assert_eq!(counts(&s), [41, 41, 1]);
            assert_eq!(s.db.digest().unwrap(), digest, "not the same records");
            assert!(s.scan().unwrap().is_consistent());
            assert!(s.session(uuid::Uuid::from_u128(7)).unwrap().is_some());
        }
        assert!(!is_sled_store(&Store::path_in(dir.path())));
        assert!(kept.join("db").exists(), "the sled store was not kept");
        assert!(!dir.path().join(STAGING).exists());
        // Kept through the first start of the migrated store, deleted at
        // the next.
        assert!(kept.join(STARTED).exists());
        drop(reopen(dir.path()).unwrap());
        assert!(!kept.exists(), "the kept sled store was not deleted");
        drop(reopen(dir.path()).unwrap());
    }

    #[test]
    fn a_store_with_sleds_default_segments_moves_too() {
        let (_src, trees, digest) = sample();
        let dir = tempfile::tempdir().unwrap();
        {
            // What builds before 7c7e64f made: sled's default segment size.
            let db = sled::Config::new()
                .path(Store::path_in(dir.path()))
                .flush_every_ms(None)
                .open()
                .unwrap();
            for (name, records) in &trees {
                let t = db.open_tree(name).unwrap();
                for (k, v) in records {
                    t.insert(&k[..], &v[..]).unwrap();
                }
            }
            db.flush().unwrap();
        }
        let conf = std::fs::read(Store::path_in(dir.path()).join("conf")).unwrap();
        let conf = String::from_utf8_lossy(&conf);
        assert!(conf.starts_with("segment_size: 524288"), "{conf}");
        let (s, opened) =
            super::super::testing::retried(|| Store::open(dir.path(), 1 << 20)).unwrap();
        assert_eq!(opened, Opened::Ready);
        assert_eq!(s.db.digest().unwrap(), digest);
    }

    #[test]
    fn a_migration_cut_at_any_step_is_finished_or_redone_by_the_next_open() {
        let (_src, trees, digest) = sample();
        // Cut during the copy: a partial copy in `store.migrating`, `store`
        // still sled's. Done again from the start.
        let dir = tempfile::tempdir().unwrap();
        write_sled_store(dir.path(), &trees).unwrap();
        let staging = dir.path().join(STAGING);
        {
            let db = create_db(&staging, 1 << 20).unwrap();
            db.open_tree("users")
                .unwrap()
                .insert(b"partial", b"x")
                .unwrap();
            db.flush().unwrap();
        }
        {
            let (s, _) = reopen(dir.path()).unwrap();
            assert_eq!(s.db.digest().unwrap(), digest);
        }
        assert!(!staging.exists());
        // Cut after the swap, before the rename: `store` migrated, sled's
        // store still at `store.migrating`. Moved to `store.sled`.
        std::fs::remove_file(dir.path().join(KEPT).join(STARTED)).unwrap();
        std::fs::rename(dir.path().join(KEPT), &staging).unwrap();
        {
            let (s, _) = reopen(dir.path()).unwrap();
            assert_eq!(s.db.digest().unwrap(), digest);
        }
        assert!(!staging.exists());
        assert!(dir.path().join(KEPT).join("db").exists());
        // An abandoned compaction copy and a migration leftover are told
        // apart from the store.
        assert!(!maintenance::copy_path(dir.path()).exists());
    }
}
