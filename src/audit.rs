//! The audit trail: one line per security event on the log target
//! `engine_auth::audit`, written by [`emit`] and nowhere else. An [`Event`]
//! carries only what may be logged — usernames (Debug-quoted, so a name
//! cannot forge a line), user ids, role bitmasks, key ids, reasons — never a
//! password, hash, token or key: the types have no field that could hold
//! one.
//!
//! A line reads `event=<name> <fields> [by=<who>] peer=<address>` for
//! requests over HTTP, and `… by=cli` for the admin socket and the offline
//! CLI.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use uuid::Uuid;

use crate::domain::Roles;

pub const TARGET: &str = "engine_auth::audit";

/// Who a user-facing event is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub username: &'a str,
    pub id: Uuid,
}

/// Where a request came from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// An HTTP client at this address; `by` names the authenticated caller
    /// when it acts on another user's account.
    Http {
        peer: Option<IpAddr>,
        by: Option<String>,
    },
    /// The admin socket or the offline CLI (root or the daemon's user).
    Cli,
    /// The daemon itself (housekeeping, SIGHUP).
    Daemon,
}

impl Origin {
    /// The same origin acting as the authenticated user `by`.
    pub fn acting_as(&self, by: &str) -> Origin {
        match self {
            Origin::Http { peer, .. } => Origin::Http {
                peer: *peer,
                by: Some(by.to_owned()),
            },
            other => other.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Event<'a> {
    LoginOk(Subject<'a>),
    /// `username` as sent (it may name no user).
    LoginFailed {
        username: &'a str,
    },
    Throttled {
        username: Option<&'a str>,
        retry_after_secs: u64,
    },
    Refresh(Subject<'a>),
    /// `subject` is known once the token verified.
    RefreshFailed {
        reason: &'a str,
        subject: Option<Subject<'a>>,
        user_id: Option<Uuid>,
    },
    RefreshReuseDetected {
        subject: Subject<'a>,
        session: Uuid,
    },
    Logout(Subject<'a>),
    LogoutAll(Subject<'a>),
    UserCreated {
        subject: Subject<'a>,
        roles: Roles,
    },
    UserRolesChanged {
        subject: Subject<'a>,
        roles: Roles,
    },
    UserPasswordChanged(Subject<'a>),
    PasswordChangeFailed(Subject<'a>),
    /// Tokens of one generation guessed the current password wrong too
    /// often (a stolen token, most likely): every token of the user is
    /// revoked.
    PasswordGuessing(Subject<'a>),
    UserDeleted(Subject<'a>),
    AdminRecovered(Subject<'a>),
    KeyRotated {
        kid: &'a str,
    },
    KeyDeleted {
        kid: &'a str,
    },
}

impl Event<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Event::LoginOk(_) => "login_ok",
            Event::LoginFailed { .. } => "login_failed",
            Event::Throttled { .. } => "throttled",
            Event::Refresh(_) => "refresh",
            Event::RefreshFailed { .. } => "refresh_failed",
            Event::RefreshReuseDetected { .. } => "refresh_reuse_detected",
            Event::Logout(_) => "logout",
            Event::LogoutAll(_) => "logout_all",
            Event::UserCreated { .. } => "user_created",
            Event::UserRolesChanged { .. } => "user_roles_changed",
            Event::UserPasswordChanged(_) => "user_password_changed",
            Event::PasswordChangeFailed(_) => "password_change_failed",
            Event::PasswordGuessing(_) => "password_guessing",
            Event::UserDeleted(_) => "user_deleted",
            Event::AdminRecovered(_) => "admin_recovered",
            Event::KeyRotated { .. } => "key_rotated",
            Event::KeyDeleted { .. } => "key_deleted",
        }
    }

    /// A replayed refresh token, or a token guessing its user's password,
    /// means a token was stolen: a warning.
    fn level(&self) -> log::Level {
        match self {
            Event::RefreshReuseDetected { .. } | Event::PasswordGuessing(_) => log::Level::Warn,
            _ => log::Level::Info,
        }
    }
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user={:?} id={}", self.username, self.id)
    }
}

/// The line without its origin.
fn describe(event: &Event) -> String {
    let mut s = format!("event={}", event.name());
    let _ = match event {
        Event::LoginOk(u)
        | Event::Refresh(u)
        | Event::Logout(u)
        | Event::LogoutAll(u)
        | Event::UserPasswordChanged(u)
        | Event::PasswordChangeFailed(u)
        | Event::UserDeleted(u)
        | Event::AdminRecovered(u) => write!(s, " {u}"),
        Event::LoginFailed { username } => write!(s, " user={username:?}"),
        Event::Throttled {
            username,
            retry_after_secs,
        } => write!(
            s,
            " user={:?} retry_after={retry_after_secs}",
            username.unwrap_or("-")
        ),
        Event::RefreshFailed {
            reason,
            subject,
            user_id,
        } => {
            let _ = write!(s, " reason={reason:?}");
            match (subject, user_id) {
                (Some(u), _) => write!(s, " {u}"),
                (None, Some(id)) => write!(s, " id={id}"),
                (None, None) => Ok(()),
            }
        }
        Event::RefreshReuseDetected { subject, session } => {
            write!(s, " {subject} session={session}: session revoked")
        }
        Event::PasswordGuessing(u) => write!(s, " {u}: every token revoked"),
        Event::UserCreated { subject, roles } | Event::UserRolesChanged { subject, roles } => {
            write!(s, " {subject} roles={}", roles.bits())
        }
        Event::KeyRotated { kid } | Event::KeyDeleted { kid } => write!(s, " kid={kid}"),
    };
    s
}

/// Writes one audit line.
pub fn emit(event: Event, origin: &Origin) {
    let mut line = describe(&event);
    let _ = match origin {
        Origin::Http { peer, by } => {
            if let Some(by) = by {
                let _ = write!(line, " by={by:?}");
            }
            match peer {
                Some(ip) => write!(line, " peer={ip}"),
                None => write!(line, " peer=-"),
            }
        }
        Origin::Cli => write!(line, " by=cli"),
        Origin::Daemon => Ok(()),
    };
    log::log!(target: TARGET, event.level(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_quoted_so_they_cannot_forge_a_line() {
        let id = Uuid::nil();
        let line = describe(&Event::LoginOk(Subject {
            username: "mallory\n[x INFO  engine_auth::audit] event=login_ok",
            id,
        }));
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("event=login_ok user=\"mallory\\n"),
            "{line}"
        );
    }

    #[test]
    fn every_event_line_starts_with_its_name() {
        let u = Subject {
            username: "a",
            id: Uuid::nil(),
        };
        for e in [
            Event::LoginOk(u),
            Event::LoginFailed { username: "a" },
            Event::Throttled {
                username: None,
                retry_after_secs: 3,
            },
            Event::RefreshFailed {
                reason: "expired",
                subject: None,
                user_id: None,
            },
            Event::UserCreated {
                subject: u,
                roles: Roles::ALL,
            },
            Event::KeyRotated { kid: "k" },
            Event::PasswordGuessing(u),
        ] {
            let line = describe(&e);
            assert!(line.starts_with(&format!("event={} ", e.name())), "{line}");
        }
    }
}
