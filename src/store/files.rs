//! The filesystem steps of compaction (see [`super::maintenance`]): syncing
//! files and directories, giving a copy the original's owner and modes,
//! measuring a store's disk use.

use std::fs;
use std::path::Path;

use super::{Result, StoreError};

/// Gives everything under `copy` the owner and group of the `original`
/// store directory, its mode to the directories and the mode of its `db`
/// file to the files, less anything for group and other: the store holds
/// the signing keys, and a copy never opens what start-up would close
/// (`bootstrap::secure_data_dir`).
pub(super) fn adopt_owner_and_mode(copy: &Path, original: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    const PRIVATE: u32 = 0o7700;
    let stat = |p: &Path| fs::metadata(p).map_err(|e| io_error(p, "cannot stat", e));
    let dir = stat(original)?;
    let file_mode = stat(&original.join("db"))?.mode() & PRIVATE;
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
