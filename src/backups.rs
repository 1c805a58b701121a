//! The backup files on disk: `<data-dir>/backups/engine-auth-<UTC stamp>.backup`
//! by default, written atomically with mode 0600, pruned by `--keep`, and
//! the newest one named when start-up refuses a damaged store. What a
//! backup holds, and restoring one, is `store::backup`'s.

use anyhow::Context;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// The directory under the data dir that holds the backups.
pub const DIR: &str = "backups";
const PREFIX: &str = "engine-auth-";
const SUFFIX: &str = ".backup";

/// `<data-dir>/backups`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR)
}

/// The default file of a backup taken at `now_millis`.
pub fn default_path(data_dir: &Path, now_millis: u64) -> PathBuf {
    dir(data_dir).join(format!(
        "{PREFIX}{}{SUFFIX}",
        crate::clock::utc_stamp(now_millis)
    ))
}

/// The backups in `<data-dir>/backups` named as [`default_path`] names
/// them, oldest first (their names sort in time order). None if the
/// directory is missing or unreadable.
pub fn list(data_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir(data_dir)) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        })
        .collect();
    found.sort();
    found
}

/// The newest backup in `<data-dir>/backups`.
pub fn newest(data_dir: &Path) -> Option<PathBuf> {
    list(data_dir).pop()
}

/// Deletes all but the newest `keep` backups in `<data-dir>/backups`;
/// returns the deleted files.
pub fn prune(data_dir: &Path, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    let all = list(data_dir);
    let doomed = all[..all.len().saturating_sub(keep)].to_vec();
    for path in &doomed {
        fs::remove_file(path).with_context(|| format!("cannot delete {}", path.display()))?;
    }
    if !doomed.is_empty() {
        sync_dir(&dir(data_dir))?;
    }
    Ok(doomed)
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// Writes `bytes` to `path` atomically: a new file (mode 0600) beside it,
/// written and fsynced, renamed over `path`, and the directory fsynced. A
/// crash leaves either no file or the whole one at `path` (and perhaps a
/// `.…tmp-<pid>` file to delete). Inside `<data-dir>/backups` (made 0700
/// if missing), root gives the directory and the file the data dir's owner,
/// so the daemon's own user (`--keep` from the timer) can prune them.
pub fn write_atomically(data_dir: &Path, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let backups = dir(data_dir);
    let in_backups = parent == backups;
    if in_backups && !backups.is_dir() {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&backups)
            .with_context(|| format!("cannot create {}", backups.display()))?;
        give_data_dir_owner(data_dir, &backups)?;
        sync_dir(data_dir)?;
    }
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| -> anyhow::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        if in_backups {
            give_data_dir_owner(data_dir, &tmp)?;
        }
        fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        sync_dir(&parent)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// When run as root: `path` gets the data dir's owner and group.
fn give_data_dir_owner(data_dir: &Path, path: &Path) -> anyhow::Result<()> {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let owner =
        fs::metadata(data_dir).with_context(|| format!("cannot stat {}", data_dir.display()))?;
    std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid()))
        .with_context(|| format!("cannot give {} the data dir's owner", path.display()))
}

/// The refusal of a damaged store, completed with what to do about it: the
/// newest backup and the exact command that restores it, or that there is
/// none. Other errors (in use, no space, …) are returned as they are.
pub fn explain_refusal(e: StoreError, data_dir: &Path) -> anyhow::Error {
    if e.is_damage() {
        anyhow::anyhow!("{e}. {}", restore_hint(data_dir))
    } else {
        e.into()
    }
}

/// What to do with a damaged store, in one sentence or two.
pub fn restore_hint(data_dir: &Path) -> String {
    match newest(data_dir) {
        Some(path) => format!(
            "The newest backup is {}; with the daemon stopped, restore it with: engine-auth restore {} --data-dir {}",
            path.display(),
            path.display(),
            data_dir.display()
        ),
        None => format!(
            "There is no backup in {} (take them with `engine-auth backup`; the packaged timer does daily)",
            dir(data_dir).display()
        ),
    }
}
