//! Runtime settings: defaults, the optional TOML file, and the merge with
//! flags and environment variables (precedence: flag > environment > file >
//! default; clap folds flag and environment together before we see them).

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_DATA_DIR: &str = "./engine-auth-data";

/// argon2id cost parameters for new hashes (stored hashes carry their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// Everything the server needs to run. Built by [`Settings::new`] with
/// defaults and adjusted field by field (tests do this directly).
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// sled page cache, bytes.
    pub cache_capacity_bytes: u64,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// Clock-skew allowance when checking `exp`, seconds.
    pub leeway_secs: u64,
    pub argon2: Argon2Params,
    /// Hashes computed at once; bounds memory under a login flood.
    pub max_concurrent_hashes: usize,
    /// Largest accepted request body, bytes.
    pub body_limit_bytes: usize,
    /// HTTP worker threads (0 = one per CPU).
    pub workers: usize,
    /// A spent refresh token presented again within this many seconds gets
    /// a sibling instead of killing its family (honest races).
    pub refresh_grace_secs: u64,
    /// Absolute session lifetime: refreshing stops working after this.
    pub session_max_secs: u64,
    /// Rotate the signing key when the active one is older than this.
    pub key_max_age_secs: u64,
    /// How often expired sessions and retired keys are pruned.
    pub housekeeping_secs: u64,
    /// HTTPS on `listen` (plain HTTP when `TlsSource::None`).
    pub tls: crate::tls::TlsSource,
    /// With TLS: an extra plain-HTTP listener (loopback, or behind a proxy).
    pub plain_listen: Option<SocketAddr>,
    /// Brute-force protection (see `throttle.rs`).
    pub throttle: crate::throttle::ThrottleConfig,
    /// Initial admin password source for the first start.
    pub admin_password: Option<String>,
    pub admin_password_file: Option<PathBuf>,
}

impl Settings {
    /// The longest any token can live after it is signed.
    pub fn max_token_life(&self) -> u64 {
        self.access_ttl_secs
            .max(self.refresh_ttl_secs.min(self.session_max_secs))
    }

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
            key_max_age_secs: 30 * 24 * 3600,
            housekeeping_secs: 600,
            throttle: crate::throttle::ThrottleConfig::default(),
            tls: crate::tls::TlsSource::None,
            plain_listen: None,
            admin_password: None,
            admin_password_file: None,
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
        if t.per_user == 0 || t.per_address == 0 || t.window.is_zero() || t.max_entries == 0 {
            bail!("throttle thresholds, window and table size must be at least 1");
        }
        if self.max_concurrent_hashes == 0 {
            bail!("max-concurrent-hashes must be at least 1");
        }
        if self.body_limit_bytes < 1024 {
            bail!("body-limit must be at least 1024 bytes");
        }
        let p = self.argon2;
        argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters {p:?}: {e}"))?;
        Ok(())
    }
}

/// The TOML configuration file. Every key is optional; names match the
/// long flags with `-` replaced by `_`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub cache_capacity_mib: Option<u64>,
    pub access_ttl_secs: Option<u64>,
    pub refresh_ttl_secs: Option<u64>,
    pub leeway_secs: Option<u64>,
    pub argon2: Option<Argon2Params>,
    pub max_concurrent_hashes: Option<usize>,
    pub body_limit_bytes: Option<usize>,
    pub workers: Option<usize>,
    pub refresh_grace_secs: Option<u64>,
    pub session_max_secs: Option<u64>,
    pub key_max_age_secs: Option<u64>,
    pub housekeeping_secs: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: Option<bool>,
    pub tls_san: Option<Vec<String>>,
    pub plain_listen: Option<SocketAddr>,
    pub throttle_after: Option<u32>,
    pub throttle_address_after: Option<u32>,
    pub throttle_window_secs: Option<u64>,
    pub throttle_max_delay_secs: Option<u64>,
    pub admin_password_file: Option<PathBuf>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
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
    fn the_packaged_config_parses_and_names_the_service_state_dir() {
        // The CLI run by an operator has no $STATE_DIRECTORY: the packaged
        // file is what makes it find the service's store.
        let c: FileConfig = toml::from_str(include_str!("../packaging/config.toml")).unwrap();
        assert_eq!(c.data_dir, Some(PathBuf::from("/var/lib/engine-auth")));
    }

    #[test]
    fn file_config_parses_and_rejects_unknown_keys() {
        let c: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:9000\"\naccess_ttl_secs = 60\n[argon2]\nmemory_kib = 8192\niterations = 3\nparallelism = 1\n",
        )
        .unwrap();
        assert_eq!(c.listen.unwrap().port(), 9000);
        assert_eq!(c.argon2.unwrap().iterations, 3);
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }

    #[test]
    fn defaults_are_valid() {
        Settings::new("/tmp/x").validate().unwrap();
        let mut s = Settings::new("/tmp/x");
        s.argon2.memory_kib = 1;
        assert!(s.validate().is_err());
    }
}
