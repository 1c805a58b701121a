//! Upkeep with the daemon stopped: `check` (the full consistency scan),
//! `compact` (offline rewrite with its atomic swap), and `tune-argon2`
//! (measuring this device's hashing cost).

use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::CommonArgs;
use super::output::{mib, scan_table, size};
use crate::store::maintenance::{self, Outcome};
use crate::store::{Store, StoreError};

/// `engine-auth check`: the full scan, offline.
pub(super) fn check(common: &CommonArgs, fix_counts: bool) -> anyhow::Result<ExitCode> {
    let settings = common.settings()?;
    let dir = &settings.data_dir;
    let store = maintenance::open_for_check(dir, settings.cache_capacity_bytes)?;
    let scan = if fix_counts {
        let scan = store.fix_counts()?;
        println!("counts rewritten");
        scan
    } else {
        store.scan()?
    };
    let disk = maintenance::disk_usage(&Store::path_in(dir))?;
    drop(store);
    println!("{}", scan_table(&scan, disk));
    if scan.is_consistent() {
        println!("consistent");
        return Ok(ExitCode::SUCCESS);
    }
    for p in &scan.problems {
        eprintln!("engine-auth: inconsistent: {p}");
    }
    let unlisted = scan.problem_count - scan.problems.len() as u64;
    if unlisted > 0 {
        eprintln!("engine-auth: ... and {unlisted} more problems");
    }
    eprintln!(
        "engine-auth: the store at {} is inconsistent ({} problems); restore it from a backup",
        dir.display(),
        scan.problem_count
    );
    Ok(ExitCode::FAILURE)
}

/// `--if-over`'s parser: a finite ratio of at least 1.
pub(super) fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 1.0 => Ok(r),
        _ => Err("a number of at least 1 (disk bytes per live byte)".into()),
    }
}

/// `engine-auth compact [--if-over RATIO]`: rewrite the store, offline.
pub(super) fn compact(
    common: &CommonArgs,
    if_over: Option<f64>,
    max_seconds: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let settings = common.settings()?;
    let dir = &settings.data_dir;
    let started = Instant::now();
    let deadline = max_seconds.map(|s| started + Duration::from_secs(s));
    let done = match if_over {
        None => maintenance::compact(dir, settings.cache_capacity_bytes)?,
        Some(ratio) => match maintenance::compact_if_over(
            dir,
            settings.cache_capacity_bytes,
            ratio,
            maintenance::COMPACT_SLACK_BYTES,
            deadline,
        ) {
            // Before the service's very first start: nothing to do, and
            // nothing to alarm anyone about in the journal.
            Err(StoreError::Missing(_)) => {
                println!(
                    "{}: no store yet, nothing to compact",
                    Store::path_in(dir).display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Err(e.into()),
            Ok(Outcome::Compacted(done)) => done,
            Ok(Outcome::NotNeeded(f)) => {
                println!(
                    "{}: {} on disk for {} of live data ({:.1}x): not over {ratio}x + 1 MiB, left as it is",
                    Store::path_in(dir).display(),
                    size(f.disk_bytes),
                    size(f.live_bytes),
                    f.ratio()
                );
                return Ok(ExitCode::SUCCESS);
            }
            Ok(Outcome::OutOfTime(f)) => {
                eprintln!(
                    "engine-auth: compacting {} ({} on disk for {} of live data, {:.1}x) took more than {} s and was abandoned before the swap; the store is unchanged. Run `engine-auth compact` with the daemon stopped.",
                    Store::path_in(dir).display(),
                    size(f.disk_bytes),
                    size(f.live_bytes),
                    f.ratio(),
                    max_seconds.unwrap_or_default()
                );
                return Ok(ExitCode::FAILURE);
            }
        },
    };
    println!(
        "compacted {}: {} -> {} ({} entries in {} trees, {} users) in {:.1} s",
        Store::path_in(dir).display(),
        mib(done.bytes_before),
        mib(done.bytes_after),
        done.entries,
        done.trees,
        done.users,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// `engine-auth tune-argon2`: measure, print the table and the chosen
/// `[argon2]` table, optionally merge it into a config file.
pub(super) fn tune_argon2(
    target_ms: u64,
    max_memory_mib: u32,
    write: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let candidates = crate::tune::tune(target_ms, max_memory_mib)?;
    print!("{}", crate::tune::render_table(&candidates, target_ms));
    let Some(best) = crate::tune::recommend(&candidates, target_ms) else {
        eprintln!(
            "engine-auth: even the OWASP baselines take longer than {target_ms} ms here; raise --target-ms"
        );
        return Ok(ExitCode::FAILURE);
    };
    println!("\n{}", crate::tune::render_toml(&best));
    if let Some(path) = write {
        let existed = path.exists();
        let existing = std::fs::read_to_string(path).unwrap_or_default();
        let merged = crate::tune::merge_into_config(&existing, &best)?;
        std::fs::write(path, merged).with_context(|| format!("cannot write {}", path.display()))?;
        if !existed {
            // The daemon's user reads it (root writes it), and it holds no
            // secret: 0644 as the package installs it, not umask 077's 0600.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
                .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        }
        println!(
            "written to {}; restart the daemon to use it",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
