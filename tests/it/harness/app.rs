//! [`TestApp`]: a real engine-auth in process (zero-to-production style):
//! `Application::build_with_clock` with port 0, a temporary data dir, cheap
//! argon2 and one worker, on its own thread with its own actix `System`, so
//! a test may block (raw sockets, the CLI) without stalling it. The server
//! runs on the test's [`Clock`]: tests move it instead of sleeping.
//!
//! Dropping a `TestApp` (also when a test panics) stops the server and
//! waits for its thread, so the store is flushed before the data dir goes.
//! What tests need of the server's internals (keys, housekeeping, the
//! throttle's tables, an old-layout session) is a method here, so that only
//! the harness names `engine_auth`'s types.

use actix_web::dev::ServerHandle;
use actix_web::web;
use engine_auth::clock::Clock;
use engine_auth::config::Settings;
use engine_auth::startup::Application;
use engine_auth::state::AppState;
use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

use super::{Api, test_settings};

pub struct TestApp {
    pub api: Api,
    /// The server's clock (clones share its offset).
    pub clock: Clock,
    // Dropped in this order: the state (so a stopped server can release
    // its store), the server (stopped and joined), then the data dir.
    state: web::Data<AppState>,
    server: ServerThread,
    data_dir: TempDir,
}

impl Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// A server whose settings `adjust` may change (TTLs, grace, limits,
    /// throttle, TLS). The data dir and listen address are the harness's.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp data dir");
        TestApp::spawn_in(dir, Clock::system(), adjust).await
    }

    /// A server on an existing (or empty) data dir, on `clock`.
    pub async fn spawn_in(
        data_dir: TempDir,
        clock: Clock,
        adjust: impl FnOnce(&mut Settings),
    ) -> TestApp {
        let mut settings = test_settings(data_dir.path());
        adjust(&mut settings);
        let (server, state) = ServerThread::start(settings, clock.clone())
            .await
            .expect("the test server failed to start");
        TestApp {
            api: Api::new(server.port),
            clock,
            state,
            server,
            data_dir,
        }
    }

    /// Stops the server gracefully (it flushes the store) and returns its
    /// data dir, for a restart or for the offline store helpers.
    pub async fn stop(self) -> TempDir {
        let TestApp {
            state,
            server,
            data_dir,
            ..
        } = self;
        drop(state);
        server.stop().await;
        data_dir
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The active signing key: (kid, secret).
    pub fn signing_key(&self) -> (String, Vec<u8>) {
        let store = &self.state.store;
        let kid = store.active_kid().expect("active kid");
        let rec = store
            .keys()
            .expect("keys")
            .into_iter()
            .find(|k| k.kid == kid)
            .expect("active key record");
        let secret = engine_auth::hex::decode::<32>(&rec.secret_hex).expect("a 32-byte hex secret");
        (kid, secret.to_vec())
    }

    /// `claims` signed with the server's real key under its `kid`, using
    /// the HMAC algorithm `alg`: a forgery that differs from a genuine
    /// token only in what the test changed.
    pub fn sign_with_real_key(
        &self,
        alg: jsonwebtoken::Algorithm,
        claims: &serde_json::Value,
    ) -> String {
        let (kid, secret) = self.signing_key();
        super::sign(alg, Some(&kid), &secret, claims)
    }

    pub fn active_kid(&self) -> String {
        self.state.store.active_kid().expect("active kid")
    }

    /// Every stored key's state (`Active`, `Retired`, as `keys list` names
    /// them), by kid.
    pub fn key_states(&self) -> BTreeMap<String, String> {
        self.state
            .store
            .keys()
            .expect("keys")
            .into_iter()
            .map(|k| (k.kid, format!("{:?}", k.state)))
            .collect()
    }

    /// Every stored key's algorithm (`HS256`, `EdDSA`), by kid.
    pub fn key_algs(&self) -> BTreeMap<String, String> {
        self.state
            .store
            .keys()
            .expect("keys")
            .into_iter()
            .map(|k| (k.kid, k.alg.to_string()))
            .collect()
    }

    /// Every stored key's secret (hex: an HMAC secret or an Ed25519
    /// seed), for tests that check it is never shown.
    pub fn key_secrets(&self) -> Vec<String> {
        self.state
            .store
            .keys()
            .expect("keys")
            .into_iter()
            .map(|k| k.secret_hex)
            .collect()
    }

    /// Rotates the signing key as `keys rotate --revoke-previous` does:
    /// every earlier key is deleted. Returns the new kid.
    pub async fn revoke_previous_keys(&self) -> String {
        self.state
            .accounts()
            .replace_signing_key(
                engine_auth::accounts::Actor::Operator,
                &engine_auth::audit::Origin::Daemon,
                engine_auth::lifecycle::PreviousKeys::Revoke,
            )
            .await
            .expect("rotation")
            .kid
    }

    /// Rotates the signing key as SIGHUP does; returns the new kid.
    pub async fn rotate_key(&self) -> String {
        self.state
            .accounts()
            .rotate_signing_key(
                engine_auth::accounts::Actor::Operator,
                &engine_auth::audit::Origin::Daemon,
            )
            .await
            .expect("rotation")
    }

    /// One round of housekeeping against the running server's store and
    /// keyring, as if run `ahead` seconds later than the server's clock
    /// (which is not moved).
    pub async fn housekeeping_at(&self, ahead: i64) {
        let state = self.state.clone();
        let now = self.clock.now().saturating_add_signed(ahead);
        tokio::task::spawn_blocking(move || {
            engine_auth::lifecycle::housekeeping(&state.store, &state.tokens, &state.settings, now)
        })
        .await
        .expect("housekeeping task")
        .expect("housekeeping");
    }

    /// Deletes every retired key and reloads the keyring, as housekeeping
    /// does once nothing they signed can be valid, without pruning sessions.
    pub async fn delete_retired_keys(&self) {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            state.store.delete_retired_keys(u64::MAX)?;
            let active = state.store.active_kid()?;
            state.tokens.reload(&state.store.keys()?, &active)
        })
        .await
        .expect("join")
        .expect("delete retired keys");
    }

    /// How many live sessions the store holds for the user `user_id`.
    pub fn live_sessions_of(&self, user_id: &str) -> usize {
        self.state
            .store
            .sessions_of(user_id.parse().expect("uuid"), self.clock.now())
            .expect("read the user's sessions")
            .len()
    }

    /// Entries in the throttle's tables: (addresses, (username, address)).
    pub fn throttle_len(&self) -> (usize, usize) {
        let e = self.state.throttle.entries();
        (e.addresses, e.user_addresses)
    }

    /// Password checks the throttle counts: (in flight, failed).
    pub fn throttle_checks(&self) -> (u64, u64) {
        let e = self.state.throttle.entries();
        (e.pending, e.failures)
    }

    /// A refresh token of the store layout before sessions were named in
    /// the `jti`: a bare random `jti` with its own record, for `user_id`,
    /// valid for an hour. Returns the token and its session's id.
    pub fn legacy_refresh_token(&self, user_id: &str) -> (String, uuid::Uuid) {
        let store = &self.state.store;
        let now = self.clock.now();
        let family = uuid::Uuid::new_v4();
        let jti = "00112233445566778899aabbccddeeff";
        let session = engine_auth::store::SessionRecord {
            user_id: user_id.parse().expect("uuid"),
            created_at: now,
            expires_at: now + 86_400,
            last_exp: now + 3600,
            revoked_at: None,
            live: Vec::new(),
            spent: Vec::new(),
            client: Default::default(),
        };
        store
            .start_legacy_session(
                family,
                &engine_auth::tokens::hash_jti(jti),
                &session,
                now + 3600,
            )
            .expect("old-layout session");
        let (kid, secret) = self.signing_key();
        let claims = serde_json::json!({
            "_id": user_id, "refreshToken": true, "iat": now, "exp": now + 3600, "gen": 0,
            "jti": jti,
        });
        let token = super::sign(jsonwebtoken::Algorithm::HS256, Some(&kid), &secret, &claims);
        (token, family)
    }

    /// Where a server with [`self_signed_tls`] keeps its certificate.
    pub fn self_signed_cert(&self) -> PathBuf {
        self.data_dir().join(engine_auth::tls::SELF_SIGNED_CERT)
    }

    /// The fingerprint to pin for a server with [`self_signed_tls`].
    pub fn self_signed_pin(&self) -> String {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let pem = self.self_signed_cert();
        let cert = CertificateDer::from_pem_file(&pem).expect("the self-signed certificate");
        tls_fingerprint(&cert)
    }
}

/// Settings change: serve TLS with a persisted self-signed certificate,
/// and plain HTTP on `plain_port` beside it.
pub fn self_signed_tls(s: &mut Settings, plain_port: u16) {
    s.tls = engine_auth::tls::TlsSource::SelfSigned {
        extra_names: vec![],
    };
    s.plain_listen = Some(format!("127.0.0.1:{plain_port}").parse().expect("addr"));
}

/// The SHA-256 fingerprint the daemon logs for a certificate.
pub fn tls_fingerprint(der: &[u8]) -> String {
    engine_auth::tls::fingerprint(der)
}

/// An in-process server on its own thread with its own actix `System`.
struct ServerThread {
    port: u16,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    /// Starts `Application` on its own thread; returns once it listens (or
    /// with the error `Application::build_with_clock` gave).
    async fn start(
        settings: Settings,
        clock: Clock,
    ) -> anyhow::Result<(ServerThread, web::Data<AppState>)> {
        type Started = (u16, ServerHandle, web::Data<AppState>);
        let (tx, rx) = tokio::sync::oneshot::channel::<anyhow::Result<Started>>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match Application::build_with_clock(settings, clock).await {
                    Ok(app) => {
                        let _ = tx.send(Ok((app.port(), app.handle(), app.state())));
                        if let Err(e) = app.run_until_stopped().await {
                            panic!("test server stopped with an error: {e:#}");
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })
        });
        match rx.await {
            Ok(Ok((port, handle, state))) => Ok((
                ServerThread {
                    port,
                    handle,
                    thread: Some(thread),
                },
                state,
            )),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                anyhow::bail!("the server thread died before reporting")
            }
        }
    }

    /// Stops the server gracefully (it flushes the store) and waits for it.
    async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the test server thread panicked");
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // `stop` sends the command at once; the returned future only
            // waits for completion, which joining the thread also does.
            drop(self.handle.stop(false));
            let _ = thread.join();
        }
    }
}
