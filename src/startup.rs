//! Wiring: opens (or seeds) the store, builds the shared state, binds the
//! listener first (so port 0 works in tests and the real port is known),
//! and runs the server until it is stopped, then flushes the store.

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use std::net::TcpListener;

use crate::config::Settings;
use crate::password::Hasher;
use crate::store::Store;
use crate::tokens::Tokens;
use crate::{bootstrap, http};

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub tokens: Tokens,
    pub hasher: Hasher,
}

pub struct Application {
    port: u16,
    server: Server,
    store: Store,
    hasher: Hasher,
}

impl Application {
    /// Opens the store (seeding it on first start), binds `settings.listen`
    /// and prepares the server. Must be called inside an actix runtime.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        settings.validate()?;
        let hasher = Hasher::new(settings.argon2, settings.max_concurrent_hashes)?;
        let store = bootstrap::open_store(&settings, &hasher)?;
        let tokens = Tokens::new(
            &store.keys()?,
            &store.active_kid()?,
            settings.access_ttl_secs,
            settings.refresh_ttl_secs,
            settings.leeway_secs,
        )
        .context("the store's signing keys are unusable")?;
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState {
            store: store.clone(),
            tokens,
            hasher: hasher.clone(),
        });
        let body_limit = settings.body_limit_bytes;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(http::error_handlers())
                .wrap(http::default_headers())
                .configure(http::configure(body_limit))
        })
        .listen(listener)?
        .shutdown_timeout(10)
        .disable_signals();
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        log::info!(
            "engine-auth {} listening on {} (data dir {}, {} users)",
            env!("CARGO_PKG_VERSION"),
            settings.listen.ip().to_string() + ":" + &port.to_string(),
            settings.data_dir.display(),
            store.user_count()
        );
        Ok(Application {
            port,
            server: server.run(),
            store,
            hasher,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server: `handle().stop(true)` lets in-flight requests finish.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, then flushes the store.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || hasher.warm_up());
        self.server.await?;
        self.store.flush()?;
        log::info!("engine-auth stopped; store flushed");
        Ok(())
    }
}
