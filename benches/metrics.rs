//! What `--metrics-listen` adds to every API request: counting it by route,
//! method and status class and timing it (`engine_auth::metrics::Route::
//! record`, per-thread shards), against doing the same with the
//! `prometheus` crate's labelled vectors: looked up on every request
//! (`with_label_values`, as the first version of the metrics did), and
//! looked up once (shared atomic counters). Each runs on one thread, and
//! on two threads at once
//! recording the same route: two workers answering the same hot route,
//! where shared counters bounce between the cores' caches. The figure is
//! the time per request per thread.
//!
//!   cargo bench --bench metrics

use criterion::{Criterion, criterion_group, criterion_main};
use engine_auth::metrics::Route;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const ROUTE: &str = "/api/v1/auth/user/roles/{id}";

/// `iters` calls of `record` on each of `threads` threads started
/// together; the time until the last one is done, divided by `iters`.
fn on_threads(threads: usize, iters: u64, record: &(dyn Fn(u64) + Sync)) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let t = Instant::now();
                    for i in 0..iters {
                        record(i);
                    }
                    t.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .max()
            .unwrap_or_default()
    })
}

fn bench(c: &mut Criterion) {
    let route = Route::new(ROUTE);
    let sharded = |i: u64| {
        route.record(
            black_box("GET"),
            black_box(200),
            Duration::from_micros(200 + i % 64),
        )
    };
    let requests = IntCounterVec::new(
        Opts::new("bench_requests_total", "requests"),
        &["route", "method", "status"],
    )
    .expect("counter vec");
    let latency = HistogramVec::new(
        HistogramOpts::new("bench_latency_seconds", "latency").buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]),
        &["route"],
    )
    .expect("histogram vec");
    let labelled = |i: u64| {
        requests
            .with_label_values(&[black_box(ROUTE), "GET", "2xx"])
            .inc();
        latency
            .with_label_values(&[black_box(ROUTE)])
            .observe(Duration::from_micros(200 + i % 64).as_secs_f64());
    };
    let (counter, histogram) = (
        requests.with_label_values(&[ROUTE, "GET", "2xx"]),
        latency.with_label_values(&[ROUTE]),
    );
    let shared = |i: u64| {
        counter.inc();
        histogram.observe(Duration::from_micros(200 + i % 64).as_secs_f64());
    };
    let mut g = c.benchmark_group("metrics_record");
    for threads in [1, 2] {
        g.bench_function(format!("sharded_{threads}_thread"), |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &sharded))
        });
        g.bench_function(format!("shared_children_{threads}_thread"), |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &shared))
        });
        g.bench_function(format!("labelled_vec_{threads}_thread"), |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &labelled))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
