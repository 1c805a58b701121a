//! argon2id password verification at the daemon's default parameters
//! (19 MiB, t=2, p=1: `Argon2Params::default()`), the cost of one login.
//! `bench/run.sh` compares the login flood with cores / this time.
//!
//! `verify_blocking` allocates the argon2 memory for each hash (the CLI's
//! path); `Hasher::verify` runs on the hashing threads, which reuse theirs
//! (the login path). Both are measured.
//!
//!   cargo bench --bench password

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine_auth::config::Argon2Params;
use engine_auth::domain::Password;
use engine_auth::password::Hasher;
use std::hint::black_box;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let params = Argon2Params::default();
    let hasher = Hasher::new(params, 1).expect("hasher");
    let pw = "correct horse battery staple";
    let phc = hasher
        .hash_blocking(&Password::parse(pw.into()).expect("password"))
        .expect("hash");

    let mut g = c.benchmark_group("password");
    // Tens of milliseconds per iteration: few samples are enough.
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    let name = format!(
        "verify_blocking (m={} KiB, t={}, p={})",
        params.memory_kib, params.iterations, params.parallelism
    );
    g.bench_function(name.as_str(), |b| {
        b.iter(|| assert!(hasher.verify_blocking(black_box(pw), Some(black_box(&phc)))))
    });
    g.bench_function("verify_blocking, wrong password", |b| {
        b.iter(|| assert!(!hasher.verify_blocking(black_box("wrong password!"), Some(&phc))))
    });
    // The login path: the job goes to the hashing thread, which hashes in
    // the memory it allocated at its first job.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    g.bench_function("verify on a hashing thread (reused memory)", |b| {
        b.iter(|| {
            let slot = hasher.reserve().expect("a place in the hash queue");
            let ok = rt.block_on(hasher.verify(slot, black_box(pw).into(), Some(phc.clone())));
            assert!(ok.expect("verify"))
        })
    });
    g.finish();

    // What the machine really gives a login flood: one verify per core at
    // once (the daemon's default --max-concurrent-hashes). Cores rarely
    // scale linearly for a memory-hard hash (shared memory bandwidth,
    // caches, SMT); `thrpt` is the ceiling for logins/s on this machine.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("password_parallel");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(cores as u64));
    let name = format!("verify_blocking x{cores} threads");
    g.bench_function(name.as_str(), |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for _ in 0..cores {
                    s.spawn(|| assert!(hasher.verify_blocking(black_box(pw), Some(&phc))));
                }
            })
        })
    });
    g.finish();

    // The same through the daemon's hashing threads (one per core, each
    // with its reused memory). Not named password_parallel/: bench/run.sh
    // takes that group's throughput as the bare-threads ceiling.
    let pool = Hasher::new(params, cores).expect("hasher");
    let mut g = c.benchmark_group("password_pool");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(cores as u64));
    let name = format!("verify x{cores} on {cores} hashing threads");
    g.bench_function(name.as_str(), |b| {
        b.iter(|| {
            rt.block_on(async {
                let jobs: Vec<_> = (0..cores)
                    .map(|_| {
                        let (pool, phc) = (pool.clone(), phc.clone());
                        let slot = pool.reserve().expect("a place in the hash queue");
                        tokio::spawn(async move { pool.verify(slot, pw.into(), Some(phc)).await })
                    })
                    .collect();
                for j in jobs {
                    assert!(j.await.expect("join").expect("verify"));
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
