//! The store's user lookups with 10,000 users (`Store::user_by_id`, used by
//! every authenticated request, and `Store::user_by_name`, used by login),
//! with the daemon's default 4 MiB sled cache.
//!
//!   cargo bench --bench store
//!
//! Set ENGINE_AUTH_BENCH_USERS to change the number of users.

use criterion::{Criterion, criterion_group, criterion_main};
use engine_auth::domain::{Roles, Username};
use engine_auth::store::{KeyRecord, KeyState, Store, new_user_record};
use std::hint::black_box;

/// A PHC string as long as a real default-parameter hash, so records have
/// their real size (hashing 10,000 passwords would take minutes).
const FAKE_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$0123456789abcdefghijklmnopqrstuvwxyzABCDE";

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("ENGINE_AUTH_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, _) = Store::open(dir.path(), 4 * 1024 * 1024).expect("open store");
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
    let mut ids = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    for i in 1..n {
        let name = format!("user{i:06}@example.com");
        let rec = new_user_record(
            &Username::parse(&name).expect("name"),
            FAKE_HASH.into(),
            Roles::from_bits(0b111),
            now,
        );
        store.create_user(&rec).expect("create user");
        ids.push(rec.id);
        names.push(name.to_uppercase());
    }
    eprintln!("store: {} users", store.user_count());

    let mut g = c.benchmark_group(format!("store_{n}_users"));
    let mut i = 0usize;
    g.bench_function("user_by_id (every authenticated request)", |b| {
        b.iter(|| {
            i = (i + 7919) % ids.len();
            store
                .user_by_id(black_box(ids[i]))
                .expect("lookup")
                .expect("user exists")
        })
    });
    let mut j = 0usize;
    g.bench_function("user_by_name (login; case-insensitive)", |b| {
        b.iter(|| {
            j = (j + 7919) % names.len();
            store
                .user_by_name(black_box(&names[j]))
                .expect("lookup")
                .expect("user exists")
        })
    });
    g.bench_function("user_by_name, unknown user", |b| {
        b.iter(|| {
            assert!(
                store
                    .user_by_name(black_box("nobody@example.com"))
                    .expect("lookup")
                    .is_none()
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
