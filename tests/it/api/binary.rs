//! The built `engine-auth` executable, run as an operator would: fresh data
//! dir, a free port, logs captured to a file (see `harness::Sandbox`).

use reqwest::StatusCode;
use serde_json::json;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Output;

use crate::harness::{Sandbox, decode_jwt, free_port, healthcheck, store, text};

/// Deterministic junk (xorshift), so a failure reproduces byte for byte.
fn junk(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[actix_web::test]
async fn first_start_generates_the_admin_password_into_a_0600_file_and_logs_only_its_path() {
    let sb = Sandbox::new();
    // Production argon2 parameters here (the default), nothing configured.
    let mut d = sb.daemon().no_admin_password().production_argon2().start();

    let file = sb.data().join("initial-admin-password");
    let meta = fs::metadata(&file).expect("initial-admin-password exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "file mode");
    let content = fs::read_to_string(&file).expect("readable");
    let password = content.strip_suffix('\n').unwrap_or(&content).to_string();
    assert!(password.len() >= 16, "a strong generated password");
    assert!(!password.contains(char::is_whitespace));

    let log = d.logs();
    assert!(
        log.contains(file.to_str().expect("utf-8 path")),
        "the log names the password file:\n{log}"
    );
    let pair = d.login_ok("admin", &password).await;
    assert_eq!(decode_jwt(&pair.token).1["roles"], json!(159));

    d.sigkill();
    sb.assert_logs_free_of(&[&password, &pair.token, &pair.refresh_token]);
}

/// How the CLI is told the data dir.
#[derive(Clone, Copy)]
enum DirArg {
    /// `engine-auth user list --data-dir DIR`, as README shows it.
    FlagAfterAction,
    /// `ENGINE_AUTH_DATA_DIR=DIR engine-auth user list`.
    Environment,
}

fn user_cmd(sb: &Sandbox, how: DirArg, action: &[&str], envs: &[(&str, &str)]) -> Output {
    let dir = sb.data_str();
    let mut args = vec!["user"];
    args.extend(action);
    let mut envs = envs.to_vec();
    match how {
        DirArg::FlagAfterAction => args.extend(["--data-dir", dir.as_str()]),
        DirArg::Environment => envs.push(("ENGINE_AUTH_DATA_DIR", dir.as_str())),
    }
    sb.cli_as_given(&args, &envs)
}

/// `user add` must print the new id and nothing secret.
fn added_id(out: &Output, password: &str) -> String {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "user add failed:\n{}",
        text(&out.stderr)
    );
    assert!(!stdout.contains(password) && !text(&out.stderr).contains(password));
    let id = stdout.trim().to_string();
    uuid::Uuid::parse_str(&id).unwrap_or_else(|_| panic!("user add prints the id, got {stdout:?}"));
    id
}

/// `user list` and `user add` through the running daemon's admin socket (a
/// socket only its owner can use, removed by a clean stop), then on the
/// stopped store, then refused clearly while a daemon holds the store
/// without a reachable socket.
async fn user_administration_from_the_cli(how: DirArg) {
    let sb = Sandbox::new();
    let mut d = sb
        .daemon()
        .env("ENGINE_AUTH_ADMIN_PASSWORD", "admin-pw-cli")
        .start();

    // While the daemon runs, the CLI goes through its admin socket.
    let sock = sb.data().join("admin.sock");
    let meta = fs::metadata(&sock).expect("admin.sock exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "admin.sock mode");
    let out = user_cmd(&sb, how, &["list"], &[]);
    assert!(
        out.status.success(),
        "user list via the daemon:\n{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.ends_with("\t159\tadmin")),
        "{}",
        text(&out.stdout)
    );
    let out = user_cmd(
        &sb,
        how,
        &["add", "live-user", "--roles", "read,write"],
        &[("ENGINE_AUTH_PASSWORD", "live-user-pw")],
    );
    let live_id = added_id(&out, "live-user-pw");
    let live = d.login_ok("live-user", "live-user-pw").await;
    assert_eq!(decode_jwt(&live.token).1["_id"], json!(live_id));

    // SIGTERM: a clean stop with exit code 0, which removes the socket.
    d.terminate();
    assert!(!sock.exists(), "a clean stop removes the socket");

    // Stopped: the CLI opens the store itself.
    let out = user_cmd(
        &sb,
        how,
        &["add", "offline-user", "--roles", "read,write"],
        &[("ENGINE_AUTH_PASSWORD", "offline-user-pw")],
    );
    let id = added_id(&out, "offline-user-pw");
    let out = user_cmd(&sb, how, &["list"], &[]);
    assert!(
        out.status.success(),
        "user list failed:\n{}",
        text(&out.stderr)
    );
    let listing = text(&out.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l == format!("{id}\t3\toffline-user")),
        "user list shows id, role bits and name:\n{listing}"
    );
    assert!(
        listing.lines().any(|l| l.starts_with(&live_id)),
        "{listing}"
    );

    // A process holding the store without a reachable socket: refused,
    // clearly, and nothing changes.
    let d = sb.start();
    fs::remove_file(&sock).expect("remove admin.sock");
    let out = user_cmd(&sb, how, &["list"], &[]);
    assert!(
        !out.status.success(),
        "user list opened a store held by a running daemon"
    );
    let err = text(&out.stderr);
    assert!(err.contains("in use by a running daemon"), "stderr:\n{err}");
    let out = user_cmd(
        &sb,
        how,
        &["add", "too-early", "--roles", "read"],
        &[("ENGINE_AUTH_PASSWORD", "too-early-pw")],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("in use by a running daemon"));

    let offline = d.login_ok("offline-user", "offline-user-pw").await;
    let (_, claims) = decode_jwt(&offline.token);
    assert_eq!(claims["_id"], json!(id));
    assert_eq!(claims["roles"], json!(3));
    assert_eq!(
        d.login("too-early", "too-early-pw").await.status(),
        StatusCode::UNAUTHORIZED
    );
    drop(d);
    sb.assert_logs_free_of(&[
        "admin-pw-cli",
        "live-user-pw",
        "offline-user-pw",
        "too-early-pw",
        &live.token,
        &offline.token,
        &offline.refresh_token,
    ]);
}

#[actix_web::test]
async fn user_commands_as_readme_shows_them_work_on_a_running_and_a_stopped_daemon() {
    user_administration_from_the_cli(DirArg::FlagAfterAction).await;
}

#[actix_web::test]
async fn user_commands_with_the_data_dir_from_the_environment() {
    user_administration_from_the_cli(DirArg::Environment).await;
}

#[actix_web::test]
async fn healthcheck_exits_0_while_running_and_non_zero_when_nothing_listens() {
    let sb = Sandbox::new();
    let mut d = sb.start();

    for path in ["/health", "/api/v1/health"] {
        let url = d.url(path);
        let out = healthcheck(&["--url", &url]);
        assert!(
            out.status.success(),
            "healthcheck {url}: {}",
            text(&out.stderr)
        );
    }
    let url = d.url("/health");
    d.sigkill();

    let out = healthcheck(&["--url", &url, "--timeout-secs", "2"]);
    assert!(!out.status.success(), "healthcheck passed with no daemon");
    let nobody = format!("http://127.0.0.1:{}/health", free_port());
    let out = healthcheck(&["--url", &nobody, "--timeout-secs", "2"]);
    assert!(!out.status.success());
}

/// Seeds a store (configured admin password, one extra user), SIGKILLs the
/// daemon (as after a power cut), overwrites the first `damaged` bytes of
/// the store's data file with junk (all of it when `None`), and checks that
/// `serve` refuses to start: non-zero exit, a message naming the store, no
/// listener, no new admin password file.
async fn damaged_store_is_refused(damaged: Option<usize>) {
    let file = store::DATA_FILE_NAME;
    let sb = Sandbox::new();
    let mut d = sb.start();
    let admin = d.admin_token().await;
    d.create_user_ok(
        &admin,
        "precious",
        "precious-pw-1",
        crate::harness::roles(&["read"]),
    )
    .await;
    d.sigkill();

    let target = store::store_path(&sb.data()).join(file);
    let mut bytes = fs::read(&target).expect("the store's data file");
    let n = damaged.unwrap_or(bytes.len()).min(bytes.len());
    bytes[..n].copy_from_slice(&junk(n, 0x9E37_79B9_7F4A_7C15));
    fs::write(&target, bytes).expect("damage the store");

    // No admin password configured: a (wrong) re-seed would generate one.
    let mut d = sb.daemon().no_admin_password().spawn();
    let status = d.wait_exit_unless_ready();
    let log = d.logs();
    assert!(
        !status.success(),
        "serve started on a damaged store ({file}):\n{log}"
    );
    assert!(
        log.contains(&sb.data_str()) && log.to_lowercase().contains("store"),
        "the message should name the store:\n{log}"
    );
    assert!(
        !sb.data().join("initial-admin-password").exists(),
        "a new admin was seeded over existing data:\n{log}"
    );
    assert!(!log.contains("seeded"), "{log}");
}

#[actix_web::test]
async fn a_store_whose_file_lost_its_header_stops_the_daemon_without_seeding() {
    damaged_store_is_refused(Some(512)).await;
}

#[actix_web::test]
async fn a_store_whose_file_is_junk_stops_the_daemon_without_seeding() {
    damaged_store_is_refused(None).await;
}

#[test]
fn offline_commands_never_create_a_store() {
    let sb = Sandbox::new();
    let dir = sb.data_str();
    let out = sb.cli_as_given(
        &["recover-admin", "--data-dir", &dir],
        &[("ENGINE_AUTH_ADMIN_PASSWORD", "newpassword123")],
    );
    assert!(!out.status.success());
    let out = sb.cli_as_given(&["user", "list"], &[("ENGINE_AUTH_DATA_DIR", &dir)]);
    assert!(!out.status.success());
    assert!(
        !store::store_path(&sb.data()).exists(),
        "an offline command created a store"
    );
}
