//! `user …`, `keys …`, `apikey …` and `recover-admin`: each becomes one
//! [`admin::Request`], sent to the running daemon's admin socket or, when
//! no daemon runs, executed on the store directly.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::output::terminal_safe;
use super::{ApikeyAction, CommonArgs, KeysAction, PasswordSource, UserAction};
use crate::accounts::Accounts;
use crate::admin::{self, Request};
use crate::bootstrap;
use crate::clock::Clock;
use crate::config::{self, ADMIN_PASSWORD_ENV};
use crate::domain::{Password, Roles, Secret, Username};
use crate::password::Hasher;
use crate::store::Store;

/// Given to `user add` and `user passwd` (no flag: it would show in `ps`).
const PASSWORD_ENV: &str = "ENGINE_AUTH_PASSWORD";

fn read_password(src: &PasswordSource, env: &str) -> anyhow::Result<Secret> {
    let raw = match &src.password_file {
        Some(p) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        Some(p) => bootstrap::read_password_file(p)?,
        None => config::secret_from_env(env)
            .with_context(|| {
                format!("give the password with --password-file FILE (or - for stdin) or {env}")
            })?
            .into_inner(),
    };
    // Checked here too, so a bad password fails before reaching a daemon.
    Password::parse(raw.clone())?;
    Ok(Secret::new(raw))
}

/// Sends `req` to the running daemon's admin socket or, when no daemon
/// runs, executes it on the store directly. Prints the result, usernames
/// made safe for a terminal ([`terminal_safe`]).
fn admin_request(common: &CommonArgs, req: Request) -> anyhow::Result<ExitCode> {
    let settings = common.settings()?;
    let dir = &settings.data_dir;
    if let Some(resp) = admin::send(dir, &req)? {
        return Ok(match resp {
            Ok(output) => {
                println!("{}", terminal_safe(&output.to_string()));
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("engine-auth: error: {}", terminal_safe(&message));
                ExitCode::FAILURE
            }
        });
    }
    let store = Store::open_existing(dir, settings.cache_capacity_bytes)?;
    let hasher = Hasher::new(settings.argon2, 1)?;
    let clock = Clock::system();
    let accounts = Accounts {
        store: &store,
        hasher: &hasher,
        clock: &clock,
        tokens: None,
        throttle: None,
    };
    let out = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(admin::execute(accounts, req))?;
    store.flush()?;
    println!("{}", terminal_safe(&out.to_string()));
    Ok(ExitCode::SUCCESS)
}

fn roles(list: &str) -> anyhow::Result<Roles> {
    Roles::parse_list(list).map_err(anyhow::Error::msg)
}

pub(super) fn keys(common: &CommonArgs, action: KeysAction) -> anyhow::Result<ExitCode> {
    admin_request(
        common,
        match action {
            KeysAction::Rotate {
                revoke_previous: false,
            } => Request::KeysRotate,
            KeysAction::Rotate {
                revoke_previous: true,
            } => Request::KeysRotateRevokingPrevious,
            KeysAction::List => Request::KeysList,
        },
    )
}

pub(super) fn apikey(common: &CommonArgs, action: ApikeyAction) -> anyhow::Result<ExitCode> {
    let req = match action {
        ApikeyAction::Create {
            owner,
            name,
            roles: r,
            expires,
        } => Request::ApikeyCreate {
            owner,
            name,
            roles: roles(&r)?,
            expires_at: expires,
        },
        ApikeyAction::List { owner } => Request::ApikeyList { owner },
        ApikeyAction::Revoke { id } => Request::ApikeyRevoke { id },
    };
    admin_request(common, req)
}

pub(super) fn user(common: &CommonArgs, action: UserAction) -> anyhow::Result<ExitCode> {
    let req = match action {
        UserAction::Add {
            username,
            roles: r,
            password,
        } => Request::UserAdd {
            username,
            roles: roles(&r)?,
            password: read_password(&password, PASSWORD_ENV)?,
        },
        UserAction::List => Request::UserList,
        UserAction::Passwd { username, password } => Request::UserPasswd {
            username,
            password: read_password(&password, PASSWORD_ENV)?,
        },
        UserAction::Roles { username, roles: r } => Request::UserRoles {
            username,
            roles: roles(&r)?,
        },
        UserAction::Delete { username } => Request::UserDelete { username },
        UserAction::Logout { username } => Request::UserLogout { username },
        UserAction::MfaReset { username } => Request::UserMfaReset { username },
    };
    admin_request(common, req)
}

pub(super) fn recover_admin(
    common: &CommonArgs,
    username: &str,
    password_file: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    Username::parse(username)?;
    let (password, generated) = match (password_file, config::secret_from_env(ADMIN_PASSWORD_ENV)) {
        (Some(f), _) => (
            read_password(
                &PasswordSource {
                    password_file: Some(PathBuf::from(f)),
                },
                "",
            )?,
            false,
        ),
        (None, Some(p)) => (p, false),
        (None, None) => (
            Secret::new(bootstrap::generate_password()?.expose().to_string()),
            true,
        ),
    };
    // Written before the change, so a generated password is never lost.
    let file = if generated {
        let settings = common.settings()?;
        Some(bootstrap::write_secret_file(
            &settings.data_dir,
            password.expose(),
        )?)
    } else {
        None
    };
    let code = admin_request(
        common,
        Request::RecoverAdmin {
            username: username.to_string(),
            password,
        },
    );
    match (&code, file) {
        (Ok(c), Some(path)) if *c == ExitCode::SUCCESS => {
            println!("the new password is in {} (mode 0600)", path.display())
        }
        (_, Some(path)) => {
            let _ = std::fs::remove_file(path);
        }
        _ => {}
    }
    code
}
