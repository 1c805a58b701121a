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
//! 1. `compact` opens `store` as every opener does, so it holds sled's lock
//!    on it (a running daemon makes it fail with "in use"; a daemon started
//!    meanwhile fails the same way) and it keeps that handle, so the lock,
//!    until the end.
//! 2. It copies every tree into a new sled directory `store.compact`
//!    (created exclusively, with [`super::SEGMENT_SIZE`]), flushes it,
//!    closes it and reopens it from disk (sled's crash recovery path). It
//!    gives it the original's owner and modes (`sudo engine-auth compact`
//!    must leave a store the daemon's user can open), fsyncs every file and
//!    directory in it, and compares it with the original: the same trees,
//!    the same number of entries in each, the same CRC over every key and
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
use std::time::{Duration, Instant};

use super::{
    FamilyRecord, KeyRecord, KeyState, META_ADMINS, META_NAMES, META_SCHEMA, META_USERS,
    RefreshRecord, Result, SCHEMA_VERSION, SEGMENT_SIZE, Store, StoreError, UserRecord, decode,
    fold_key, id_of_entry, open_sled, read_count, read_u64,
};

/// Problems kept word for word in a [`Scan`]; the rest are only counted.
const MAX_PROBLEMS: usize = 50;

/// What the full scan found.
#[derive(Debug, Default, Clone)]
pub struct Scan {
    pub users: u64,
    pub admins: u64,
    /// Username index entries.
    pub names: u64,
    pub keys: u64,
    pub refresh_tokens: u64,
    pub sessions: u64,
    /// Keys + values over every tree: what a perfect store would occupy.
    pub live_bytes: u64,
    /// The counts `meta` keeps: users, index entries, admins.
    pub recorded: [Option<u64>; 3],
    /// The first [`MAX_PROBLEMS`] inconsistencies, in words.
    pub problems: Vec<String>,
    /// All inconsistencies found.
    pub problem_count: u64,
}

impl Scan {
    fn problem(&mut self, what: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(what);
        }
    }

    pub fn is_consistent(&self) -> bool {
        self.problem_count == 0
    }
}

impl Store {
    /// Reads and decodes every record: users against the index both ways,
    /// the counts in `meta` against what is there, signing keys, sessions.
    /// Never changes anything. Takes time and memory in proportion to the
    /// store; the daemon's start-up does not run it.
    pub fn scan(&self) -> Result<Scan> {
        self.scan_with(true, [true; 3])
    }

    /// What [`Store::recount`] reads: every user decoded and counted, the
    /// index counted, the admin count compared; as much as every start did
    /// before, no more (about as long as those starts took).
    pub(super) fn count_users(&self) -> Result<Scan> {
        self.scan_with(false, [false, false, true])
    }

    /// `engine-auth check --fix-counts`: the full scan, and if it finds
    /// nothing wrong but the recorded counts (users, index entries, admins;
    /// all derived from the records), writes them as counted. Refused,
    /// changing nothing, if anything else is inconsistent.
    pub fn fix_counts(&self) -> Result<Scan> {
        let scan = self.scan_with(true, [false; 3])?;
        if let Some(problem) = scan.problems.first() {
            return Err(self.invalid(format!(
                "not rewriting the counts of an inconsistent store: {problem}"
            )));
        }
        let mut batch = sled::Batch::default();
        batch.insert(META_USERS, &scan.users.to_be_bytes());
        batch.insert(META_NAMES, &scan.names.to_be_bytes());
        batch.insert(META_ADMINS, &scan.admins.to_be_bytes());
        self.meta.apply_batch(batch)?;
        self.flush()?;
        self.scan()
    }

    /// `compare`: which recorded counts (users, index entries, admins) to
    /// hold against the store; a recount or a fix is about to replace the
    /// others.
    fn scan_with(&self, full: bool, compare: [bool; 3]) -> Result<Scan> {
        let mut s = Scan::default();
        for item in self.users.iter() {
            let (k, v) = item?;
            s.users += 1;
            s.live_bytes += (k.len() + v.len()) as u64;
            let rec: UserRecord = match decode(&v) {
                Ok(r) => r,
                Err(e) => {
                    s.problem(format!("user record {}: {e}", crate::hex::encode(&k)));
                    continue;
                }
            };
            if k.as_ref() != rec.id.as_bytes() {
                s.problem(format!(
                    "user record {} holds user {} ({:?})",
                    crate::hex::encode(&k),
                    rec.id,
                    rec.username
                ));
            }
            if rec.is_admin() {
                s.admins += 1;
            }
            if !full {
                continue;
            }
            match self.names.get(fold_key(&rec.username))? {
                Some(entry) if id_of_entry(&entry).ok() == Some(rec.id) => {}
                Some(_) => s.problem(format!(
                    "the index entry for {:?} names another user",
                    rec.username
                )),
                None => s.problem(format!("user {:?} has no index entry", rec.username)),
            }
        }
        for item in self.names.iter() {
            let (k, v) = item?;
            s.names += 1;
            s.live_bytes += (k.len() + v.len()) as u64;
            if !full {
                continue;
            }
            let name = String::from_utf8_lossy(&k).into_owned();
            match id_of_entry(&v) {
                Ok(id) if self.users.contains_key(id.as_bytes())? => {}
                Ok(id) => s.problem(format!("index entry {name:?} names user {id}, not stored")),
                Err(e) => s.problem(format!("index entry {name:?}: {e}")),
            }
        }
        if full {
            self.scan_rest(&mut s)?;
        }
        let labels = ["user count", "index count", "admin count"];
        for (i, key) in [META_USERS, META_NAMES, META_ADMINS]
            .into_iter()
            .enumerate()
        {
            match self.meta.get(key)?.map(|v| read_u64(Some(v))).transpose() {
                Ok(v) => s.recorded[i] = v,
                Err(_) if compare[i] => {
                    s.problem(format!("the recorded {} is unreadable", labels[i]))
                }
                Err(_) => {}
            }
        }
        if s.names != s.users {
            s.problem(format!("{} index entries for {} users", s.names, s.users));
        }
        if s.admins == 0 {
            s.problem("no user has the admin role".into());
        }
        let actual = [s.users, s.names, s.admins];
        for (i, ((rec, act), label)) in s.recorded.into_iter().zip(actual).zip(labels).enumerate() {
            if let Some(rec) = rec
                && rec != act
                && compare[i]
            {
                s.problem(format!(
                    "the recorded {label} is {rec}, the store holds {act}"
                ));
            }
        }
        if s.recorded[2].is_none() && compare[2] {
            s.problem("no admin count recorded".into());
        }
        Ok(s)
    }

    /// The full scan's part beyond users and the index.
    fn scan_rest(&self, s: &mut Scan) -> Result<()> {
        match self.meta.get(META_SCHEMA)? {
            None => s.problem("no schema version".into()),
            Some(v) if v.as_ref() != SCHEMA_VERSION.to_string().as_bytes() => s.problem(format!(
                "schema version {:?}, this build reads version {SCHEMA_VERSION}",
                String::from_utf8_lossy(&v)
            )),
            Some(_) => {}
        }
        for item in self.keys.iter() {
            let (k, v) = item?;
            s.keys += 1;
            s.live_bytes += (k.len() + v.len()) as u64;
            if let Err(e) = decode::<KeyRecord>(&v) {
                s.problem(format!("signing key {}: {e}", String::from_utf8_lossy(&k)));
            }
        }
        match (self.active_kid(), self.keys()) {
            (Ok(kid), Ok(keys)) => {
                if !keys
                    .iter()
                    .any(|k| k.kid == kid && k.state == KeyState::Active)
                {
                    s.problem(format!("the active signing key {kid:?} is missing"));
                }
            }
            (Err(e), _) => s.problem(format!("active signing key: {e}")),
            (_, Err(_)) => {} // reported per key above
        }
        for item in self.refresh.iter() {
            let (k, v) = item?;
            s.refresh_tokens += 1;
            s.live_bytes += (k.len() + v.len()) as u64;
            if let Err(e) = decode::<RefreshRecord>(&v) {
                s.problem(format!(
                    "refresh token record {}: {e}",
                    crate::hex::encode(&k)
                ));
            }
        }
        for item in self.families.iter() {
            let (k, v) = item?;
            s.sessions += 1;
            s.live_bytes += (k.len() + v.len()) as u64;
            if let Err(e) = decode::<FamilyRecord>(&v) {
                s.problem(format!("session record {}: {e}", crate::hex::encode(&k)));
            }
        }
        // `meta`, sled's default tree and anything else: bytes only.
        let scanned: [&[u8]; 5] = [
            b"users",
            b"usernames",
            b"keys",
            b"refresh_tokens",
            b"sessions",
        ];
        for name in self.db.tree_names() {
            if scanned.contains(&name.as_ref()) {
                continue;
            }
            for item in self.db.open_tree(&name)?.iter() {
                let (k, v) = item?;
                s.live_bytes += (k.len() + v.len()) as u64;
            }
        }
        Ok(())
    }
}

/// For `engine-auth check`: an existing store, locked, with none of the
/// start-up checks (nor their count migration), so that the scan can report
/// everything wrong with a store start-up would refuse.
pub fn open_for_check(data_dir: &Path, cache_capacity_bytes: u64) -> Result<Store> {
    if !Store::path_in(data_dir).join("db").exists() {
        return Err(StoreError::Missing(data_dir.to_path_buf()));
    }
    Store::open_unchecked(data_dir, cache_capacity_bytes)
}

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
/// [`compact_if_over`] rewrites it: sled's own files (a fresh store is
/// ~40 KiB for under 1 KiB of data) make any small store look amplified.
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
    for name in store.db.tree_names() {
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

/// Rewrites the store in `data_dir` into a fresh copy with
/// [`SEGMENT_SIZE`] segments and swaps it in; see the module docs. Refuses
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
        let new = sled::Config::new()
            .path(copy)
            .cache_capacity(cache_capacity_bytes)
            .flush_every_ms(None)
            .segment_size(SEGMENT_SIZE)
            .create_new(true)
            .open()?;
        for name in old.db.tree_names() {
            let from = old.db.open_tree(&name)?;
            let to = new.open_tree(&name)?;
            let mut n = 0u64;
            let mut batch = sled::Batch::default();
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
    }
    let reopened = reopen(copy, cache_capacity_bytes)?;
    // Made by whoever runs `compact` (root, say, for a daemon running as a
    // systemd DynamicUser): make it the daemon's, as the original is. After
    // the reopen, which wrote a snapshot file; nothing writes files after it.
    adopt_owner_and_mode(copy, live)?;
    sync_tree(copy)?;
    let mismatch = |why: String| old.invalid(format!("the compacted copy differs: {why}"));
    let names_new = reopened.tree_names();
    if let Some(extra) = names_new.iter().find(|n| !entries_of.contains_key(*n)) {
        return Err(mismatch(format!(
            "extra tree {:?}",
            String::from_utf8_lossy(extra)
        )));
    }
    for (name, n) in &entries_of {
        let label = String::from_utf8_lossy(name);
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
    let (want, got) = (old.db.checksum()?, reopened.checksum()?);
    if want != got {
        return Err(mismatch(format!("CRC {got:08x}, not {want:08x}")));
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

/// Opens the copy again; sled's worker threads may hold the lock of the
/// handle just closed for a moment.
fn reopen(path: &Path, cache_capacity_bytes: u64) -> Result<sled::Db> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match open_sled(path, cache_capacity_bytes) {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Swaps two directory entries in one step (`renameat2` with
/// `RENAME_EXCHANGE`, Linux 3.15+ on ext4, f2fs, btrfs, xfs, tmpfs...).
fn exchange(a: &Path, b: &Path) -> Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(|e| {
        let e = std::io::Error::from(e);
        match e.raw_os_error() {
            Some(code)
                if code == rustix::io::Errno::INVAL.raw_os_error()
                    || code == rustix::io::Errno::NOSYS.raw_os_error()
                    || code == rustix::io::Errno::OPNOTSUPP.raw_os_error() =>
            {
                StoreError::Decode(format!(
                    "this filesystem cannot swap {} and {} atomically ({e}); the store was left as it was",
                    a.display(),
                    b.display()
                ))
            }
            _ => io_error(a, "cannot swap in the compacted copy at", e),
        }
    })
}

/// Gives everything under `copy` the owner and group of the `original`
/// store directory, its mode to the directories and the mode of its `db`
/// file to the files.
fn adopt_owner_and_mode(copy: &Path, original: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let stat = |p: &Path| fs::metadata(p).map_err(|e| io_error(p, "cannot stat", e));
    let dir = stat(original)?;
    let file_mode = stat(&original.join("db"))?.mode() & 0o7777;
    let dir_mode = dir.mode() & 0o7777;
    let mut stack = vec![copy.to_path_buf()];
    let mut paths = Vec::new();
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).map_err(|e| io_error(&d, "cannot read", e))?;
        for entry in entries {
            let path = entry.map_err(|e| io_error(&d, "cannot read", e))?.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            paths.push(path);
        }
        paths.push(d);
    }
    for path in paths {
        let meta = stat(&path)?;
        if meta.uid() != dir.uid() || meta.gid() != dir.gid() {
            std::os::unix::fs::chown(&path, Some(dir.uid()), Some(dir.gid()))
                .map_err(|e| io_error(&path, "cannot give the original's owner to", e))?;
        }
        let mode = if meta.is_dir() { dir_mode } else { file_mode };
        if meta.mode() & 0o7777 != mode {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(|e| io_error(&path, "cannot set the mode of", e))?;
        }
    }
    Ok(())
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Sled(sled::Error::Io(std::io::Error::new(
        e.kind(),
        format!("{what} {}: {e}", path.display()),
    )))
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, "cannot sync", e))
}

/// fsyncs every file and directory under `root` (sled syncs its data file,
/// not the directory entries or its `conf` file).
fn sync_tree(root: &Path) -> Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| io_error(&dir, "cannot read", e))?;
        for entry in entries {
            let path = entry.map_err(|e| io_error(&dir, "cannot read", e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                fs::File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| io_error(&path, "cannot sync", e))?;
            }
        }
        sync_dir(&dir)?;
    }
    Ok(())
}

/// Bytes in the files under `root` (their length, not the blocks).
pub fn disk_usage(root: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| io_error(&dir, "cannot read", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&dir, "cannot read", e))?;
            let meta = entry
                .metadata()
                .map_err(|e| io_error(&entry.path(), "cannot stat", e))?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Ok(total)
}
