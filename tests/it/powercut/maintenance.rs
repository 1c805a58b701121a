//! Power cuts during the offline commands: `engine-auth compact` and
//! `engine-auth restore`, each promised safe to interrupt at any point, and
//! during the one-time move of a sled store (what builds before redb
//! wrote) to redb, which the first open of such a store makes (here
//! `engine-auth check`'s).
//!
//! Per mode, on one store that accumulates: the load changes it (and, for
//! a restore, a backup is taken online, then the load changes it some
//! more, so the backup and the store differ), the daemon is stopped
//! cleanly, the command runs and the power goes at a uniformly random
//! moment within the time an uncut run of it took on this store (the
//! first run of each is left to finish, to measure it; a run that ends
//! before its cut measures it again). Then, as after any cut: `check` is
//! clean, the daemon starts (never refused, never empty, never seeded
//! again) and the ledger holds. After a compaction the ledger is the one
//! of the store as the daemon left it. After a restore the store is either
//! the old one (that ledger) or the restored one, told apart by its
//! signing key (a restore makes a new one, the only one): then exactly the
//! backup's users with their passwords and roles at backup time, and no
//! token issued before works. Never a mix: the other state's users,
//! passwords or keys are findings. For a migration, the stopped daemon's
//! store is rewritten as the same records in a sled store (made durable)
//! before the command runs; after the cut the ledger is the one of the
//! store as the daemon left it.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::Output;
use std::time::{Duration, Instant};

use super::fs::Mode;
use super::load::{Client, Finding, Kind, Snapshot, finding};
use super::rng::Rng;
use super::{Tally, World, cut_count, preflight, report, seed};
use crate::harness::text;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Compact,
    Restore,
    Migrate,
}

/// One command's cuts in one mode.
#[derive(Default)]
struct Runs {
    tally: Tally,
    /// Cuts that came while the command ran (the others after it ended).
    interrupted: u64,
    /// Restores: which store came up after the cut.
    old: u64,
    restored: u64,
    /// The last uncut run's duration: cuts come uniformly within it.
    uncut: Duration,
    /// The first, uncut run of each world (which measures `uncut`): its
    /// findings fail the test, it is no cut of the figures.
    measuring: Tally,
}

impl Runs {
    fn figures(&self, what: &str, op: Op, seed: u64) -> String {
        let outcomes = match op {
            Op::Compact | Op::Migrate => String::new(),
            Op::Restore => format!(
                "; the old store came up after {}, the restored one after {}",
                self.old, self.restored
            ),
        };
        let t = &self.tally;
        format!(
            "{}powercut {what}: {} of {} cuts came while it ran (an uncut run took {} ms), the \
             rest after it ended{outcomes}; {} acknowledged changes before; {} fsyncs and {} \
             directory fsyncs; {} store(s) replaced after failing to serve; findings by kind {:?}\n",
            t.survived(what, seed),
            self.interrupted,
            t.cuts,
            self.uncut.as_millis(),
            t.acked,
            t.fsyncs,
            t.fsyncdirs,
            t.fresh_stores,
            t.kinds,
        )
    }
}

#[test]
fn cuts_during_compact_restore_and_migration() {
    preflight();
    // A third of the count for each command, in each mode: 10 with the
    // default, 60 cuts in all.
    let total = cut_count();
    let per = (total / 3).max(1);
    let seed = seed();
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let mut figures = String::new();
    let mut all = Vec::new();
    for mode in [Mode::Strict, Mode::Harsh] {
        let [compact, restore, migrate] = mode_cuts(mode, per, &mut rng);
        let name = mode.name();
        figures.push_str(&compact.figures(&format!("compact {name}"), Op::Compact, seed));
        figures.push_str(&restore.figures(&format!("restore {name}"), Op::Restore, seed));
        figures.push_str(&migrate.figures(
            &format!("migration from sled {name}"),
            Op::Migrate,
            seed,
        ));
        all.extend([compact, restore, migrate]);
    }
    figures.push_str(&format!(
        "powercut compact, restore and migration: {:.1} s\n",
        started.elapsed().as_secs_f64()
    ));
    // Straight to stderr, as the other power-cut tests do.
    let _ = std::io::stderr().write_all(figures.as_bytes());
    let (report, failed) = report(all.iter().flat_map(|r| [&r.measuring, &r.tally]));
    let cuts: u64 = all.iter().map(|r| r.tally.cuts + r.measuring.cuts).sum();
    let replay = format!(
        "replay the same choices with ENGINE_AUTH_POWERCUT_SEED={seed} \
         ENGINE_AUTH_POWERCUT_CUTS={total}; thread timing differs"
    );
    super::judge(
        "compact, restore and migration",
        failed,
        cuts,
        &replay,
        &report,
    );
}

/// `per` cuts during each command in `mode`, in turn, on one store.
fn mode_cuts(mode: Mode, per: u64, rng: &mut Rng) -> [Runs; 3] {
    let mut world = World::new(rng);
    let (mut compact, mut restore, mut migrate) =
        (Runs::default(), Runs::default(), Runs::default());
    for n in 0..=per {
        for (op, runs) in [
            (Op::Compact, &mut compact),
            (Op::Restore, &mut restore),
            (Op::Migrate, &mut migrate),
        ] {
            let label = format!("{} {n}", runs_label(op, n));
            if round(&mut world, op, mode, rng, runs, label, n == 0) {
                runs.tally.fresh_stores += 1;
                world = World::new(rng);
            }
        }
    }
    [compact, restore, migrate]
}

fn runs_label(op: Op, n: u64) -> &'static str {
    match (op, n) {
        (Op::Compact, 0) => "compact (uncut, measuring)",
        (Op::Restore, 0) => "restore (uncut, measuring)",
        (Op::Migrate, 0) => "migration (uncut, measuring)",
        (Op::Compact, _) => "compact cut",
        (Op::Restore, _) => "restore cut",
        (Op::Migrate, _) => "migration cut",
    }
}

/// One round: load, (backup, load,) clean stop, the command cut at random
/// (or, `measuring`, after it ended), the checks. True when the store was
/// beyond use.
fn round(
    world: &mut World,
    mut op: Op,
    mode: Mode,
    rng: &mut Rng,
    runs: &mut Runs,
    label: String,
    measuring: bool,
) -> bool {
    let mut found = Vec::new();
    let acked = |w: &World| w.clients.iter().map(|c| c.acked).sum::<u64>();
    let before = acked(world);
    world.run_clients(rng.range(100, 400), |_| {});
    let backup = world.sb.data().with_file_name("engine-auth.backup");
    let backup = backup.to_str().expect("utf-8 temp path").to_string();
    let mut snapshot: Option<Vec<Snapshot>> = None;
    if op == Op::Restore {
        let out = world.sb.cli(&["backup", "--output", &backup], &[]);
        if out.status.success() {
            snapshot = Some(world.clients.iter().map(Client::snapshot).collect());
            // Changes the backup does not hold: the outcomes differ.
            world.run_clients(rng.range(100, 300), |_| {});
        } else {
            found.push(failed("backup (online)", &out));
            op = Op::Compact;
        }
    }
    found.extend(world.take_refused());
    world.daemon.take().expect("a running daemon").terminate();
    let changes = acked(world) - before;
    if op == Op::Migrate {
        crate::harness::store::downgrade_to_sled(&world.sb.data());
    }

    let args: Vec<&str> = match op {
        Op::Compact => vec!["compact"],
        Op::Restore => vec!["restore", &backup],
        // The first open of a sled store migrates it.
        Op::Migrate => vec!["check"],
    };
    let delay = if measuring {
        Duration::from_secs(120)
    } else {
        let us = runs.uncut.as_micros() as u64;
        Duration::from_micros(rng.range(0, us + 1))
    };
    let (ended, took) = run_cut(&world.sb, &args, delay);
    let succeeded = match &ended {
        Some(out) if out.status.success() => {
            runs.uncut = took;
            true
        }
        Some(out) => {
            found.push(failed(&args.join(" "), out));
            false
        }
        None => {
            if !measuring {
                runs.interrupted += 1;
            }
            false
        }
    };
    let counts = world.pc.counts();
    world.pc.cut(mode, rng);

    let result = match snapshot {
        Some(at) if op == Op::Restore => {
            let mut restored = false;
            let result =
                world.after_cut_with(|w, kids| restore_outcome(w, kids, &at, &mut restored));
            if restored {
                runs.restored += u64::from(!measuring);
            } else {
                runs.old += u64::from(!measuring);
                if succeeded {
                    found.push(finding(
                        Kind::Lost,
                        "`restore` reported success, and after the cut the old store came up",
                    ));
                }
            }
            result
        }
        _ => world.after_cut(),
    };
    let fatal = match result {
        Ok(f) => {
            found.extend(f);
            false
        }
        Err(f) => {
            found.extend(f);
            true
        }
    };
    let tally = if measuring {
        &mut runs.measuring
    } else {
        &mut runs.tally
    };
    tally.cuts += 1;
    tally.acked += changes;
    tally.fsyncs += counts.fsyncs;
    tally.fsyncdirs += counts.fsyncdirs;
    tally.record(label, found);
    fatal
}

/// Which store came up after a cut during a restore, told by `kids`, the
/// key ids `keys list` shows: one no rotation made is the restore's new
/// key. Then the ledgers become the backup's (`at`). Reports a restored
/// store with any other key.
fn restore_outcome(
    w: &mut World,
    kids: &BTreeSet<String>,
    at: &[Snapshot],
    restored: &mut bool,
) -> Vec<Finding> {
    let acknowledged: BTreeSet<&String> = w
        .known_kids
        .iter()
        .chain(w.clients.iter().flat_map(|c| c.kids.iter()))
        .collect();
    if kids.iter().all(|k| acknowledged.contains(k)) {
        return Vec::new(); // the old store (or none: the start reports it)
    }
    *restored = true;
    let mut found = Vec::new();
    if kids.len() != 1 {
        found.push(finding(
            Kind::Phantom,
            format!(
                "the restored store has {} signing keys ({kids:?}): a restore leaves only its \
                 new one",
                kids.len()
            ),
        ));
    }
    for (c, s) in w.clients.iter_mut().zip(at) {
        c.rewind_to(s);
    }
    w.known_kids = kids.clone();
    found
}

/// Runs the CLI with `args` and SIGKILLs it after `delay` unless it ended
/// first. Its output if it ended, and when.
fn run_cut(
    sb: &crate::harness::Sandbox,
    args: &[&str],
    delay: Duration,
) -> (Option<Output>, Duration) {
    let started = Instant::now();
    let deadline = started + delay;
    let mut child = sb.cli_spawn(args, &[]);
    loop {
        if child.try_wait().expect("poll the CLI").is_some() {
            let took = started.elapsed();
            return (Some(child.wait_with_output().expect("CLI output")), took);
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let took = started.elapsed();
            let out = child.wait_with_output().expect("CLI output");
            // It may have ended just before the kill.
            return (out.status.code().map(|_| out), took);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(1)));
    }
}

fn failed(what: &str, out: &Output) -> Finding {
    finding(
        Kind::CommandFailed,
        format!(
            "engine-auth {what} ({}): {} {}",
            out.status,
            text(&out.stdout).trim(),
            text(&out.stderr).trim()
        ),
    )
}
