//! The data dir is private (review finding 1, high: "a readable store lets
//! a local user forge admin tokens"): it holds the HS256 signing keys and
//! every password hash, so a local user who can read `store/db` can mint
//! an admin's token. Started from a shell with the common `umask 022`, on
//! a data dir made beforehand with mode 0755, in the foreground or with
//! `--daemon` (whose library sets its own umask, 027), engine-auth must
//! leave nothing under the data dir that group or other may read, write or
//! enter, its `--daemon` log included; what it cannot make private (owned
//! by another user) it refuses to start on, saying why, and serves
//! nothing. Modes are read from the file system, never judged by whether
//! the test (root in CI) can open a file; the other user is `nobody`,
//! through `setpriv` as in `admin_socket`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::harness::{ADMIN_PASSWORD, Api, Sandbox, free_port, healthy, text, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_engine-auth");
const NOBODY: u32 = 65534;
const CHEAP: [&str; 8] = [
    "--argon2-memory-kib",
    "256",
    "--argon2-iterations",
    "1",
    "--workers",
    "1",
    "--max-concurrent-hashes",
    "2",
];

/// `dir` and everything under it (symbolic links aside) whose mode lets
/// group or other read, write or enter it, as "path mode".
fn open_to_others(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut check = |p: &Path, m: &std::fs::Metadata| {
        if m.mode() & 0o077 != 0 {
            found.push(format!("{} {:04o}", p.display(), m.mode() & 0o7777));
        }
    };
    check(dir, &std::fs::metadata(dir).expect("stat the data dir"));
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            if meta.file_type().is_symlink() {
                continue;
            }
            check(&path, &meta);
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    found
}

/// The permission bits, in octal as `ls` and `chmod` spell them.
fn mode_of(path: &Path) -> String {
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .mode();
    format!("{:04o}", mode & 0o7777)
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Every directory under `dir` (and itself) 0755, every file 0644: a store
/// written under umask 022 by a version that set none.
fn loosen(dir: &Path) {
    chmod(dir, 0o755);
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        if meta.is_dir() {
            loosen(&path);
        } else if meta.is_file() {
            chmod(&path, 0o644);
        }
    }
}

fn sandbox_root(sb: &Sandbox) -> PathBuf {
    sb.data().parent().expect("sandbox root").to_path_buf()
}

/// `engine-auth ARGS --config <the sandbox's empty file>` with a clean
/// environment (the seeded admin's password only), started by `sh` after
/// `umask 022`: what a shell with the common default starts.
fn under_umask_022(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.env_clear()
        .env("RUST_LOG", "info")
        .env("ENGINE_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .args(["-c", "umask 022 && exec \"$@\"", "sh", BIN])
        .args(args)
        .arg("--config")
        .arg(sandbox_root(sb).join("config.toml"));
    c
}

/// `engine-auth serve` in the foreground on the sandbox's data dir, killed
/// when dropped.
struct Serving {
    api: Api,
    child: Child,
    log: PathBuf,
}

impl Serving {
    fn start(sb: &Sandbox, run: &str) -> Serving {
        let port = free_port();
        let log = sandbox_root(sb).join(format!("{run}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let listen = format!("127.0.0.1:{port}");
        let data = sb.data_str();
        let mut args = vec!["serve", "--listen", &listen, "--data-dir", &data];
        args.extend(CHEAP);
        let child = under_umask_022(sb, &args)
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .spawn()
            .expect("spawn engine-auth serve");
        let mut s = Serving {
            api: Api::new(port),
            child,
            log,
        };
        wait_until(30, "the daemon to become healthy", || {
            if let Some(status) = s.child.try_wait().expect("try_wait") {
                panic!("engine-auth exited ({status}):\n{}", s.logs());
            }
            healthy(port)
        });
        s
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and a clean exit.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "exit {status}:\n{}", self.logs());
        self.logs()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon detached with `--daemon`, killed through its pid file when
/// dropped (also when the test fails).
struct Detached {
    pid_file: PathBuf,
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }
}

/// `serve --daemon` under umask 022 with `extra` flags; returns once the
/// parent has exited (the daemon reported ready), with the daemon's API
/// and what the parent printed (it checks the data dir and the log file
/// before it detaches).
fn detach(sb: &Sandbox, extra: &[&str]) -> (Api, Detached, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data = sb.data_str();
    let pid_file = sandbox_root(sb).join("engine-auth.pid");
    let pid = pid_file.to_str().expect("utf-8 path");
    let mut args = vec![
        "serve",
        "--daemon",
        "--pid-file",
        pid,
        "--listen",
        &listen,
        "--data-dir",
        &data,
    ];
    args.extend(CHEAP);
    args.extend(extra);
    let guard = Detached {
        pid_file: pid_file.clone(),
    };
    let out = under_umask_022(sb, &args)
        .output()
        .expect("run engine-auth serve --daemon");
    assert!(
        out.status.success(),
        "serve --daemon failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    assert!(healthy(port), "the detached daemon does not answer");
    (Api::new(port), guard, text(&out.stderr))
}

/// Logs in and adds a user, so the store has been written to.
async fn use_the_store(api: &Api, name: &str) {
    let admin = api.admin_token().await;
    api.add_user(&admin, name, &["read"]).await;
    api.users(&admin).await;
}

#[actix_web::test]
async fn a_data_dir_made_0755_beforehand_is_closed_and_the_store_created_private_under_umask_022() {
    let sb = Sandbox::new();
    let data = sb.data();
    std::fs::create_dir(&data).expect("mkdir data");
    chmod(&data, 0o755);

    let serving = Serving::start(&sb, "first");
    use_the_store(&serving.api, "alice").await;
    let open = open_to_others(&data);
    assert!(
        open.is_empty(),
        "group or other may reach what the data dir holds (the signing key is in store/db): \
         {open:#?}\n{}",
        serving.logs()
    );
    assert_eq!(mode_of(&data), "0700");
    let logs = serving.stop();
    assert!(
        logs.contains(&format!("{} was mode 0755", data.display()))
            && logs.contains("made it 0700"),
        "the change is not logged:\n{logs}"
    );
}

#[actix_web::test]
async fn a_store_left_open_by_an_earlier_version_is_made_private_at_the_next_start() {
    let sb = Sandbox::new();
    let data = sb.data();
    Serving::start(&sb, "first").stop();
    // What a version without this defence left on a umask 022 system.
    loosen(&data);
    let db = data
        .join("store")
        .join(crate::harness::store::DATA_FILE_NAME);
    assert_eq!(mode_of(&db), "0644");

    let serving = Serving::start(&sb, "second");
    let open = open_to_others(&data);
    assert!(open.is_empty(), "still open: {open:#?}\n{}", serving.logs());
    // The store still works, and every change was logged.
    use_the_store(&serving.api, "bob").await;
    let logs = serving.stop();
    for (path, was, now) in [(&data, "0755", "0700"), (&db, "0644", "0600")] {
        assert!(
            logs.contains(&format!(
                "{} was mode {was}, open to group or other; made it {now}",
                path.display()
            )),
            "the change of {} is not logged:\n{logs}",
            path.display()
        );
    }
}

#[actix_web::test]
async fn daemon_mode_under_umask_022_creates_its_data_dir_store_and_log_file_private() {
    let sb = Sandbox::new();
    let data = sb.data();
    let (api, _daemon, _) = detach(&sb, &[]);
    use_the_store(&api, "carol").await;

    let log = data.join("engine-auth.log");
    assert_eq!(mode_of(&log), "0600", "the --daemon log file");
    assert_eq!(mode_of(&data), "0700", "the data dir --daemon created");
    let open = open_to_others(&data);
    assert!(
        open.is_empty(),
        "group or other may reach: {open:#?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

#[actix_web::test]
async fn a_log_file_given_with_log_file_and_open_to_others_is_made_private() {
    let sb = Sandbox::new();
    let log = sandbox_root(&sb).join("engine-auth.log");
    std::fs::write(&log, "an earlier run\n").expect("write log");
    chmod(&log, 0o644);
    let log_arg = log.to_str().expect("utf-8 path");
    let (api, _daemon, printed) = detach(&sb, &["--log-file", log_arg]);
    use_the_store(&api, "dave").await;

    assert_eq!(mode_of(&log), "0600", "the --log-file given");
    let logged = std::fs::read_to_string(&log).expect("read log");
    assert!(
        logged.starts_with("an earlier run\n"),
        "appended to: {logged}"
    );
    assert!(
        printed.contains(&format!(
            "{} was mode 0644, open to group or other; made it 0600",
            log.display()
        )),
        "the change is not shown to the operator: {printed}"
    );
    assert!(open_to_others(&sb.data()).is_empty());
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The prefix that runs a command as root: nothing for root, password-less
/// sudo otherwise (the test fails if there is neither; CI runs as root).
fn as_root() -> Vec<&'static str> {
    if is_root() {
        return Vec::new();
    }
    let sudo = Command::new("sudo").args(["-n", "true"]).status();
    assert!(
        sudo.is_ok_and(|s| s.success()),
        "this test acts as another user: run it as root or with password-less sudo (CI does)"
    );
    vec!["sudo", "-n"]
}

fn run_as_root(args: &[&str]) {
    let prefix = as_root();
    let all: Vec<&str> = prefix.iter().chain(args).copied().collect();
    let status = Command::new(all[0])
        .args(&all[1..])
        .status()
        .expect("run as root");
    assert!(status.success(), "{all:?} failed");
}

/// Runs `command` (an `engine-auth serve` on `port`) and waits for it to
/// exit, failing at once if it starts serving instead. Returns its stderr.
fn refused(mut command: Command, port: u16, out: &Path) -> String {
    let file = std::fs::File::create(out).expect("output file");
    let mut child = command
        .stdout(file.try_clone().expect("output handle"))
        .stderr(file)
        .spawn()
        .expect("spawn engine-auth");
    let mut status = None;
    wait_until(30, "engine-auth to refuse to start", || {
        status = child.try_wait().expect("try_wait");
        if status.is_none() && healthy(port) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "engine-auth started serving; it should have refused:\n{}",
                std::fs::read_to_string(out).unwrap_or_default()
            );
        }
        status.is_some()
    });
    let output = std::fs::read_to_string(out).unwrap_or_default();
    assert!(
        !status.expect("exited").success(),
        "exit 0 without serving:\n{output}"
    );
    output
}

#[actix_web::test]
async fn a_world_writable_data_dir_the_daemons_user_does_not_own_is_refused_and_nothing_served() {
    let prefix = as_root();
    let sb = Sandbox::new();
    let root = sandbox_root(&sb);
    let data = sb.data();
    // `nobody` may reach the sandbox, run a copy of the binary and read the
    // config; the data dir is root's, open to everyone (`mkdir -m 777`).
    chmod(&root, 0o755);
    chmod(&root.join("config.toml"), 0o644);
    let bin = root.join("engine-auth");
    std::fs::copy(BIN, &bin).expect("copy the binary");
    std::fs::create_dir(&data).expect("mkdir data");
    chmod(&data, 0o777);

    let port = free_port();
    let nobody = NOBODY.to_string();
    let mut command = Command::new(prefix.first().copied().unwrap_or("setpriv"));
    if !prefix.is_empty() {
        command.args(&prefix[1..]).arg("setpriv");
    }
    command
        .args([
            "--reuid",
            &nobody,
            "--regid",
            &nobody,
            "--clear-groups",
            "--",
        ])
        .arg(&bin)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .args(CHEAP)
        .arg("--config")
        .arg(root.join("config.toml"))
        .env_clear()
        .env("ENGINE_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null());
    let output = refused(command, port, &root.join("nobody.out"));

    assert!(
        output.contains("refusing to start")
            && output.contains(&format!("{} (mode 0777, owner uid 0)", data.display()))
            && output.contains(&format!("(uid {NOBODY})")),
        "the refusal must name the data dir, its mode and owner: {output}"
    );
    let left: Vec<_> = std::fs::read_dir(&data).expect("read data").collect();
    assert!(left.is_empty(), "a store was created: {left:?}");
    assert_eq!(mode_of(&data), "0777", "not ours to change");
}

#[actix_web::test]
async fn a_store_file_another_user_owns_and_others_can_read_is_refused() {
    let sb = Sandbox::new();
    let data = sb.data();
    Serving::start(&sb, "first").stop();
    // A file left open and owned by someone else (say by an older version
    // run as another user): this daemon cannot close it.
    let file = data
        .join("store")
        .join(crate::harness::store::DATA_FILE_NAME);
    chmod(&file, 0o644);
    let file_arg = file.to_str().expect("utf-8 path");
    run_as_root(&["chown", &format!("{NOBODY}:{NOBODY}"), file_arg]);

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data_arg = sb.data_str();
    let mut args = vec!["serve", "--listen", &listen, "--data-dir", &data_arg];
    args.extend(CHEAP);
    let output = refused(
        under_umask_022(&sb, &args),
        port,
        &sandbox_root(&sb).join("refused.out"),
    );
    assert!(
        output.contains("refusing to start")
            && output.contains(&format!(
                "{} (mode 0644, owner uid {NOBODY})",
                file.display()
            )),
        "the refusal must name the file, its mode and owner: {output}"
    );
    assert_eq!(mode_of(&file), "0644", "not ours to change");
}
