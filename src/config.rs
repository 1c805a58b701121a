//! Runtime settings: [`Settings`] (what the server runs with), its defaults
//! ([`Settings::new`]) and its validation. Where the values come from, flag,
//! environment or TOML file, each declared once, is [`options`].

use anyhow::bail;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::keys::KeyAlg;
use crate::throttle::ThrottleConfig;
use crate::tls::TlsSource;

pub mod options;
pub use options::{Argon2Options, CommonOptions, ConfigFile, Layer, Options};

pub const DEFAULT_DATA_DIR: &str = "./engine-auth-data";

/// Read when neither `--config` nor `--no-config` is given and the file
/// exists (the .deb ships it), so `sudo engine-auth user list` finds the
/// packaged daemon's store.
pub const DEFAULT_CONFIG: &str = "/etc/engine-auth/config.toml";

/// The first admin's password (`serve`) or the recovered one
/// (`recover-admin`). Environment only: a flag would show it in `ps`.
pub const ADMIN_PASSWORD_ENV: &str = "ENGINE_AUTH_ADMIN_PASSWORD";

/// argon2id cost parameters for new hashes (stored hashes carry their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB (OWASP baseline: 19456 = 19 MiB).
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Argon2Params {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

pub use crate::domain::Secret;

/// A secret from the environment variable `name` (`None` when it is unset
/// or not UTF-8). The one place the CLI reads passwords from the
/// environment, for the variables that deliberately have no flag.
pub fn secret_from_env(name: &str) -> Option<Secret> {
    std::env::var(name).ok().map(Secret::new)
}

/// Everything the server needs to run. Built by [`Settings::new`] with
/// defaults and adjusted field by field (tests do this directly), or from
/// flags, environment and file by [`Options::into_settings`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The store's page cache, bytes.
    pub cache_capacity_bytes: u64,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// Clock-skew allowance when checking `exp`, seconds.
    pub leeway_secs: u64,
    pub argon2: Argon2Params,
    /// Hashes computed at once; bounds memory under a login flood. Also
    /// sizes the hash queue (`password::QUEUED_PER_THREAD` per thread) and
    /// the checks one address may have in flight (this many; twice this
    /// per IPv6 /64).
    pub max_concurrent_hashes: usize,
    /// Largest accepted request body, bytes.
    pub body_limit_bytes: usize,
    /// HTTP worker threads (0 = one per CPU).
    pub workers: usize,
    /// A spent refresh token presented again within this many seconds gets
    /// a sibling instead of killing its family (honest races); the session
    /// stays one chain (the first sibling used retires the others).
    pub refresh_grace_secs: u64,
    /// Absolute session lifetime: refreshing stops working after this.
    pub session_max_secs: u64,
    /// Live sessions per user: a login beyond this ends the user's oldest
    /// sessions (bounds the store's growth under repeated logins).
    pub max_sessions_per_user: usize,
    /// Rotate the signing key when the active one is older than this.
    pub key_max_age_secs: u64,
    /// How often expired sessions and retired keys are pruned.
    pub housekeeping_secs: u64,
    /// HTTPS on `listen` (plain HTTP when `TlsSource::None`).
    pub tls: TlsSource,
    /// With TLS: an extra plain-HTTP listener (loopback, or behind a proxy).
    pub plain_listen: Option<SocketAddr>,
    /// Brute-force protection (see `throttle.rs`).
    pub throttle: ThrottleConfig,
    /// Reverse proxies whose `X-Forwarded-For` names the client (none by
    /// default: the TCP peer is the client).
    pub trusted_proxies: Vec<IpAddr>,
    /// Who may ask the MQTT broker's questions (`/api/v1/auth/mqtt/*`):
    /// these TCP peers only (the broker, usually on the gateway itself).
    pub mqtt_backend_clients: Vec<IpAddr>,
    /// First start only: the initial admin password (see `bootstrap.rs`
    /// for the order of its sources).
    pub admin_password: Option<Secret>,
    pub admin_password_file: Option<PathBuf>,
    /// What new signing keys are (a different active key is rotated at
    /// start).
    pub signing_alg: KeyAlg,
    /// How long verifiers may cache the published key set (JWKS
    /// `Cache-Control: max-age`): a new EdDSA or ES256 key is published this long
    /// before it signs, a retired one stays published this much longer.
    pub jwks_max_age_secs: u64,
    /// Prometheus metrics on a listener of their own (off when `None`).
    pub metrics_listen: Option<SocketAddr>,
}

impl Settings {
    /// The longest any token can live after it is signed.
    pub fn max_token_life(&self) -> u64 {
        self.access_ttl_secs
            .max(self.refresh_ttl_secs.min(self.session_max_secs))
    }

    /// The defaults: the one place they are written down (the `[default:
    /// …]` notes in `--help` are checked against them by a unit test).
    pub fn new(data_dir: impl Into<PathBuf>) -> Settings {
        Settings {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            data_dir: data_dir.into(),
            cache_capacity_bytes: 4 * 1024 * 1024,
            access_ttl_secs: 600,
            refresh_ttl_secs: 12 * 3600,
            leeway_secs: 60,
            argon2: Argon2Params::default(),
            max_concurrent_hashes: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            body_limit_bytes: 16 * 1024,
            workers: 0,
            refresh_grace_secs: 10,
            session_max_secs: 7 * 24 * 3600,
            max_sessions_per_user: 50,
            key_max_age_secs: 30 * 24 * 3600,
            housekeeping_secs: 600,
            throttle: ThrottleConfig::default(),
            trusted_proxies: Vec::new(),
            mqtt_backend_clients: vec![
                IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ],
            tls: TlsSource::None,
            plain_listen: None,
            admin_password: None,
            admin_password_file: None,
            signing_alg: KeyAlg::HS256,
            jwks_max_age_secs: 300,
            metrics_listen: None,
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.access_ttl_secs == 0 || self.refresh_ttl_secs == 0 {
            bail!("token lifetimes must be at least one second");
        }
        if self.session_max_secs == 0 || self.key_max_age_secs == 0 || self.housekeeping_secs == 0 {
            bail!("session-max-secs, key-max-age-secs and housekeeping-secs must be at least 1");
        }
        let t = self.throttle;
        if t.per_user == 0
            || t.per_address == 0
            || t.per_prefix == 0
            || t.window.is_zero()
            || t.max_entries == 0
        {
            bail!("throttle thresholds, window and table size must be at least 1");
        }
        if self.max_sessions_per_user == 0 {
            bail!("max-sessions-per-user must be at least 1");
        }
        if self.max_concurrent_hashes == 0 {
            bail!("max-concurrent-hashes must be at least 1");
        }
        if self.body_limit_bytes < 1024 {
            bail!("body-limit must be at least 1024 bytes");
        }
        if self.trusted_proxies.iter().any(|p| p.is_unspecified()) {
            bail!("a trusted proxy must be a real address (not 0.0.0.0 or ::)");
        }
        if self
            .metrics_listen
            .is_some_and(|m| m == self.listen && m.port() != 0)
        {
            bail!(
                "--metrics-listen must differ from --listen: metrics have a listener of their own"
            );
        }
        if self.plain_listen.is_some() && self.tls == TlsSource::None {
            bail!("--plain-listen only makes sense with TLS on --listen");
        }
        let p = self.argon2;
        argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters {p:?}: {e}"))?;
        Ok(())
    }
}

/// The data directory when neither flag, environment nor file names one:
/// systemd's `$STATE_DIRECTORY` (first entry), else `./engine-auth-data`.
pub fn default_data_dir() -> PathBuf {
    match std::env::var_os("STATE_DIRECTORY") {
        Some(v) if !v.is_empty() => {
            let s = v.to_string_lossy();
            PathBuf::from(s.split(':').next().unwrap_or(DEFAULT_DATA_DIR))
        }
        _ => PathBuf::from(DEFAULT_DATA_DIR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Settings::new("/tmp/x").validate().unwrap();
        let mut s = Settings::new("/tmp/x");
        s.argon2.memory_kib = 1;
        assert!(s.validate().is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let mut s = Settings::new("/tmp/x");
        s.admin_password = Some("hunter2-hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
