//! The command line: `serve`, `healthcheck`, offline user administration
//! (`user …`, `recover-admin`) on a stopped daemon's data dir, and offline
//! store upkeep (`check`, `compact`). Every flag
//! can also come from an `ENGINE_AUTH_*` environment variable; serve
//! settings can also come from a TOML file (flag > environment > file >
//! default).

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::admin::{self, Request};
use crate::bootstrap::{self, ADMIN_USERNAME};
use crate::config::{self, Argon2Params, FileConfig, Settings};
use crate::domain::{Password, Roles, Secret, Username};
use crate::password::Hasher;
use crate::startup::Application;
use crate::store::{Store, StoreError};
use crate::tls::TlsSource;

/// Read when `--config` is not given and the file exists (the .deb ships
/// it), so `sudo engine-auth user list` finds the packaged daemon's store.
const DEFAULT_CONFIG: &str = "/etc/engine-auth/config.toml";

/// engine-auth: the flow engine's authorization API (login, token refresh,
/// user and role management) as one small daemon.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP API (foreground unless --daemon).
    Serve(Box<ServeArgs>),
    /// Exit 0 if the daemon answers its health endpoint, 1 otherwise.
    Healthcheck {
        /// Health URL (plain http, numeric or "localhost" host).
        #[arg(
            long,
            env = "ENGINE_AUTH_HEALTH_URL",
            default_value = "http://127.0.0.1:8443/health"
        )]
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
    /// Manage users (through the running daemon's admin socket, or directly
    /// in a stopped daemon's data dir).
    User {
        #[command(flatten)]
        common: CommonArgs,
        #[command(subcommand)]
        action: UserAction,
    },
    /// Signing keys: `keys rotate`, `keys list` (ids, ages, states; never key
    /// material).
    Keys {
        #[command(flatten)]
        common: CommonArgs,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Measure argon2id on this device and print (optionally write to a
    /// config file) the strongest OWASP-equivalent parameters that hash
    /// within the target. Stored hashes are upgraded at their next login.
    TuneArgon2 {
        /// Longest acceptable time for one hash, milliseconds.
        #[arg(long, default_value_t = 250)]
        target_ms: u64,
        /// Most memory one hash may use, MiB.
        #[arg(long, default_value_t = 64)]
        max_memory_mib: u32,
        /// Write the chosen `[argon2]` table into this config file.
        #[arg(long)]
        write_config: Option<PathBuf>,
    },
    /// Stopped daemon only: read every record of the store, print what it
    /// holds, and exit non-zero if anything is inconsistent (records that
    /// do not decode, the username index against the users, the recorded
    /// counts, the active signing key). Changes nothing unless told to.
    Check {
        #[command(flatten)]
        common: CommonArgs,
        /// When the recorded user, index and admin counts are all that is
        /// wrong (say an earlier version ran on this store), write them as
        /// counted. Refused if anything else is inconsistent.
        #[arg(long)]
        fix_counts: bool,
    },
    /// Stopped daemon only: rewrite the store into a fresh copy (reclaiming
    /// the space sled has not), verify it, and swap it in atomically. Safe
    /// to interrupt at any point.
    Compact {
        #[command(flatten)]
        common: CommonArgs,
        /// Only when the store takes more than RATIO times its live data on
        /// disk (plus 1 MiB for sled's own files); otherwise leave it and
        /// exit 0. The systemd unit runs `--if-over 3` before each start.
        #[arg(long, value_name = "RATIO", value_parser = parse_ratio)]
        if_over: Option<f64>,
        /// With --if-over: give up (store unchanged, exit 1) if the copy is
        /// not built and verified within this many seconds, so a slow device
        /// still starts in time. The unit passes 20 (TimeoutStartSec=60s).
        #[arg(long, value_name = "SECONDS", requires = "if_over", value_parser = clap::value_parser!(u64).range(1..))]
        max_seconds: Option<u64>,
    },
    /// Set a new password for the admin account (and give it every role),
    /// creating it if it is gone. Works with the daemon running or stopped.
    RecoverAdmin {
        #[command(flatten)]
        common: CommonArgs,
        /// Account to recover.
        #[arg(long, default_value = ADMIN_USERNAME)]
        username: String,
        /// Read the new password from this file ("-" for stdin); otherwise
        /// ENGINE_AUTH_ADMIN_PASSWORD, otherwise one is generated and written
        /// to <data-dir>/initial-admin-password.
        #[arg(long, env = "ENGINE_AUTH_ADMIN_PASSWORD_FILE")]
        password_file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum KeysAction {
    /// Retire the signing key and start a new one; nobody is logged out.
    Rotate,
    /// Show key ids, states and ages.
    List,
}

#[derive(Subcommand, Debug)]
enum UserAction {
    /// Add a user.
    Add {
        username: String,
        /// Comma-separated roles: admin, flows, configure, subscribe, write,
        /// read, or all / none.
        #[arg(long)]
        roles: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// List users: id, role bitmask, username.
    List,
    /// Set a user's password.
    Passwd {
        username: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Replace a user's roles.
    Roles {
        username: String,
        /// Comma-separated roles, as for `add`.
        #[arg(long)]
        roles: String,
    },
    /// Delete a user.
    Delete { username: String },
    /// Revoke every token and session of a user.
    Logout { username: String },
}

#[derive(Args, Debug)]
struct PasswordSource {
    /// Read the password from this file ("-" for stdin); otherwise from
    /// ENGINE_AUTH_PASSWORD.
    #[arg(long)]
    password_file: Option<PathBuf>,
}

/// Settings shared by `serve` and the offline commands.
#[derive(Args, Debug)]
struct CommonArgs {
    /// State directory [default: $STATE_DIRECTORY, else ./engine-auth-data]
    #[arg(long, global = true, env = "ENGINE_AUTH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file [default: /etc/engine-auth/config.toml if it exists]
    #[arg(long, global = true, env = "ENGINE_AUTH_CONFIG")]
    config: Option<PathBuf>,
    /// sled page cache in MiB [default: 4]
    #[arg(long, global = true, env = "ENGINE_AUTH_CACHE_CAPACITY_MIB")]
    cache_capacity_mib: Option<u64>,
    /// argon2id memory for new hashes, KiB [default: 19456]
    #[arg(long, global = true, env = "ENGINE_AUTH_ARGON2_MEMORY_KIB")]
    argon2_memory_kib: Option<u32>,
    /// argon2id passes for new hashes [default: 2]
    #[arg(long, global = true, env = "ENGINE_AUTH_ARGON2_ITERATIONS")]
    argon2_iterations: Option<u32>,
    /// argon2id lanes for new hashes [default: 1]
    #[arg(long, global = true, env = "ENGINE_AUTH_ARGON2_PARALLELISM")]
    argon2_parallelism: Option<u32>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to listen on (numeric; no host-name lookups) [default: 0.0.0.0:8443]
    #[arg(long, env = "ENGINE_AUTH_LISTEN")]
    listen: Option<SocketAddr>,
    /// Access-token lifetime, seconds [default: 600]
    #[arg(long, env = "ENGINE_AUTH_ACCESS_TTL_SECS")]
    access_ttl_secs: Option<u64>,
    /// Refresh-token lifetime, seconds [default: 43200]
    #[arg(long, env = "ENGINE_AUTH_REFRESH_TTL_SECS")]
    refresh_ttl_secs: Option<u64>,
    /// Clock-skew allowance when checking token expiry, seconds [default: 60]
    #[arg(long, env = "ENGINE_AUTH_LEEWAY_SECS")]
    leeway_secs: Option<u64>,
    /// Password hashes computed at once [default: number of CPUs]
    #[arg(long, env = "ENGINE_AUTH_MAX_CONCURRENT_HASHES")]
    max_concurrent_hashes: Option<usize>,
    /// Largest request body, bytes [default: 16384]
    #[arg(long, env = "ENGINE_AUTH_BODY_LIMIT_BYTES")]
    body_limit_bytes: Option<usize>,
    /// HTTP worker threads [default: one per CPU]
    #[arg(long, env = "ENGINE_AUTH_WORKERS")]
    workers: Option<usize>,
    /// A retried refresh within this many seconds gets a sibling token
    /// instead of revoking the session [default: 10]
    #[arg(long, env = "ENGINE_AUTH_REFRESH_GRACE_SECS")]
    refresh_grace_secs: Option<u64>,
    /// Absolute session lifetime, seconds [default: 604800 = 7 days]
    #[arg(long, env = "ENGINE_AUTH_SESSION_MAX_SECS")]
    session_max_secs: Option<u64>,
    /// Rotate the signing key when it is older than this, seconds
    /// [default: 2592000 = 30 days]
    #[arg(long, env = "ENGINE_AUTH_KEY_MAX_AGE_SECS")]
    key_max_age_secs: Option<u64>,
    /// Interval of session pruning, retired-key deletion and the key-age
    /// check, seconds [default: 600]
    #[arg(long, env = "ENGINE_AUTH_HOUSEKEEPING_SECS")]
    housekeeping_secs: Option<u64>,
    /// Serve HTTPS on --listen with this PEM certificate (chain)
    #[arg(
        long,
        env = "ENGINE_AUTH_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, env = "ENGINE_AUTH_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate generated on first start
    /// (kept in the data dir; its SHA-256 fingerprint is logged)
    #[arg(long, env = "ENGINE_AUTH_TLS_SELF_SIGNED")]
    tls_self_signed: bool,
    /// Extra name or address for the self-signed certificate (repeatable)
    #[arg(long = "tls-san", env = "ENGINE_AUTH_TLS_SAN", value_delimiter = ',')]
    tls_san: Vec<String>,
    /// With TLS: also serve plain HTTP here (e.g. 127.0.0.1:8080 for local
    /// clients or a TLS-terminating proxy)
    #[arg(long, env = "ENGINE_AUTH_PLAIN_LISTEN")]
    plain_listen: Option<SocketAddr>,
    /// Failed logins per (username, client address) before delays start
    /// [default: 5]
    #[arg(long, env = "ENGINE_AUTH_THROTTLE_AFTER")]
    throttle_after: Option<u32>,
    /// Failed logins/refreshes per client address before delays start
    /// [default: 20]
    #[arg(long, env = "ENGINE_AUTH_THROTTLE_ADDRESS_AFTER")]
    throttle_address_after: Option<u32>,
    /// Failures older than this are forgotten, seconds [default: 900]
    #[arg(long, env = "ENGINE_AUTH_THROTTLE_WINDOW_SECS")]
    throttle_window_secs: Option<u64>,
    /// Longest delay a throttled client is told to wait, seconds [default: 900]
    #[arg(long, env = "ENGINE_AUTH_THROTTLE_MAX_DELAY_SECS")]
    throttle_max_delay_secs: Option<u64>,
    /// First start only: read the initial admin password from this file.
    /// ENGINE_AUTH_ADMIN_PASSWORD takes precedence; systemd's
    /// $CREDENTIALS_DIRECTORY/admin-password is used when neither is set.
    #[arg(long, env = "ENGINE_AUTH_ADMIN_PASSWORD_FILE")]
    admin_password_file: Option<PathBuf>,
    /// Detach from the terminal (for init systems without systemd).
    #[arg(long, env = "ENGINE_AUTH_DAEMON", requires = "pid_file")]
    daemon: bool,
    /// With --daemon: write the daemon's pid here.
    #[arg(long, env = "ENGINE_AUTH_PID_FILE")]
    pid_file: Option<PathBuf>,
    /// With --daemon: append logs here [default: <data-dir>/engine-auth.log]
    #[arg(long, env = "ENGINE_AUTH_LOG_FILE")]
    log_file: Option<PathBuf>,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e:#}");
            eprintln!("engine-auth: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(*args).map(|_| ExitCode::SUCCESS),
        Command::Healthcheck { url, timeout_secs } => {
            Ok(match healthcheck(&url, Duration::from_secs(timeout_secs)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("engine-auth: unhealthy: {e:#}");
                    ExitCode::FAILURE
                }
            })
        }
        Command::User { common, action } => user(common, action),
        Command::TuneArgon2 {
            target_ms,
            max_memory_mib,
            write_config,
        } => tune_argon2(target_ms, max_memory_mib, write_config.as_deref()),
        Command::Keys { common, action } => admin_request(
            &common,
            match action {
                KeysAction::Rotate => Request::KeysRotate,
                KeysAction::List => Request::KeysList,
            },
        ),
        Command::RecoverAdmin {
            common,
            username,
            password_file,
        } => recover_admin(common, &username, password_file.as_deref()),
        Command::Check { common, fix_counts } => check(&common, fix_counts),
        Command::Compact {
            common,
            if_over,
            max_seconds,
        } => compact(&common, if_over, max_seconds),
    }
}

/// Builds settings from the common flags (and the file they name).
fn base_settings(common: &CommonArgs) -> anyhow::Result<(Settings, FileConfig)> {
    let file = match &common.config {
        Some(p) => FileConfig::load(p)?,
        None if Path::new(DEFAULT_CONFIG).exists() => FileConfig::load(Path::new(DEFAULT_CONFIG))?,
        None => FileConfig::default(),
    };
    let data_dir = common
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(config::default_data_dir);
    let mut s = Settings::new(data_dir);
    if let Some(mib) = common.cache_capacity_mib.or(file.cache_capacity_mib) {
        s.cache_capacity_bytes = mib * 1024 * 1024;
    }
    let a = file.argon2.unwrap_or_default();
    s.argon2 = Argon2Params {
        memory_kib: common.argon2_memory_kib.unwrap_or(a.memory_kib),
        iterations: common.argon2_iterations.unwrap_or(a.iterations),
        parallelism: common.argon2_parallelism.unwrap_or(a.parallelism),
    };
    Ok((s, file))
}

fn serve_settings(args: &ServeArgs) -> anyhow::Result<Settings> {
    let (mut s, file) = base_settings(&args.common)?;
    macro_rules! pick {
        ($field:ident) => {
            if let Some(v) = args.$field.clone().or(file.$field.clone()) {
                s.$field = v;
            }
        };
    }
    pick!(listen);
    pick!(access_ttl_secs);
    pick!(refresh_ttl_secs);
    pick!(leeway_secs);
    pick!(max_concurrent_hashes);
    pick!(body_limit_bytes);
    pick!(workers);
    pick!(refresh_grace_secs);
    pick!(session_max_secs);
    pick!(key_max_age_secs);
    pick!(housekeeping_secs);
    let sans = if args.tls_san.is_empty() {
        file.tls_san.clone().unwrap_or_default()
    } else {
        args.tls_san.clone()
    };
    s.tls = match (
        args.tls_cert.clone().or(file.tls_cert.clone()),
        args.tls_key.clone().or(file.tls_key.clone()),
        args.tls_self_signed || file.tls_self_signed.unwrap_or(false),
    ) {
        (Some(cert), Some(key), _) => TlsSource::Files { cert, key },
        (Some(_), None, _) | (None, Some(_), _) => bail!("tls_cert and tls_key go together"),
        (None, None, true) => TlsSource::SelfSigned { extra_names: sans },
        (None, None, false) => TlsSource::None,
    };
    s.plain_listen = args.plain_listen.or(file.plain_listen);
    if s.plain_listen.is_some() && s.tls == TlsSource::None {
        bail!("--plain-listen only makes sense with TLS on --listen");
    }
    if let Some(v) = args.throttle_after.or(file.throttle_after) {
        s.throttle.per_user = v;
    }
    if let Some(v) = args.throttle_address_after.or(file.throttle_address_after) {
        s.throttle.per_address = v;
    }
    if let Some(v) = args.throttle_window_secs.or(file.throttle_window_secs) {
        s.throttle.window = std::time::Duration::from_secs(v);
    }
    if let Some(v) = args
        .throttle_max_delay_secs
        .or(file.throttle_max_delay_secs)
    {
        s.throttle.max_delay = std::time::Duration::from_secs(v);
    }
    s.admin_password_file = args
        .admin_password_file
        .clone()
        .or(file.admin_password_file.clone());
    s.admin_password = std::env::var("ENGINE_AUTH_ADMIN_PASSWORD").ok();
    s.validate()?;
    Ok(s)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut settings = serve_settings(&args)?;
    let ready_pipe = if args.daemon {
        match detach(&args, &mut settings)? {
            Some(pipe) => Some(pipe),
            None => return Ok(()), // the parent: the daemon reported ready
        }
    } else {
        None
    };
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await;
        if let Some(mut pipe) = ready_pipe {
            let _ = match &app {
                Ok(_) => writeln!(pipe, "ok"),
                Err(e) => writeln!(pipe, "{e:#}"),
            };
        }
        let app = app?;
        actix_web::rt::spawn(handle_signals(app.handle(), app.state()));
        app.run_until_stopped().await
    })
}

/// `--daemon`: detach with the `daemonize` crate. Nothing that starts
/// threads (sled, the runtime) runs before the fork. The parent waits until
/// the daemon has opened its store and bound its port (or failed), so the
/// operator sees the outcome and the exit status tells it. Returns the
/// daemon's end of the report pipe in the daemon, `None` in the parent.
fn detach(args: &ServeArgs, settings: &mut Settings) -> anyhow::Result<Option<UnixStream>> {
    // daemonize changes the working directory to "/".
    settings.data_dir = std::path::absolute(&settings.data_dir)?;
    if let crate::tls::TlsSource::Files { cert, key } = &mut settings.tls {
        *cert = std::path::absolute(&*cert)?;
        *key = std::path::absolute(&*key)?;
    }
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data dir {}", settings.data_dir.display()))?;
    let log_path = match &args.log_file {
        Some(p) => std::path::absolute(p)?,
        None => settings.data_dir.join("engine-auth.log"),
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open log file {}", log_path.display()))?;
    let pid_file = std::path::absolute(
        args.pid_file
            .as_deref()
            .unwrap_or(Path::new("engine-auth.pid")),
    )?;
    let (mut parent_end, child_end) = UnixStream::pair()?;
    match daemonize::Daemonize::new()
        .pid_file(&pid_file)
        .stderr(log)
        .execute()
    {
        daemonize::Outcome::Parent(Ok(_)) => {
            drop(child_end);
            parent_end.set_read_timeout(Some(Duration::from_secs(120)))?;
            let mut report = String::new();
            let _ = parent_end.read_to_string(&mut report);
            match report.trim() {
                "ok" => {
                    eprintln!(
                        "engine-auth: running in the background (pid file {}, log {})",
                        pid_file.display(),
                        log_path.display()
                    );
                    Ok(None)
                }
                "" => bail!(
                    "the daemon exited during start-up; see {}",
                    log_path.display()
                ),
                err => bail!("{err}"),
            }
        }
        daemonize::Outcome::Parent(Err(e)) => bail!("cannot detach: {e}"),
        daemonize::Outcome::Child(Ok(_)) => {
            drop(parent_end);
            Ok(Some(child_end))
        }
        daemonize::Outcome::Child(Err(e)) => bail!("cannot detach: {e}"),
    }
}

/// SIGTERM/SIGINT: graceful stop. SIGHUP (`systemctl reload`): rotate the
/// signing key.
async fn handle_signals(
    handle: actix_web::dev::ServerHandle,
    state: actix_web::web::Data<crate::state::AppState>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        log::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    let name = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            _ = hup.recv() => {
                crate::systemd::notify("RELOADING=1");
                let rotated = state
                    .accounts()
                    .rotate_signing_key(crate::accounts::Actor::Operator, &crate::audit::Origin::Daemon)
                    .await;
                match rotated {
                    Ok(kid) => log::info!("SIGHUP: signing key rotated to {kid}"),
                    Err(e) => log::error!("SIGHUP: key rotation failed: {e:#}"),
                }
                crate::systemd::notify("READY=1");
            }
        }
    };
    log::info!("received {name}; finishing in-flight requests");
    handle.stop(true).await;
}

/// A minimal HTTP/1.1 GET, so probes need no curl on the device.
fn healthcheck(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .context("only http:// URLs are supported")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let hostport_numeric = match hostport.strip_prefix("localhost") {
        Some(port) => format!("127.0.0.1{port}"),
        None => hostport.to_string(),
    };
    let with_port = if hostport_numeric
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        hostport_numeric
    } else {
        format!("{hostport_numeric}:80")
    };
    // Numeric only: a statically linked glibc (the armv7 build) cannot use
    // NSS, so no host-name lookups anywhere in the daemon.
    let addr: SocketAddr = with_port
        .parse()
        .map_err(|_| anyhow::anyhow!("{hostport} is not a numeric address (or localhost)"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut buf)?;
    let head = String::from_utf8_lossy(&buf);
    let status = head.lines().next().unwrap_or_default();
    if status.split(' ').nth(1) == Some("200") {
        println!("ok: {status}");
        Ok(())
    } else {
        bail!("{addr}{path} answered {status:?}")
    }
}

fn read_password(src: &PasswordSource, env: &str) -> anyhow::Result<String> {
    let raw = match &src.password_file {
        Some(p) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        Some(p) => bootstrap::read_password_file(p)?,
        None => std::env::var(env).map_err(|_| {
            anyhow::anyhow!("give the password with --password-file FILE (or - for stdin) or {env}")
        })?,
    };
    // Checked here too, so a bad password fails before reaching a daemon.
    Password::parse(raw.clone()).map_err(anyhow::Error::msg)?;
    Ok(raw)
}

/// Sends `req` to the running daemon's admin socket or, when no daemon
/// runs, executes it on the store directly. Prints the result.
fn admin_request(common: &CommonArgs, req: Request) -> anyhow::Result<ExitCode> {
    let (settings, _) = base_settings(common)?;
    settings.validate()?;
    let dir = &settings.data_dir;
    if let Some(resp) = admin::send(dir, &req)? {
        return Ok(match resp {
            Ok(output) => {
                println!("{output}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("engine-auth: error: {message}");
                ExitCode::FAILURE
            }
        });
    }
    let store = Store::open_existing(dir, settings.cache_capacity_bytes)?;
    let hasher = Hasher::new(settings.argon2, 1)?;
    let clock = crate::clock::Clock::system();
    let accounts = crate::accounts::Accounts {
        store: &store,
        hasher: &hasher,
        clock: &clock,
        tokens: None,
    };
    let out = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(admin::execute(accounts, req))?;
    store.flush()?;
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Like [`mib`], but small sizes in KiB (a fresh store is ~40 KiB).
fn size(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    } else {
        mib(bytes)
    }
}

/// `engine-auth check`: the full scan, offline.
fn check(common: &CommonArgs, fix_counts: bool) -> anyhow::Result<ExitCode> {
    let (settings, _) = base_settings(common)?;
    let dir = &settings.data_dir;
    let store = crate::store::maintenance::open_for_check(dir, settings.cache_capacity_bytes)?;
    let scan = if fix_counts {
        let scan = store.fix_counts()?;
        println!("counts rewritten");
        scan
    } else {
        store.scan()?
    };
    let disk = crate::store::maintenance::disk_usage(&Store::path_in(dir))?;
    drop(store);
    let recorded = |v: Option<u64>| v.map_or("none".to_string(), |n| n.to_string());
    println!(
        "users\t{} (recorded {})",
        scan.users,
        recorded(scan.recorded[0])
    );
    println!(
        "admins\t{} (recorded {})",
        scan.admins,
        recorded(scan.recorded[2])
    );
    println!(
        "usernames\t{} (recorded {})",
        scan.names,
        recorded(scan.recorded[1])
    );
    println!("signing keys\t{}", scan.keys);
    println!("refresh tokens of 0.1.0\t{}", scan.refresh_tokens);
    println!("sessions\t{}", scan.sessions);
    println!(
        "disk\t{} for {} of live data ({:.1}x)",
        mib(disk),
        mib(scan.live_bytes),
        disk as f64 / scan.live_bytes.max(1) as f64
    );
    if scan.is_consistent() {
        println!("consistent");
        return Ok(ExitCode::SUCCESS);
    }
    for p in &scan.problems {
        eprintln!("engine-auth: inconsistent: {p}");
    }
    let unlisted = scan.problem_count - scan.problems.len() as u64;
    if unlisted > 0 {
        eprintln!("engine-auth: ... and {unlisted} more problems");
    }
    eprintln!(
        "engine-auth: the store at {} is inconsistent ({} problems); restore it from a backup",
        dir.display(),
        scan.problem_count
    );
    Ok(ExitCode::FAILURE)
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 1.0 => Ok(r),
        _ => Err("a number of at least 1 (disk bytes per live byte)".into()),
    }
}

/// `engine-auth compact [--if-over RATIO]`: rewrite the store, offline.
fn compact(
    common: &CommonArgs,
    if_over: Option<f64>,
    max_seconds: Option<u64>,
) -> anyhow::Result<ExitCode> {
    use crate::store::maintenance::{self, Outcome};
    let (settings, _) = base_settings(common)?;
    let dir = &settings.data_dir;
    let started = std::time::Instant::now();
    let deadline = max_seconds.map(|s| started + std::time::Duration::from_secs(s));
    let done = match if_over {
        None => maintenance::compact(dir, settings.cache_capacity_bytes)?,
        Some(ratio) => match maintenance::compact_if_over(
            dir,
            settings.cache_capacity_bytes,
            ratio,
            maintenance::COMPACT_SLACK_BYTES,
            deadline,
        ) {
            // Before the service's very first start: nothing to do, and
            // nothing to alarm anyone about in the journal.
            Err(StoreError::Missing(_)) => {
                println!(
                    "{}: no store yet, nothing to compact",
                    Store::path_in(dir).display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Err(e.into()),
            Ok(Outcome::Compacted(done)) => done,
            Ok(Outcome::NotNeeded(f)) => {
                println!(
                    "{}: {} on disk for {} of live data ({:.1}x): not over {ratio}x + 1 MiB, left as it is",
                    Store::path_in(dir).display(),
                    size(f.disk_bytes),
                    size(f.live_bytes),
                    f.ratio()
                );
                return Ok(ExitCode::SUCCESS);
            }
            Ok(Outcome::OutOfTime(f)) => {
                eprintln!(
                    "engine-auth: compacting {} ({} on disk for {} of live data, {:.1}x) took more than {} s and was abandoned before the swap; the store is unchanged. Run `engine-auth compact` with the daemon stopped.",
                    Store::path_in(dir).display(),
                    size(f.disk_bytes),
                    size(f.live_bytes),
                    f.ratio(),
                    max_seconds.unwrap_or_default()
                );
                return Ok(ExitCode::FAILURE);
            }
        },
    };
    println!(
        "compacted {}: {} -> {} ({} entries in {} trees, {} users) in {:.1} s",
        Store::path_in(dir).display(),
        mib(done.bytes_before),
        mib(done.bytes_after),
        done.entries,
        done.trees,
        done.users,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn tune_argon2(
    target_ms: u64,
    max_memory_mib: u32,
    write: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let candidates = crate::tune::tune(target_ms, max_memory_mib)?;
    print!("{}", crate::tune::render_table(&candidates, target_ms));
    let Some(best) = crate::tune::recommend(&candidates, target_ms) else {
        eprintln!(
            "engine-auth: even the OWASP baselines take longer than {target_ms} ms here; raise --target-ms"
        );
        return Ok(ExitCode::FAILURE);
    };
    println!("\n{}", crate::tune::render_toml(&best));
    if let Some(path) = write {
        let existing = std::fs::read_to_string(path).unwrap_or_default();
        let merged = crate::tune::merge_into_config(&existing, &best)?;
        std::fs::write(path, merged).with_context(|| format!("cannot write {}", path.display()))?;
        println!(
            "written to {}; restart the daemon to use it",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn roles(list: &str) -> anyhow::Result<Roles> {
    Roles::parse_list(list).map_err(anyhow::Error::msg)
}

fn user(common: CommonArgs, action: UserAction) -> anyhow::Result<ExitCode> {
    let req = match action {
        UserAction::Add {
            username,
            roles: r,
            password,
        } => Request::UserAdd {
            username,
            roles: roles(&r)?,
            password: Secret::new(read_password(&password, "ENGINE_AUTH_PASSWORD")?),
        },
        UserAction::List => Request::UserList,
        UserAction::Passwd { username, password } => Request::UserPasswd {
            username,
            password: Secret::new(read_password(&password, "ENGINE_AUTH_PASSWORD")?),
        },
        UserAction::Roles { username, roles: r } => Request::UserRoles {
            username,
            roles: roles(&r)?,
        },
        UserAction::Delete { username } => Request::UserDelete { username },
        UserAction::Logout { username } => Request::UserLogout { username },
    };
    admin_request(&common, req)
}

fn recover_admin(
    common: CommonArgs,
    username: &str,
    password_file: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    Username::parse(username).map_err(anyhow::Error::msg)?;
    let (password, generated) = match (password_file, std::env::var("ENGINE_AUTH_ADMIN_PASSWORD")) {
        (Some(f), _) => (
            read_password(
                &PasswordSource {
                    password_file: Some(f.to_path_buf()),
                },
                "",
            )?,
            false,
        ),
        (None, Ok(p)) => (p, false),
        (None, Err(_)) => (bootstrap::generate_password()?.expose().to_string(), true),
    };
    // Written before the change, so a generated password is never lost.
    let file = if generated {
        let (settings, _) = base_settings(&common)?;
        Some(bootstrap::write_secret_file(&settings.data_dir, &password)?)
    } else {
        None
    };
    let code = admin_request(
        &common,
        Request::RecoverAdmin {
            username: username.to_string(),
            password: Secret::new(password),
        },
    );
    match (&code, file) {
        (Ok(c), Some(path)) if *c == ExitCode::SUCCESS => {
            println!("the new password is in {} (mode 0600)", path.display())
        }
        (_, Some(path)) => {
            let _ = std::fs::remove_file(path);
        }
        _ => {}
    }
    let code = code?;
    Ok(code)
}
