//! `backup` and `restore`. A backup is asked of the running daemon over its
//! admin socket (its bytes come back on the connection, so the CLI writes
//! the file wherever it was asked to, also outside the daemon's state dir)
//! or, when no daemon runs, taken from the store directly: the same
//! `admin::execute` either way. Either way the CLI verifies what it got
//! completely before writing it. `restore` works on a stopped daemon's data
//! dir only.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use super::CommonArgs;
use super::output::size;
use crate::accounts::Accounts;
use crate::admin::{self, Output, Request};
use crate::backups;
use crate::clock::Clock;
use crate::password::Hasher;
use crate::store::backup::{Backup, restore as restore_store};
use crate::store::{Store, StoreError};

/// `engine-auth backup [--output FILE] [--keep N]`.
pub(super) fn backup(
    common: &CommonArgs,
    output: Option<&Path>,
    keep: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let settings = common.settings()?;
    let dir = &settings.data_dir;
    let clock = Clock::system();
    let started = Instant::now();
    let (data, how) = match admin::send(dir, &Request::Backup)? {
        Some(Ok(Output::Backup { data, .. })) => (data.0, "through the running daemon"),
        Some(Ok(other)) => bail!("the daemon answered a backup request with {other}"),
        Some(Err(message)) => bail!("the daemon refused the backup: {message}"),
        None => {
            let store = Store::open_existing(dir, settings.cache_capacity_bytes)?;
            let hasher = Hasher::new(settings.argon2, 1)?;
            let accounts = Accounts {
                store: &store,
                hasher: &hasher,
                clock: &clock,
                tokens: None,
                throttle: None,
            };
            let out = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(admin::execute(accounts, Request::Backup))?;
            match out {
                Output::Backup { data, .. } => (data.0, "from the stopped daemon's store"),
                other => bail!("a backup request gave {other}"),
            }
        }
    };
    // What arrived is what gets restored one day: verified before it is
    // written, as a restore would.
    let verified = Backup::parse(&data)
        .context("the backup just taken does not verify; nothing was written")?;
    let path = match output {
        Some(p) => p.to_path_buf(),
        None => backups::default_path(dir, verified.header.created_at_ms),
    };
    backups::write_atomically(dir, &path, &data)?;
    let h = &verified.header;
    println!(
        "backup of {} users ({} admins), {} signing keys, {} sessions, taken {} at {}, written to {} ({}, mode 0600) in {:.0} ms",
        h.users,
        h.admins,
        verified.count("keys"),
        verified.count("sessions"),
        how,
        h.created_utc,
        path.display(),
        size(data.len() as u64),
        started.elapsed().as_secs_f64() * 1000.0
    );
    if let Some(keep) = keep {
        let removed = backups::prune(dir, keep)?;
        println!(
            "kept the newest {keep} backups in {}; deleted {}",
            backups::dir(dir).display(),
            removed.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `engine-auth restore FILE`: verify, then replace the stopped daemon's
/// store (see `store::backup`).
pub(super) fn restore(common: &CommonArgs, file: &Path) -> anyhow::Result<ExitCode> {
    let settings = common.settings()?;
    let dir = &settings.data_dir;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let backup = Backup::parse(&bytes)
        .with_context(|| format!("{}: nothing was changed", file.display()))?;
    let daemon_running = || {
        bail!(
            "the daemon is running on {} (its admin socket answers, or it holds the store): stop it first (`systemctl stop engine-auth`), then restore; nothing was changed",
            dir.display()
        )
    };
    if std::os::unix::net::UnixStream::connect(admin::socket_path(dir)).is_ok() {
        return daemon_running();
    }
    if !dir.is_dir() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let clock = Clock::system();
    let key = crate::tokens::new_key_record(clock.now(), settings.signing_alg)?;
    let stamp = crate::clock::utc_stamp(clock.now_millis());
    let done = match restore_store(dir, &backup, &key, &stamp, settings.cache_capacity_bytes) {
        Err(StoreError::InUse(_)) => return daemon_running(),
        other => other?,
    };
    let h = &backup.header;
    println!(
        "restored {} (taken {}, engine-auth {}) into {}",
        file.display(),
        h.created_utc,
        h.engine_auth,
        Store::path_in(dir).display()
    );
    println!("restored:");
    println!(
        "  users\t{} ({} admins), with their password hashes, roles and token generations",
        done.users, done.admins
    );
    println!("  username index\t{} entries", done.usernames);
    println!("not restored, on purpose (every token issued before is refused):");
    println!("  sessions\t{} (their refresh tokens)", done.sessions);
    println!("  old-layout refresh tokens\t{}", done.refresh_tokens);
    println!(
        "  signing keys\t{} (replaced by the new key {}: no access or refresh token issued before verifies)",
        done.keys, done.kid
    );
    println!(
        "  API keys\t{} (every key made before is refused: make new ones)",
        done.api_keys
    );
    match &done.previous {
        Some(p) => println!("the replaced store is kept as {}", p.display()),
        None => println!("there was no store to replace"),
    }
    for p in &done.removed {
        println!("deleted the older copy {}", p.display());
    }
    println!("start the daemon (`systemctl start engine-auth`): everyone logs in again");
    Ok(ExitCode::SUCCESS)
}

/// `--output`'s parser: a path naming a file.
pub(super) fn parse_output(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    match p.file_name() {
        Some(_) if !s.ends_with('/') => Ok(p),
        _ => Err("a file path (not a directory)".into()),
    }
}
