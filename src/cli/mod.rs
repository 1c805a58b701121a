//! The command line: the clap types of every subcommand, and `main`. What
//! each subcommand does lives beside this file, one file per concern:
//! `serve.rs` (the daemon, `--daemon`, signals), `healthcheck.rs` (the
//! probe's tiny HTTP client), `admin.rs` (`user …`, `keys …`,
//! `recover-admin`: through the daemon's admin socket, or offline),
//! `maintenance.rs` (`check`, `compact`, `tune-argon2`), `backup.rs`
//! (`backup`, `restore`), `output.rs` (what they print). Every flag of every subcommand can also come from an
//! `ENGINE_AUTH_*` environment variable (a unit test holds that, with a
//! short list of deliberate exceptions); the settings shared with the TOML
//! file are declared in `config/options.rs`.

mod admin;
mod backup;
mod healthcheck;
mod maintenance;
mod output;
mod serve;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::bootstrap::ADMIN_USERNAME;
use crate::config::{CommonOptions, ConfigFile, Layer, Settings};

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
    Serve(Box<serve::ServeArgs>),
    /// Exit 0 if the daemon answers its health endpoint with 200, 1 otherwise
    /// (it answers 503 once its storage has failed: restart it).
    Healthcheck {
        /// Health URL (plain http, numeric or "localhost" host).
        #[arg(
            long,
            env = "ENGINE_AUTH_HEALTH_URL",
            default_value = "http://127.0.0.1:8443/health"
        )]
        url: String,
        /// Give up after this many seconds.
        #[arg(long, env = "ENGINE_AUTH_HEALTH_TIMEOUT_SECS", default_value_t = 5)]
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
    /// Signing keys: `keys rotate [--revoke-previous]`, `keys list` (ids,
    /// ages, states; never key material).
    Keys {
        #[command(flatten)]
        common: CommonArgs,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// API keys (service accounts): `apikey create --owner USER --name NAME
    /// --roles read,write [--expires RFC3339]` (prints the key once),
    /// `apikey list [--owner USER]`, `apikey revoke ID`.
    Apikey {
        #[command(flatten)]
        common: CommonArgs,
        #[command(subcommand)]
        action: ApikeyAction,
    },
    /// Measure argon2id on this device and print (optionally write to a
    /// config file) the strongest OWASP-equivalent parameters that hash
    /// within the target. Stored hashes are upgraded at their next login.
    TuneArgon2 {
        /// Longest acceptable time for one hash, milliseconds.
        #[arg(long, env = "ENGINE_AUTH_TUNE_TARGET_MS", default_value_t = 250)]
        target_ms: u64,
        /// Most memory one hash may use, MiB.
        #[arg(long, env = "ENGINE_AUTH_TUNE_MAX_MEMORY_MIB", default_value_t = 64)]
        max_memory_mib: u32,
        /// Write the chosen `[argon2]` table into this config file.
        #[arg(long, env = "ENGINE_AUTH_TUNE_WRITE_CONFIG")]
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
        /// counted. Refused if anything else is inconsistent. No
        /// environment variable: a repair is asked for each time.
        #[arg(long)]
        fix_counts: bool,
    },
    /// Stopped daemon only: rewrite the store into a fresh copy (reclaiming
    /// the space the engine has not), verify it, and swap it in atomically. Safe
    /// to interrupt at any point.
    Compact {
        #[command(flatten)]
        common: CommonArgs,
        /// Only when the store takes more than RATIO times its live data on
        /// disk (plus 1 MiB for the engine's own pages); otherwise leave it and
        /// exit 0. The systemd unit runs `--if-over 3` before each start.
        #[arg(
            long,
            env = "ENGINE_AUTH_COMPACT_IF_OVER",
            value_name = "RATIO",
            value_parser = maintenance::parse_ratio
        )]
        if_over: Option<f64>,
        /// With --if-over: give up (store unchanged, exit 1) if the copy is
        /// not built and verified within this many seconds, so a slow device
        /// still starts in time. The unit passes 20 (TimeoutStartSec=60s).
        #[arg(
            long,
            env = "ENGINE_AUTH_COMPACT_MAX_SECONDS",
            value_name = "SECONDS",
            requires = "if_over",
            value_parser = clap::value_parser!(u64).range(1..)
        )]
        max_seconds: Option<u64>,
    },
    /// Write a backup of the store: one file (mode 0600) holding every
    /// user with its password hash, the signing keys and the sessions at one
    /// instant, checksummed. Through the running daemon, or directly on a
    /// stopped daemon's store. Keep it private.
    Backup {
        #[command(flatten)]
        common: CommonArgs,
        /// Write it here [default:
        /// <data-dir>/backups/engine-auth-<UTC timestamp>.backup]
        #[arg(long, env = "ENGINE_AUTH_BACKUP_OUTPUT", value_name = "FILE", value_parser = backup::parse_output)]
        output: Option<PathBuf>,
        /// After a successful backup, delete all but the newest N backups in
        /// <data-dir>/backups (the systemd timer passes 7).
        #[arg(
            long,
            env = "ENGINE_AUTH_BACKUP_KEEP",
            value_name = "N",
            value_parser = clap::value_parser!(u64).range(1..)
        )]
        keep: Option<u64>,
    },
    /// Stopped daemon only: replace the store with the users of a backup.
    /// The file is verified completely first; the new store is built beside
    /// the old one and swapped in atomically; the old one is kept as
    /// <data-dir>/store.before-restore-<UTC timestamp>. Sessions, refresh
    /// tokens and signing keys are not restored: a new signing key is made,
    /// so every token issued before is refused.
    Restore {
        #[command(flatten)]
        common: CommonArgs,
        /// The backup file.
        file: PathBuf,
    },
    /// Set a new password for the admin account (and give it every role),
    /// creating it if it is gone. Works with the daemon running or stopped.
    RecoverAdmin {
        #[command(flatten)]
        common: CommonArgs,
        /// Account to recover.
        #[arg(long, env = "ENGINE_AUTH_RECOVER_USERNAME", default_value = ADMIN_USERNAME)]
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
    /// Retire the signing key and start a new one; nobody is logged out
    /// (unless --revoke-previous).
    Rotate {
        /// Suspected leak: delete every earlier key at once instead of
        /// retiring it, so every token signed before is refused from now
        /// on and everyone logs in again. No environment variable: it is
        /// asked for each time.
        #[arg(long)]
        revoke_previous: bool,
    },
    /// Show key ids, states and ages.
    List,
}

#[derive(Subcommand, Debug)]
enum ApikeyAction {
    /// Create a key for a user, with roles among the user's; prints its id
    /// and the key, this once.
    Create {
        /// The user the key acts as.
        #[arg(long)]
        owner: String,
        /// What the key is for (1 to 100 characters).
        #[arg(long)]
        name: String,
        /// Comma-separated roles, as for `user add` (among the owner's).
        #[arg(long)]
        roles: String,
        /// When the key stops working: an RFC 3339 time, e.g.
        /// 2030-01-01T00:00:00Z. Never, without it.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (never the keys themselves): id, owner, roles, times, name.
    List {
        /// Only this user's keys.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Revoke a key at once.
    Revoke { id: uuid::Uuid },
}

#[derive(Subcommand, Debug)]
enum UserAction {
    /// Add a user.
    Add {
        username: String,
        /// Comma-separated roles: admin, flows, configure, subscribe, write,
        /// read, or all / none. No environment variable: a leftover one
        /// would grant its roles to every user added after.
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
        /// Comma-separated roles, as for `add` (no environment variable
        /// either).
        #[arg(long)]
        roles: String,
    },
    /// Delete a user.
    Delete { username: String },
    /// Revoke every token and session of a user.
    Logout { username: String },
    /// Turn a user's two-factor authentication off (a lost authenticator)
    /// and revoke its tokens.
    MfaReset { username: String },
}

#[derive(Args, Debug)]
struct PasswordSource {
    /// Read the password from this file ("-" for stdin); otherwise from
    /// ENGINE_AUTH_PASSWORD.
    #[arg(long, env = "ENGINE_AUTH_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
}

/// What the offline commands read: the configuration file and the
/// settings they share with `serve`.
#[derive(Args, Debug)]
struct CommonArgs {
    #[command(flatten)]
    file: ConfigFile,
    #[command(flatten)]
    options: CommonOptions,
}

impl CommonArgs {
    /// Flags and environment over the file, over the defaults; validated.
    fn settings(&self) -> anyhow::Result<Settings> {
        let file = self.file.load()?.common;
        self.options.clone().over(file).into_settings()
    }
}

/// The file-creation mask of every engine-auth process: what it creates
/// (the store's files, which hold the signing keys and every password
/// hash, logs, sockets) is its user's alone, whatever umask it was started
/// with. Explicit modes (0600, 0700) say so again where files are made.
const PRIVATE_UMASK: u32 = 0o077;

/// Parses the command line and runs it. Errors are printed once, as a
/// chain, on stderr (the journal, under systemd).
pub fn main() -> ExitCode {
    // First, before anything can create a file.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(PRIVATE_UMASK));
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
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
        Command::Serve(args) => serve::serve(*args),
        Command::Healthcheck { url, timeout_secs } => {
            Ok(healthcheck::run(&url, Duration::from_secs(timeout_secs)))
        }
        Command::User { common, action } => admin::user(&common, action),
        Command::TuneArgon2 {
            target_ms,
            max_memory_mib,
            write_config,
        } => maintenance::tune_argon2(target_ms, max_memory_mib, write_config.as_deref()),
        Command::Keys { common, action } => admin::keys(&common, action),
        Command::Apikey { common, action } => admin::apikey(&common, action),
        Command::RecoverAdmin {
            common,
            username,
            password_file,
        } => admin::recover_admin(&common, &username, password_file.as_deref()),
        Command::Check { common, fix_counts } => maintenance::check(&common, fix_counts),
        Command::Compact {
            common,
            if_over,
            max_seconds,
        } => maintenance::compact(&common, if_over, max_seconds),
        Command::Backup {
            common,
            output,
            keep,
        } => backup::backup(
            &common,
            output.as_deref(),
            keep.map(|k| usize::try_from(k).unwrap_or(usize::MAX)),
        ),
        Command::Restore { common, file } => backup::restore(&common, &file),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{ArgAction, CommandFactory};

    /// Flags that deliberately have no environment variable, as
    /// (subcommand path, flag); each says why in its doc comment.
    const NO_ENV: &[(&str, &str)] = &[
        // A repair is asked for on the command line, each time.
        ("check", "fix-counts"),
        // So is logging everyone out: a leftover variable would revoke
        // the keys at every rotation.
        ("keys rotate", "revoke-previous"),
        // Roles granted must be on the command line: a leftover variable
        // would grant them to every user added after.
        ("user add", "roles"),
        ("user roles", "roles"),
        // A key is asked for on the command line, each time: a leftover
        // variable would make keys for the wrong user, with its roles.
        ("apikey create", "owner"),
        ("apikey create", "name"),
        ("apikey create", "roles"),
        ("apikey create", "expires"),
        ("apikey list", "owner"),
    ];

    /// Every flag of every subcommand, as (subcommand path, flag, env var).
    fn flags() -> Vec<(String, String, Option<String>)> {
        fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, String, Option<String>)>) {
            for arg in cmd.get_arguments() {
                let (Some(long), false) = (
                    arg.get_long(),
                    matches!(arg.get_action(), ArgAction::Help | ArgAction::Version),
                ) else {
                    continue;
                };
                let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
                out.push((path.to_string(), long.to_string(), env));
            }
            for sub in cmd.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                walk(sub, path.trim(), out);
            }
        }
        let mut cmd = Cli::command();
        cmd.build(); // propagates the global flags into every subcommand
        let mut out = Vec::new();
        walk(&cmd, "", &mut out);
        out
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_an_environment_variable_unless_listed() {
        let all = flags();
        assert!(all.len() > 40, "{all:?}");
        for (path, flag, env) in &all {
            let exempt = NO_ENV.contains(&(path.as_str(), flag.as_str()));
            match env {
                Some(env) => {
                    assert!(!exempt, "{path} --{flag} is exempt but has {env}");
                    assert!(env.starts_with("ENGINE_AUTH_"), "{path} --{flag}: {env}");
                }
                None => assert!(exempt, "{path} --{flag} has no ENGINE_AUTH_* variable"),
            }
        }
        for (path, flag) in NO_ENV {
            assert!(
                all.iter().any(|(p, f, _)| p == path && f == flag),
                "{path} --{flag} on the allow-list does not exist"
            );
        }
    }

    /// README: "`--access-ttl-secs` is `ENGINE_AUTH_ACCESS_TTL_SECS`".
    #[test]
    fn serve_variables_are_named_after_their_flags() {
        for (path, flag, env) in flags() {
            if path == "serve" {
                let expected = format!("ENGINE_AUTH_{}", flag.to_uppercase().replace('-', "_"));
                assert_eq!(env.as_deref(), Some(expected.as_str()), "--{flag}");
            }
        }
    }

    #[test]
    fn offline_commands_take_the_common_flags_after_their_own() {
        let cli = Cli::try_parse_from([
            "engine-auth",
            "compact",
            "--if-over",
            "3",
            "--data-dir",
            "/d",
            "--argon2-memory-kib",
            "256",
            "--no-config",
        ])
        .unwrap();
        let Command::Compact { common, .. } = cli.command else {
            panic!("not compact");
        };
        let s = common.settings().unwrap();
        assert_eq!(
            (s.data_dir, s.argon2.memory_kib),
            (PathBuf::from("/d"), 256)
        );
        assert!(
            Cli::try_parse_from(["engine-auth", "check", "--config", "/x", "--no-config"]).is_err()
        );
    }
}
