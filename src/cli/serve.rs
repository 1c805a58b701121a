//! `engine-auth serve`: settings from flags, environment and file, the
//! optional `--daemon` detach (for init systems without systemd), the
//! server itself, and its signals (SIGTERM/SIGINT stop, SIGHUP rotates the
//! signing key).

use anyhow::{Context, bail};
use clap::Args;
use clap::builder::BoolishValueParser;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::PRIVATE_UMASK;
use crate::bootstrap;
use crate::config::{self, ConfigFile, Layer, Options, Settings};
use crate::startup::Application;
use crate::tls::TlsSource;

#[derive(Args, Debug)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    file: ConfigFile,
    #[command(flatten)]
    options: Options,
    /// Detach from the terminal (for init systems without systemd).
    #[arg(
        long,
        env = "ENGINE_AUTH_DAEMON",
        value_parser = BoolishValueParser::new(),
        requires = "pid_file"
    )]
    daemon: bool,
    /// With --daemon: write the daemon's pid here.
    #[arg(long, env = "ENGINE_AUTH_PID_FILE")]
    pid_file: Option<PathBuf>,
    /// With --daemon: append logs here (created with mode 0600; group and
    /// other's access to an existing file is taken away) [default:
    /// <data-dir>/engine-auth.log]
    #[arg(long, env = "ENGINE_AUTH_LOG_FILE")]
    log_file: Option<PathBuf>,
}

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let file = args.file.load()?;
    let mut settings = args.options.over(file).into_settings()?;
    settings.admin_password = config::secret_from_env(config::ADMIN_PASSWORD_ENV);
    let ready_pipe = match (args.daemon, &args.pid_file) {
        (false, _) => None,
        (true, Some(pid_file)) => {
            match detach(pid_file, args.log_file.as_deref(), &mut settings)? {
                Some(pipe) => Some(pipe),
                None => return Ok(ExitCode::SUCCESS), // the parent: the daemon reported ready
            }
        }
        (true, None) => bail!("--daemon needs --pid-file"), // clap already says so
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
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `--daemon`: detach with the `daemonize` crate. Nothing that starts
/// threads (the runtime) runs before the fork. The parent waits until
/// the daemon has opened its store and bound its port (or failed), so the
/// operator sees the outcome and the exit status tells it. Returns the
/// daemon's end of the report pipe in the daemon, `None` in the parent.
fn detach(
    pid_file: &Path,
    log_file: Option<&Path>,
    settings: &mut Settings,
) -> anyhow::Result<Option<UnixStream>> {
    // daemonize changes the working directory to "/".
    settings.data_dir = std::path::absolute(&settings.data_dir)?;
    if let TlsSource::Files { cert, key } = &mut settings.tls {
        *cert = std::path::absolute(&*cert)?;
        *key = std::path::absolute(&*key)?;
    }
    // Here, before the fork, so that a data dir this user cannot make
    // private is refused on the operator's terminal.
    bootstrap::secure_data_dir(&settings.data_dir)?;
    let log_path = match log_file {
        Some(p) => std::path::absolute(p)?,
        None => settings.data_dir.join("engine-auth.log"),
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .with_context(|| format!("cannot open log file {}", log_path.display()))?;
    // One made before (or by another version) keeps its mode until here.
    bootstrap::secure_file(&log_path)?;
    let pid_file = std::path::absolute(pid_file)?;
    let (mut parent_end, child_end) = UnixStream::pair()?;
    match daemonize::Daemonize::new()
        .pid_file(&pid_file)
        .stderr(log)
        // daemonize's default is 027 (files readable by the group): keep
        // the process's 077 (`cli::main`).
        .umask(PRIVATE_UMASK)
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
