//! argon2id password hashing, off the async workers and capped.
//!
//! A hash costs ~19 MiB and tens of milliseconds by design, so it never runs
//! on an HTTP worker (it would stall every connection on that worker) and at
//! most `max_concurrent_hashes` run at once (so a login flood queues instead
//! of exhausting memory). The queue is bounded too: a request-path check
//! first takes a [`Slot`] ([`Hasher::reserve`]), refused when
//! [`QUEUED_PER_THREAD`] hashes per thread are already queued or running,
//! so a flood is answered at once (503) instead of making every login wait
//! behind it. Unknown usernames are verified against a dummy hash with the
//! same parameters so both failures cost the same.
//!
//! Request-path hashes run on a small pool of long-lived threads, one per
//! allowed concurrent hash. Each thread allocates the argon2 memory for the
//! configured parameters once, at its first job, and reuses it for every
//! hash after that. Allocating 19 MiB per hash on the runtime's blocking
//! pool instead cost a memset of the zeroed buffer on every login, plus page
//! faults whenever the pages were new to the thread, and glibc kept each
//! blocking thread's freed buffer: a login flood grew RSS by 19 MiB per
//! thread the runtime had used for a hash (1.6-3.3 GiB measured). With the
//! pool, hashing memory is bounded by `max_concurrent_hashes` × the
//! configured memory, on any libc. `hash_blocking`/`verify_blocking` (CLI,
//! start-up, admin socket) still allocate per call.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use crate::config::Argon2Params;
use crate::domain::Password;

#[derive(Clone)]
pub struct Hasher {
    core: Arc<Core>,
    pool: Arc<Pool>,
}

/// What a hash job needs: shared with the pool threads.
struct Core {
    params: Params,
    dummy: OnceLock<String>,
    /// What verifications have cost, per parameter set in use
    /// ([`Hasher::failure_floor`]).
    timings: Mutex<Timings>,
}

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn random_salt() -> anyhow::Result<SaltString> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))?;
    SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("salt encoding: {e}"))
}

/// `memory` when it is large enough for `params`, else a buffer allocated for
/// this one hash (a thread without memory of its own, or a stored hash with
/// more memory than the configured parameters).
fn with_memory<T>(params: &Params, memory: &mut [Block], f: impl FnOnce(&mut [Block]) -> T) -> T {
    let needed = params.block_count();
    match memory.get_mut(..needed) {
        Some(m) => f(m),
        None => f(&mut vec![Block::default(); needed]),
    }
}

/// A new PHC string for `password` with `params`, in the format of
/// `argon2`'s `PasswordHasher::hash_password`:
/// `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`.
fn hash_phc(params: &Params, password: &[u8], memory: &mut [Block]) -> anyhow::Result<String> {
    let salt = random_salt()?;
    let mut salt_bytes = [0u8; 16];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("salt encoding: {e}"))?;
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let argon = argon2(params.clone());
    let output = with_memory(params, memory, |m| {
        Output::init_with(output_len, |out| {
            Ok(argon.hash_password_into_with_memory(password, salt_bytes, out, m)?)
        })
    })
    .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    phc_string(params, &salt, output)
}

fn phc_string(params: &Params, salt: &SaltString, output: Output) -> anyhow::Result<String> {
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// A PHC string with the configured parameters, a random salt and a random
/// output: verifying against it costs exactly what a real verify costs and
/// fails (it is the hash of no password, and `phc_is_real` refuses it
/// anyway). Made without hashing, so start-up never allocates a hash's
/// memory for it.
fn dummy_phc(params: &Params) -> anyhow::Result<String> {
    let salt = random_salt()?;
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    getrandom::fill(&mut out).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))?;
    let output = Output::new(&out).map_err(|e| anyhow::anyhow!("dummy hash: {e}"))?;
    phc_string(params, &salt, output)
}

/// Verifies `password` against a stored PHC string, as `argon2`'s
/// `PasswordVerifier` does (the stored algorithm, version, parameters, salt
/// and output length; constant-time comparison), but in `memory` when it is
/// large enough. Unparseable or non-argon2 hashes fail.
fn verify_phc(password: &[u8], phc: &str, memory: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    let computed = with_memory(&params, memory, |m| {
        Output::init_with(expected.len(), |out| {
            Ok(argon.hash_password_into_with_memory(password, salt, out, m)?)
        })
    });
    // `Output`'s equality is constant-time (`subtle`).
    computed.is_ok_and(|c| c == expected)
}

impl Core {
    fn dummy_hash(&self) -> &str {
        self.dummy.get_or_init(|| {
            match dummy_phc(&self.params) {
                Ok(h) => h,
                // Without a random source hashing fails anyway; keep a
                // parseable placeholder so verification still costs time.
                Err(_) => "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$invalid".into(),
            }
        })
    }

    fn hash(&self, password: &Password, memory: &mut [Block]) -> anyhow::Result<String> {
        hash_phc(&self.params, password.expose().as_bytes(), memory)
    }

    fn verify(&self, password: &str, phc: Option<&str>, memory: &mut [Block]) -> bool {
        let phc = match phc {
            Some(p) => p,
            None => self.dummy_hash(),
        };
        let started = Instant::now();
        let ok = verify_phc(password.as_bytes(), phc, memory);
        if let Some(params) = params_of(phc) {
            self.lock_timings().observe(&params, started.elapsed());
        }
        ok && phc_is_real(phc, self.dummy.get())
    }

    fn lock_timings(&self) -> std::sync::MutexGuard<'_, Timings> {
        match self.timings.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

fn params_of(phc: &str) -> Option<Params> {
    PasswordHash::new(phc)
        .and_then(|h| Params::try_from(&h))
        .ok()
}

/// argon2's work grows with memory × passes.
fn cost(p: &Params) -> f64 {
    f64::from(p.m_cost()) * f64::from(p.t_cost())
}

/// Verification times, learnt from the verifications themselves (no
/// hashing at start-up: it would cost start-up time and memory).
#[derive(Default)]
struct Timings {
    /// Every parameter set the store's hashes use (and the configured one),
    /// with the moving average of its verifications, once seen.
    sets: Vec<(Params, Option<f64>)>,
    /// Seconds per unit of [`cost`], averaged over every verification: the
    /// estimate for a set not verified yet.
    per_cost: Option<f64>,
    /// The store's sets are in `sets` ([`Hasher::learn_stored`]).
    learnt: bool,
}

impl Timings {
    fn observe(&mut self, params: &Params, took: Duration) {
        let secs = took.as_secs_f64();
        let average = |old: Option<f64>, new: f64| Some(old.map_or(new, |o| 0.8 * o + 0.2 * new));
        self.per_cost = average(self.per_cost, secs / cost(params).max(1.0));
        match self.sets.iter_mut().find(|(p, _)| p == params) {
            Some((_, t)) => *t = average(*t, secs),
            None => self.sets.push((params.clone(), Some(secs))),
        }
    }

    /// The slowest verification of any set in use: measured, or estimated
    /// from its cost.
    fn slowest(&self) -> Duration {
        let Some(per_cost) = self.per_cost else {
            return Duration::ZERO;
        };
        let secs = self
            .sets
            .iter()
            .map(|(p, t)| t.unwrap_or(per_cost * cost(p)))
            .fold(0.0, f64::max);
        Duration::try_from_secs_f64(secs).unwrap_or_default()
    }
}

/// A job gets the thread's argon2 memory and sends its own reply.
type Job = Box<dyn FnOnce(&mut [Block]) + Send>;

/// Hashes that may be queued or running per hashing thread before
/// [`Hasher::reserve`] refuses: a login that gets a slot waits for at most
/// this many hashes per thread ahead of it.
pub const QUEUED_PER_THREAD: usize = 8;

/// The hash queue is full: the caller answers "busy, retry shortly" (503).
#[derive(Debug, thiserror::Error)]
#[error("the password hashing queue is full")]
pub struct QueueFull;

/// A place in the hash queue, taken before a hash is queued and given back
/// when the job has run, was skipped, or was dropped with the queue.
#[must_use]
pub struct Slot {
    queued: Arc<AtomicUsize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `threads` long-lived threads taking jobs from one queue. The queue is
/// what caps concurrent hashes. When the last `Hasher` clone is dropped the
/// queue closes and the threads exit, freeing their memory.
struct Pool {
    jobs: mpsc::Sender<Job>,
    /// Jobs queued or running (each holds a [`Slot`]).
    queued: Arc<AtomicUsize>,
    /// Most jobs [`Pool::reserve`] lets in.
    cap: usize,
}

impl Pool {
    /// A slot if fewer than `cap` jobs are queued or running.
    fn reserve(&self) -> Result<Slot, QueueFull> {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.cap).then_some(n + 1)
            })
            .map_err(|_| QueueFull)?;
        Ok(Slot {
            queued: self.queued.clone(),
        })
    }

    /// A slot however full the queue is (operators, and hashes that follow
    /// a checked password): counted, never refused.
    fn slot(&self) -> Slot {
        self.queued.fetch_add(1, Ordering::AcqRel);
        Slot {
            queued: self.queued.clone(),
        }
    }

    fn start(threads: usize, block_count: usize) -> anyhow::Result<Pool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut started: usize = 0;
        let mut last_error = None;
        for i in 0..threads {
            let queue = queue.clone();
            match std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&queue, block_count))
            {
                Ok(_) => started += 1,
                Err(e) => last_error = Some(e),
            }
        }
        match last_error {
            None => {}
            Some(e) if started == 0 => {
                anyhow::bail!("cannot start the password hashing threads: {e}")
            }
            Some(e) => log::warn!(
                "started {started} of {threads} password hashing threads (then: {e}); \
                 at most {started} hashes will run at once"
            ),
        }
        Ok(Pool {
            jobs,
            queued: Arc::new(AtomicUsize::new(0)),
            cap: started.saturating_mul(QUEUED_PER_THREAD),
        })
    }

    /// Runs `f` on a pool thread with that thread's memory. An error, never a
    /// hang, if the job panics or the pool's threads are gone. A job whose
    /// caller went away before it started (a client that disconnected while
    /// queued) is skipped.
    async fn run<T: Send + 'static>(
        &self,
        slot: Slot,
        f: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (reply, result) = oneshot::channel();
        // The slot goes back once the hash is done (before the reply, so a
        // caller that got its answer never sees its own job still counted),
        // or with the job when it is skipped or dropped.
        let job: Job = Box::new(move |memory| {
            if reply.is_closed() {
                return;
            }
            let out = f(memory);
            drop(slot);
            let _ = reply.send(out);
        });
        self.jobs
            .send(job)
            .map_err(|_| anyhow::anyhow!("the password hashing threads are gone"))?;
        // A panicking job drops `reply` while unwinding: the caller gets an
        // error and the thread carries on with the next job.
        result
            .await
            .map_err(|_| anyhow::anyhow!("password hashing failed (the hash job panicked)"))
    }
}

fn worker(queue: &Mutex<mpsc::Receiver<Job>>, block_count: usize) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        // The lock is held only while waiting for the next job; the other
        // idle threads wait on the lock. Nothing panics while holding it,
        // but a poisoned lock still holds a usable queue.
        let job = match queue.lock() {
            Ok(q) => q.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else {
            return; // every Hasher is gone
        };
        if memory.is_empty() {
            // Once per thread, at its first job, so an idle daemon does not
            // hold the memory. Block::default() is zeroed: this touches every
            // page now rather than on each hash.
            memory = vec![Block::default(); block_count];
        }
        let _timer = crate::metrics::hash_started();
        if catch_unwind(AssertUnwindSafe(|| job(&mut memory))).is_err() {
            log::error!("a password hashing job panicked; its request failed");
        }
    }
}

impl Hasher {
    /// Starts `max_concurrent` hashing threads. Each allocates the memory
    /// for one hash with `p` at its first job and keeps it.
    pub fn new(p: Argon2Params, max_concurrent: usize) -> anyhow::Result<Hasher> {
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let pool = Pool::start(max_concurrent.max(1), params.block_count())?;
        Ok(Hasher {
            core: Arc::new(Core {
                params,
                dummy: OnceLock::new(),
                timings: Mutex::new(Timings::default()),
            }),
            pool: Arc::new(pool),
        })
    }

    /// Hashes on the calling thread, in memory allocated for this hash: for
    /// the CLI and start-up, not for request handlers.
    pub fn hash_blocking(&self, password: &Password) -> anyhow::Result<String> {
        self.core.hash(password, &mut [])
    }

    /// Verifies on the calling thread, in memory allocated for this hash.
    /// `None` checks against the dummy hash and always fails. A stored hash
    /// that cannot be parsed fails too.
    pub fn verify_blocking(&self, password: &str, phc: Option<&str>) -> bool {
        self.core.verify(password, phc, &mut [])
    }

    /// Whether a stored hash should be recomputed with the configured
    /// parameters (older or different ones, or not argon2id at all).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false; // unreadable: verification fails anyway
        };
        let Ok(stored) = Params::try_from(&parsed) else {
            return true;
        };
        let params = &self.core.params;
        parsed.algorithm.as_str() != "argon2id"
            || stored.m_cost() != params.m_cost()
            || stored.t_cost() != params.t_cost()
            || stored.p_cost() != params.p_cost()
    }

    /// Computes the dummy hash now, so the first unknown-user login is not
    /// slower than the rest.
    pub fn warm_up(&self) {
        let _ = self.core.dummy_hash();
    }

    /// Learns which argon2 parameter sets the store's hashes use (`stored`;
    /// the configured set always counts): every failed login then lasts at
    /// least as long as a verification with the slowest of them
    /// ([`Hasher::failure_floor`]). Without it, after a parameter change
    /// (`tune-argon2`), a wrong password for a user with an older hash takes
    /// that hash's time while an unknown user takes the dummy's: the
    /// difference tells which usernames exist. Times are learnt from the
    /// verifications as they happen (a set not verified yet is estimated
    /// from its cost). Called at the first failed login, so start-up
    /// neither hashes nor reads every user.
    pub fn learn_stored<'a>(&self, stored: impl IntoIterator<Item = &'a str>) {
        let mut sets = vec![self.core.params.clone()];
        for params in stored.into_iter().filter_map(params_of) {
            if !sets.contains(&params) {
                sets.push(params);
            }
        }
        let mut t = self.core.lock_timings();
        for params in sets {
            if !t.sets.iter().any(|(p, _)| *p == params) {
                t.sets.push((params, None));
            }
        }
        t.learnt = true;
        log::info!("argon2: {} parameter set(s) in use", t.sets.len());
    }

    /// Whether [`Hasher::learn_stored`] has run.
    pub fn knows_stored(&self) -> bool {
        self.core.lock_timings().learnt
    }

    /// How long every failed login takes at least (see [`Hasher::learn_stored`]).
    pub fn failure_floor(&self) -> Duration {
        self.core.lock_timings().slowest()
    }

    /// Hashes a new password on a hashing thread (at most
    /// `max_concurrent_hashes` at once, the rest queue). Never refused: new
    /// passwords come from admins, operators, or after a checked one.
    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let core = self.core.clone();
        self.pool
            .run(self.pool.slot(), move |memory| core.hash(&password, memory))
            .await?
    }

    /// A place in the hash queue for one [`Hasher::verify`], unless
    /// [`QUEUED_PER_THREAD`] hashes per thread are already queued or running.
    pub fn reserve(&self) -> Result<Slot, QueueFull> {
        self.pool.reserve()
    }

    /// Hashes queued or running now (the metrics' gauges).
    pub fn queued_or_running(&self) -> usize {
        self.pool.queued.load(Ordering::Acquire)
    }

    /// Verifies on a hashing thread (at most `max_concurrent_hashes` at
    /// once, the rest queue), in the place `slot` holds.
    pub async fn verify(
        &self,
        slot: Slot,
        password: String,
        phc: Option<String>,
    ) -> anyhow::Result<bool> {
        let core = self.core.clone();
        self.pool
            .run(slot, move |memory| {
                core.verify(&password, phc.as_deref(), memory)
            })
            .await
    }
}

/// The dummy hash must never verify as a real account, even if an attacker
/// somehow guessed its random password.
fn phc_is_real(phc: &str, dummy: Option<&String>) -> bool {
    dummy.is_none_or(|d| d != phc)
}

/// The verifier the `argon2` crate ships, for cross-checking `verify_phc`.
#[cfg(test)]
fn stock_verify(password: &str, phc: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher;

    fn params(memory_kib: u32) -> Argon2Params {
        Argon2Params {
            memory_kib,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn cheap() -> Hasher {
        Hasher::new(params(256), 2).unwrap()
    }

    fn pw(s: &str) -> Password {
        Password::parse(s.into()).unwrap()
    }

    #[test]
    fn hash_is_argon2id_phc_and_verifies_exactly() {
        let h = cheap();
        let phc = h.hash_blocking(&pw("correct horse")).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{phc}");
        assert!(h.verify_blocking("correct horse", Some(&phc)));
        assert!(!h.verify_blocking("correct horse ", Some(&phc)));
        assert!(!h.verify_blocking("Correct horse", Some(&phc)));
        assert!(!h.verify_blocking("correct horse", Some("garbage")));
        assert!(!h.verify_blocking("anything", None));
        assert!(!h.needs_rehash(&phc));
        let stronger = Hasher::new(params(512), 1).unwrap();
        assert!(stronger.needs_rehash(&phc));
        assert!(
            stronger.verify_blocking("correct horse", Some(&phc)),
            "old hashes still verify"
        );
    }

    #[test]
    fn default_parameters_give_the_documented_phc_format() {
        let h = Hasher::new(Argon2Params::default(), 1).unwrap();
        let phc = h.hash_blocking(&pw("correct horse")).unwrap();
        let fields: Vec<&str> = phc.split('$').collect();
        assert_eq!(fields[..4], ["", "argon2id", "v=19", "m=19456,t=2,p=1"]);
        assert_eq!(fields.len(), 6, "{phc}");
        assert_eq!(fields[4].len(), 22, "16-byte salt, base64 without padding");
        assert_eq!(fields[5].len(), 43, "32-byte hash, base64 without padding");
        assert!(stock_verify("correct horse", &phc));
    }

    /// Both directions against the `argon2` crate's own hasher and verifier,
    /// in reused memory (larger than needed, and dirty) and in fresh memory.
    #[test]
    fn cross_checks_with_the_stock_hasher_and_verifier() {
        let configured = Params::new(256, 1, 1, None).unwrap();
        let mut memory = vec![Block::default(); 2 * configured.block_count()];
        for _ in 0..3 {
            let ours = hash_phc(&configured, b"correct horse", &mut memory).unwrap();
            assert!(stock_verify("correct horse", &ours), "{ours}");
            assert!(!stock_verify("correct horsf", &ours));
            assert!(verify_phc(b"correct horse", &ours, &mut memory));
            assert!(verify_phc(b"correct horse", &ours, &mut []));
        }

        let salt = random_salt().unwrap();
        let mut stock: Vec<String> = Vec::new();
        for (alg, version, m, t, p, len) in [
            (Algorithm::Argon2id, Version::V0x13, 256, 1, 1, None),
            (Algorithm::Argon2id, Version::V0x13, 128, 3, 1, None), // smaller: fits
            (Algorithm::Argon2id, Version::V0x13, 1024, 1, 2, None), // larger: allocates
            (Algorithm::Argon2id, Version::V0x13, 256, 1, 1, Some(16)),
            (Algorithm::Argon2id, Version::V0x13, 256, 1, 1, Some(64)),
            (Algorithm::Argon2id, Version::V0x10, 256, 2, 1, None),
            (Algorithm::Argon2i, Version::V0x13, 256, 1, 1, None),
            (Algorithm::Argon2d, Version::V0x13, 256, 1, 1, None),
        ] {
            let params = Params::new(m, t, p, len).unwrap();
            let h = Argon2::new(alg, version, params)
                .hash_password(b"correct horse", &salt)
                .unwrap()
                .to_string();
            stock.push(h);
        }
        // Associated data is part of the hash.
        let mut b = argon2::ParamsBuilder::new();
        b.m_cost(256).t_cost(1).p_cost(1);
        b.data(argon2::AssociatedData::new(b"ad").unwrap());
        let params = b.build().unwrap();
        stock.push(
            argon2(params)
                .hash_password(b"correct horse", &salt)
                .unwrap()
                .to_string(),
        );
        let mut dirty = vec![Block::default(); configured.block_count()];
        hash_phc(&configured, b"leave something behind", &mut dirty).unwrap();
        for phc in &stock {
            assert!(stock_verify("correct horse", phc), "{phc}");
            assert!(verify_phc(b"correct horse", phc, &mut dirty), "{phc}");
            assert!(verify_phc(b"correct horse", phc, &mut []), "{phc}");
            assert!(!verify_phc(b"correct horsE", phc, &mut dirty), "{phc}");
            assert!(!verify_phc(b"", phc, &mut dirty), "{phc}");
        }
        // Tampered: another hash, another salt, a parameter, no hash.
        let good = &stock[0];
        let (head, hash) = good.rsplit_once('$').unwrap();
        let other = format!("{head}${}", &stock[6].rsplit_once('$').unwrap().1);
        let fields: Vec<&str> = good.split('$').collect();
        for bad in [
            other,
            good.replace(fields[4], "c29tZXNhbHRzb21lc2FsdA"),
            good.replace("t=1", "t=2"),
            head.to_string(),
            good.replace("argon2id", "argon2x"),
            good.replace("argon2id", "scrypt"),
            format!("{head}${}", &hash[..hash.len() - 2]),
        ] {
            assert!(!verify_phc(b"correct horse", &bad, &mut dirty), "{bad}");
            assert!(!stock_verify("correct horse", &bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn pool_hashes_and_verifies_like_the_blocking_path() {
        let h = cheap();
        let phc = h.hash(pw("correct horse")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{phc}");
        assert!(h.verify_blocking("correct horse", Some(&phc)));
        assert!(stock_verify("correct horse", &phc));
        let blocking = h.hash_blocking(&pw("correct horse")).unwrap();
        for stored in [&phc, &blocking] {
            let ok = h.verify(
                h.reserve().unwrap(),
                "correct horse".into(),
                Some(stored.clone()),
            );
            assert!(ok.await.unwrap());
            let wrong = h.verify(
                h.reserve().unwrap(),
                "correct horse!".into(),
                Some(stored.clone()),
            );
            assert!(!wrong.await.unwrap());
        }
        assert!(
            !h.verify(h.reserve().unwrap(), "x".into(), Some("garbage".into()))
                .await
                .unwrap()
        );
        // Older parameters verify on the pool too.
        let old = Hasher::new(params(512), 1).unwrap();
        let old_phc = old.hash_blocking(&pw("correct horse")).unwrap();
        assert!(
            h.verify(h.reserve().unwrap(), "correct horse".into(), Some(old_phc))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_dummy_hash_never_verifies() {
        let h = cheap();
        assert!(
            !h.verify(h.reserve().unwrap(), "anything".into(), None)
                .await
                .unwrap()
        );
        let dummy = h.core.dummy.get().unwrap().clone();
        assert!(
            dummy.starts_with("$argon2id$v=19$m=256,t=1,p=1$"),
            "{dummy}"
        );
        assert!(!h.needs_rehash(&dummy), "same cost as a real verify");
        // Even with its password, the dummy is not an account.
        assert!(!h.verify_blocking("anything", Some(&dummy)));
        assert!(
            !h.verify(h.reserve().unwrap(), "x".into(), Some(dummy))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn many_concurrent_jobs_all_answer() {
        let h = cheap();
        let phc = h.hash_blocking(&pw("correct horse")).unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (h, phc) = (h.clone(), phc.clone());
            let pw = if i % 2 == 0 { "correct horse" } else { "wrong" };
            tasks.push(tokio::spawn(async move {
                h.verify(h.reserve().unwrap(), pw.into(), Some(phc)).await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap().unwrap(), i % 2 == 0);
        }
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_and_the_pool_carries_on() {
        let h = Hasher::new(params(256), 1).unwrap();
        let boom: fn() -> u8 = || panic!("test panic in a hash job");
        let err = h
            .pool
            .run(h.pool.slot(), move |_| boom())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        // The single thread survived it.
        let phc = h.hash(pw("correct horse")).await.unwrap();
        assert!(
            h.verify(h.reserve().unwrap(), "correct horse".into(), Some(phc))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn no_threads_means_an_error_not_a_hang() {
        let (jobs, queue) = mpsc::channel::<Job>();
        drop(queue);
        let pool = Pool {
            jobs,
            queued: Arc::default(),
            cap: 1,
        };
        let err = pool
            .run(pool.slot(), |_: &mut [Block]| 1)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");

        // Threads that exit with jobs still queued drop them: error too.
        let (jobs, queue) = mpsc::channel::<Job>();
        let pool = Pool {
            jobs,
            queued: Arc::default(),
            cap: 1,
        };
        let call = pool.run(pool.slot(), |_: &mut [Block]| 1);
        let drop_queue = async move {
            tokio::task::yield_now().await;
            drop(queue);
        };
        let (result, ()) = tokio::join!(call, drop_queue);
        assert!(result.is_err());
        assert_eq!(pool.queued.load(Ordering::Acquire), 0, "slots back");
    }

    #[tokio::test]
    async fn the_queue_refuses_beyond_its_cap_and_every_slot_comes_back() {
        let h = Hasher::new(params(256), 1).unwrap();
        let queued = || h.pool.queued.load(Ordering::Acquire);
        let slots: Vec<Slot> = (0..QUEUED_PER_THREAD)
            .map(|_| h.reserve().unwrap())
            .collect();
        assert!(h.reserve().is_err(), "full");
        // New passwords are hashed however full the queue is.
        let phc = h.hash(pw("correct horse")).await.unwrap();
        drop(slots);
        assert_eq!(queued(), 0);
        let slot = h.reserve().unwrap();
        assert!(
            h.verify(slot, "correct horse".into(), Some(phc))
                .await
                .unwrap()
        );
        assert_eq!(queued(), 0, "given back when the job ran");

        // A caller that went away while its job waited (a client that hung
        // up): the slot comes back when the thread skips the job.
        let (release, wait) = mpsc::channel::<()>();
        let blocker: Job = Box::new(move |_| {
            let _ = wait.recv();
        });
        h.pool.jobs.send(blocker).unwrap();
        let gone = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            h.verify(h.reserve().unwrap(), "x".into(), None),
        )
        .await;
        assert!(gone.is_err(), "queued behind the blocker");
        assert_eq!(queued(), 1, "held by the queued job");
        release.send(()).unwrap();
        h.hash(pw("after the skipped job")).await.unwrap();
        assert_eq!(queued(), 0);
        // A verify never polled gives its slot back when dropped.
        drop(h.verify(h.reserve().unwrap(), "x".into(), None));
        assert_eq!(queued(), 0);
    }
}
