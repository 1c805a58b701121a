//! Requests by route template, method and status class, and their latency
//! by route: the two metrics every API request touches, kept so that the
//! request path neither hashes labels, takes a lock nor writes a cache
//! line another core writes.
//!
//! Each route's figures are split in shards, one per thread that answers
//! requests (`SHARDS` of them; more threads share shards, still exact).
//! A request adds to its own thread's shard with three uncontended atomic
//! additions; a scrape sums the shards (`Requests`, a Prometheus
//! collector). The exposition is what a `IntCounterVec` and a
//! `HistogramVec` with the same names and labels would give.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The methods and status classes a request is counted under.
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other",
];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// The latency histogram's upper bounds, seconds.
const BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Shards per route: enough for a worker per core on the gateways this
/// runs on.
const SHARDS: usize = 8;

const REQUESTS_NAME: &str = "engine_auth_http_requests_total";
const REQUESTS_HELP: &str = "HTTP requests answered, by route template, method and status class";
const LATENCY_NAME: &str = "engine_auth_http_request_duration_seconds";
const LATENCY_HELP: &str = "Time from a request's head to its response, by route template";

/// One thread's figures for one route. Aligned to its own cache lines, so
/// two threads' shards never share one.
#[repr(align(128))]
#[derive(Default)]
struct Cells {
    requests: [[AtomicU64; STATUS_CLASSES.len()]; METHODS.len()],
    /// Requests per latency bucket, not cumulative; the last one is above
    /// every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// One route template's request metrics.
pub struct RouteMetrics {
    pattern: &'static str,
    shards: [OnceLock<Box<Cells>>; SHARDS],
}

/// Every route's metrics: the patterns registered (`route`) and the one
/// for paths no route serves, so scanners cannot grow the label set.
static ROUTES: Mutex<Vec<&'static RouteMetrics>> = Mutex::new(Vec::new());
static UNMATCHED: RouteMetrics = RouteMetrics::new("unmatched");

/// The one `RouteMetrics` for `pattern`, shared by every worker's copy of
/// the routes (a few dozen, made once: they live for the process).
pub fn route(pattern: &'static str) -> &'static RouteMetrics {
    let mut routes = ROUTES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = routes.iter().find(|r| r.pattern == pattern) {
        return r;
    }
    let r: &'static RouteMetrics = Box::leak(Box::new(RouteMetrics::new(pattern)));
    routes.push(r);
    r
}

pub fn unmatched() -> &'static RouteMetrics {
    &UNMATCHED
}

/// This thread's shard: threads take them in turn as they first record.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

impl RouteMetrics {
    const fn new(pattern: &'static str) -> RouteMetrics {
        RouteMetrics {
            pattern,
            shards: [const { OnceLock::new() }; SHARDS],
        }
    }

    /// One answered request.
    pub fn record(&self, method: &str, status: u16, took: Duration) {
        let method = METHODS[..METHODS.len() - 1]
            .iter()
            .position(|&known| known == method)
            .unwrap_or(METHODS.len() - 1);
        let class = usize::from(status / 100)
            .saturating_sub(1)
            .min(STATUS_CLASSES.len() - 1);
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(BUCKETS.len());
        let cells = self.shards[shard()].get_or_init(Box::default);
        cells.requests[method][class].fetch_add(1, Relaxed);
        cells.buckets[bucket].fetch_add(1, Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        cells.sum_nanos.fetch_add(nanos, Relaxed);
    }

    /// The shards summed: requests per method and class, requests per
    /// bucket, the latencies' sum in nanoseconds.
    fn totals(
        &self,
    ) -> (
        [[u64; STATUS_CLASSES.len()]; METHODS.len()],
        [u64; BUCKETS.len() + 1],
        u64,
    ) {
        let mut requests = [[0u64; STATUS_CLASSES.len()]; METHODS.len()];
        let mut buckets = [0u64; BUCKETS.len() + 1];
        let mut sum = 0u64;
        for cells in self.shards.iter().filter_map(OnceLock::get) {
            for (total, cells) in requests.iter_mut().zip(&cells.requests) {
                for (t, c) in total.iter_mut().zip(cells) {
                    *t += c.load(Relaxed);
                }
            }
            for (t, c) in buckets.iter_mut().zip(&cells.buckets) {
                *t += c.load(Relaxed);
            }
            sum = sum.saturating_add(cells.sum_nanos.load(Relaxed));
        }
        (requests, buckets, sum)
    }
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_string());
    l.set_value(value.to_string());
    l
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

/// The collector that renders every route's figures at a scrape.
pub struct Requests {
    descs: Vec<Desc>,
}

impl Requests {
    pub fn new() -> prometheus::Result<Requests> {
        let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Ok(Requests {
            descs: vec![
                Desc::new(
                    REQUESTS_NAME.into(),
                    REQUESTS_HELP.into(),
                    labels(&["route", "method", "status"]),
                    Default::default(),
                )?,
                Desc::new(
                    LATENCY_NAME.into(),
                    LATENCY_HELP.into(),
                    labels(&["route"]),
                    Default::default(),
                )?,
            ],
        })
    }
}

impl Collector for Requests {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let routes: Vec<&'static RouteMetrics> = {
            let routes = ROUTES.lock().unwrap_or_else(|p| p.into_inner());
            routes.iter().copied().chain([&UNMATCHED]).collect()
        };
        let mut counters = Vec::new();
        let mut histograms = Vec::new();
        for r in routes {
            let (requests, buckets, sum_nanos) = r.totals();
            for (method, classes) in METHODS.iter().zip(requests) {
                for (class, n) in STATUS_CLASSES.iter().zip(classes) {
                    if n == 0 {
                        continue;
                    }
                    let mut c = proto::Counter::default();
                    c.set_value(n as f64);
                    let mut m = proto::Metric::default();
                    // Label names in order, as the crate's own vectors give them.
                    m.set_label(vec![
                        label("method", method),
                        label("route", r.pattern),
                        label("status", class),
                    ]);
                    m.set_counter(c);
                    counters.push(m);
                }
            }
            let count: u64 = buckets.iter().sum();
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            let bucket_list = BUCKETS
                .iter()
                .zip(buckets)
                .map(|(&bound, n)| {
                    cumulative += n;
                    let mut b = proto::Bucket::default();
                    b.set_upper_bound(bound);
                    b.set_cumulative_count(cumulative);
                    b
                })
                .collect();
            let mut h = proto::Histogram::default();
            h.set_sample_count(count);
            h.set_sample_sum(sum_nanos as f64 / 1e9);
            h.set_bucket(bucket_list);
            let mut m = proto::Metric::default();
            m.set_label(vec![label("route", r.pattern)]);
            m.set_histogram(h);
            histograms.push(m);
        }
        vec![
            family(REQUESTS_NAME, REQUESTS_HELP, MetricType::COUNTER, counters),
            family(
                LATENCY_NAME,
                LATENCY_HELP,
                MetricType::HISTOGRAM,
                histograms,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_of_many_threads_sum_to_every_request() {
        let r = route("/test/shards");
        std::thread::scope(|s| {
            for t in 0..(SHARDS + 3) {
                s.spawn(move || {
                    for i in 0..100u64 {
                        let status = if t % 2 == 0 { 200 } else { 404 };
                        r.record("GET", status, Duration::from_micros(300 + i * 100));
                    }
                });
            }
        });
        r.record("BREW", 599, Duration::from_secs(60));
        let (requests, buckets, sum) = r.totals();
        let threads = SHARDS as u64 + 3;
        assert_eq!(requests[0][1], 100 * threads.div_ceil(2));
        assert_eq!(requests[0][3], 100 * (threads / 2));
        assert_eq!(requests[METHODS.len() - 1][4], 1, "unknown method, 5xx");
        assert_eq!(buckets.iter().sum::<u64>(), 100 * threads + 1);
        assert_eq!(buckets[0], threads * 3, "0.3, 0.4 and 0.5 ms: le 0.0005");
        assert_eq!(buckets[BUCKETS.len()], 1, "60 s: above every bound");
        let per_thread: u64 = (0..100u64).map(|i| (300 + i * 100) * 1000).sum();
        assert_eq!(sum, per_thread * threads + 60_000_000_000);

        let families = Requests::new().expect("descs").collect();
        let histogram = families[1]
            .get_metric()
            .iter()
            .find(|m| m.get_label()[0].value() == "/test/shards")
            .expect("the route's histogram")
            .get_histogram();
        assert_eq!(histogram.get_sample_count(), 100 * threads + 1);
        let cumulative: Vec<u64> = histogram
            .get_bucket()
            .iter()
            .map(|b| b.cumulative_count())
            .collect();
        assert!(cumulative.is_sorted(), "{cumulative:?}");
        assert_eq!(*cumulative.last().expect("buckets"), 100 * threads);
    }
}
