//! Token signing and verification (`engine_auth::tokens::Tokens`): what every
//! login/refresh signs (an access + refresh pair) and what every
//! authenticated request verifies (one access token), with an HS256 key
//! (group `tokens`), an EdDSA key (group `tokens_eddsa`) and an ES256 key
//! (group `tokens_es256`).
//! `verify_refresh` is never cached: it is the full cost of verifying one
//! token (signature, JSON, claims); `verify_access` shows the verified-token
//! cache every authenticated request hits after the first.
//!
//!   cargo bench --bench tokens

use criterion::{Criterion, criterion_group, criterion_main};
use engine_auth::keys::KeyAlg;
use engine_auth::tokens::{Issue, RefreshId, Tokens, new_key_record};
use std::hint::black_box;
use uuid::Uuid;

fn tokens(alg: KeyAlg) -> Tokens {
    let rec = new_key_record(1, alg).expect("key record");
    Tokens::new(std::slice::from_ref(&rec), &rec.kid, 600, 60, alg, 300).expect("keyring")
}

fn bench(c: &mut Criterion) {
    for (group, alg) in [
        ("tokens", KeyAlg::HS256),
        ("tokens_eddsa", KeyAlg::EdDSA),
        ("tokens_es256", KeyAlg::ES256),
    ] {
        bench_alg(c, group, alg);
    }
}

fn bench_alg(c: &mut Criterion, group: &str, alg: KeyAlg) {
    let t = tokens(alg);
    let user = Uuid::new_v4();
    let now = engine_auth::unix_now();
    let rid = RefreshId::new(Uuid::nil()).expect("refresh id");
    let issue = Issue {
        user_id: user,
        roles: engine_auth::domain::Roles::ALL,
        generation: 0,
        now,
        refresh_id: &rid,
        refresh_exp: now + 43_200,
    };
    let pair = t.issue(&issue).expect("issue");

    let mut g = c.benchmark_group(group);
    g.bench_function("sign_pair (access + refresh, as login/refresh do)", |b| {
        b.iter(|| t.issue(black_box(&issue)).expect("issue"))
    });
    g.bench_function("refresh_id (random jti + SHA-256)", |b| {
        b.iter(|| RefreshId::new(Uuid::nil()).expect("refresh id"))
    });
    g.bench_function("verify_access (every authenticated request)", |b| {
        b.iter(|| {
            t.verify_access(black_box(&pair.token), now)
                .expect("valid token")
        })
    });
    g.bench_function("verify_refresh", |b| {
        b.iter(|| {
            t.verify_refresh(black_box(&pair.refresh_token), now)
                .expect("valid token")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
