//! Backups: the store as one file, taken at one instant, and restoring one.
//!
//! # The file (format `engine-auth-backup`, version 1)
//!
//! JSON lines (UTF-8, `\n`-terminated), engine-independent: a logical dump
//! of the store's trees, each record as the store's own bytes (JSON
//! records, big-endian counts), never the engine's pages.
//!
//! 1. The header ([`Header`]): format name and version, the engine-auth
//!    version and store schema version that wrote it, when (Unix ms and
//!    UTC), the number of records of each tree, users and admins.
//! 2. One line per record, `{"tree": …, "key": <base64>, "value": <base64>}`,
//!    trees in [`TREES`] order, keys in order.
//! 3. The trailer, `{"sha256": <hex>}`: the SHA-256 of every byte before it.
//!
//! It holds every password hash and every signing key: it is written mode
//! 0600 (see `crate::backups`), and is as secret as the store.
//!
//! # Consistency
//!
//! [`Store::export`] takes the store's export gate exclusively; every write
//! holds it shared from before its transaction to after its flush
//! (`Store::write`). So the dump is the store between two writes, each of
//! them durable; reads go on meanwhile, writes wait (a few ms per 1,000
//! users).
//!
//! # Restore
//!
//! [`Backup::parse`] verifies a file completely (header, version, checksum,
//! every record decoding, counts) before anything is touched. [`restore`]
//! then locks the live store (refusing while a daemon holds it), builds a
//! new store in `<data-dir>/store.restore` from the users, the username
//! index and `meta` (not the sessions, refresh tokens or signing keys: a
//! fresh signing key instead, so nothing issued before verifies), reopens
//! it from disk, runs the start-up checks and the full scan on it, and
//! swaps it in with `renameat2(RENAME_EXCHANGE)` as compaction does. The
//! previous store stays as `store.before-restore-<UTC stamp>`, the only
//! such copy kept.
//!
//! Everything engine-specific is in three small functions: [`Store::dump`]
//! (export), [`load`] (import) and [`lock_live`] (the store's lock).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::PoisonError;
use uuid::Uuid;

use super::codec::{decode, read_u64};
use super::files::{io_error, sync_dir, sync_tree};
use super::maintenance::{exchange, reopen};
use super::users::id_of_entry;
use super::{
    KeyRecord, META_ACTIVE_KID, META_SCHEMA, META_SESSION_LISTS, Opened, RefreshRecord, Result,
    SCHEMA_VERSION, SessionRecord, Store, StoreError, UserRecord,
};

/// The `format` every backup's header names.
pub const FORMAT: &str = "engine-auth-backup";
/// The version of the file layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The store's trees, in the order a backup lists them.
pub const TREES: [&str; 11] = [
    "meta",
    "users",
    "usernames",
    "keys",
    "sessions",
    "user_sessions",
    "refresh_tokens",
    "api_keys",
    "api_key_ids",
    "user_api_keys",
    "audit",
];

/// The trees a restore brings back. The others (sessions and their
/// per-user lists, old-layout refresh tokens, signing keys, API keys, the
/// recent events and last logins) are
/// dropped, so every token and every API key issued before the restore is
/// refused.
const RESTORED: [&str; 3] = ["meta", "users", "usernames"];

/// Where [`restore`] builds the new store.
pub fn staging_path(data_dir: &Path) -> PathBuf {
    data_dir.join("store.restore")
}

/// The prefix of the one copy of the store a restore replaced.
pub const BEFORE_RESTORE_PREFIX: &str = "store.before-restore-";

/// A backup's first line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this build.
    pub version: u32,
    /// The engine-auth version that wrote it.
    pub engine_auth: String,
    /// The store's schema version (`meta`), [`SCHEMA_VERSION`] here.
    pub schema_version: u32,
    /// Unix milliseconds, and the same instant as RFC 3339 UTC.
    pub created_at_ms: u64,
    pub created_utc: String,
    /// Records of each tree.
    pub records: BTreeMap<String, u64>,
    pub users: u64,
    pub admins: u64,
}

#[derive(Serialize, Deserialize)]
struct Line {
    tree: String,
    key: String,
    value: String,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    sha256: String,
}

type Record = (Vec<u8>, Vec<u8>);

/// Why a file is not a usable backup; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[error("not a usable backup: {0}")]
pub struct BadBackup(pub String);

/// A backup file, verified: see [`Backup::parse`].
pub struct Backup {
    pub header: Header,
    trees: BTreeMap<String, Vec<Record>>,
}

impl Store {
    /// Export: every record of every tree, read with the export gate held
    /// exclusively (no write in progress, none starting).
    fn dump(&self) -> Result<Vec<(&'static str, Vec<Record>)>> {
        let trees = [
            &self.meta,
            &self.users,
            &self.names,
            &self.keys,
            &self.sessions,
            &self.user_sessions,
            &self.refresh,
            &self.api_keys,
            &self.api_key_ids,
            &self.user_api_keys,
            &self.audit,
        ];
        let _exclusive = self
            .export_gate
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        TREES
            .iter()
            .zip(trees)
            .map(|(name, tree)| {
                let records = tree
                    .iter()
                    .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())))
                    .collect::<super::kv::KvResult<Vec<_>>>()?;
                Ok((*name, records))
            })
            .collect()
    }

    /// The backup file of the store as it is now (see the module docs),
    /// stamped `now_millis`. Writes wait while the records are read.
    pub fn export(&self, now_millis: u64) -> Result<Vec<u8>> {
        let trees = self.dump()?;
        let mut users = 0;
        let mut admins = 0;
        for (_, v) in trees
            .iter()
            .filter(|(name, _)| *name == "users")
            .flat_map(|(_, r)| r)
        {
            let rec: UserRecord = decode(v)?;
            users += 1;
            admins += u64::from(rec.is_admin());
        }
        let schema_version = trees
            .iter()
            .filter(|(name, _)| *name == "meta")
            .flat_map(|(_, r)| r)
            .find(|(k, _)| k == META_SCHEMA)
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
            .unwrap_or(SCHEMA_VERSION);
        let header = Header {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            engine_auth: env!("CARGO_PKG_VERSION").into(),
            schema_version,
            created_at_ms: now_millis,
            created_utc: crate::clock::utc_rfc3339(now_millis),
            records: trees
                .iter()
                .map(|(name, r)| (name.to_string(), r.len() as u64))
                .collect(),
            users,
            admins,
        };
        let b64 = base64::prelude::BASE64_STANDARD;
        let mut out = json_line(&header)?;
        for (tree, records) in &trees {
            for (k, v) in records {
                out.extend(json_line(&Line {
                    tree: tree.to_string(),
                    key: b64.encode(k),
                    value: b64.encode(v),
                })?);
            }
        }
        let sha256 = crate::hex::encode(&Sha256::digest(&out));
        out.extend(json_line(&Trailer { sha256 })?);
        Ok(out)
    }
}

fn json_line<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let mut line = serde_json::to_vec(v).map_err(|e| StoreError::Decode(e.to_string()))?;
    line.push(b'\n');
    Ok(line)
}

impl Backup {
    /// Reads and verifies a backup completely: the format and its version,
    /// the checksum over everything before the trailer, every line, every
    /// record decoding as the store's record of its tree, the counts the
    /// header gives, and the schema version. Nothing is written.
    pub fn parse(bytes: &[u8]) -> Result<Backup, BadBackup> {
        let bad = |why: String| BadBackup(why);
        let first_end = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("no header line (empty or truncated file)".into()))?;
        // The format and version first, before anything else is assumed
        // about the layout.
        let raw: serde_json::Value = serde_json::from_slice(&bytes[..first_end])
            .map_err(|_| bad("the first line is not an engine-auth backup header".into()))?;
        if raw.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(bad(format!(
                "the header does not name the format {FORMAT:?}"
            )));
        }
        match raw.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(bad(format!(
                    "format version {v}; this build reads version {FORMAT_VERSION}"
                )));
            }
            None => return Err(bad("the header has no format version".into())),
        }
        let header: Header =
            serde_json::from_value(raw).map_err(|e| bad(format!("unreadable header: {e}")))?;
        // The trailer: the last line, checksumming everything before it.
        let Some(body_and_trailer) = bytes.strip_suffix(b"\n") else {
            return Err(bad(
                "truncated: the file does not end with a complete line".into()
            ));
        };
        let trailer_start = body_and_trailer
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        if trailer_start <= first_end {
            return Err(bad("truncated: no checksum line after the header".into()));
        }
        let trailer: Trailer = serde_json::from_slice(&body_and_trailer[trailer_start..])
            .map_err(|_| bad("truncated or damaged: the last line is not the checksum".into()))?;
        let body = &bytes[..trailer_start];
        let sha256 = crate::hex::encode(&Sha256::digest(body));
        if sha256 != trailer.sha256.to_ascii_lowercase() {
            return Err(bad(format!(
                "checksum mismatch (SHA-256 {sha256}, the file says {}): the file is damaged or was altered",
                trailer.sha256
            )));
        }
        if header.schema_version != SCHEMA_VERSION {
            return Err(bad(format!(
                "it holds a store of schema version {}; this build reads version {SCHEMA_VERSION}",
                header.schema_version
            )));
        }
        let b64 = base64::prelude::BASE64_STANDARD;
        let mut trees: BTreeMap<String, Vec<Record>> = BTreeMap::new();
        for (n, line) in body[first_end + 1..]
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
        {
            let at = n + 2;
            let line: Line = serde_json::from_slice(line)
                .map_err(|e| bad(format!("line {at} is not a record: {e}")))?;
            if !TREES.contains(&line.tree.as_str()) {
                return Err(bad(format!("line {at}: unknown tree {:?}", line.tree)));
            }
            let key = b64
                .decode(&line.key)
                .map_err(|e| bad(format!("line {at}: key: {e}")))?;
            let value = b64
                .decode(&line.value)
                .map_err(|e| bad(format!("line {at}: value: {e}")))?;
            trees.entry(line.tree).or_default().push((key, value));
        }
        for tree in TREES {
            let got = trees.get(tree).map_or(0, Vec::len) as u64;
            let said = header.records.get(tree).copied().unwrap_or(0);
            if got != said {
                return Err(bad(format!(
                    "tree {tree:?} holds {got} records; the header says {said}"
                )));
            }
        }
        if let Some(extra) = header.records.keys().find(|t| !TREES.contains(&t.as_str())) {
            return Err(bad(format!("the header counts an unknown tree {extra:?}")));
        }
        let backup = Backup { header, trees };
        backup.decode_all().map_err(bad)?;
        Ok(backup)
    }

    fn tree(&self, name: &str) -> &[Record] {
        self.trees.get(name).map_or(&[], Vec::as_slice)
    }

    /// Every record decodes as its tree's record; users and admins are as
    /// many as the header says; `meta` names this build's schema.
    fn decode_all(&self) -> Result<(), String> {
        let mut admins = 0;
        for (k, v) in self.tree("users") {
            let rec: UserRecord = decode(v).map_err(|e| format!("a user record: {e}"))?;
            if Uuid::from_slice(k).ok() != Some(rec.id) {
                return Err(format!(
                    "the user record of {} is under another key",
                    rec.id
                ));
            }
            admins += u64::from(rec.is_admin());
        }
        let users = self.tree("users").len() as u64;
        if (users, admins) != (self.header.users, self.header.admins) {
            return Err(format!(
                "{users} users with {admins} admins; the header says {} with {}",
                self.header.users, self.header.admins
            ));
        }
        for (_, v) in self.tree("usernames") {
            id_of_entry(v).map_err(|e| format!("a username index entry: {e}"))?;
        }
        for (_, v) in self.tree("keys") {
            decode::<KeyRecord>(v).map_err(|e| format!("a signing-key record: {e}"))?;
        }
        for (_, v) in self.tree("sessions") {
            decode::<SessionRecord>(v).map_err(|e| format!("a session record: {e}"))?;
        }
        for (_, v) in self.tree("refresh_tokens") {
            decode::<RefreshRecord>(v).map_err(|e| format!("a refresh-token record: {e}"))?;
        }
        for (_, v) in self.tree("api_keys") {
            decode::<super::ApiKeyRecord>(v).map_err(|e| format!("an API key record: {e}"))?;
        }
        for (k, v) in self.tree("user_sessions") {
            if k.len() != 16 || v.len() % 16 != 0 {
                return Err("a per-user session list of the wrong length".into());
            }
        }
        let meta = |key: &[u8]| self.tree("meta").iter().find(|(k, _)| k == key);
        match meta(META_SCHEMA).and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok()) {
            Some(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "its store has schema version {v}; this build reads version {SCHEMA_VERSION}"
                ));
            }
            None => return Err("its store has no readable schema version".into()),
        }
        for key in [super::META_USERS, super::META_NAMES, super::META_ADMINS] {
            if let Some((_, v)) = meta(key) {
                read_u64(Some(v.clone())).map_err(|e| format!("a count in meta: {e}"))?;
            }
        }
        Ok(())
    }

    /// Records of `tree` in the file.
    pub fn count(&self, tree: &str) -> u64 {
        self.tree(tree).len() as u64
    }
}

impl StoreError {
    /// A refusal that is about a damaged store (what a restore repairs),
    /// not about its use or the disk's room.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            StoreError::Invalid { .. }
                | StoreError::Decode(_)
                | StoreError::Storage(redb::Error::Corrupted(_))
        )
    }
}

/// What [`restore`] did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub users: u64,
    pub admins: u64,
    pub usernames: u64,
    /// In the file, deliberately not restored.
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub keys: u64,
    pub api_keys: u64,
    /// The new (only) signing key.
    pub kid: String,
    /// Where the replaced store now is (`None`: there was none).
    pub previous: Option<PathBuf>,
    /// Older `store.before-restore-*` copies deleted.
    pub removed: Vec<PathBuf>,
}

/// The store's lock, taken without opening it (it may be too damaged to
/// open): redb holds an exclusive `flock` on its data file while open, as
/// sled (the engine before) did on `<store>/db`. `Ok(None)` when there is
/// neither file.
pub(super) fn lock_live(live: &Path) -> Result<Option<fs::File>> {
    use rustix::fs::{FlockOperation, flock};
    let db = match live.join(super::DATA_FILE) {
        redb if redb.exists() => redb,
        _ => live.join("db"),
    };
    let file = match fs::OpenOptions::new().read(true).write(true).open(&db) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&db, "cannot open", e)),
    };
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(StoreError::InUse(live.to_path_buf())),
        Err(e) => Err(io_error(&db, "cannot lock", e.into())),
    }
}

/// Import: a new store at `path` (which must not exist) holding `trees`,
/// flushed and closed.
fn load(path: &Path, trees: &[(&str, Vec<Record>)], cache_capacity_bytes: u64) -> Result<()> {
    let db = super::open::create_db(path, cache_capacity_bytes)?;
    for (name, records) in trees {
        let tree = db.open_tree(name)?;
        let mut batch = super::kv::Batch::default();
        for (k, v) in records {
            batch.insert(k.as_slice(), v.as_slice());
        }
        tree.apply_batch(batch)?;
    }
    db.flush()?;
    Ok(())
}

/// Replaces the store in `data_dir` with the users of `backup` and `key` as
/// the only signing key (see the module docs). Refuses
/// ([`StoreError::InUse`]) while a daemon holds the store; the store is
/// unchanged unless this returns `Ok`. `stamp` names the copy of the
/// replaced store (`store.before-restore-<stamp>`).
pub fn restore(
    data_dir: &Path,
    backup: &Backup,
    key: &KeyRecord,
    stamp: &str,
    cache_capacity_bytes: u64,
) -> Result<Restored> {
    let live = Store::path_in(data_dir);
    let staging = staging_path(data_dir);
    // Held until the end: no daemon starts on the old store meanwhile.
    let _old_lock = lock_live(&live)?;
    let had_store = fs::symlink_metadata(&live).is_ok();
    if fs::symlink_metadata(&staging).is_ok() {
        log::warn!(
            "removing {}, left by an interrupted restore",
            staging.display()
        );
        fs::remove_dir_all(&staging).map_err(|e| io_error(&staging, "cannot remove", e))?;
        sync_dir(data_dir)?;
    }
    let built = build(data_dir, &live, &staging, backup, key, cache_capacity_bytes);
    let new = match built {
        Ok(new) => new,
        Err(e) => {
            if fs::symlink_metadata(&staging).is_ok() {
                let _ = fs::remove_dir_all(&staging);
                let _ = sync_dir(data_dir);
            }
            return Err(e);
        }
    };
    let previous = if had_store {
        exchange(&live, &staging)?;
        sync_dir(data_dir)?;
        let kept = data_dir.join(format!("{BEFORE_RESTORE_PREFIX}{stamp}"));
        fs::rename(&staging, &kept).map_err(|e| io_error(&staging, "cannot rename", e))?;
        sync_dir(data_dir)?;
        Some(kept)
    } else {
        fs::rename(&staging, &live).map_err(|e| io_error(&staging, "cannot rename", e))?;
        sync_dir(data_dir)?;
        None
    };
    let mut removed = Vec::new();
    if let Some(kept) = &previous {
        let entries = fs::read_dir(data_dir).map_err(|e| io_error(data_dir, "cannot read", e))?;
        for entry in entries {
            let path = entry
                .map_err(|e| io_error(data_dir, "cannot read", e))?
                .path();
            let older = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(BEFORE_RESTORE_PREFIX));
            if older && path != *kept {
                fs::remove_dir_all(&path).map_err(|e| io_error(&path, "cannot remove", e))?;
                removed.push(path);
            }
        }
        if !removed.is_empty() {
            sync_dir(data_dir)?;
        }
    }
    drop(new);
    Ok(Restored {
        users: backup.count("users"),
        admins: backup.header.admins,
        usernames: backup.count("usernames"),
        sessions: backup.count("sessions"),
        refresh_tokens: backup.count("refresh_tokens"),
        keys: backup.count("keys"),
        api_keys: backup.count("api_keys"),
        kid: key.kid.clone(),
        previous,
        removed,
    })
}

/// The new store at `staging`, read back from disk, checked (start-up
/// checks and the full scan), owned like the store it replaces and synced.
/// Returned open, so its lock is held across the swap.
fn build(
    data_dir: &Path,
    live: &Path,
    staging: &Path,
    backup: &Backup,
    key: &KeyRecord,
    cache_capacity_bytes: u64,
) -> Result<Store> {
    let mut trees: Vec<(&str, Vec<Record>)> = RESTORED
        .iter()
        .map(|name| (*name, backup.tree(name).to_vec()))
        .collect();
    for (name, records) in &mut trees {
        if *name == "meta" {
            records.retain(|(k, _)| k != META_ACTIVE_KID && k != META_SESSION_LISTS);
            records.push((META_ACTIVE_KID.to_vec(), key.kid.as_bytes().to_vec()));
            // No sessions: every (empty) list is complete.
            records.push((META_SESSION_LISTS.to_vec(), b"1".to_vec()));
        }
    }
    trees.push((
        "keys",
        vec![(key.kid.as_bytes().to_vec(), super::codec::encode(key))],
    ));
    load(staging, &trees, cache_capacity_bytes)?;
    let db = reopen(staging, cache_capacity_bytes)?;
    let new = Store::from_db(live.to_path_buf(), db)?;
    let refused = |why: String| StoreError::Invalid {
        path: staging.to_path_buf(),
        why: format!("the restored store {why}; the store was left as it was"),
    };
    if new
        .check()
        .map_err(|e| refused(format!("fails the start-up checks: {e}")))?
        != Opened::Ready
    {
        return Err(refused("is empty".into()));
    }
    let scan = new.scan()?;
    if let Some(problem) = scan.problems.first() {
        return Err(refused(format!(
            "is inconsistent ({} problems): {problem}",
            scan.problem_count
        )));
    }
    if live.join(super::DATA_FILE).exists() || live.join("db").exists() {
        super::files::adopt_owner_and_mode(staging, live)?;
    } else {
        adopt_owner_of(staging, data_dir)?;
    }
    sync_tree(staging)?;
    Ok(new)
}

/// With no store to copy from (a new data dir): the data dir's owner,
/// directories 0700, files 0600.
fn adopt_owner_of(copy: &Path, data_dir: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let owner = fs::metadata(data_dir).map_err(|e| io_error(data_dir, "cannot stat", e))?;
    let mut stack = vec![copy.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::metadata(&path).map_err(|e| io_error(&path, "cannot stat", e))?;
        if meta.is_dir() {
            for entry in fs::read_dir(&path).map_err(|e| io_error(&path, "cannot read", e))? {
                stack.push(entry.map_err(|e| io_error(&path, "cannot read", e))?.path());
            }
        }
        if meta.uid() != owner.uid() || meta.gid() != owner.gid() {
            std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid()))
                .map_err(|e| io_error(&path, "cannot give the data dir's owner to", e))?;
        }
        let mode = if meta.is_dir() { 0o700 } else { 0o600 };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|e| io_error(&path, "cannot set the mode of", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{key, reopen, retried, seeded};
    use super::*;
    use crate::domain::Roles;

    fn open(dir: &Path) -> Store {
        reopen(dir).unwrap().0
    }

    #[test]
    fn a_backup_round_trips_without_sessions_or_keys() {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 5);
        let bytes = {
            let s = open(dir.path());
            super::super::sessions::tests::session(&s, users[1].id, 1, 1000);
            // Two-factor state travels in the user record.
            s.mfa_set_pending(users[3].id, "SECRET", 1)
                .unwrap()
                .unwrap();
            s.mfa_enable(users[3].id, "SECRET", 7, &[[1; 32]], 1)
                .unwrap()
                .unwrap();
            s.export(1_735_689_600_000).unwrap()
        };
        let backup = Backup::parse(&bytes).unwrap();
        assert_eq!(backup.header.users, 6);
        assert_eq!(backup.header.admins, 1);
        assert_eq!(backup.header.created_utc, "2025-01-01T00:00:00.000Z");
        assert_eq!(backup.count("sessions"), 1);
        {
            let s = open(dir.path());
            s.delete_user(users[2].id).unwrap();
        }
        let fresh = key();
        let done = retried(|| restore(dir.path(), &backup, &fresh, "t1", 1 << 20)).unwrap();
        assert_eq!((done.users, done.sessions, done.keys), (6, 1, 1));
        assert!(
            done.previous
                .as_ref()
                .unwrap()
                .ends_with("store.before-restore-t1")
        );
        let s = open(dir.path());
        assert!(s.user_by_id(users[2].id).unwrap().is_some());
        let mfa = s.user_by_id(users[3].id).unwrap().unwrap().mfa;
        assert_eq!(
            (mfa.secret.as_deref(), mfa.last_step, mfa.recovery.len()),
            (Some("SECRET"), 7, 1)
        );
        assert!(s.user_view(users[3].id).unwrap().unwrap().mfa);
        assert_eq!(s.keys().unwrap().len(), 1);
        assert_eq!(s.active_kid().unwrap(), fresh.kid);
        assert_eq!(s.session_counts().unwrap().sessions, 0);
        assert!(s.scan().unwrap().is_consistent());
        drop(s);
        // A second restore keeps only the newest copy of the replaced store.
        let done = retried(|| restore(dir.path(), &backup, &key(), "t2", 1 << 20)).unwrap();
        assert_eq!(done.removed.len(), 1);
        assert!(!dir.path().join("store.before-restore-t1").exists());
        assert!(dir.path().join("store.before-restore-t2").exists());
    }

    /// API keys are in the backup (it is the whole store) but, like
    /// sessions, a restore does not bring them back: every key issued
    /// before it is refused.
    #[test]
    fn api_keys_are_backed_up_but_not_restored() {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 2);
        let rec = super::super::ApiKeyRecord {
            id: Uuid::new_v4(),
            owner: users[1].id,
            name: "k".into(),
            roles: Roles::from_bits(1),
            created_at: 1,
            expires_at: None,
            last_used_at: None,
        };
        let bytes = {
            let s = open(dir.path());
            s.create_api_key(&rec, &[3; 32]).unwrap();
            s.export(1_735_689_600_000).unwrap()
        };
        let backup = Backup::parse(&bytes).unwrap();
        assert_eq!(backup.count("api_keys"), 1);
        assert_eq!(backup.count("api_key_ids"), 1);
        assert_eq!(backup.count("user_api_keys"), 1);
        let done = retried(|| restore(dir.path(), &backup, &key(), "t1", 1 << 20)).unwrap();
        assert_eq!(done.api_keys, 1);
        let s = open(dir.path());
        assert!(s.user_by_id(users[1].id).unwrap().is_some());
        assert_eq!(s.api_key_by_hash(&[3; 32]).unwrap(), None);
        assert!(s.api_keys().unwrap().is_empty());
        assert!(s.scan().unwrap().is_consistent());
    }

    #[test]
    fn damaged_backups_are_refused_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 3);
        let bytes = open(dir.path()).export(0).unwrap();
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 1;
        let truncated = &bytes[..bytes.len() - 10];
        let newer =
            String::from_utf8(bytes.clone())
                .unwrap()
                .replacen("\"version\":1", "\"version\":2", 1);
        for (what, b, want) in [
            ("flipped", &flipped[..], "checksum"),
            ("truncated", truncated, "truncated"),
            ("newer", newer.as_bytes(), "format version 2"),
            ("empty", b"", "no header"),
            ("junk", b"hello\n", "not an engine-auth backup"),
        ] {
            let err = Backup::parse(b).err().unwrap().to_string();
            assert!(err.contains(want), "{what}: {err}");
        }
        // A store that holds no user is refused by the checks after the
        // build, and the live store stays.
        let mut text = String::from_utf8(bytes).unwrap();
        text = text
            .lines()
            .filter(|l| !l.contains("\"tree\":\"users\"") && !l.contains("sha256"))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        assert!(Backup::parse(text.as_bytes()).is_err());
        let s = open(dir.path());
        assert!(s.user_by_id(users[0].id).unwrap().is_some());
        let _ = Roles::ALL;
    }

    #[test]
    fn restore_refuses_a_store_in_use() {
        let dir = tempfile::tempdir().unwrap();
        seeded(dir.path(), 1);
        let s = open(dir.path());
        let backup = Backup::parse(&s.export(0).unwrap()).unwrap();
        assert!(matches!(
            restore(dir.path(), &backup, &key(), "x", 1 << 20),
            Err(StoreError::InUse(_))
        ));
        assert!(!staging_path(dir.path()).exists());
    }

    #[test]
    fn writes_wait_for_an_export() {
        let dir = tempfile::tempdir().unwrap();
        seeded(dir.path(), 1);
        let s = open(dir.path());
        let gate = s.export_gate.write().unwrap();
        let writer = {
            let s = s.clone();
            std::thread::spawn(move || {
                s.create_user(&super::super::testing::user("late", Roles::from_bits(1)))
                    .unwrap();
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            s.user_by_name("late").unwrap().is_none(),
            "wrote through the gate"
        );
        drop(gate);
        writer.join().unwrap();
        assert!(s.user_by_name("late").unwrap().is_some());
    }
}
