//! The CLI against a running daemon: sled lets one process hold the store,
//! so `engine-auth user …` and `recover-admin` go through
//! `DATA_DIR/admin.sock` and their effect is visible over HTTP at once.
//! (`api::binary` covers the socket itself and the stopped daemon.)

use reqwest::StatusCode;

use crate::harness::{ADMIN_PASSWORD, Sandbox, USER_PASSWORD, all_roles, claims_of, text};

fn roles_claim(token: &str) -> u64 {
    claims_of(token)["roles"].as_u64().expect("roles claim")
}

#[actix_web::test]
async fn user_commands_act_on_the_running_daemon_at_once() {
    let sb = Sandbox::new();
    let mut daemon = sb.start();
    let pid = daemon.pid();

    // user add: the new user can log in over HTTP at once.
    let out = sb.cli_ok(
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
    let carol = daemon.login_ok("carol", USER_PASSWORD).await;
    assert_eq!(roles_claim(&carol.token), 16 + 4 + 2 + 1);

    // user list shows it, with its id.
    let list = sb.cli_ok(&["user", "list"], &[]);
    assert!(list.lines().any(|l| l.ends_with("\t159\tadmin")), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with(&carol_id) && l.ends_with("\tcarol")),
        "{list}"
    );

    // user passwd: old tokens and the old password stop working.
    sb.cli_ok(
        &["user", "passwd", "carol"],
        &[("ENGINE_AUTH_PASSWORD", "carols-second-password")],
    );
    daemon.roles_of(&carol.token, &carol_id).await.error(401);
    daemon.refresh(&carol.refresh_token).await.error(401);
    daemon.login("carol", USER_PASSWORD).await.error(401);
    let carol = daemon.login_ok("carol", "carols-second-password").await;
    daemon.roles_of(&carol.token, &carol_id).await.ok_json();

    // user roles: tokens revoked, a new login carries the new roles.
    sb.cli_ok(&["user", "roles", "carol", "--roles", "read"], &[]);
    daemon.roles_of(&carol.token, &carol_id).await.error(401);
    let carol = daemon.login_ok("carol", "carols-second-password").await;
    assert_eq!(roles_claim(&carol.token), 1);

    // user logout: every token revoked, logging in again works.
    sb.cli_ok(&["user", "logout", "carol"], &[]);
    daemon.roles_of(&carol.token, &carol_id).await.error(401);
    daemon.refresh(&carol.refresh_token).await.error(401);
    let carol = daemon.login_ok("carol", "carols-second-password").await;

    // user delete: gone for HTTP too.
    sb.cli_ok(&["user", "delete", "carol"], &[]);
    daemon.roles_of(&carol.token, &carol_id).await.error(401);
    daemon
        .login("carol", "carols-second-password")
        .await
        .error(401);
    let list = sb.cli_ok(&["user", "list"], &[]);
    assert!(!list.contains("carol"), "{list}");

    // A refused change comes back as a failure and changes nothing.
    let out = sb.cli(&["user", "delete", "admin"], &[]);
    assert!(!out.status.success(), "deleting the last admin must fail");
    let admin = daemon.admin_token().await;
    daemon.list_users(&admin).await.ok_json();

    // The same daemon served all of it.
    assert_eq!(daemon.pid(), pid);
    daemon.terminate();
}

/// A forgotten password (or a demoted admin) on a device in the field: no
/// restart needed, and it works on the stopped store too. Nothing prints or
/// logs the passwords.
#[actix_web::test]
async fn recover_admin_works_on_a_running_and_on_a_stopped_daemon() {
    let sb = Sandbox::new();
    let mut daemon = sb.start();
    let old = daemon.admin_tokens().await;
    // Someone demoted the admin; a second admin exists only to allow that.
    daemon
        .create_user_ok(&old.token, "root2", USER_PASSWORD, all_roles())
        .await;
    sb.cli_ok(&["user", "roles", "admin", "--roles", "read"], &[]);

    let out = sb.cli(
        &["recover-admin"],
        &[("ENGINE_AUTH_ADMIN_PASSWORD", "recovered-admin-password")],
    );
    assert!(
        out.status.success(),
        "recover-admin (running):\n{}",
        text(&out.stderr)
    );
    let printed = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(printed.contains("admin"), "{printed}");
    assert!(
        !printed.contains("recovered-admin-password"),
        "recover-admin printed the password"
    );

    // The daemon kept running and the admin is back, with every role.
    let admin = daemon.login_ok("admin", "recovered-admin-password").await;
    assert_eq!(roles_claim(&admin.token), 159);
    daemon.list_users(&admin.token).await.ok_json();
    assert_eq!(
        daemon.login("admin", ADMIN_PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    daemon.list_users(&old.token).await.error(401);
    daemon.terminate();

    // On the stopped store.
    sb.cli_ok(
        &["recover-admin"],
        &[("ENGINE_AUTH_ADMIN_PASSWORD", "offline-recovered-pw")],
    );
    let daemon = sb.start();
    let recovered = daemon.login_ok("admin", "offline-recovered-pw").await;
    assert_eq!(roles_claim(&recovered.token), 159);
    daemon
        .login("admin", "recovered-admin-password")
        .await
        .error(401);
    daemon.login("admin", ADMIN_PASSWORD).await.error(401);
    assert!(!sb.data().join("initial-admin-password").exists());
    drop(daemon);
    sb.assert_logs_free_of(&[
        ADMIN_PASSWORD,
        "recovered-admin-password",
        "offline-recovered-pw",
        &old.token,
        &admin.token,
        &recovered.token,
    ]);
}
