//! Where settings come from. Every setting is declared once, in [`Options`]
//! (or [`CommonOptions`], the part the offline commands share): one field
//! gives its flag, its `ENGINE_AUTH_*` environment variable (both through
//! clap) and its TOML key (through serde; same name, nested tables like
//! `[argon2]` as fields of their own). The command line's layer is laid over
//! the file's with [`Layer::over`] (flag > environment > file; clap folds
//! flag and environment together before we see them), and
//! [`Options::into_settings`] applies the defaults of [`Settings::new`] and
//! validates, once.

use anyhow::{Context, bail};
use clap::Args;
use clap::builder::BoolishValueParser;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Argon2Params, DEFAULT_CONFIG, Settings, default_data_dir};
use crate::keys::KeyAlg;
use crate::tls::TlsSource;

/// One layer of settings over another: the command line (flag or
/// environment variable, `self`) over the file (`lower`).
pub trait Layer {
    fn over(self, lower: Self) -> Self;
}

impl<T> Layer for Option<T> {
    fn over(self, lower: Self) -> Self {
        self.or(lower)
    }
}

/// A switch: on if the command line or the file turns it on.
impl Layer for bool {
    fn over(self, lower: Self) -> Self {
        self || lower
    }
}

/// A list: the command line's replaces the file's when it names any.
impl<T> Layer for Vec<T> {
    fn over(self, lower: Self) -> Self {
        if self.is_empty() { lower } else { self }
    }
}

/// `$T { field: upper.field.over(lower.field), … }`. A struct literal, so
/// the compiler refuses a field left out.
macro_rules! layer_fields {
    ($upper:ident over $lower:ident: $T:ident { $($field:ident),* $(,)? }) => {
        $T { $($field: Layer::over($upper.$field, $lower.$field)),* }
    };
}

/// The `[argon2]` table; on the command line `--argon2-<key>`.
#[derive(Args, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Argon2Options {
    /// argon2id memory for new hashes, KiB [default: 19456]
    #[arg(
        id = "argon2_memory_kib",
        long = "argon2-memory-kib",
        value_name = "ARGON2_MEMORY_KIB",
        global = true,
        env = "ENGINE_AUTH_ARGON2_MEMORY_KIB"
    )]
    pub memory_kib: Option<u32>,
    /// argon2id passes for new hashes [default: 2]
    #[arg(
        id = "argon2_iterations",
        long = "argon2-iterations",
        value_name = "ARGON2_ITERATIONS",
        global = true,
        env = "ENGINE_AUTH_ARGON2_ITERATIONS"
    )]
    pub iterations: Option<u32>,
    /// argon2id lanes for new hashes [default: 1]
    #[arg(
        id = "argon2_parallelism",
        long = "argon2-parallelism",
        value_name = "ARGON2_PARALLELISM",
        global = true,
        env = "ENGINE_AUTH_ARGON2_PARALLELISM"
    )]
    pub parallelism: Option<u32>,
}

impl Layer for Argon2Options {
    fn over(self, lower: Self) -> Self {
        layer_fields!(self over lower: Argon2Options { memory_kib, iterations, parallelism })
    }
}

/// The settings `serve` shares with the offline commands (`user`, `keys`,
/// `recover-admin`, `check`, `compact`): where the store is, how it is
/// opened, how new passwords are hashed. Global flags: they may follow the
/// subcommand's own (`user list --data-dir DIR`).
#[derive(Args, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CommonOptions {
    /// State directory [default: $STATE_DIRECTORY, else ./engine-auth-data]
    #[arg(long, global = true, env = "ENGINE_AUTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The store's page cache in MiB [default: 4]
    #[arg(long, global = true, env = "ENGINE_AUTH_CACHE_CAPACITY_MIB")]
    pub cache_capacity_mib: Option<u64>,
    #[command(flatten)]
    #[serde(default)]
    pub argon2: Argon2Options,
}

impl Layer for CommonOptions {
    fn over(self, lower: Self) -> Self {
        layer_fields!(self over lower: CommonOptions { data_dir, cache_capacity_mib, argon2 })
    }
}

impl CommonOptions {
    /// Settings for an offline command: these options over the defaults.
    pub fn into_settings(self) -> anyhow::Result<Settings> {
        Options {
            common: self,
            ..Options::default()
        }
        .into_settings()
    }
}

/// Every setting of `serve`, and the TOML file's schema: each field is a
/// long flag, an `ENGINE_AUTH_*` variable and a file key (the flag's name
/// with `_`). Every key is optional; unknown keys are refused.
#[derive(Args, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Options {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonOptions,
    /// Address to listen on (numeric; no host-name lookups) [default: 0.0.0.0:8443]
    #[arg(long, env = "ENGINE_AUTH_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Access-token lifetime, seconds [default: 600]
    #[arg(long, env = "ENGINE_AUTH_ACCESS_TTL_SECS")]
    pub access_ttl_secs: Option<u64>,
    /// Refresh-token lifetime, seconds [default: 43200]
    #[arg(long, env = "ENGINE_AUTH_REFRESH_TTL_SECS")]
    pub refresh_ttl_secs: Option<u64>,
    /// Clock-skew allowance when checking token expiry, seconds [default: 60]
    #[arg(long, env = "ENGINE_AUTH_LEEWAY_SECS")]
    pub leeway_secs: Option<u64>,
    /// Password hashes computed at once; the hash queue holds 8 per hash,
    /// and one client address may have this many checks in flight (twice
    /// this per IPv6 /64) [default: number of CPUs]
    #[arg(long, env = "ENGINE_AUTH_MAX_CONCURRENT_HASHES")]
    pub max_concurrent_hashes: Option<usize>,
    /// Largest request body, bytes [default: 16384]
    #[arg(long, env = "ENGINE_AUTH_BODY_LIMIT_BYTES")]
    pub body_limit_bytes: Option<usize>,
    /// HTTP worker threads [default: one per CPU]
    #[arg(long, env = "ENGINE_AUTH_WORKERS")]
    pub workers: Option<usize>,
    /// A retried refresh within this many seconds gets a sibling token
    /// instead of revoking the session; the first sibling used retires the
    /// others [default: 10]
    #[arg(long, env = "ENGINE_AUTH_REFRESH_GRACE_SECS")]
    pub refresh_grace_secs: Option<u64>,
    /// Absolute session lifetime, seconds [default: 604800 = 7 days]
    #[arg(long, env = "ENGINE_AUTH_SESSION_MAX_SECS")]
    pub session_max_secs: Option<u64>,
    /// Live sessions (logins) per user; a login beyond this ends that
    /// user's oldest session [default: 50]
    #[arg(long, env = "ENGINE_AUTH_MAX_SESSIONS_PER_USER")]
    pub max_sessions_per_user: Option<usize>,
    /// Rotate the signing key when it is older than this, seconds
    /// [default: 2592000 = 30 days]
    #[arg(long, env = "ENGINE_AUTH_KEY_MAX_AGE_SECS")]
    pub key_max_age_secs: Option<u64>,
    /// Interval of session pruning, retired-key deletion and the key-age
    /// check, seconds [default: 600]
    #[arg(long, env = "ENGINE_AUTH_HOUSEKEEPING_SECS")]
    pub housekeeping_secs: Option<u64>,
    /// Serve HTTPS on --listen with this PEM certificate (chain)
    #[arg(
        long,
        env = "ENGINE_AUTH_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, env = "ENGINE_AUTH_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate generated on first start
    /// (kept in the data dir; its SHA-256 fingerprint is logged)
    #[arg(long, env = "ENGINE_AUTH_TLS_SELF_SIGNED", value_parser = BoolishValueParser::new())]
    #[serde(default)]
    pub tls_self_signed: bool,
    /// Extra name or address for the self-signed certificate (repeatable)
    #[arg(long = "tls-san", env = "ENGINE_AUTH_TLS_SAN", value_delimiter = ',')]
    #[serde(default)]
    pub tls_san: Vec<String>,
    /// With TLS: also serve plain HTTP here (e.g. 127.0.0.1:8080 for local
    /// clients or a TLS-terminating proxy)
    #[arg(long, env = "ENGINE_AUTH_PLAIN_LISTEN")]
    pub plain_listen: Option<SocketAddr>,
    /// Failed logins per (username, client address) before delays start
    /// [default: 5]
    #[arg(long, env = "ENGINE_AUTH_THROTTLE_AFTER")]
    pub throttle_after: Option<u32>,
    /// Failed logins per client address (any username) before delays
    /// start; also the refresh tokens failing verification per address
    /// before those are refused [default: 20]
    #[arg(long, env = "ENGINE_AUTH_THROTTLE_ADDRESS_AFTER")]
    pub throttle_address_after: Option<u32>,
    /// Failed logins per IPv6 /64 (every address in it, any username)
    /// before delays start for the whole /64 [default: 200]
    #[arg(long, env = "ENGINE_AUTH_THROTTLE_PREFIX_AFTER")]
    pub throttle_prefix_after: Option<u32>,
    /// Failures older than this are forgotten, seconds [default: 900]
    #[arg(long, env = "ENGINE_AUTH_THROTTLE_WINDOW_SECS")]
    pub throttle_window_secs: Option<u64>,
    /// Longest delay a throttled client is told to wait, seconds [default: 900]
    #[arg(long, env = "ENGINE_AUTH_THROTTLE_MAX_DELAY_SECS")]
    pub throttle_max_delay_secs: Option<u64>,
    /// A reverse proxy whose `X-Forwarded-For` is honoured (repeatable; off
    /// by default): requests from this address are counted against the
    /// right-most forwarded address that is not itself a trusted proxy
    #[arg(
        long = "trusted-proxy",
        value_name = "ADDR",
        env = "ENGINE_AUTH_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub trusted_proxy: Vec<IpAddr>,
    /// An address allowed to call the MQTT broker backend
    /// (`/api/v1/auth/mqtt/*`; repeatable) [default: 127.0.0.1,::1]
    #[arg(
        long = "mqtt-backend-client",
        value_name = "ADDR",
        env = "ENGINE_AUTH_MQTT_BACKEND_CLIENT",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub mqtt_backend_client: Vec<IpAddr>,
    /// First start only: read the initial admin password from this file.
    /// ENGINE_AUTH_ADMIN_PASSWORD takes precedence; systemd's
    /// $CREDENTIALS_DIRECTORY/admin-password is used when neither is set.
    #[arg(long, env = "ENGINE_AUTH_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
    /// Algorithm of new signing keys: HS256 (a shared secret), EdDSA
    /// (Ed25519) or ES256 (ECDSA P-256); the public keys of the last two
    /// are published at /.well-known/jwks.json.
    /// A change takes effect at start as a key rotation: tokens signed
    /// before stay valid until they expire [default: HS256]
    #[arg(long, value_name = "ALG", env = "ENGINE_AUTH_SIGNING_ALG", value_parser = KeyAlg::parse)]
    pub signing_alg: Option<KeyAlg>,
    /// How long other services may cache the published keys (JWKS
    /// Cache-Control max-age), seconds: a new EdDSA or ES256 key is published this
    /// long before it signs [default: 300]
    #[arg(long, env = "ENGINE_AUTH_JWKS_MAX_AGE_SECS")]
    pub jwks_max_age_secs: Option<u64>,
    /// Serve Prometheus metrics (`GET /metrics`) on this address, a
    /// listener of its own (e.g. 127.0.0.1:9464) [default: off]
    #[arg(long, value_name = "ADDR", env = "ENGINE_AUTH_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

impl Layer for Options {
    fn over(self, lower: Self) -> Self {
        layer_fields!(self over lower: Options {
            common, listen, access_ttl_secs, refresh_ttl_secs, leeway_secs,
            max_concurrent_hashes, body_limit_bytes, workers, refresh_grace_secs,
            session_max_secs, max_sessions_per_user, key_max_age_secs, housekeeping_secs,
            tls_cert, tls_key,
            tls_self_signed, tls_san, plain_listen, throttle_after, throttle_address_after,
            throttle_prefix_after, throttle_window_secs, throttle_max_delay_secs, trusted_proxy,
            mqtt_backend_client, admin_password_file, signing_alg, jwks_max_age_secs,
            metrics_listen,
        })
    }
}

impl Options {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Options> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// The defaults of [`Settings::new`] with every option given here
    /// applied, validated. (The admin password is not an option: see
    /// [`super::ADMIN_PASSWORD_ENV`].)
    pub fn into_settings(self) -> anyhow::Result<Settings> {
        // Destructured without `..`: a new option that is not applied here
        // does not compile.
        let Options {
            common:
                CommonOptions {
                    data_dir,
                    cache_capacity_mib,
                    argon2:
                        Argon2Options {
                            memory_kib,
                            iterations,
                            parallelism,
                        },
                },
            listen,
            access_ttl_secs,
            refresh_ttl_secs,
            leeway_secs,
            max_concurrent_hashes,
            body_limit_bytes,
            workers,
            refresh_grace_secs,
            session_max_secs,
            max_sessions_per_user,
            key_max_age_secs,
            housekeeping_secs,
            tls_cert,
            tls_key,
            tls_self_signed,
            tls_san,
            plain_listen,
            throttle_after,
            throttle_address_after,
            throttle_prefix_after,
            throttle_window_secs,
            throttle_max_delay_secs,
            trusted_proxy,
            mqtt_backend_client,
            admin_password_file,
            signing_alg,
            jwks_max_age_secs,
            metrics_listen,
        } = self;
        let mut s = Settings::new(data_dir.unwrap_or_else(default_data_dir));
        /// `target = value` for every option that is set.
        macro_rules! apply {
            ($($option:expr => $target:expr),* $(,)?) => {
                $(if let Some(v) = $option {
                    $target = v;
                })*
            };
        }
        let secs = |v: Option<u64>| v.map(Duration::from_secs);
        let mib = cache_capacity_mib
            .map(|m| {
                m.checked_mul(1024 * 1024)
                    .context("cache-capacity-mib is too large")
            })
            .transpose()?;
        apply! {
            mib => s.cache_capacity_bytes,
            memory_kib => s.argon2.memory_kib,
            iterations => s.argon2.iterations,
            parallelism => s.argon2.parallelism,
            listen => s.listen,
            access_ttl_secs => s.access_ttl_secs,
            refresh_ttl_secs => s.refresh_ttl_secs,
            leeway_secs => s.leeway_secs,
            max_concurrent_hashes => s.max_concurrent_hashes,
            body_limit_bytes => s.body_limit_bytes,
            workers => s.workers,
            refresh_grace_secs => s.refresh_grace_secs,
            session_max_secs => s.session_max_secs,
            max_sessions_per_user => s.max_sessions_per_user,
            key_max_age_secs => s.key_max_age_secs,
            housekeeping_secs => s.housekeeping_secs,
            jwks_max_age_secs => s.jwks_max_age_secs,
            throttle_after => s.throttle.per_user,
            throttle_address_after => s.throttle.per_address,
            throttle_prefix_after => s.throttle.per_prefix,
            secs(throttle_window_secs) => s.throttle.window,
            secs(throttle_max_delay_secs) => s.throttle.max_delay,
        }
        s.tls = match (tls_cert, tls_key, tls_self_signed) {
            (Some(cert), Some(key), _) => TlsSource::Files { cert, key },
            (Some(_), None, _) | (None, Some(_), _) => bail!("tls_cert and tls_key go together"),
            (None, None, true) => TlsSource::SelfSigned {
                extra_names: tls_san,
            },
            (None, None, false) => TlsSource::None,
        };
        s.plain_listen = plain_listen;
        s.trusted_proxies = trusted_proxy;
        if !mqtt_backend_client.is_empty() {
            s.mqtt_backend_clients = mqtt_backend_client;
        }
        s.admin_password_file = admin_password_file;
        if let Some(alg) = signing_alg {
            s.signing_alg = alg;
        }
        s.metrics_listen = metrics_listen;
        s.validate()?;
        Ok(s)
    }
}

/// Which configuration file to read (not a setting itself, so no file key).
#[derive(Args, Debug, Default, Clone)]
pub struct ConfigFile {
    /// TOML configuration file [default: /etc/engine-auth/config.toml if it exists]
    #[arg(long, global = true, env = "ENGINE_AUTH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Read no configuration file, not even /etc/engine-auth/config.toml
    /// (tests, or a second instance beside the packaged one)
    #[arg(
        long,
        global = true,
        env = "ENGINE_AUTH_NO_CONFIG",
        value_parser = BoolishValueParser::new(),
        conflicts_with = "config"
    )]
    pub no_config: bool,
}

impl ConfigFile {
    /// The file's options: the one named, else the packaged default if it
    /// exists, else none (every option unset).
    pub fn load(&self) -> anyhow::Result<Options> {
        match &self.config {
            _ if self.no_config => Ok(Options::default()),
            Some(p) => Options::load(p),
            None if Path::new(DEFAULT_CONFIG).exists() => Options::load(Path::new(DEFAULT_CONFIG)),
            None => Ok(Options::default()),
        }
    }
}

impl From<Argon2Params> for Argon2Options {
    fn from(p: Argon2Params) -> Argon2Options {
        Argon2Options {
            memory_kib: Some(p.memory_kib),
            iterations: Some(p.iterations),
            parallelism: Some(p.parallelism),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// `Options` alone on a command line.
    #[derive(Parser, Debug)]
    struct Flags {
        #[command(flatten)]
        options: Options,
    }

    fn flags(args: &[&str]) -> Options {
        let mut argv = vec!["engine-auth"];
        argv.extend(args);
        Flags::try_parse_from(argv).unwrap().options
    }

    fn file(text: &str) -> Options {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_packaged_config_parses_and_names_the_service_state_dir() {
        // The CLI run by an operator has no $STATE_DIRECTORY: the packaged
        // file is what makes it find the service's store.
        let c = file(include_str!("../../packaging/config.toml"));
        assert_eq!(
            c.common.data_dir,
            Some(PathBuf::from("/var/lib/engine-auth"))
        );
        // With its commented-out keys in, it still parses, to the defaults.
        let all: String = include_str!("../../packaging/config.toml")
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(kv) if kv.contains(" = ") || kv.starts_with('[') => kv,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(all.contains("\n[argon2]\n"), "{all}");
        let s = file(&all).into_settings().unwrap();
        let d = Settings::new("/var/lib/engine-auth");
        assert_eq!((s.argon2, s.access_ttl_secs), (d.argon2, d.access_ttl_secs));
    }

    #[test]
    fn file_config_parses_and_rejects_unknown_keys() {
        let c = file(
            "listen = \"127.0.0.1:9000\"\naccess_ttl_secs = 60\ncache_capacity_mib = 8\nthrottle_after = 3\ntls_san = [\"gw\"]\n[argon2]\nmemory_kib = 8192\niterations = 3\nparallelism = 1\n",
        );
        assert_eq!(c.listen.unwrap().port(), 9000);
        assert_eq!(c.common.cache_capacity_mib, Some(8));
        assert_eq!(c.common.argon2.iterations, Some(3));
        assert_eq!(
            (c.throttle_after, c.tls_san),
            (Some(3), vec!["gw".to_string()])
        );
        for bad in [
            "lisen = \"x\"",
            "[argon2]\nmemory = 1",
            "daemon = true",
            "config = \"/x\"",
            "argon2_memory_kib = 8192",
        ] {
            assert!(
                toml::from_str::<Options>(bad).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn flag_over_file_over_default_field_by_field() {
        let cli = flags(&["--argon2-memory-kib", "256", "--listen", "127.0.0.1:1"]);
        let f = file(
            "listen = \"127.0.0.1:2\"\nleeway_secs = 5\ntls_self_signed = true\n[argon2]\nmemory_kib = 8192\niterations = 3\nparallelism = 1\n",
        );
        let s = cli.over(f).into_settings().unwrap();
        assert_eq!(s.listen.port(), 1);
        assert_eq!(s.leeway_secs, 5);
        assert_eq!((s.argon2.memory_kib, s.argon2.iterations), (256, 3));
        assert_eq!(s.access_ttl_secs, Settings::new("x").access_ttl_secs);
        assert_eq!(
            s.tls,
            TlsSource::SelfSigned {
                extra_names: vec![]
            }
        );
        // A list on the command line replaces the file's.
        let s = flags(&["--tls-self-signed", "--tls-san", "a,b"])
            .over(file("tls_san = [\"c\"]"))
            .into_settings()
            .unwrap();
        assert_eq!(
            s.tls,
            TlsSource::SelfSigned {
                extra_names: vec!["a".into(), "b".into()]
            }
        );
    }

    #[test]
    fn the_merge_is_validated() {
        for bad in [
            "tls_cert = \"/c.pem\"",
            "plain_listen = \"127.0.0.1:8080\"",
            "access_ttl_secs = 0",
            "cache_capacity_mib = 18446744073709551615",
            "[argon2]\nmemory_kib = 1",
        ] {
            assert!(file(bad).into_settings().is_err(), "{bad:?} was accepted");
        }
        let offline = CommonOptions {
            cache_capacity_mib: Some(1),
            ..CommonOptions::default()
        };
        assert_eq!(
            offline.into_settings().unwrap().cache_capacity_bytes,
            1 << 20
        );
    }

    #[test]
    fn trusted_proxies_are_repeatable_numeric_and_off_by_default() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(
            Options::default()
                .into_settings()
                .unwrap()
                .trusted_proxies
                .is_empty()
        );
        let s = flags(&[
            "--trusted-proxy",
            "127.0.0.1",
            "--trusted-proxy",
            "::1,10.0.0.2",
        ])
        .over(file("trusted_proxy = [\"10.9.9.9\"]"))
        .into_settings()
        .unwrap();
        assert_eq!(
            s.trusted_proxies,
            [ip("127.0.0.1"), ip("::1"), ip("10.0.0.2")]
        );
        let s = file("trusted_proxy = [\"fd00::1\"]")
            .into_settings()
            .unwrap();
        assert_eq!(s.trusted_proxies, [ip("fd00::1")]);
        assert!(
            file("trusted_proxy = [\"0.0.0.0\"]")
                .into_settings()
                .is_err()
        );
        assert!(toml::from_str::<Options>("trusted_proxy = [\"proxy.lan\"]").is_err());
        assert!(Flags::try_parse_from(["engine-auth", "--trusted-proxy", "proxy.lan"]).is_err());
    }

    #[test]
    fn the_mqtt_backend_answers_loopback_by_default_or_the_addresses_given() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let s = Options::default().into_settings().unwrap();
        assert_eq!(s.mqtt_backend_clients, [ip("127.0.0.1"), ip("::1")]);
        let s = flags(&["--mqtt-backend-client", "10.0.0.5,fd00::7"])
            .into_settings()
            .unwrap();
        assert_eq!(s.mqtt_backend_clients, [ip("10.0.0.5"), ip("fd00::7")]);
        let s = file("mqtt_backend_client = [\"10.0.0.6\"]")
            .into_settings()
            .unwrap();
        assert_eq!(s.mqtt_backend_clients, [ip("10.0.0.6")]);
    }

    #[test]
    fn signing_alg_and_metrics_listen_from_flag_env_name_and_file() {
        let s = flags(&[
            "--signing-alg",
            "eddsa",
            "--metrics-listen",
            "127.0.0.1:9464",
        ])
        .into_settings()
        .unwrap();
        assert_eq!(s.signing_alg, KeyAlg::EdDSA);
        assert_eq!(s.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        let d = Options::default().into_settings().unwrap();
        assert_eq!((d.signing_alg, d.metrics_listen), (KeyAlg::HS256, None));
        let f = file("signing_alg = \"EdDSA\"\nmetrics_listen = \"[::1]:9464\"\n");
        let s = flags(&[]).over(f.clone()).into_settings().unwrap();
        assert_eq!(s.signing_alg, KeyAlg::EdDSA);
        let s = flags(&["--signing-alg", "HS256"])
            .over(f)
            .into_settings()
            .unwrap();
        assert_eq!(s.signing_alg, KeyAlg::HS256);
        let mut argv = vec!["engine-auth", "--signing-alg", "none"];
        assert!(Flags::try_parse_from(argv.drain(..)).is_err());
        assert!(toml::from_str::<Options>("signing_alg = \"RS256\"").is_err());
    }

    /// The `[default: N]` notes in `--help` say what `Settings::new` does:
    /// giving each flag its documented default changes nothing.
    #[test]
    fn help_defaults_match_the_real_defaults() {
        let defaults = format!("{:?}", Options::default().into_settings().unwrap());
        let mut checked = 0;
        for arg in Flags::command().get_arguments() {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let Some((_, rest)) = help.split_once("[default: ") else {
                continue;
            };
            let value = rest.split([' ', ']']).next().unwrap_or_default();
            if !value.starts_with(|c: char| c.is_ascii_digit()) {
                continue; // "number of CPUs", "$STATE_DIRECTORY, …"
            }
            let flag = format!("--{}", arg.get_long().unwrap());
            let s = flags(&[&flag, value]).into_settings().unwrap();
            assert_eq!(format!("{s:?}"), defaults, "{flag} {value}");
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} defaults checked");
    }
}
