//! The built `engine-auth` executable, run as an operator would. Every
//! launch goes through [`Sandbox`]: a scratch directory holding the data
//! dir (`data/`), an empty `config.toml` passed as `--config` to every
//! subcommand (so the machine's `/etc/engine-auth/config.toml` is never
//! read), and one log file per daemon run. The environment is cleared, so
//! nothing from the test runner (`ENGINE_AUTH_*`, `STATE_DIRECTORY`,
//! `NOTIFY_SOCKET`, `CREDENTIALS_DIRECTORY`) leaks in. A [`Daemon`] is
//! killed when dropped, also when a test panics.

use std::cell::Cell;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use tempfile::TempDir;

use super::{ADMIN_PASSWORD, Api, free_port, healthy, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_engine-auth");
const CHEAP_ARGON2: [&str; 4] = ["--argon2-memory-kib", "256", "--argon2-iterations", "1"];
/// How long a daemon may take to become ready or to exit.
const DEADLINE_SECS: u64 = 30;

pub struct Sandbox {
    root: TempDir,
    runs: Cell<usize>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::write(root.path().join("config.toml"), "").expect("empty config file");
        Sandbox {
            root,
            runs: Cell::new(0),
        }
    }

    /// The data dir (created by the daemon on first start).
    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn data_str(&self) -> String {
        self.data().to_str().expect("utf-8 temp path").to_string()
    }

    /// The binary with a clean environment, `args`, `env`, and the
    /// sandbox's empty config file.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .args(args)
            .arg("--config")
            .arg(self.root.path().join("config.toml"));
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// Runs a subcommand exactly as given (plus `--config`); the caller
    /// says where the data dir is. Returns its output, whatever the status.
    pub fn cli_as_given(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env)
            .output()
            .expect("run the engine-auth CLI")
    }

    /// A subcommand on the sandbox's data dir with cheap argon2.
    fn cli_command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let data = self.data_str();
        let mut all = args.to_vec();
        all.extend(["--data-dir", &data]);
        all.extend(CHEAP_ARGON2);
        self.command(&all, env)
    }

    /// Runs a subcommand on the sandbox's data dir with cheap argon2.
    pub fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.cli_command(args, env)
            .output()
            .expect("run the engine-auth CLI")
    }

    /// [`Sandbox::cli`], started and not waited for (output piped), for a
    /// test that kills it part-way.
    pub fn cli_spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Child {
        self.cli_command(args, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the engine-auth CLI")
    }

    /// [`Sandbox::cli`], asserted to succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.cli(args, env);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "engine-auth {args:?} failed ({}): stdout {stdout:?} stderr {:?}",
            out.status,
            text(&out.stderr)
        );
        stdout
    }

    /// `keys list` rows as (kid, state).
    pub fn keys_list(&self) -> Vec<(String, String)> {
        let out = self.cli_ok(&["keys", "list"], &[]);
        let mut lines = out.lines();
        assert_eq!(
            lines
                .next()
                .map(|h| h.split('\t').next().unwrap_or_default()),
            Some("kid"),
            "keys list starts with a header: {out:?}"
        );
        lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut cols = l.split('\t');
                let kid = cols.next().unwrap_or_default().to_string();
                let state = cols.next().unwrap_or_default().to_string();
                (kid, state)
            })
            .collect()
    }

    /// `engine-auth serve` on this sandbox, to be configured and started.
    pub fn daemon(&self) -> DaemonBuilder<'_> {
        DaemonBuilder {
            sb: self,
            args: Vec::new(),
            env: vec![(
                "ENGINE_AUTH_ADMIN_PASSWORD".into(),
                ADMIN_PASSWORD.to_string(),
            )],
            cheap_argon2: true,
        }
    }

    /// A daemon with the harness's defaults, started and healthy.
    pub fn start(&self) -> Daemon {
        self.daemon().start()
    }

    /// Every daemon log written in this sandbox so far.
    pub fn all_logs(&self) -> String {
        (1..=self.runs.get())
            .map(|n| std::fs::read_to_string(self.log_path(n)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// No secret (password or token) may appear in any daemon log.
    pub fn assert_logs_free_of(&self, secrets: &[&str]) {
        let logs = self.all_logs();
        assert!(!logs.is_empty(), "the daemon logged nothing at all");
        for s in secrets {
            assert!(!s.is_empty());
            assert!(
                !logs.contains(s),
                "a secret ({}…) appears in the daemon's log:\n{logs}",
                &s[..s.len().min(6)]
            );
        }
    }

    fn log_path(&self, run: usize) -> PathBuf {
        self.root.path().join(format!("daemon-{run}.log"))
    }
}

/// `engine-auth healthcheck ARGS` (it reads no configuration file).
pub fn healthcheck(args: &[&str]) -> Output {
    Command::new(BIN)
        .env_clear()
        .stdin(Stdio::null())
        .arg("healthcheck")
        .args(args)
        .output()
        .expect("run engine-auth healthcheck")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// How a daemon is started: by default a free port, cheap argon2, one
/// worker, two concurrent hashes, the admin seeded with `ADMIN_PASSWORD`.
#[derive(Clone)]
pub struct DaemonBuilder<'a> {
    sb: &'a Sandbox,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cheap_argon2: bool,
}

impl DaemonBuilder<'_> {
    /// Extra `serve` flags.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// No admin password configured: a first start generates one.
    pub fn no_admin_password(mut self) -> Self {
        self.env.retain(|(k, _)| k != "ENGINE_AUTH_ADMIN_PASSWORD");
        self
    }

    /// The production argon2 parameters (the default), not cheap ones.
    pub fn production_argon2(mut self) -> Self {
        self.cheap_argon2 = false;
        self
    }

    /// Starts the process without waiting for it.
    pub fn spawn(self) -> Daemon {
        let sb = self.sb;
        sb.runs.set(sb.runs.get() + 1);
        let log = sb.log_path(sb.runs.get());
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file handle");
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let data = sb.data_str();
        let mut args = vec!["serve", "--listen", &listen, "--data-dir", &data];
        // The defaults, unless the test passes the flag itself.
        let mut defaults = vec![["--workers", "1"], ["--max-concurrent-hashes", "2"]];
        if self.cheap_argon2 {
            defaults.extend([
                [CHEAP_ARGON2[0], CHEAP_ARGON2[1]],
                [CHEAP_ARGON2[2], CHEAP_ARGON2[3]],
            ]);
        }
        for [flag, value] in defaults {
            if !self.args.iter().any(|a| a == flag) {
                args.extend([flag, value]);
            }
        }
        args.extend(self.args.iter().map(String::as_str));
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let child = sb
            .command(&args, &env)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn engine-auth serve");
        Daemon {
            api: Api::new(port),
            child,
            log,
            exited: None,
        }
    }

    /// Starts the process and waits until `/health` answers.
    pub fn start(self) -> Daemon {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`DaemonBuilder::start`], but a daemon that exits or is not healthy
    /// in time is an `Err` saying so (with its log), not a panic.
    pub fn try_start(self) -> Result<Daemon, String> {
        self.try_start_within(DEADLINE_SECS)
    }

    /// [`DaemonBuilder::try_start`] with its own deadline. The free port
    /// is only free when it was picked: a daemon that found it taken since
    /// (by a concurrent test) is started again on another (the daemon binds
    /// before it touches the store, so that start changed nothing).
    pub fn try_start_within(self, secs: u64) -> Result<Daemon, String> {
        for _ in 0..3 {
            match self.clone().try_start_once(secs) {
                Err(e) if e.contains("Address already in use") => continue,
                other => return other,
            }
        }
        self.try_start_once(secs)
    }

    fn try_start_once(self, secs: u64) -> Result<Daemon, String> {
        let mut d = self.spawn();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        // Healthy, and the port is this process's: another test's daemon
        // that took the free port first would answer /health too.
        while !(healthy(d.port) && listens_on(d.child.id(), d.port)) {
            if let Some(status) = d.try_exit() {
                return Err(format!(
                    "the daemon exited ({status}) before it was healthy:\n{}",
                    d.logs()
                ));
            }
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "the daemon was not healthy within {secs} s:\n{}",
                    d.logs()
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(d)
    }
}

/// Does process `pid` hold a TCP socket listening on `port`? (Its open
/// socket inodes, looked up in /proc/net/tcp and tcp6.)
fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: std::collections::HashSet<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let port = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).is_ok_and(|text| {
            text.lines().skip(1).any(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                // local address, state (0A: LISTEN), inode
                f.len() > 9 && f[1].ends_with(&port) && f[3] == "0A" && inodes.contains(f[9])
            })
        })
    })
}

/// A running (or exited) `engine-auth serve`.
pub struct Daemon {
    pub api: Api,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Deref for Daemon {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// This run's log (stdout and stderr).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process's resident memory (`VmRSS`), bytes.
    pub fn rss_bytes(&self) -> u64 {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).expect("the daemon's /proc status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kib * 1024
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait");
        }
        self.exited
    }

    /// Sends a signal (`"HUP"`, `"TERM"`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// SIGKILL, then reap: no chance to flush or clean up.
    pub fn sigkill(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = Some(self.child.wait().expect("wait"));
        }
    }

    /// SIGTERM, as systemd stops it, and a clean exit (status 0).
    pub fn terminate(&mut self) {
        self.signal("TERM");
        let status = self.wait_exit();
        assert!(status.success(), "SIGTERM exit {status}:\n{}", self.logs());
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self) -> ExitStatus {
        wait_until(DEADLINE_SECS, "the daemon to exit", || {
            self.try_exit().is_some()
        });
        self.exited.expect("exited")
    }

    /// Waits for the process to exit on its own, failing at once if it
    /// starts serving instead.
    pub fn wait_exit_unless_ready(&mut self) -> ExitStatus {
        let port = self.port;
        wait_until(DEADLINE_SECS, "the daemon to refuse to start", || {
            if self.try_exit().is_some() {
                return true;
            }
            assert!(
                !healthy(port),
                "engine-auth started serving; it should have refused:\n{}",
                self.logs()
            );
            false
        });
        self.exited.expect("exited")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
