//! The CLI against a running daemon: sled lets one process hold the store,
//! so `engine-auth user …` and `recover-admin` go through
//! `DATA_DIR/admin.sock` and their effect is visible over HTTP at once.

use reqwest::{Method, StatusCode};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use crate::helpers::{ADMIN_PASSWORD, Daemon, DaemonDir, USER_PASSWORD, claims_of, cli, cli_ok};

fn roles_claim(token: &str) -> u64 {
    claims_of(token)["roles"].as_u64().expect("roles claim")
}

#[test]
fn the_admin_socket_is_a_socket_only_its_owner_can_use() {
    let dir = DaemonDir::new();
    let daemon = Daemon::start(&dir, &[]);

    let meta = std::fs::metadata(dir.data().join("admin.sock")).expect("admin.sock exists");

    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    daemon.terminate();
    assert!(
        !dir.data().join("admin.sock").exists(),
        "a clean stop removes the socket"
    );
}

#[test]
fn user_commands_act_on_the_running_daemon_at_once() {
    let dir = DaemonDir::new();
    let data = dir.data();
    let daemon = Daemon::start(&dir, &[]);
    let pid = daemon.pid();

    // user add: the new user can log in over HTTP at once.
    let out = cli_ok(
        &data,
        &[
            "user",
            "add",
            "carol",
            "--roles",
            "flows,subscribe,write,read",
        ],
        &[("ENGINE_AUTH_PASSWORD", USER_PASSWORD)],
    );
    let carol_id = out.trim().to_string();
    uuid::Uuid::parse_str(&carol_id).expect("user add prints the new id");
    let carol = daemon.login_ok("carol", USER_PASSWORD);
    assert_eq!(roles_claim(&carol.token), 16 + 4 + 2 + 1);

    // user list shows it, with its id.
    let list = cli_ok(&data, &["user", "list"], &[]);
    assert!(list.lines().any(|l| l.ends_with("\tadmin")), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with(&carol_id) && l.ends_with("\tcarol")),
        "{list}"
    );

    // user passwd: old tokens and the old password stop working.
    cli_ok(
        &data,
        &["user", "passwd", "carol"],
        &[("ENGINE_AUTH_PASSWORD", "carols-second-password")],
    );
    let own_roles = |token: &str| {
        daemon
            .send(
                Method::GET,
                &format!("/user/roles/{carol_id}"),
                Some(token),
                None,
            )
            .status()
    };
    assert_eq!(own_roles(&carol.token), StatusCode::UNAUTHORIZED);
    assert_eq!(
        daemon.refresh(&carol.refresh_token).status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        daemon.login("carol", USER_PASSWORD).status(),
        StatusCode::UNAUTHORIZED
    );
    let carol = daemon.login_ok("carol", "carols-second-password");
    assert_eq!(own_roles(&carol.token), StatusCode::OK);

    // user roles: tokens revoked, a new login carries the new roles.
    cli_ok(&data, &["user", "roles", "carol", "--roles", "read"], &[]);
    assert_eq!(own_roles(&carol.token), StatusCode::UNAUTHORIZED);
    let carol = daemon.login_ok("carol", "carols-second-password");
    assert_eq!(roles_claim(&carol.token), 1);

    // user logout: every token revoked, logging in again works.
    cli_ok(&data, &["user", "logout", "carol"], &[]);
    assert_eq!(own_roles(&carol.token), StatusCode::UNAUTHORIZED);
    assert_eq!(
        daemon.refresh(&carol.refresh_token).status(),
        StatusCode::UNAUTHORIZED
    );
    let carol = daemon.login_ok("carol", "carols-second-password");

    // user delete: gone for HTTP too.
    cli_ok(&data, &["user", "delete", "carol"], &[]);
    assert_eq!(own_roles(&carol.token), StatusCode::UNAUTHORIZED);
    assert_eq!(
        daemon.login("carol", "carols-second-password").status(),
        StatusCode::UNAUTHORIZED
    );
    let list = cli_ok(&data, &["user", "list"], &[]);
    assert!(!list.contains("carol"), "{list}");

    // A refused change comes back as a failure and changes nothing.
    let out = cli(&data, &["user", "delete", "admin"], &[]);
    assert!(!out.status.success(), "deleting the last admin must fail");
    let admin = daemon.login_ok("admin", ADMIN_PASSWORD);
    assert_eq!(daemon.list_users(&admin.token), StatusCode::OK);

    // The same daemon served all of it.
    assert_eq!(daemon.pid(), pid);
    daemon.terminate();
}

#[test]
fn recover_admin_works_without_stopping_the_daemon() {
    let dir = DaemonDir::new();
    let data = dir.data();
    let daemon = Daemon::start(&dir, &[]);
    let old = daemon.login_ok("admin", ADMIN_PASSWORD);
    // Someone demoted the admin; a second admin exists only to allow that.
    let body = serde_json::json!({
        "username": "root2", "password": USER_PASSWORD,
        "roles": crate::helpers::all_roles(),
    });
    let resp = daemon.send(Method::POST, "/user", Some(&old.token), Some(&body));
    assert_eq!(resp.status(), StatusCode::OK);
    cli_ok(&data, &["user", "roles", "admin", "--roles", "read"], &[]);

    let out = cli_ok(
        &data,
        &["recover-admin"],
        &[("ENGINE_AUTH_ADMIN_PASSWORD", "recovered-admin-password")],
    );
    assert!(out.contains("admin"), "{out}");

    // The daemon kept running and the admin is back, with every role.
    let admin = daemon.login_ok("admin", "recovered-admin-password");
    assert_eq!(roles_claim(&admin.token), 159);
    assert_eq!(daemon.list_users(&admin.token), StatusCode::OK);
    assert_eq!(
        daemon.login("admin", ADMIN_PASSWORD).status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(daemon.list_users(&old.token), StatusCode::UNAUTHORIZED);
    daemon.terminate();
}
