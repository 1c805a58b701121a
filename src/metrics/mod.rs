//! Prometheus metrics (`--metrics-listen`): what the daemon counts as it
//! works (requests by route template, logins, refreshes, hashes, fsyncs)
//! and what is read from the store when scraped (users, sessions, keys,
//! sizes). Served as `GET /metrics` in the Prometheus text format on a
//! listener of its own, never on the API's.
//!
//! The counters are process-wide (one daemon per process; in-process tests
//! share them, and only ever assert that they grow). Labels are bounded:
//! route templates (never paths), status classes, fixed outcome names.
//! Nothing here can hold a username, token or key.

mod requests;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::audit::Event;
use crate::keys::{KeyAlg, KeyState};
use crate::state::AppState;
use crate::store::maintenance::Footprint;

/// The `state` labels of `engine_auth_signing_keys`, for `KeyState::Active`
/// and `KeyState::Retired`.
const KEY_STATES: [&str; 2] = ["active", "retired"];

/// How often the store's size (a pass over every entry) is measured again.
const FOOTPRINT_EVERY: Duration = Duration::from_secs(60);

pub struct Metrics {
    registry: Registry,
    logins: IntCounterVec,
    otp_failures: IntCounter,
    refreshes: IntCounterVec,
    refresh_reuse: IntCounter,
    hash_seconds: Histogram,
    hashes_running: IntGauge,
    hashes_queued: IntGauge,
    fsyncs: IntCounter,
    fsync_seconds: Histogram,
    sessions: IntGauge,
    users: IntGauge,
    api_keys: IntGauge,
    signing_keys: IntGaugeVec,
    store_disk_bytes: IntGauge,
    store_live_bytes: IntGauge,
    footprint: Mutex<Option<(Instant, Footprint)>>,
}

static METRICS: LazyLock<Option<Metrics>> = LazyLock::new(|| match Metrics::build() {
    Ok(m) => Some(m),
    Err(e) => {
        log::error!("metrics unavailable: {e}");
        None
    }
});

fn get() -> Option<&'static Metrics> {
    METRICS.as_ref()
}

/// The target the binary was built for, as a triple's parts.
fn target() -> String {
    let env = if cfg!(target_env = "musl") {
        "musl"
    } else if cfg!(target_env = "gnu") {
        "gnu"
    } else {
        "unknown"
    };
    format!(
        "{}-unknown-{}-{env}",
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

impl Metrics {
    fn build() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        fn reg<T: prometheus::core::Collector + Clone + 'static>(
            r: &Registry,
            m: T,
        ) -> prometheus::Result<T> {
            r.register(Box::new(m.clone()))?;
            Ok(m)
        }
        let seconds = |name: &str, help: &str, buckets: Vec<f64>| {
            HistogramOpts::new(name, help).buckets(buckets)
        };
        let slow_buckets = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let r = &registry;
        let m = Metrics {
            logins: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "engine_auth_logins_total",
                        "Logins by outcome: ok, failed (wrong username or password), throttled \
                         (a password check refused before any hash, 429)",
                    ),
                    &["outcome"],
                )?,
            )?,
            otp_failures: reg(
                r,
                IntCounter::new(
                    "engine_auth_otp_failures_total",
                    "Wrong or spent one-time passwords",
                )?,
            )?,
            refreshes: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "engine_auth_refreshes_total",
                        "Refresh-token exchanges by outcome (ok, failed)",
                    ),
                    &["outcome"],
                )?,
            )?,
            refresh_reuse: reg(
                r,
                IntCounter::new(
                    "engine_auth_refresh_reuse_detected_total",
                    "Spent refresh tokens presented again (the session is revoked)",
                )?,
            )?,
            hash_seconds: reg(
                r,
                Histogram::with_opts(seconds(
                    "engine_auth_password_hash_duration_seconds",
                    "Time one argon2id hash or verification took on a hash thread",
                    slow_buckets.clone(),
                ))?,
            )?,
            hashes_running: reg(
                r,
                IntGauge::new(
                    "engine_auth_password_hashes_in_flight",
                    "Password hashes running on the hash threads now",
                )?,
            )?,
            hashes_queued: reg(
                r,
                IntGauge::new(
                    "engine_auth_password_hashes_queued",
                    "Password hashes waiting for a hash thread",
                )?,
            )?,
            fsyncs: reg(
                r,
                IntCounter::new(
                    "engine_auth_store_fsyncs_total",
                    "Durable store flushes (each shared by every writer waiting for it)",
                )?,
            )?,
            fsync_seconds: reg(
                r,
                Histogram::with_opts(seconds(
                    "engine_auth_store_fsync_duration_seconds",
                    "Time one durable store flush took (a durable redb commit: its commit slot and fdatasync)",
                    slow_buckets,
                ))?,
            )?,
            sessions: reg(
                r,
                IntGauge::new(
                    "engine_auth_sessions",
                    "Login sessions stored (expired ones until housekeeping prunes them)",
                )?,
            )?,
            users: reg(r, IntGauge::new("engine_auth_users", "Users")?)?,
            api_keys: reg(r, IntGauge::new("engine_auth_api_keys", "API keys stored")?)?,
            signing_keys: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "engine_auth_signing_keys",
                        "Signing keys by state (active, retired) and algorithm",
                    ),
                    &["state", "alg"],
                )?,
            )?,
            store_disk_bytes: reg(
                r,
                IntGauge::new(
                    "engine_auth_store_disk_bytes",
                    "The store's size on disk (measured at most once a minute)",
                )?,
            )?,
            store_live_bytes: reg(
                r,
                IntGauge::new(
                    "engine_auth_store_live_bytes",
                    "Keys and values held by the store (measured at most once a minute)",
                )?,
            )?,
            footprint: Mutex::new(None),
            registry,
        };
        m.registry.register(Box::new(requests::Requests::new()?))?;
        let start = reg(
            &m.registry,
            IntGauge::new(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, seconds",
            )?,
        )?;
        start.set(i64::try_from(crate::clock::unix_now()).unwrap_or(0));
        let build = reg(
            &m.registry,
            IntGaugeVec::new(
                Opts::new("engine_auth_build_info", "The running build (always 1)"),
                &["version", "target"],
            )?,
        )?;
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION"), target().as_str()])
            .set(1);
        for state in KEY_STATES {
            for alg in KeyAlg::ALL {
                m.signing_keys
                    .with_label_values(&[state, alg.as_str()])
                    .set(0);
            }
        }
        for outcome in ["ok", "failed", "throttled"] {
            m.logins.with_label_values(&[outcome]);
        }
        for outcome in ["ok", "failed"] {
            m.refreshes.with_label_values(&[outcome]);
        }
        Ok(m)
    }
}

/// Counts what an audited event says happened (`audit::emit` calls this
/// for every event, before its aggregation drops any line).
pub fn event(event: &Event) {
    let Some(m) = get() else { return };
    match event {
        Event::LoginOk(_) => m.logins.with_label_values(&["ok"]).inc(),
        Event::LoginFailed { .. } => m.logins.with_label_values(&["failed"]).inc(),
        // A password check refused before any hash (a login, a password
        // change, the MQTT user check); refresh and MQTT-token throttling
        // name no user and show as 429s in the request counts.
        Event::Throttled {
            username: Some(_), ..
        } => m.logins.with_label_values(&["throttled"]).inc(),
        Event::OtpFailed { .. } => m.otp_failures.inc(),
        Event::Refresh(_) => m.refreshes.with_label_values(&["ok"]).inc(),
        Event::RefreshFailed { .. } => m.refreshes.with_label_values(&["failed"]).inc(),
        Event::RefreshReuseDetected { .. } => {
            m.refresh_reuse.inc();
            m.refreshes.with_label_values(&["failed"]).inc();
        }
        _ => {}
    }
}

/// Times one job on a hash thread while the guard lives.
pub struct HashTimer(Instant);

pub fn hash_started() -> HashTimer {
    if let Some(m) = get() {
        m.hashes_running.inc();
    }
    HashTimer(Instant::now())
}

impl Drop for HashTimer {
    fn drop(&mut self) {
        if let Some(m) = get() {
            m.hashes_running.dec();
            m.hash_seconds.observe(self.0.elapsed().as_secs_f64());
        }
    }
}

/// One durable store flush, and how long it took.
pub fn fsync_done(took: Duration) {
    if let Some(m) = get() {
        m.fsyncs.inc();
        m.fsync_seconds.observe(took.as_secs_f64());
    }
}

/// A resource's route template and its request metrics, attached to the
/// resource as app data when routes are registered (`http::configure`):
/// what labels a request, found without matching the path again
/// (`HttpRequest::match_pattern` would).
#[derive(Clone, Copy)]
pub struct Route(&'static requests::RouteMetrics);

impl Route {
    pub fn new(pattern: &'static str) -> Route {
        Route(requests::route(pattern))
    }

    /// Counts and times one answered request (`track`; public for
    /// `benches/metrics.rs`).
    pub fn record(&self, method: &str, status: u16, took: Duration) {
        self.0.record(method, status, took);
    }
}

/// Middleware (`wrap_fn`; counts only with `--metrics-listen`, `on`):
/// counts each answered request by its route template, method and status
/// class, and times it (`requests`: no box, no lock, no shared write).
pub fn track<S, B>(
    req: ServiceRequest,
    srv: &S,
    on: bool,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let started = on.then(Instant::now);
    let fut = srv.call(req);
    async move {
        let res = fut.await?;
        if let Some(started) = started {
            let req = res.request();
            let route = req
                .app_data::<Route>()
                .map_or(requests::unmatched(), |r| r.0);
            route.record(
                req.method().as_str(),
                res.status().as_u16(),
                started.elapsed(),
            );
        }
        Ok(res)
    }
}

/// Reads the store's gauges (the user count it keeps; sessions, API keys
/// and signing keys counted, a pass over those trees; the size at most
/// once a minute) and renders every metric. Blocking: run it on the
/// blocking pool.
pub fn render(state: &AppState) -> anyhow::Result<String> {
    let m = get().ok_or_else(|| anyhow::anyhow!("metrics unavailable"))?;
    let store = &state.store;
    let gauge = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
    m.users.set(gauge(store.user_count()));
    m.sessions.set(gauge(store.session_counts()?.sessions));
    m.api_keys.set(gauge(store.api_key_count()?));
    let keys = store.keys()?;
    for (state, label) in [KeyState::Active, KeyState::Retired]
        .into_iter()
        .zip(KEY_STATES)
    {
        for alg in KeyAlg::ALL {
            let n = keys
                .iter()
                .filter(|k| k.state == state && k.alg == alg)
                .count();
            m.signing_keys
                .with_label_values(&[label, alg.as_str()])
                .set(gauge(n));
        }
    }
    let running = m.hashes_running.get();
    let total = i64::try_from(state.hasher.queued_or_running()).unwrap_or(i64::MAX);
    m.hashes_queued.set(total.saturating_sub(running).max(0));
    let footprint = {
        let mut cached = m.footprint.lock().unwrap_or_else(|p| p.into_inner());
        match *cached {
            Some((at, f)) if at.elapsed() < FOOTPRINT_EVERY => f,
            _ => {
                let f = crate::store::maintenance::footprint(store)?;
                *cached = Some((Instant::now(), f));
                f
            }
        }
    };
    m.store_disk_bytes
        .set(i64::try_from(footprint.disk_bytes).unwrap_or(i64::MAX));
    m.store_live_bytes
        .set(i64::try_from(footprint.live_bytes).unwrap_or(i64::MAX));
    let mut out = Vec::new();
    TextEncoder::new().encode(&m.registry.gather(), &mut out)?;
    Ok(String::from_utf8(out)?)
}

/// `GET /metrics` on the metrics listener.
pub async fn serve(state: web::Data<AppState>) -> HttpResponse {
    match web::block(move || render(&state)).await {
        Ok(Ok(text)) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Ok(Err(e)) => {
            log::error!("metrics scrape failed: {e:#}");
            HttpResponse::ServiceUnavailable().finish()
        }
        Err(e) => {
            log::error!("metrics scrape failed: {e}");
            HttpResponse::ServiceUnavailable().finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_registered_and_events_count() {
        let m = get().expect("metrics build");
        let before = m.logins.with_label_values(&["failed"]).get();
        event(&Event::LoginFailed { username: "x" });
        assert!(m.logins.with_label_values(&["failed"]).get() > before);
        let names: Vec<String> = m
            .registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        for name in [
            "engine_auth_build_info",
            "process_start_time_seconds",
            "engine_auth_store_fsync_duration_seconds",
            "engine_auth_signing_keys",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
    }
}
