//! Space amplification of the store: on-disk size against the live data
//! (keys + values) after many durable writes through the `Store` API, the
//! same calls the daemon makes. Not a Criterion benchmark: it prints
//! figures. `bench/run.sh --full` runs it.
//!
//!   cargo bench --bench store_space
//!
//! Two workloads, each `ENGINE_AUTH_BENCH_WRITES` writes (default
//! 1,000,000) on a store of 10,000 users, from 4 writer threads:
//! - `overwrite`: role changes on random users (`Store::set_roles`); the
//!   live data stays the same size, so everything above it is space the
//!   engine has not reclaimed.
//! - `rotation`: refresh-token rotations (`Store::exchange_refresh`) on
//!   1,000 sessions, with a simulated clock (100 rotations per virtual
//!   second, 10-minute tokens) and `Store::prune_sessions` every 10,000
//!   writes, so the live data is in a steady state as in production.
//!
//! For each: disk size (apparent and allocated), live bytes, the ratio, and
//! the size after `engine-auth compact` (run on a copy). Shorter runs while
//! iterating: `ENGINE_AUTH_BENCH_WRITES=300000` (`overwrite` has levelled
//! off by then, `rotation` still grows a little), and
//! `ENGINE_AUTH_BENCH_WORKLOADS=overwrite` (or `rotation`).

use engine_auth::domain::{Roles, Username};
use engine_auth::store::maintenance::compact;
use engine_auth::store::{
    DATA_FILE, Db, KeyRecord, KeyState, NewSession, SessionToken, Store, new_user_record,
};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use uuid::Uuid;

const FAKE_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$0123456789abcdefghijklmnopqrstuvwxyzABCDE";
const USERS: usize = 10_000;
const THREADS: u64 = 4;
const SESSIONS: u64 = 1_000;
const CACHE: u64 = 4 * 1024 * 1024;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A small xorshift generator: no extra dependency, reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn hash_of(n: u64) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h[8..16].copy_from_slice(&(n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_be_bytes());
    h
}

/// (apparent bytes, allocated bytes) of every file under `p`.
fn disk_usage(p: &Path) -> (u64, u64) {
    let mut apparent = 0;
    let mut allocated = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                stack.push(e.path());
            } else {
                apparent += m.len();
                allocated += m.blocks() * 512;
            }
        }
    }
    (apparent, allocated)
}

/// Live keys + values over every tree, read from the engine directly (the
/// store must be closed).
fn live_bytes(path: &Path) -> (u64, u64) {
    let db = Db::open(&path.join(DATA_FILE), CACHE).expect("reopen");
    let mut bytes = 0u64;
    let mut entries = 0u64;
    for name in db.tree_names().expect("trees") {
        let tree = db.open_tree(&name).expect("tree");
        for kv in tree.iter() {
            let (k, v) = kv.expect("entry");
            bytes += (k.len() + v.len()) as u64;
            entries += 1;
        }
    }
    (bytes, entries)
}

/// Size after `engine-auth compact` (a copy of the data dir, so the
/// measured store is left as it is).
fn compacted(dir: &Path) -> u64 {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("read dir").flatten() {
            if e.path().is_dir() {
                copy_dir(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
            }
        }
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    copy_dir(&Store::path_in(dir), &Store::path_in(tmp.path()));
    compact(tmp.path(), CACHE).expect("compact").bytes_after
}

fn seeded(dir: &Path) -> (Store, Vec<Uuid>) {
    let (store, _) = Store::open(dir, CACHE).expect("open");
    let now = engine_auth::unix_now();
    let admin = new_user_record(
        &Username::parse("admin").expect("name"),
        FAKE_HASH.into(),
        Roles::ALL,
        now,
    );
    let key = KeyRecord {
        kid: "k1".into(),
        secret_hex: "00".repeat(32),
        alg: Default::default(),
        created_at: now,
        state: KeyState::Active,
        retired_at: None,
    };
    store.initialize(&admin, &key).expect("initialize");
    let store = Arc::new(store);
    let ids = std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = store.clone();
                s.spawn(move || {
                    let mut ids = Vec::new();
                    for i in (1..USERS).filter(|i| *i as u64 % THREADS == t) {
                        let rec = new_user_record(
                            &Username::parse(&format!("user{i:06}@example.com")).expect("name"),
                            FAKE_HASH.into(),
                            Roles::from_bits(0b111),
                            now,
                        );
                        store.create_user(&rec).expect("create");
                        ids.push(rec.id);
                    }
                    ids
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect::<Vec<_>>()
    });
    let store = Arc::try_unwrap(store).ok().expect("sole owner");
    (store, ids)
}

fn report(name: &str, dir: &Path, writes: u64, secs: f64, flushes: u64) {
    let path = Store::path_in(dir);
    let (apparent, allocated) = disk_usage(&path);
    let (live, entries) = live_bytes(&path);
    let after_reopen = disk_usage(&path).0;
    let compact = compacted(dir);
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "{name:>9}: {writes} writes in {secs:.0} s ({:.0}/s, {} store flushes); live data {:.2} MiB in {entries} entries; \
         on disk {:.1} MiB apparent, {:.1} MiB allocated ({:.1}x live; {:.1}x after a reopen); \
         after engine-auth compact: {:.1} MiB ({:.1}x)",
        writes as f64 / secs,
        flushes,
        mib(live),
        mib(apparent),
        mib(allocated),
        apparent as f64 / live.max(1) as f64,
        after_reopen as f64 / live.max(1) as f64,
        mib(compact),
        compact as f64 / live.max(1) as f64,
    );
}

fn overwrite(writes: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, ids) = seeded(dir.path());
    let store = Arc::new(store);
    let ids = Arc::new(ids);
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..THREADS {
            let (store, ids) = (store.clone(), ids.clone());
            s.spawn(move || {
                let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ (th + 1));
                for i in 0..writes / THREADS {
                    let id = ids[(rng.next() % ids.len() as u64) as usize];
                    let roles = Roles::from_bits([0b1u8, 0b11, 0b111, 0b1_0111][(i % 4) as usize]);
                    store.set_roles(id, roles, i).expect("set roles");
                }
            });
        }
    });
    let secs = t.elapsed().as_secs_f64();
    let flushes = store.flush_count();
    drop(Arc::try_unwrap(store).ok().expect("sole owner"));
    report("overwrite", dir.path(), writes, secs, flushes);
}

fn rotation(writes: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, ids) = seeded(dir.path());
    let store = Arc::new(store);
    let start = 1_000_000u64;
    let ttl = 600;
    // Sessions: session s's current token is hash_of(gen) where gen is
    // tracked per session; each thread owns the sessions s % THREADS == t.
    for s in 0..SESSIONS {
        store
            .start_session(&NewSession {
                id: Uuid::from_u64_pair(s, 0),
                user_id: ids[s as usize % ids.len()],
                token_hash: hash_of(s << 32),
                now: start,
                ends_at: start + 365 * 86_400,
                token_exp: start + ttl,
                keep_at_most: usize::MAX,
            })
            .expect("session");
    }
    let done = AtomicU64::new(0);
    let t = Instant::now();
    std::thread::scope(|sc| {
        for th in 0..THREADS {
            let store = store.clone();
            let done = &done;
            sc.spawn(move || {
                let mine: Vec<u64> = (0..SESSIONS).filter(|s| s % THREADS == th).collect();
                let mut gen_of = vec![0u64; mine.len()];
                for i in 0..writes / THREADS {
                    let k = (i as usize) % mine.len();
                    let s = mine[k];
                    let old = hash_of((s << 32) | gen_of[k]);
                    gen_of[k] += 1;
                    let new = hash_of((s << 32) | gen_of[k]);
                    let n = done.fetch_add(1, Ordering::Relaxed);
                    let now = start + n / 100;
                    let old = SessionToken {
                        session: Some(Uuid::from_u64_pair(s, 0)),
                        hash: old,
                    };
                    store
                        .exchange_refresh(&old, &new, now + ttl, now, 10)
                        .expect("exchange");
                    if n.is_multiple_of(10_000) {
                        store.prune_sessions(now, 60).expect("prune");
                    }
                }
            });
        }
    });
    let secs = t.elapsed().as_secs_f64();
    let flushes = store.flush_count();
    drop(Arc::try_unwrap(store).ok().expect("sole owner"));
    report("rotation", dir.path(), writes, secs, flushes);
}

fn main() {
    // `cargo bench` passes "--bench"; `cargo test --benches` would too.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let writes = env_u64("ENGINE_AUTH_BENCH_WRITES", 1_000_000);
    println!(
        "store space amplification: {USERS} users, {writes} durable writes per workload, {THREADS} writer threads"
    );
    let only = std::env::var("ENGINE_AUTH_BENCH_WORKLOADS").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|w| w == name);
    if wanted("overwrite") {
        overwrite(writes);
    }
    if wanted("rotation") {
        rotation(writes);
    }
}
