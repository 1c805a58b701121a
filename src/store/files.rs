//! The filesystem steps of compaction (see [`super::maintenance`]): syncing
//! files and directories, giving a copy the original's owner and modes,
//! measuring a store's disk use.

use std::fs;
use std::path::Path;

use super::{Result, StoreError};

/// Gives everything under `copy` the owner and group of the `original`
/// store directory, its mode to the directories and the mode of its data
/// file to the files, less anything for group and other: the store holds
/// the signing keys, and a copy never opens what start-up would close
/// (`bootstrap::secure_data_dir`).
pub(super) fn adopt_owner_and_mode(copy: &Path, original: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    const PRIVATE: u32 = 0o7700;
    let stat = |p: &Path| fs::metadata(p).map_err(|e| io_error(p, "cannot stat", e));
    let dir = stat(original)?;
    let file = match original.join(super::DATA_FILE) {
        redb if redb.exists() => redb,
        // A store sled (the engine before redb) wrote.
        _ => original.join("db"),
    };
    let file_mode = stat(&file)?.mode() & PRIVATE;
    let dir_mode = dir.mode() & PRIVATE;
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

pub(super) fn io_error(path: &Path, what: &str, source: std::io::Error) -> StoreError {
    StoreError::Io {
        what: what.to_string(),
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses ([`StoreError::NoSpace`]) when the file system holding `path`
/// has no block left for this process to write.
pub(super) fn require_space(path: &Path) -> Result<()> {
    let stat = rustix::fs::statvfs(path)
        .map_err(|e| io_error(path, "cannot measure the free space of", e.into()))?;
    if stat.f_bavail == 0 {
        return Err(StoreError::NoSpace(path.to_path_buf()));
    }
    Ok(())
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, "cannot sync", e))
}

/// fsyncs every file and directory under `root` (sled syncs its data file,
/// not the directory entries or its `conf` file).
pub(super) fn sync_tree(root: &Path) -> Result<()> {
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

/// Removes the snapshot files of `store` that sled 0.34 never finished
/// writing. At every open sled writes `snap.<lsn>.generating`, fsyncs it
/// and renames it to `snap.<lsn>`, but at the next open it reads the newest
/// `snap.*`, `.generating` included. A power cut between the create and
/// the fsync can leave that file empty or torn (ext4 keeps the entry, not
/// yet the data): sled then refuses the whole store ("empty/corrupt
/// snapshot file found") although the previous snapshot and the log are
/// whole. Only a file that fails sled's own test (longer than its 12-byte
/// trailer, CRC-32 of the rest matching) is removed, so sled recovers from
/// the previous snapshot and the log, as if the open had never started; a
/// complete one (only its rename lost) is left for sled to use. Done with
/// the store's lock held (skipped when another process holds it: sled's
/// open then reports the store in use). Found by the power-cut test
/// `powercut::maintenance::cuts_during_compact_and_restore` (harsh mode, a
/// cut while `compact` opened the store).
pub(super) fn remove_torn_snapshots(store: &Path) -> Result<()> {
    let _lock = match super::backup::lock_live(store) {
        Ok(Some(lock)) => lock,
        Ok(None) | Err(StoreError::InUse(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let entries = fs::read_dir(store).map_err(|e| io_error(store, "cannot read", e))?;
    let mut removed = false;
    for entry in entries {
        let path = entry.map_err(|e| io_error(store, "cannot read", e))?.path();
        let generating = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("snap.") && n.ends_with(".generating"));
        if !generating {
            continue;
        }
        let bytes = fs::read(&path).map_err(|e| io_error(&path, "cannot read", e))?;
        let complete = bytes.len() > 12 && {
            let (body, trailer) = bytes.split_at(bytes.len() - 4);
            crc32(&body[..body.len() - 8]).to_le_bytes() == trailer
        };
        if !complete {
            log::warn!(
                "removing {} ({} bytes), a snapshot sled did not finish writing before an \
                 interruption; sled recovers from the previous one and its log",
                path.display(),
                bytes.len()
            );
            fs::remove_file(&path).map_err(|e| io_error(&path, "cannot remove", e))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(store)?;
    }
    Ok(())
}

/// CRC-32 (IEEE, as `crc32fast`, which sled uses): small files, bitwise.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn a_snapshot_sled_did_not_finish_is_removed_and_the_store_opens() {
        use crate::store::{Store, testing};
        // A store sled wrote (this only matters for its move to redb); an
        // open of it after writes snapshots them.
        let sled_store = || {
            let dir = tempfile::tempdir().unwrap();
            let users = testing::sled_store(dir.path(), 3);
            let config = sled::Config::new().path(Store::path_in(dir.path()));
            drop(config.segment_size(32 * 1024).open().unwrap());
            (dir, users)
        };
        let (dir, _) = sled_store();
        let store = Store::path_in(dir.path());
        let snaps = |store: &std::path::Path, suffix: &str| -> Vec<std::path::PathBuf> {
            let mut v: Vec<_> = fs::read_dir(store)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    let n = p.file_name().unwrap().to_str().unwrap();
                    n.starts_with("snap.") && n.ends_with(suffix)
                })
                .collect();
            v.sort();
            v
        };
        let finished = snaps(&store, "").pop().expect("sled wrote a snapshot");
        // A complete one whose rename was lost stays (sled uses it)...
        let complete = store.join("snap.7FFFFFFFFFFFFFFF.generating");
        fs::copy(&finished, &complete).unwrap();
        remove_torn_snapshots(&store).unwrap();
        assert!(complete.exists());
        fs::remove_file(&complete).unwrap();
        // ...an empty or torn one, newer than any, goes: sled would pick it
        // and refuse the store.
        for torn in [Vec::new(), fs::read(&finished).unwrap()[..20].to_vec()] {
            let (dir, users) = sled_store();
            let store = Store::path_in(dir.path());
            fs::write(store.join("snap.7FFFFFFFFFFFFFFF.generating"), torn).unwrap();
            let (s, _) = testing::reopen(dir.path()).unwrap();
            assert!(s.user_by_id(users[1].id).unwrap().is_some());
            drop(s);
            let kept = dir.path().join(crate::store::SLED_KEPT);
            assert!(snaps(&kept, ".generating").is_empty());
        }
    }

    #[test]
    fn a_failed_file_operation_says_what_and_where_and_keeps_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let err = disk_usage(&gone).unwrap_err();
        assert_eq!(err.to_string(), format!("cannot read {}", gone.display()));
        let cause = err.source().unwrap().downcast_ref::<std::io::Error>();
        assert_eq!(cause.unwrap().kind(), std::io::ErrorKind::NotFound);
        assert!(matches!(err, StoreError::Io { .. }));
    }
}
