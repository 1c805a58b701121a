//! `engine-auth tune-argon2`: measures argon2id on this device and picks the
//! strongest OWASP-equivalent parameters that hash within a time target.
//!
//! OWASP's password storage cheat sheet lists five argon2id settings it
//! considers equivalent: 46 MiB with 1 pass, 19/2, 12/3, 9/4 and 7/5, all
//! with one lane. Each is a *row* here (fixed passes); a candidate is a row's
//! memory scaled up by steps of 1.25 up to `max_memory_mib`, so every
//! candidate is at least as strong as OWASP's baseline. A candidate's
//! strength is its memory divided by its row's baseline memory (the rows are
//! equivalent, so 2.0 on any row means "twice the baseline's cost to an
//! attacker"). Rows are measured from small to large memory and stop at the
//! first candidate over the target, so a slow device measures few.
//!
//! Lanes stay at 1: a lane more makes one hash faster only by using another
//! core, which a login flood needs for the next hash (the daemon caps
//! concurrent hashes at the number of cores).
//!
//! Measured times are wall-clock medians of three hashes (one if the first
//! is already far over the target) in memory that is already resident: the
//! hash's own cost. A daemon that allocated fresh memory for each hash would
//! pay page faults and zeroing on top (a few ms for 19 MiB); the daemon's
//! hashing threads reuse theirs. Memory per hash is the candidate's `memory_kib`; the
//! daemon's peak under a login flood is about `--max-concurrent-hashes`
//! times that.

use std::fmt::Write as _;
use std::time::Instant;

use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::config::{Argon2Options, Argon2Params, Options};

/// OWASP's equivalent argon2id settings: (memory MiB, passes), one lane.
pub const OWASP_ROWS: [(u32, u32); 5] = [(46, 1), (19, 2), (12, 3), (9, 4), (7, 5)];

/// Memory grows by this factor from one candidate of a row to the next.
const STEP: f64 = 1.25;

/// One measured parameter set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub params: Argon2Params,
    /// Median wall-clock time of one hash on this device, milliseconds.
    pub millis: f64,
    /// Memory relative to the OWASP baseline of the same number of passes
    /// (1.0 for the five baselines themselves).
    pub strength: f64,
}

impl Candidate {
    pub fn memory_mib(&self) -> f64 {
        f64::from(self.params.memory_kib) / 1024.0
    }

    pub fn is_owasp_baseline(&self) -> bool {
        OWASP_ROWS.iter().any(|&(m, t)| {
            self.params.memory_kib == m * 1024
                && self.params.iterations == t
                && self.params.parallelism == 1
        })
    }

    pub fn within(&self, target_ms: u64) -> bool {
        self.millis <= target_ms as f64
    }
}

/// The OWASP baseline memory (KiB) for `iterations` passes, if it is a row.
fn baseline_kib(iterations: u32) -> Option<u32> {
    OWASP_ROWS
        .iter()
        .find(|&&(_, t)| t == iterations)
        .map(|&(m, _)| m * 1024)
}

/// Every candidate row by row (each ascending in memory) whose memory fits
/// in `max_memory_mib`. Rows whose baseline does not fit are left out.
pub fn candidate_rows(max_memory_mib: u32) -> Vec<Vec<Argon2Params>> {
    OWASP_ROWS
        .iter()
        .filter(|&&(m, _)| m <= max_memory_mib)
        .map(|&(m0, t)| {
            let mut mibs = vec![m0];
            let mut m = f64::from(m0);
            loop {
                m *= STEP;
                let next = (m.round() as u32).min(max_memory_mib);
                if next <= *mibs.last().unwrap_or(&0) {
                    break;
                }
                mibs.push(next);
                if next == max_memory_mib {
                    break;
                }
            }
            mibs.into_iter()
                .map(|mib| Argon2Params {
                    memory_kib: mib * 1024,
                    iterations: t,
                    parallelism: 1,
                })
                .collect()
        })
        .collect()
}

/// Times hashes in one buffer that only grows, so every measurement is
/// the hash's own work with its memory already resident: no allocator or
/// page-fault effects, which otherwise depend on the libc and on what the
/// process allocated before (glibc timed 19 MiB/t=2 like 19 MiB/t=3 when
/// each hash allocated its own memory).
struct Meter {
    blocks: Vec<Block>,
}

impl Meter {
    fn once(&mut self, p: &Argon2Params) -> anyhow::Result<f64> {
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32))
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters {p:?}: {e}"))?;
        if self.blocks.len() < params.block_count() {
            // Block::default() is zeroed: resizing touches every page now.
            self.blocks.resize(params.block_count(), Block::default());
        }
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))?;
        let mut out = [0u8; 32];
        let start = Instant::now();
        argon
            .hash_password_into_with_memory(
                b"engine-auth tune-argon2 probe",
                &salt,
                &mut out,
                &mut self.blocks,
            )
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
        let took = start.elapsed();
        std::hint::black_box(out);
        Ok(took.as_secs_f64() * 1000.0)
    }

    /// Median of three measurements, or the first alone when it already
    /// takes more than twice the target (no point refining a reject).
    fn measure(&mut self, p: &Argon2Params, target_ms: u64) -> anyhow::Result<f64> {
        let first = self.once(p)?;
        if first > 2.0 * target_ms as f64 {
            return Ok(first);
        }
        let mut v = [first, self.once(p)?, self.once(p)?];
        v.sort_by(f64::total_cmp);
        Ok(v[1])
    }
}

/// Measures this device: every OWASP row from its baseline upwards in
/// memory (within `max_memory_mib`), stopping a row at its first candidate
/// slower than `target_ms`. Returns every measured candidate (also those
/// over the target), row by row. Errors if no OWASP baseline fits in
/// `max_memory_mib` (the smallest needs 7 MiB) or hashing fails.
pub fn tune(target_ms: u64, max_memory_mib: u32) -> anyhow::Result<Vec<Candidate>> {
    let mut meter = Meter { blocks: Vec::new() };
    tune_with(target_ms, max_memory_mib, |p| meter.measure(p, target_ms))
}

/// [`tune`] with the measurement supplied (tests use a cost model).
pub fn tune_with(
    target_ms: u64,
    max_memory_mib: u32,
    mut measure: impl FnMut(&Argon2Params) -> anyhow::Result<f64>,
) -> anyhow::Result<Vec<Candidate>> {
    let rows = candidate_rows(max_memory_mib);
    if rows.is_empty() {
        let smallest = OWASP_ROWS.iter().map(|r| r.0).min().unwrap_or(7);
        anyhow::bail!(
            "--max-memory-mib {max_memory_mib} is below the smallest OWASP setting ({smallest} MiB)"
        );
    }
    let mut out = Vec::new();
    for row in rows {
        for p in row {
            let millis = measure(&p)?;
            let base = baseline_kib(p.iterations).unwrap_or(p.memory_kib).max(1);
            let c = Candidate {
                params: p,
                millis,
                strength: f64::from(p.memory_kib) / f64::from(base),
            };
            out.push(c);
            if !c.within(target_ms) {
                break;
            }
        }
    }
    Ok(out)
}

/// The strongest candidate that hashes within `target_ms`: highest
/// strength, then more memory (what makes GPUs and ASICs pay), then the
/// faster one. `None` if even the baselines are too slow here.
pub fn recommend(candidates: &[Candidate], target_ms: u64) -> Option<Candidate> {
    candidates
        .iter()
        .filter(|c| c.within(target_ms) && c.millis.is_finite())
        .copied()
        .max_by(|a, b| {
            a.strength
                .total_cmp(&b.strength)
                .then(a.params.memory_kib.cmp(&b.params.memory_kib))
                .then(b.millis.total_cmp(&a.millis))
        })
}

/// The `[argon2]` table for config.toml (keys as in
/// [`crate::config::Argon2Options`]), with the measurement as a comment.
pub fn render_toml(c: &Candidate) -> String {
    let p = c.params;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# argon2id for new password hashes, from `engine-auth tune-argon2`: {:.0} ms per hash",
        c.millis
    );
    let _ = writeln!(
        s,
        "# on the measuring device, {:.2}x the OWASP baseline for {} pass{}. Stored hashes",
        c.strength,
        p.iterations,
        if p.iterations == 1 { "" } else { "es" }
    );
    let _ = writeln!(
        s,
        "# with other parameters are upgraded at their next successful login."
    );
    let _ = writeln!(s, "[argon2]");
    let _ = writeln!(s, "memory_kib = {}", p.memory_kib);
    let _ = writeln!(s, "iterations = {}", p.iterations);
    let _ = writeln!(s, "parallelism = {}", p.parallelism);
    s
}

/// `existing` config text with its `[argon2]` table (and the comment lines
/// directly above it) replaced by [`render_toml`]'s, or the table appended.
/// The result is checked to parse as a config file. For `--write-config`.
pub fn merge_into_config(existing: &str, c: &Candidate) -> anyhow::Result<String> {
    let is_header = |l: &str| l.trim_start().starts_with('[');
    let is_argon2_header = |l: &str| {
        let t = l.trim();
        t.strip_prefix('[')
            .and_then(|r| r.split(']').next())
            .is_some_and(|name| name.trim() == "argon2")
            && !t.starts_with("[[")
    };
    let lines: Vec<&str> = existing.lines().collect();
    if lines.iter().any(|l| {
        let t = l.trim_start();
        t.starts_with("argon2.") || t.starts_with("argon2 ") || t.starts_with("argon2=")
    }) {
        anyhow::bail!(
            "the config sets argon2 with dotted keys or an inline table; edit it by hand"
        );
    }
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if is_argon2_header(lines[i]) {
            // Drop the comment block that introduced the old table.
            while out
                .last()
                .is_some_and(|l: &&str| l.trim_start().starts_with('#'))
            {
                out.pop();
            }
            i += 1;
            while i < lines.len() && !is_header(lines[i]) {
                i += 1;
            }
            continue;
        }
        out.push(lines[i]);
        i += 1;
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    let mut text = out.join("\n");
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    text.push_str(&render_toml(c));
    let parsed: Options = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("the merged config does not parse: {e}"))?;
    if parsed.common.argon2 != Argon2Options::from(c.params) {
        anyhow::bail!("the merged config does not carry the new [argon2] table");
    }
    Ok(text)
}

/// A table of the measurements for the CLI to print.
pub fn render_table(candidates: &[Candidate], target_ms: u64) -> String {
    let best = recommend(candidates, target_ms);
    let mut s = String::from("memory MiB  passes  lanes  ms/hash  x OWASP  \n");
    for c in candidates {
        let mark = if Some(*c) == best {
            "<- recommended"
        } else if !c.within(target_ms) {
            "over target"
        } else if c.is_owasp_baseline() {
            "OWASP baseline"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "{:>10.0}  {:>6}  {:>5}  {:>7.1}  {:>7.2}  {}",
            c.memory_mib(),
            c.params.iterations,
            c.params.parallelism,
            c.millis,
            c.strength,
            mark
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic cost model: `ms_per_mib_pass` per MiB and pass.
    fn model(ms_per_mib_pass: f64) -> impl FnMut(&Argon2Params) -> anyhow::Result<f64> {
        move |p| Ok(f64::from(p.memory_kib) / 1024.0 * f64::from(p.iterations) * ms_per_mib_pass)
    }

    #[test]
    fn rows_start_at_the_owasp_baselines_and_respect_the_memory_cap() {
        let rows = candidate_rows(64);
        assert_eq!(rows.len(), 5);
        for (row, &(m0, t)) in rows.iter().zip(OWASP_ROWS.iter()) {
            assert_eq!(row[0].memory_kib, m0 * 1024);
            assert!(row.iter().all(|p| p.iterations == t && p.parallelism == 1));
            assert!(row.iter().all(|p| p.memory_kib <= 64 * 1024));
            assert!(row.windows(2).all(|w| w[0].memory_kib < w[1].memory_kib));
            assert_eq!(row.last().map(|p| p.memory_kib), Some(64 * 1024));
            for p in row {
                let a = argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, None);
                assert!(a.is_ok(), "{p:?}");
            }
        }
        // A 16 MiB cap keeps only the rows whose baseline fits.
        let small = candidate_rows(16);
        assert_eq!(small.len(), 3);
        assert!(small.iter().flatten().all(|p| p.memory_kib <= 16 * 1024));
        assert!(candidate_rows(6).is_empty());
    }

    #[test]
    fn a_fast_device_gets_more_memory_a_slow_one_a_baseline() {
        // Fast: everything up to 64 MiB x 5 passes fits in 250 ms.
        let all = tune_with(250, 64, model(0.5)).unwrap();
        let best = recommend(&all, 250).unwrap();
        assert_eq!(best.params.memory_kib, 64 * 1024);
        assert_eq!(best.params.iterations, 5);
        assert!(best.strength > 9.0);
        assert!(all.iter().all(|c| c.within(250)));

        // Slow: 10 ms per MiB-pass. The baselines cost 350-460 ms; only a
        // target above that finds one, and each row stops after its first
        // candidate over the target.
        let slow = tune_with(250, 64, model(10.0)).unwrap();
        assert_eq!(slow.len(), 5, "each row measured only its baseline");
        assert!(recommend(&slow, 250).is_none());
        let slow = tune_with(400, 64, model(10.0)).unwrap();
        let best = recommend(&slow, 400).unwrap();
        assert!(best.is_owasp_baseline());
        assert!(best.millis <= 400.0);

        // Middling: the recommendation is within target and no other
        // candidate within target is stronger.
        let mid = tune_with(250, 64, model(2.0)).unwrap();
        let best = recommend(&mid, 250).unwrap();
        assert!(best.within(250));
        assert!(
            mid.iter()
                .filter(|c| c.within(250))
                .all(|c| c.strength <= best.strength)
        );
    }

    #[test]
    fn too_little_memory_is_an_error() {
        let err = tune_with(250, 4, model(1.0)).unwrap_err().to_string();
        assert!(err.contains("7 MiB"), "{err}");
    }

    #[test]
    fn measurement_failures_propagate() {
        let r = tune_with(250, 64, |_| Err(anyhow::anyhow!("boom")));
        assert!(r.is_err());
    }

    #[test]
    fn real_measurement_runs() {
        // Smallest legal parameters: checks the plumbing, not the time.
        let mut m = Meter { blocks: Vec::new() };
        let p = |memory_kib| Argon2Params {
            memory_kib,
            iterations: 1,
            parallelism: 1,
        };
        assert!(m.once(&p(8)).is_ok());
        assert!(m.once(&p(1)).is_err());
    }

    #[test]
    fn meter_reuses_and_grows_its_buffer() {
        let mut m = Meter { blocks: Vec::new() };
        let small = Argon2Params {
            memory_kib: 16,
            iterations: 1,
            parallelism: 1,
        };
        assert!(m.measure(&small, 250).unwrap().is_finite());
        assert_eq!(m.blocks.len(), 16);
        let bigger = Argon2Params {
            memory_kib: 64,
            ..small
        };
        m.once(&bigger).unwrap();
        assert_eq!(m.blocks.len(), 64);
        m.once(&small).unwrap();
        assert_eq!(m.blocks.len(), 64, "never shrinks");
        assert!(
            m.once(&Argon2Params {
                memory_kib: 1,
                ..small
            })
            .is_err()
        );
    }

    fn candidate(mib: u32, t: u32, millis: f64) -> Candidate {
        Candidate {
            params: Argon2Params {
                memory_kib: mib * 1024,
                iterations: t,
                parallelism: 1,
            },
            millis,
            strength: f64::from(mib * 1024) / f64::from(baseline_kib(t).unwrap()),
        }
    }

    #[test]
    fn recommend_prefers_strength_then_memory_then_speed() {
        let cs = [
            candidate(19, 2, 100.0),
            candidate(38, 2, 200.0), // strength 2.0
            candidate(14, 5, 240.0), // strength 2.0, less memory
            candidate(64, 1, 300.0), // over target
        ];
        let best = recommend(&cs, 250).unwrap();
        assert_eq!(
            (best.params.memory_kib, best.params.iterations),
            (38 * 1024, 2)
        );
        assert!(recommend(&cs[3..], 250).is_none());
        assert!(recommend(&[], 250).is_none());
    }

    #[test]
    fn render_toml_is_the_config_files_argon2_table() {
        let c = candidate(38, 2, 200.0);
        let text = render_toml(&c);
        let parsed: Options = toml::from_str(&text).unwrap();
        assert_eq!(parsed.common.argon2, Argon2Options::from(c.params));
        assert!(text.contains("[argon2]\nmemory_kib = 38912\niterations = 2\nparallelism = 1\n"));
        // And the daemon accepts those parameters.
        let s = parsed.into_settings().unwrap();
        assert_eq!(s.argon2, c.params);
    }

    #[test]
    fn merge_replaces_an_existing_table_and_keeps_the_rest() {
        let c = candidate(38, 2, 200.0);
        let existing = "listen = \"127.0.0.1:9000\"\n\n# old tuning\n[argon2]\nmemory_kib = 19456\niterations = 2\nparallelism = 1\n";
        let merged = merge_into_config(existing, &c).unwrap();
        let parsed: Options = toml::from_str(&merged).unwrap();
        assert_eq!(parsed.common.argon2, Argon2Options::from(c.params));
        assert_eq!(parsed.listen.unwrap().port(), 9000);
        assert!(!merged.contains("old tuning"));
        assert_eq!(merged.matches("[argon2]").count(), 1);

        let appended = merge_into_config("workers = 3\n", &c).unwrap();
        let parsed: Options = toml::from_str(&appended).unwrap();
        assert_eq!(
            (parsed.workers, parsed.common.argon2),
            (Some(3), Argon2Options::from(c.params))
        );
        assert!(merge_into_config("", &c).unwrap().starts_with("# argon2id"));
        assert!(merge_into_config("argon2.memory_kib = 1\n", &c).is_err());
        assert!(merge_into_config("lisen = 1\n", &c).is_err());
    }

    #[test]
    fn table_marks_the_recommendation() {
        let cs = [candidate(19, 2, 100.0), candidate(24, 2, 300.0)];
        let t = render_table(&cs, 250);
        assert!(t.lines().nth(1).unwrap().ends_with("<- recommended"));
        assert!(t.lines().nth(2).unwrap().ends_with("over target"));
    }
}
