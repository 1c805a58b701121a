//! The CLI against a running daemon: one process holds the store,
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

/// `apikey create|list|revoke` on a running daemon (through its socket:
/// the key works over HTTP at once, and stops at once) and on a stopped
/// store; the key is printed once, by `create`, and logged nowhere.
#[actix_web::test]
async fn apikey_commands_work_on_a_running_and_on_a_stopped_daemon() {
    /// (id, key) from `apikey create`'s output.
    fn created(out: &str) -> (String, String) {
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}\t")))
                .unwrap_or_else(|| panic!("no {name} in {out}"))
                .to_string()
        };
        (field("id"), field("key"))
    }
    let sb = Sandbox::new();
    let mut daemon = sb.start();
    let carol_id = sb
        .cli_ok(
            &["user", "add", "carol", "--roles", "read,write"],
            &[("ENGINE_AUTH_PASSWORD", USER_PASSWORD)],
        )
        .trim()
        .to_string();

    // Live: created, usable at once, with carol's identity.
    let out = sb.cli_ok(
        &[
            "apikey", "create", "--owner", "carol", "--name", "ci job", "--roles", "read",
        ],
        &[],
    );
    let (id, key) = created(&out);
    assert!(key.starts_with("eak_"), "{out}");
    daemon.roles_of(&key, &carol_id).await.ok_json();
    // The first use is recorded (off the request path) and audited once.
    let mut last_used = String::new();
    for _ in 0..100 {
        let list = sb.cli_ok(&["apikey", "list", "--owner", "carol"], &[]);
        last_used = list
            .lines()
            .find(|l| l.starts_with(&id))
            .and_then(|l| l.split('\t').nth(4))
            .unwrap_or_default()
            .to_string();
        if last_used != "-" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        last_used.ends_with('Z'),
        "last use not recorded: {last_used:?}"
    );
    daemon.roles_of(&key, &carol_id).await.ok_json();
    // Roles beyond the owner's, a past expiry, an unknown owner: refused.
    for args in [
        &["--owner", "carol", "--name", "x", "--roles", "admin"][..],
        &[
            "--owner",
            "carol",
            "--name",
            "x",
            "--roles",
            "read",
            "--expires",
            "2001-01-01T00:00:00Z",
        ],
        &["--owner", "nobody", "--name", "x", "--roles", "read"],
    ] {
        let out = sb.cli(&[&["apikey", "create"][..], args].concat(), &[]);
        assert!(!out.status.success(), "{args:?} must fail");
    }
    let list = sb.cli_ok(&["apikey", "list"], &[]);
    assert!(
        list.lines()
            .any(|l| l.starts_with(&id) && l.contains("\tcarol\tread\t") && l.ends_with("ci job")),
        "{list}"
    );
    assert!(!list.contains(&key[4..]), "list shows the key: {list}");
    let admins = sb.cli_ok(&["apikey", "list", "--owner", "admin"], &[]);
    assert!(!admins.contains(&id), "{admins}");
    sb.cli_ok(&["apikey", "revoke", &id], &[]);
    daemon.roles_of(&key, &carol_id).await.error(401);
    let out = sb.cli(&["apikey", "revoke", &id], &[]);
    assert!(!out.status.success(), "revoking twice must fail");
    daemon.terminate();

    // Offline: made on the stopped store, it works once the daemon runs.
    let out = sb.cli_ok(
        &[
            "apikey",
            "create",
            "--owner",
            "carol",
            "--name",
            "offline",
            "--roles",
            "read,write",
            "--expires",
            "2999-01-01T00:00:00Z",
        ],
        &[],
    );
    let (offline_id, offline_key) = created(&out);
    let list = sb.cli_ok(&["apikey", "list", "--owner", "carol"], &[]);
    assert!(
        list.contains(&offline_id) && list.contains("2999-01-01T00:00:00.000Z"),
        "{list}"
    );
    let mut daemon = sb.start();
    daemon.roles_of(&offline_key, &carol_id).await.ok_json();
    daemon.terminate();
    sb.cli_ok(&["apikey", "revoke", &offline_id], &[]);
    let daemon = sb.start();
    daemon.roles_of(&offline_key, &carol_id).await.error(401);
    drop(daemon);
    let logs = sb.all_logs();
    for event in [
        format!("event=apikey_created user=\"carol\" id={carol_id} key={id} roles=1 by=cli"),
        format!("event=apikey_used user=\"carol\" id={carol_id} key={id} peer="),
        format!("event=apikey_revoked user=\"carol\" id={carol_id} key={id} by=cli"),
    ] {
        assert_eq!(logs.matches(&event).count(), 1, "{event} once in:\n{logs}");
    }
    sb.assert_logs_free_of(&[&key, &offline_key, &key[4..], &offline_key[4..]]);
}
