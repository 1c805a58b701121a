//! Offline upkeep of the store: the full consistency scan behind
//! `engine-auth check`, and `engine-auth compact`, which rewrites the store
//! into a fresh copy and swaps it in.
//!
//! # Why compaction is crash-safe
//!
//! The store lives in `<data-dir>/store`; the copy is built in
//! `<data-dir>/store.compact`. One invariant holds at every instant, also
//! across a SIGKILL or a power cut: **`store` is a complete store**, and
//! `store.compact`, if present, is something nobody needs.
//!
//! 1. `compact` opens `store` as every opener does, so it holds redb's lock
//!    on it (a running daemon makes it fail with "in use"; a daemon started
//!    meanwhile fails the same way) and it keeps that handle, so the lock,
//!    until the end.
//! 2. It copies every tree into a new store directory `store.compact`
//!    (created exclusively), flushes it, closes it and reopens it from
//!    disk. It
//!    gives it the original's owner and modes (`sudo engine-auth compact`
//!    must leave a store the daemon's user can open), fsyncs every file and
//!    directory in it, and compares it with the original: the same trees,
//!    the same number of entries in each, the same SHA-256 over every key and
//!    value, and the store's own start-up checks and counts. A crash before
//!    the swap leaves `store` untouched; the copy is junk.
//! 3. One `renameat2(RENAME_EXCHANGE)` swaps the two directory entries
//!    atomically, and the data dir is fsynced. There is no instant without a
//!    complete `store`: before the swap it is the original, after it the
//!    verified copy, and a crash in between shows one or the other. The
//!    copy's handle is still open, so its lock keeps the daemon out.
//! 4. The original, now named `store.compact`, is deleted while the lock on
//!    the new `store` is still held, and the data dir fsynced again.
//!
//! So whoever holds the lock on `store` knows no compaction is running, and
//! a `store.compact` it finds is left over from an interrupted run (a copy
//! never swapped in, or an original already replaced): [`Store::open`]
//! deletes it. Filesystems without `RENAME_EXCHANGE` make `compact` refuse,
//! before anything is changed, rather than fall back to two renames with a
//! window where `store` does not exist.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::files::{adopt_owner_and_mode, io_error, sync_dir, sync_tree};
use super::kv::{Batch, Db};
use super::users::read_count;
use super::{DATA_FILE, META_ADMINS, META_NAMES, META_USERS, Result, Store, StoreError};

pub use super::check::{Counts, Scan, open_for_check};
pub use super::files::disk_usage;

/// `<data-dir>/store.compact`: where [`compact`] builds the copy.
pub fn copy_path(data_dir: &Path) -> PathBuf {
    data_dir.join("store.compact")
}

/// Deletes what an interrupted [`compact`] left. Only call it holding the
/// lock on `<data-dir>/store` (see the module docs for why that makes it
/// safe).
pub(super) fn remove_abandoned_copy(data_dir: &Path) -> Result<()> {
    let copy = copy_path(data_dir);
    if fs::symlink_metadata(&copy).is_err() {
        return Ok(());
    }
    log::warn!(
        "removing {}, left by an interrupted `engine-auth compact`",
        copy.display()
    );
    // Whatever rename left it here is made durable before it goes.
    sync_dir(data_dir)?;
    remove_copy(data_dir, &copy)
}

fn remove_copy(data_dir: &Path, copy: &Path) -> Result<()> {
    fs::remove_dir_all(copy).map_err(|e| io_error(copy, "cannot remove", e))?;
    sync_dir(data_dir)
}

/// What [`compact`] did.
#[derive(Debug, Clone)]
pub struct Compacted {
    /// Size of the store directory before and after, bytes.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Entries copied, over `trees` trees.
    pub entries: u64,
    pub trees: usize,
    pub users: usize,
}

/// The store's size on disk against the keys and values it holds.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    pub disk_bytes: u64,
    pub live_bytes: u64,
}

/// Disk a store may use beyond `ratio` × its live data before
/// [`compact_if_over`] rewrites it: the engine's own pages (a fresh redb
/// file is a few hundred KiB for under 1 KiB of data) make any small store
/// look amplified.
pub const COMPACT_SLACK_BYTES: u64 = 1 << 20;

impl Footprint {
    /// Disk over live data (∞ for an empty store).
    pub fn ratio(&self) -> f64 {
        self.disk_bytes as f64 / self.live_bytes as f64
    }

    /// Whether the disk use exceeds `ratio` × the live data plus
    /// `slack_bytes`.
    pub fn exceeds(&self, ratio: f64, slack_bytes: u64) -> bool {
        self.disk_bytes as f64 > ratio * self.live_bytes as f64 + slack_bytes as f64
    }
}

/// Measures `store`: its directory's files against every key and value in
/// every tree (one pass, nothing decoded).
pub fn footprint(store: &Store) -> Result<Footprint> {
    let mut live_bytes = 0u64;
    for name in store.db.tree_names()? {
        for item in store.db.open_tree(&name)?.iter() {
            let (k, v) = item?;
            live_bytes += (k.len() + v.len()) as u64;
        }
    }
    Ok(Footprint {
        disk_bytes: disk_usage(&store.path)?,
        live_bytes,
    })
}

/// What [`compact_if_over`] did.
#[derive(Debug, Clone)]
pub enum Outcome {
    Compacted(Compacted),
    /// Not over the ratio: left as it was.
    NotNeeded(Footprint),
    /// Over the ratio, but the copy was not done and verified by the
    /// deadline: abandoned before the swap, the store left as it was.
    OutOfTime(Footprint),
}

/// [`compact`], but only when the store's disk use exceeds `ratio` × its
/// live data plus `slack_bytes` (the CLI passes [`COMPACT_SLACK_BYTES`]),
/// and abandoned (store unchanged) if the copy is not built and verified by
/// `deadline`. Cheap enough to run before every start (`ExecStartPre=` in
/// the systemd unit): one read of every entry when nothing is to be done,
/// and a bounded time when something is, so a slow device still starts.
pub fn compact_if_over(
    data_dir: &Path,
    cache_capacity_bytes: u64,
    ratio: f64,
    slack_bytes: u64,
    deadline: Option<Instant>,
) -> Result<Outcome> {
    let old = Store::open_existing(data_dir, cache_capacity_bytes)?;
    let measured = footprint(&old)?;
    if !measured.exceeds(ratio, slack_bytes) {
        return Ok(Outcome::NotNeeded(measured));
    }
    match compact_opened(old, data_dir, cache_capacity_bytes, deadline) {
        Ok(done) => Ok(Outcome::Compacted(done)),
        Err(StoreError::OutOfTime) => Ok(Outcome::OutOfTime(measured)),
        Err(e) => Err(e),
    }
}

/// Rewrites the store in `data_dir` into a fresh copy (only live data,
/// packed) and swaps it in; see the module docs. Refuses
/// (`StoreError::InUse`) while the daemon runs.
pub fn compact(data_dir: &Path, cache_capacity_bytes: u64) -> Result<Compacted> {
    let old = Store::open_existing(data_dir, cache_capacity_bytes)?;
    compact_opened(old, data_dir, cache_capacity_bytes, None)
}

/// [`compact`] of the store `old`, opened (so locked) by the caller; gives
/// up with [`StoreError::OutOfTime`] before the swap once past `deadline`.
fn compact_opened(
    old: Store,
    data_dir: &Path,
    cache_capacity_bytes: u64,
    deadline: Option<Instant>,
) -> Result<Compacted> {
    let live = Store::path_in(data_dir);
    let copy = copy_path(data_dir);
    let bytes_before = disk_usage(&live)?;
    // Both handles (so both locks) stay open until the function returns.
    let built = build_copy(&old, &live, &copy, cache_capacity_bytes, deadline);
    let mut exchanged = false;
    let swapped = match &built {
        Ok(_) => exchange(&live, &copy).and_then(|()| {
            exchanged = true;
            sync_dir(data_dir)
        }),
        Err(_) => Ok(()),
    };
    // `copy` is now either a copy never swapped in or, after the swap was
    // made durable, the original. Kept only when the swap's durability is
    // unknown (a failed fsync): the next open removes it.
    if !exchanged || swapped.is_ok() {
        let removed = remove_copy(data_dir, &copy);
        if built.is_ok() {
            removed?;
        }
    }
    let (new, entries, trees) = built?;
    swapped?;
    let users = new.user_count();
    let bytes_after = disk_usage(&live)?;
    drop(new);
    drop(old);
    Ok(Compacted {
        bytes_before,
        bytes_after,
        entries,
        trees,
        users,
    })
}

/// Step 2 of the module docs: the copy, read back from disk and compared
/// with `old`. Returns it open (as the store it becomes once swapped in at
/// `live`), with the entries and trees copied.
fn build_copy(
    old: &Store,
    live: &Path,
    copy: &Path,
    cache_capacity_bytes: u64,
    deadline: Option<Instant>,
) -> Result<(Store, u64, usize)> {
    let in_time = || match deadline {
        Some(d) if Instant::now() > d => Err(StoreError::OutOfTime),
        _ => Ok(()),
    };
    let mut entries_of = BTreeMap::new();
    {
        let mut new = super::open::create_db(copy, cache_capacity_bytes)?;
        for name in old.db.tree_names()? {
            let from = old.db.open_tree(&name)?;
            let to = new.open_tree(&name)?;
            let mut n = 0u64;
            let mut batch = Batch::default();
            for item in from.iter() {
                let (k, v) = item?;
                batch.insert(k, v);
                n += 1;
                if n.is_multiple_of(1024) {
                    to.apply_batch(std::mem::take(&mut batch))?;
                    in_time()?;
                }
            }
            to.apply_batch(batch)?;
            entries_of.insert(name, n);
        }
        new.flush()?;
        // Trees are handles, not borrows: this is the only handle.
        while new.compact()? {}
    }
    let reopened = reopen(copy, cache_capacity_bytes)?;
    // Made by whoever runs `compact` (root, say, for a daemon running as a
    // systemd DynamicUser): make it the daemon's, as the original is.
    adopt_owner_and_mode(copy, live)?;
    sync_tree(copy)?;
    let mismatch = |why: String| old.invalid(format!("the compacted copy differs: {why}"));
    let names_new = reopened.tree_names()?;
    if let Some(extra) = names_new.iter().find(|n| !entries_of.contains_key(*n)) {
        return Err(mismatch(format!("extra tree {extra:?}")));
    }
    for (name, n) in &entries_of {
        let label = name;
        if !names_new.contains(name) {
            return Err(mismatch(format!("tree {label:?} missing")));
        }
        let got = reopened.open_tree(name)?.iter().count() as u64;
        if got != *n {
            return Err(mismatch(format!(
                "tree {label:?} holds {got} entries, not {n}"
            )));
        }
    }
    if old.db.digest()? != reopened.digest()? {
        return Err(mismatch("the SHA-256 over every key and value".into()));
    }
    let new = Store::from_db(live.to_path_buf(), reopened)?;
    new.check()?;
    let counts = |s: &Store| [META_USERS, META_NAMES, META_ADMINS].map(|k| read_count(&s.meta, k));
    if counts(&new) != counts(old) {
        return Err(mismatch("the counts".into()));
    }
    // Last chance to give up: after this the swap is quick.
    in_time()?;
    Ok((new, entries_of.values().sum(), entries_of.len()))
}

/// Opens the store directory `path` again from disk (it must hold its
/// data file).
pub(super) fn reopen(path: &Path, cache_capacity_bytes: u64) -> Result<Db> {
    let file = path.join(DATA_FILE);
    if !file.exists() {
        return Err(StoreError::Missing(path.to_path_buf()));
    }
    Db::open(&file, cache_capacity_bytes).map_err(|e| super::open::open_error(path, e))
}

/// Swaps two directory entries in one step (`renameat2` with
/// `RENAME_EXCHANGE`, Linux 3.15+ on ext4, f2fs, btrfs, xfs, tmpfs...).
pub(super) fn exchange(a: &Path, b: &Path) -> Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(|e| {
        let e = std::io::Error::from(e);
        match e.raw_os_error() {
            Some(code)
                if code == rustix::io::Errno::INVAL.raw_os_error()
                    || code == rustix::io::Errno::NOSYS.raw_os_error()
                    || code == rustix::io::Errno::OPNOTSUPP.raw_os_error() =>
            {
                StoreError::Unsupported {
                    what: format!(
                        "this filesystem cannot swap {} and {} atomically",
                        a.display(),
                        b.display()
                    ),
                    source: e,
                }
            }
            _ => io_error(a, "cannot swap in the compacted copy at", e),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::Opened;
    use super::super::testing::{compact, reopen, seeded};
    use super::*;
    use crate::domain::Roles;

    #[test]
    fn compact_if_over_rewrites_only_a_store_over_the_ratio() {
        use super::{COMPACT_SLACK_BYTES as SLACK, Outcome, compact_if_over, footprint};
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
        assert!(!copy_path(dir.path()).exists());
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
        assert_eq!(s.user_by_id(users[7].id).unwrap().unwrap().roles.bits(), 2);
        assert!(s.scan().unwrap().is_consistent());
    }

    #[test]
    fn a_copy_left_by_an_interrupted_compaction_is_dropped_and_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 5);
        let copy = copy_path(dir.path());
        // Killed half-way through the copy: a store directory with part of it.
        {
            let db = crate::store::open::create_db(&copy, 1 << 20).unwrap();
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
}
