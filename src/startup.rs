//! Wiring: opens (or seeds) the store, builds the shared state, binds the
//! listener first (so port 0 works in tests and the real port is known),
//! starts the admin socket, the housekeeping timer, the audit trail's
//! summary timer and the watchdog ping (which stops once the store has
//! failed), tells systemd it is ready, and runs until stopped, then flushes
//! the store.

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use std::net::TcpListener;

use crate::clock::Clock;
use crate::config::Settings;
use crate::password::Hasher;
use crate::state::AppState;
use crate::throttle::Throttle;
use crate::tokens::Tokens;
use crate::{admin, audit, bootstrap, http, lifecycle, systemd, tls};

pub struct Application {
    port: u16,
    server: Server,
    /// `--metrics-listen`'s own server, and its port.
    metrics: Option<(u16, Server)>,
    state: web::Data<AppState>,
    admin: admin::AdminSocket,
}

impl Application {
    /// Opens the store (seeding it on first start), binds `settings.listen`
    /// and the admin socket, and prepares the server. Must be called inside
    /// an actix runtime.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Application::build_with_clock(settings, Clock::system()).await
    }

    /// [`Application::build`] on a given clock (tests move it forward).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Application> {
        settings.validate()?;
        let hasher = Hasher::new(settings.argon2, settings.max_concurrent_hashes)?;
        let store = bootstrap::open_store(&settings, &hasher, &clock)?;
        let tokens = Tokens::new(
            &store.keys()?,
            &store.active_kid()?,
            settings.access_ttl_secs,
            settings.leeway_secs,
            settings.signing_alg,
            settings.jwks_max_age_secs,
        )
        .context("the store's signing keys are unusable")?;
        if let Some(kid) = lifecycle::align_signing_alg(&store, &tokens, clock.now())? {
            audit::emit(
                audit::Trail {
                    store: &store,
                    now_ms: clock.now_millis(),
                },
                audit::Event::KeyRotated { kid: &kid },
                &audit::Origin::Daemon,
            );
        }
        let tls = tls::load(&settings.tls, &settings.data_dir, settings.listen)?;
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let plain = match settings.plain_listen {
            Some(addr) => {
                Some(TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?)
            }
            None => None,
        };
        let admin = admin::serve(
            &settings.data_dir,
            store.clone(),
            hasher.clone(),
            tokens.clone(),
            clock.clone(),
        )?;
        log::info!(
            "engine-auth {} listening on {}://{}:{} (data dir {}, {} users)",
            env!("CARGO_PKG_VERSION"),
            if tls.is_some() { "https" } else { "http" },
            settings.listen.ip(),
            port,
            settings.data_dir.display(),
            store.user_count()
        );
        if let Some(t) = &tls {
            log::info!("TLS certificate SHA-256 fingerprint: {}", t.fingerprint);
        }
        if let Some(p) = &plain {
            log::info!("also serving plain http on {}", p.local_addr()?);
        }
        let state = web::Data::new(AppState {
            store,
            tokens,
            hasher,
            throttle: Throttle::new(
                settings.throttle,
                settings.max_concurrent_hashes,
                clock.clone(),
            ),
            settings,
            clock,
        });
        let body_limit = state.settings.body_limit_bytes;
        let app_state = state.clone();
        let metrics_on = state.settings.metrics_listen.is_some();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap_fn(move |req, srv| crate::metrics::track(req, srv, metrics_on))
                .wrap_fn(http::deadline)
                .wrap(http::error_handlers())
                .wrap(http::default_headers())
                .wrap_fn(http::hsts)
                .configure(http::configure(body_limit))
        })
        // Slow or idle clients cannot pin connections: the request head
        // must arrive within 5 s, idle keep-alive ends after 10 s.
        .client_request_timeout(std::time::Duration::from_secs(5))
        .client_disconnect_timeout(std::time::Duration::from_secs(2))
        .keep_alive(std::time::Duration::from_secs(10))
        .shutdown_timeout(10)
        .disable_signals();
        server = match tls {
            Some(t) => server.listen_rustls_0_23(listener, t.config)?,
            None => server.listen(listener)?,
        };
        if let Some(p) = plain {
            server = server.listen(p)?;
        }
        if state.settings.workers > 0 {
            server = server.workers(state.settings.workers);
        }
        let metrics = match state.settings.metrics_listen {
            Some(addr) => Some(metrics_server(state.clone(), addr)?),
            None => None,
        };
        Ok(Application {
            port,
            metrics,
            server: server.run(),
            state,
            admin,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics listener's port (`--metrics-listen`), if on.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Stops the server: `handle().stop(true)` lets in-flight requests finish.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until stopped, then flushes the store.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let state = self.state.clone();
        let hasher = state.hasher.clone();
        tokio::task::spawn_blocking(move || hasher.warm_up());
        let mut background = vec![
            actix_web::rt::spawn(housekeeping_loop(state.clone())),
            actix_web::rt::spawn(async {
                let mut tick = tokio::time::interval(audit::INTERVAL);
                loop {
                    tick.tick().await;
                    audit::flush_suppressed(false);
                }
            }),
        ];
        if let Some(every) = systemd::watchdog_interval() {
            let state = state.clone();
            background.push(actix_web::rt::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    // A store that cannot write stays broken until a
                    // restart: stop pinging, so systemd restarts us.
                    if state.store.storage_failure().is_some() {
                        systemd::notify("STATUS=storage failed: restart needed");
                        break;
                    }
                    systemd::notify("WATCHDOG=1");
                }
            }));
        }
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (handle, actix_web::rt::spawn(server))
        });
        systemd::notify("READY=1\nSTATUS=serving");
        let served = self.server.await;
        if let Some((handle, task)) = metrics {
            handle.stop(false).await;
            let _ = task.await;
        }
        systemd::notify("STOPPING=1");
        // Release every handle on the store, so the same process can open
        // the data dir again (tests restart servers in-process).
        for task in background {
            task.abort();
            let _ = task.await;
        }
        self.admin.stop();
        // The counts of what the audit trail left out, before they are lost.
        audit::flush_suppressed(true);
        served?;
        state.store.flush()?;
        log::info!(
            "engine-auth stopped; store flushed ({} disk flushes since start)",
            state.store.flush_count()
        );
        Ok(())
    }
}

/// The metrics listener: `GET /metrics` only, one worker, bound now so a
/// bad address fails the start (and port 0 works in tests).
fn metrics_server(
    state: web::Data<AppState>,
    addr: std::net::SocketAddr,
) -> anyhow::Result<(u16, Server)> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr} for metrics"))?;
    let port = listener.local_addr()?.port();
    log::info!(
        "serving Prometheus metrics on http://{}:{port}/metrics",
        addr.ip()
    );
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(http::default_headers())
            .route("/metrics", web::get().to(crate::metrics::serve))
    })
    .workers(1)
    .client_request_timeout(std::time::Duration::from_secs(5))
    .shutdown_timeout(2)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((port, server))
}

/// Housekeeping at start and then every `housekeeping_secs`.
async fn housekeeping_loop(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(
        state.settings.housekeeping_secs,
    ));
    loop {
        tick.tick().await;
        let s = state.clone();
        let done = tokio::task::spawn_blocking(move || {
            lifecycle::housekeeping(&s.store, &s.tokens, &s.settings, s.clock.now())
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::error!("housekeeping failed: {e:#}"),
            Err(e) => log::error!("housekeeping task failed: {e}"),
        }
    }
}
