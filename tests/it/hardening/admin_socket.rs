//! The admin socket serves only root and the daemon's own user, even when
//! its file mode has been loosened: the daemon asks the kernel who the peer
//! is (`SO_PEERCRED`). The daemon runs as the test's user and the attacker
//! is `nobody`, through `setpriv` (as root, or with password-less sudo),
//! with the socket made world-writable.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::harness::{Sandbox, text};

const NOBODY: &str = "65534";

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[actix_web::test]
async fn a_peer_that_is_neither_root_nor_the_daemons_user_is_refused_even_with_the_socket_open() {
    // Becoming `nobody` takes root: ours, or sudo's without a password.
    let become_nobody: Vec<&str> = if is_root() {
        vec!["setpriv"]
    } else {
        let sudo = Command::new("sudo").args(["-n", "true"]).status();
        assert!(
            sudo.is_ok_and(|s| s.success()),
            "this test acts as another user: run it as root or with password-less sudo (CI does)"
        );
        vec!["sudo", "-n", "setpriv"]
    };
    let sb = Sandbox::new();
    let _d = sb.start();
    // The operator's own CLI is served.
    assert!(sb.cli_ok(&["user", "list"], &[]).contains("admin"));

    // Loosen everything the file system would otherwise refuse with.
    let data = sb.data();
    let socket = data.join("admin.sock");
    for dir in [data.parent().expect("sandbox root"), &data] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))
        .expect("chmod socket");

    // `nobody` runs the CLI: it finds the socket and asks the daemon to
    // add an admin.
    let root = data.parent().expect("sandbox root");
    let config = root.join("config.toml");
    // A copy nobody can run wherever the build tree lives.
    let bin = root.join("engine-auth");
    std::fs::copy(env!("CARGO_BIN_EXE_engine-auth"), &bin).expect("copy the binary");
    let out = Command::new(become_nobody[0])
        .args(&become_nobody[1..])
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .arg(&bin)
        .args(["user", "add", "mallory", "--roles", "all", "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env_clear()
        .env("ENGINE_AUTH_PASSWORD", "mallory-password")
        .output()
        .expect("run setpriv engine-auth");
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "nobody's request succeeded");
    assert!(
        stderr.contains("only root and the daemon's user may use the admin socket"),
        "the daemon itself must refuse nobody: {stderr:?}"
    );
    // Nothing was created.
    let users = sb.cli_ok(&["user", "list"], &[]);
    assert!(!users.contains("mallory"), "{users}");
}
