//! The command line: `serve`, `healthcheck`, offline user administration
//! (`user …`, `recover-admin`) on a stopped daemon's data dir. Every flag
//! can also come from an `ENGINE_AUTH_*` environment variable; serve
//! settings can also come from a TOML file (flag > environment > file >
//! default).

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::bootstrap::{self, ADMIN_USERNAME};
use crate::config::{self, Argon2Params, FileConfig, Settings};
use crate::domain::{Password, Roles, Username};
use crate::password::Hasher;
use crate::startup::Application;
use crate::store::{Store, new_user_record};
use crate::unix_now;

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
    Serve(ServeArgs),
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
    /// Manage users in a stopped daemon's data dir.
    User {
        #[command(flatten)]
        common: CommonArgs,
        #[command(subcommand)]
        action: UserAction,
    },
    /// Set a new password for the admin account (and give it every role),
    /// creating it if it is gone. Works on a stopped daemon's data dir.
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
    #[arg(long, env = "ENGINE_AUTH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long, env = "ENGINE_AUTH_CONFIG")]
    config: Option<PathBuf>,
    /// sled page cache in MiB [default: 4]
    #[arg(long, env = "ENGINE_AUTH_CACHE_CAPACITY_MIB")]
    cache_capacity_mib: Option<u64>,
    /// argon2id memory for new hashes, KiB [default: 19456]
    #[arg(long, env = "ENGINE_AUTH_ARGON2_MEMORY_KIB")]
    argon2_memory_kib: Option<u32>,
    /// argon2id passes for new hashes [default: 2]
    #[arg(long, env = "ENGINE_AUTH_ARGON2_ITERATIONS")]
    argon2_iterations: Option<u32>,
    /// argon2id lanes for new hashes [default: 1]
    #[arg(long, env = "ENGINE_AUTH_ARGON2_PARALLELISM")]
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
        Command::Serve(args) => serve(args).map(|_| ExitCode::SUCCESS),
        Command::Healthcheck { url, timeout_secs } => {
            Ok(match healthcheck(&url, Duration::from_secs(timeout_secs)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("engine-auth: unhealthy: {e:#}");
                    ExitCode::FAILURE
                }
            })
        }
        Command::User { common, action } => user(common, action).map(|_| ExitCode::SUCCESS),
        Command::RecoverAdmin {
            common,
            username,
            password_file,
        } => recover_admin(common, &username, password_file.as_deref()).map(|_| ExitCode::SUCCESS),
    }
}

/// Builds settings from the common flags (and the file they name).
fn base_settings(common: &CommonArgs) -> anyhow::Result<(Settings, FileConfig)> {
    let file = match &common.config {
        Some(p) => FileConfig::load(p)?,
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
    if args.daemon {
        // daemonize changes the working directory to "/".
        settings.data_dir = std::path::absolute(&settings.data_dir)?;
        // Fail in the foreground, where the operator sees it, if the store
        // cannot be opened or seeded. The store is closed again before the
        // fork: sled must not be shared across it.
        {
            let hasher = Hasher::new(settings.argon2, 1)?;
            let store = bootstrap::open_store(&settings, &hasher)?;
            store.flush()?;
        }
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
        eprintln!("engine-auth: detaching; logs in {}", log_path.display());
        daemonize::Daemonize::new()
            .pid_file(pid_file)
            .stderr(log)
            .start()
            .context("cannot detach")?;
    }
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        let handle = app.handle();
        actix_web::rt::spawn(async move {
            let signal = wait_for_stop_signal().await;
            log::info!("received {signal}; finishing in-flight requests");
            handle.stop(true).await;
        });
        app.run_until_stopped().await
    })
}

async fn wait_for_stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
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

fn open_offline(common: &CommonArgs) -> anyhow::Result<(Store, Hasher, Settings)> {
    let (settings, _) = base_settings(common)?;
    settings.validate()?;
    let store = Store::open_existing(&settings.data_dir, settings.cache_capacity_bytes)?;
    let hasher = Hasher::new(settings.argon2, 1)?;
    Ok((store, hasher, settings))
}

fn read_password(src: &PasswordSource, env: &str) -> anyhow::Result<Password> {
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
    Password::parse(raw).map_err(anyhow::Error::msg)
}

fn find(store: &Store, username: &str) -> anyhow::Result<crate::store::UserRecord> {
    store
        .user_by_name(username)?
        .ok_or_else(|| anyhow::anyhow!("no user named {username:?}"))
}

fn user(common: CommonArgs, action: UserAction) -> anyhow::Result<()> {
    let (store, hasher, _) = open_offline(&common)?;
    let now = unix_now();
    match action {
        UserAction::Add {
            username,
            roles,
            password,
        } => {
            let username = Username::parse(&username).map_err(anyhow::Error::msg)?;
            let roles = Roles::parse_list(&roles).map_err(anyhow::Error::msg)?;
            let password = read_password(&password, "ENGINE_AUTH_PASSWORD")?;
            let rec = new_user_record(&username, hasher.hash_blocking(&password)?, roles, now);
            store.create_user(&rec)?;
            log::info!(target: "engine_auth::audit", "event=user_created user={:?} id={} roles={} by=cli", rec.username, rec.id, rec.roles);
            println!("{}", rec.id);
        }
        UserAction::List => {
            for name in store.usernames()? {
                let rec = find(&store, &name)?;
                println!("{}\t{}\t{}", rec.id, rec.roles, rec.username);
            }
        }
        UserAction::Passwd { username, password } => {
            let rec = find(&store, &username)?;
            let password = read_password(&password, "ENGINE_AUTH_PASSWORD")?;
            store.set_password_hash(rec.id, hasher.hash_blocking(&password)?, now)?;
            log::info!(target: "engine_auth::audit", "event=user_password_changed user={:?} id={} by=cli", rec.username, rec.id);
        }
        UserAction::Roles { username, roles } => {
            let rec = find(&store, &username)?;
            let roles = Roles::parse_list(&roles).map_err(anyhow::Error::msg)?;
            let rec = store.set_roles(rec.id, roles, now)?;
            log::info!(target: "engine_auth::audit", "event=user_roles_changed user={:?} id={} roles={} by=cli", rec.username, rec.id, rec.roles);
        }
        UserAction::Delete { username } => {
            let rec = find(&store, &username)?;
            store.delete_user(rec.id)?;
            log::info!(target: "engine_auth::audit", "event=user_deleted user={:?} id={} by=cli", rec.username, rec.id);
        }
    }
    Ok(())
}

fn recover_admin(
    common: CommonArgs,
    username: &str,
    password_file: Option<&Path>,
) -> anyhow::Result<()> {
    let (store, hasher, settings) = open_offline(&common)?;
    let username = Username::parse(username).map_err(anyhow::Error::msg)?;
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
        (None, Ok(p)) => (Password::parse(p).map_err(anyhow::Error::msg)?, false),
        (None, Err(_)) => (bootstrap::generate_password()?, true),
    };
    let hash = hasher.hash_blocking(&password)?;
    let now = unix_now();
    let id = match store.user_by_name(username.as_str())? {
        Some(rec) => {
            store.set_roles(rec.id, Roles::ALL, now)?;
            store.set_password_hash(rec.id, hash, now)?;
            rec.id
        }
        None => {
            let rec = new_user_record(&username, hash, Roles::ALL, now);
            store.create_user(&rec)?;
            rec.id
        }
    };
    log::info!(target: "engine_auth::audit", "event=admin_recovered user={username} id={id} by=cli");
    if generated {
        let path = bootstrap::write_secret_file(&settings.data_dir, password.expose())?;
        println!(
            "new password for {username} written to {} (mode 0600)",
            path.display()
        );
    } else {
        println!("password for {username} set");
    }
    Ok(())
}
