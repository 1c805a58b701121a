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
//!
//! Failures an unauthenticated client can repeat at will (`throttled`,
//! `login_failed`, `refresh_failed`) are aggregated, so a flood cannot fill
//! the disk or drown the other events: per (event, client address; IPv6
//! per /64) the first [`BURST`] lines of an [`INTERVAL`] are written, the
//! rest only counted; the next line written for that pair, or a summary
//! line (`event=<name> peer=<address> suppressed=N`) written by
//! [`flush_suppressed`] (every interval, and at shutdown), reports the
//! count. Across all addresses at most [`GLOBAL_BURST`] such lines
//! (summaries included) are written per interval, since an attacker may
//! own many addresses; beyond it one `event=audit_suppressed count=N` line
//! per interval says how many events it left out. The table is bounded ([`MAX_ENTRIES`]): when full, finished
//! intervals go first, then the oldest entries, each with its summary.
//! Successful logins, changes and everything else are never suppressed.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::domain::Roles;
use crate::store::{AuditRecord, LastLogin, Store};

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
    /// A login beyond the user's session cap ended these, its oldest.
    SessionsEvicted {
        subject: Subject<'a>,
        sessions: &'a [Uuid],
    },
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
    /// The user turned two-factor authentication on (`by` none) or off.
    MfaEnabled(Subject<'a>),
    MfaDisabled(Subject<'a>),
    /// An admin or operator turned it off: every token revoked.
    MfaReset(Subject<'a>),
    /// A wrong or spent one-time password (after the right password, at a
    /// login; or from a bearer enabling or disabling): `during` names which.
    OtpFailed {
        subject: Subject<'a>,
        during: &'static str,
    },
    /// A wrong password where a user asked for a new TOTP secret.
    MfaGenerateFailed(Subject<'a>),
    /// The MQTT broker's user check passed: `via` a password or a token.
    MqttLoginOk {
        subject: Subject<'a>,
        via: &'static str,
    },
    /// The MQTT broker's user check with a token failed (a wrong password
    /// is `login_failed`, as at a login).
    MqttLoginFailed {
        username: &'a str,
        reason: &'a str,
    },
    KeyRotated {
        kid: &'a str,
    },
    KeyDeleted {
        kid: &'a str,
    },
    /// Deleted before its time (`keys rotate --revoke-previous`): what it
    /// signed is refused from now on.
    KeyRevoked {
        kid: &'a str,
    },
    /// An API key of `subject` (its owner) was created, used (at most one
    /// line an hour per key) or revoked: the key's id, never the key.
    ApiKeyCreated {
        subject: Subject<'a>,
        key: Uuid,
        roles: Roles,
    },
    ApiKeyUsed {
        subject: Subject<'a>,
        key: Uuid,
    },
    ApiKeyRevoked {
        subject: Subject<'a>,
        key: Uuid,
    },
}

impl Event<'_> {
    /// The user the event is about, as far as it names one: the name (as
    /// sent, for a failed login) and the id.
    pub fn about(&self) -> (Option<&str>, Option<Uuid>) {
        match self {
            Event::LoginOk(u)
            | Event::Refresh(u)
            | Event::Logout(u)
            | Event::LogoutAll(u)
            | Event::UserPasswordChanged(u)
            | Event::PasswordChangeFailed(u)
            | Event::PasswordGuessing(u)
            | Event::UserDeleted(u)
            | Event::AdminRecovered(u)
            | Event::MfaEnabled(u)
            | Event::MfaDisabled(u)
            | Event::MfaReset(u)
            | Event::MfaGenerateFailed(u)
            | Event::RefreshReuseDetected { subject: u, .. }
            | Event::SessionsEvicted { subject: u, .. }
            | Event::UserCreated { subject: u, .. }
            | Event::UserRolesChanged { subject: u, .. }
            | Event::OtpFailed { subject: u, .. }
            | Event::MqttLoginOk { subject: u, .. }
            | Event::ApiKeyCreated { subject: u, .. }
            | Event::ApiKeyUsed { subject: u, .. }
            | Event::ApiKeyRevoked { subject: u, .. } => (Some(u.username), Some(u.id)),
            Event::LoginFailed { username } | Event::MqttLoginFailed { username, .. } => {
                (Some(*username), None)
            }
            Event::Throttled { username, .. } => (*username, None),
            Event::RefreshFailed {
                subject, user_id, ..
            } => match subject {
                Some(u) => (Some(u.username), Some(u.id)),
                None => (None, *user_id),
            },
            Event::KeyRotated { .. } | Event::KeyDeleted { .. } | Event::KeyRevoked { .. } => {
                (None, None)
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Event::LoginOk(_) => "login_ok",
            Event::LoginFailed { .. } => "login_failed",
            Event::Throttled { .. } => "throttled",
            Event::Refresh(_) => "refresh",
            Event::RefreshFailed { .. } => "refresh_failed",
            Event::RefreshReuseDetected { .. } => "refresh_reuse_detected",
            Event::Logout(_) => "logout",
            Event::SessionsEvicted { .. } => "sessions_evicted",
            Event::LogoutAll(_) => "logout_all",
            Event::UserCreated { .. } => "user_created",
            Event::UserRolesChanged { .. } => "user_roles_changed",
            Event::UserPasswordChanged(_) => "user_password_changed",
            Event::PasswordChangeFailed(_) => "password_change_failed",
            Event::PasswordGuessing(_) => "password_guessing",
            Event::UserDeleted(_) => "user_deleted",
            Event::AdminRecovered(_) => "admin_recovered",
            Event::MfaEnabled(_) => "mfa_enabled",
            Event::MfaDisabled(_) => "mfa_disabled",
            Event::MfaReset(_) => "mfa_reset",
            Event::OtpFailed { .. } => "otp_failed",
            Event::MfaGenerateFailed(_) => "mfa_generate_failed",
            Event::MqttLoginOk { .. } => "mqtt_login_ok",
            Event::MqttLoginFailed { .. } => "mqtt_login_failed",
            Event::KeyRotated { .. } => "key_rotated",
            Event::KeyDeleted { .. } => "key_deleted",
            Event::KeyRevoked { .. } => "key_revoked",
            Event::ApiKeyCreated { .. } => "apikey_created",
            Event::ApiKeyUsed { .. } => "apikey_used",
            Event::ApiKeyRevoked { .. } => "apikey_revoked",
        }
    }

    /// Whether an unauthenticated client can repeat it at will: such lines
    /// are aggregated per address (see the module's documentation).
    fn repeatable(&self) -> bool {
        matches!(
            self,
            Event::Throttled { .. }
                | Event::LoginFailed { .. }
                | Event::RefreshFailed { .. }
                | Event::MqttLoginFailed { .. }
        )
    }

    /// A replayed refresh token, or a token guessing its user's password,
    /// means a token was stolen; a revoked key, that a key may have been;
    /// a wrong one-time password, that a password may have been: warnings.
    fn level(&self) -> log::Level {
        match self {
            Event::RefreshReuseDetected { .. }
            | Event::KeyRevoked { .. }
            | Event::PasswordGuessing(_)
            | Event::OtpFailed { .. } => log::Level::Warn,
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
        | Event::AdminRecovered(u)
        | Event::MfaEnabled(u)
        | Event::MfaDisabled(u)
        | Event::MfaGenerateFailed(u) => write!(s, " {u}"),
        Event::MfaReset(u) => write!(s, " {u}: every token revoked"),
        Event::OtpFailed { subject, during } => write!(s, " {subject} during={during}"),
        Event::MqttLoginOk { subject, via } => write!(s, " {subject} via={via}"),
        Event::MqttLoginFailed { username, reason } => {
            write!(s, " user={username:?} reason={reason:?}")
        }
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
        Event::SessionsEvicted { subject, sessions } => {
            let _ = write!(s, " {subject} count={} sessions=", sessions.len());
            for (i, id) in sessions.iter().enumerate() {
                let _ = write!(s, "{}{id}", if i == 0 { "" } else { "," });
            }
            Ok(())
        }
        Event::PasswordGuessing(u) => write!(s, " {u}: every token revoked"),
        Event::UserCreated { subject, roles } | Event::UserRolesChanged { subject, roles } => {
            write!(s, " {subject} roles={}", roles.bits())
        }
        Event::KeyRotated { kid } | Event::KeyDeleted { kid } | Event::KeyRevoked { kid } => {
            write!(s, " kid={kid}")
        }
        Event::ApiKeyCreated {
            subject,
            key,
            roles,
        } => write!(s, " {subject} key={key} roles={}", roles.bits()),
        Event::ApiKeyUsed { subject, key } | Event::ApiKeyRevoked { subject, key } => {
            write!(s, " {subject} key={key}")
        }
    };
    s
}

/// Where a daemon keeps its recent events for `GET /audit`: its store, and
/// the one clock's time now.
#[derive(Clone, Copy)]
pub struct Trail<'a> {
    pub store: &'a Store,
    pub now_ms: u64,
}

/// Writes one audit line (or, for a repeated failure, counts it: see the
/// module's documentation), and keeps every line written as an event in
/// `trail`'s store (`store::AuditRecord`; a failure to keep it is logged,
/// the line stands).
pub fn emit(trail: Trail<'_>, event: Event, origin: &Origin) {
    crate::metrics::event(&event);
    let suppressed = match origin {
        Origin::Http { peer: Some(ip), .. } if event.repeatable() => {
            match lock().admit(event.name(), *ip, Instant::now()) {
                Admit::Write { suppressed } => suppressed,
                Admit::Drop => return,
            }
        }
        _ => 0,
    };
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
    if suppressed > 0 {
        let _ = write!(line, " suppressed={suppressed}");
    }
    log::log!(target: TARGET, event.level(), "{line}");
    keep(trail, &event, origin);
}

/// The kept form of an event written to the log. Not inlined: `emit` is
/// called from many places, and this is its larger half.
#[inline(never)]
fn keep(trail: Trail<'_>, event: &Event, origin: &Origin) {
    let (username, user_id) = event.about();
    let (address, by) = match origin {
        Origin::Http { peer, by } => (peer.map(|ip| ip.to_string()), by.clone()),
        Origin::Cli => (None, Some("cli".to_owned())),
        Origin::Daemon => (None, None),
    };
    let login = match event {
        Event::LoginOk(u) => LastLogin::Set(u.id, trail.now_ms / 1000),
        Event::UserDeleted(u) => LastLogin::Forget(u.id),
        _ => LastLogin::Keep,
    };
    let rec = AuditRecord {
        time: trail.now_ms,
        event: event.name().to_owned(),
        username: username.map(str::to_owned),
        user_id,
        address,
        by,
    };
    if let Err(e) = trail.store.record_event(&rec, login) {
        log::warn!("cannot keep the {} event in the store: {e}", event.name());
    }
}

/// How long one aggregation interval lasts.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// Lines per (event, address) written at once in an interval.
pub const BURST: u32 = 5;
/// Lines of repeatable failures written per interval, all addresses
/// together.
pub const GLOBAL_BURST: u32 = 200;
/// (event, address) pairs remembered at most.
pub const MAX_ENTRIES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The address the entry was opened by (shown in its summary).
    peer: IpAddr,
    since: Instant,
    written: u32,
    suppressed: u64,
}

/// One interval of the global budget.
#[derive(Debug, Clone, Copy)]
struct Budget {
    since: Instant,
    written: u32,
    suppressed: u64,
}

struct Aggregator {
    entries: HashMap<(&'static str, IpKey), Entry>,
    global: Option<Budget>,
}

enum Admit {
    /// Write the line, reporting this many left out before it.
    Write {
        suppressed: u64,
    },
    Drop,
}

static AGGREGATOR: LazyLock<Mutex<Aggregator>> = LazyLock::new(|| {
    Mutex::new(Aggregator {
        entries: HashMap::new(),
        global: None,
    })
});

fn lock() -> std::sync::MutexGuard<'static, Aggregator> {
    AGGREGATOR.lock().unwrap_or_else(|p| p.into_inner())
}

impl Aggregator {
    fn admit(&mut self, event: &'static str, peer: IpAddr, now: Instant) -> Admit {
        let key = (event, IpKey::from(peer));
        let fresh = Entry {
            peer,
            since: now,
            written: 1,
            suppressed: 0,
        };
        let carried = match self.entries.get_mut(&key) {
            Some(e) if now.duration_since(e.since) < INTERVAL => {
                if e.written >= BURST {
                    e.suppressed += 1;
                    return Admit::Drop;
                }
                e.written += 1;
                0
            }
            Some(e) => std::mem::replace(e, fresh).suppressed,
            None => {
                if self.entries.len() >= MAX_ENTRIES {
                    self.make_room(now);
                }
                self.entries.insert(key, fresh);
                0
            }
        };
        if global_allows(&mut self.global, now, 1 + carried) {
            Admit::Write {
                suppressed: carried,
            }
        } else {
            Admit::Drop
        }
    }

    /// Drops finished intervals (with their summaries); if that is not
    /// enough, the oldest eighth of the table too.
    fn make_room(&mut self, now: Instant) {
        self.flush(now, false);
        if self.entries.len() < MAX_ENTRIES {
            return;
        }
        let mut by_age: Vec<_> = self.entries.iter().map(|(k, e)| (e.since, *k)).collect();
        let n = (MAX_ENTRIES / 8).max(1);
        by_age.select_nth_unstable_by_key(n - 1, |(since, _)| *since);
        for (_, key) in &by_age[..n] {
            if let Some(e) = self.entries.remove(key) {
                summarize(&mut self.global, key.0, &e, now);
            }
        }
    }

    /// Writes the summary of every entry whose interval is over (`all`:
    /// of every entry) and forgets them.
    fn flush(&mut self, now: Instant, all: bool) {
        let Aggregator { entries, global } = self;
        entries.retain(|(event, _), e| {
            let done = all || now.duration_since(e.since) >= INTERVAL;
            if done {
                summarize(global, event, e, now);
            }
            !done
        });
        if let Some(b) = *global
            && (all || now.duration_since(b.since) >= INTERVAL)
        {
            close_budget(&b);
            *global = None;
        }
    }
}

/// `event=<name> peer=<address> suppressed=N` for an entry that left
/// lines out (within the global budget, else counted there).
fn summarize(global: &mut Option<Budget>, event: &str, e: &Entry, now: Instant) {
    if e.suppressed > 0 && global_allows(global, now, e.suppressed) {
        log::info!(
            target: TARGET,
            "event={event} peer={} suppressed={}",
            e.peer,
            e.suppressed
        );
    }
}

/// Counts one line standing for `events` against the global budget; false
/// (and the events counted as left out) if it is spent.
fn global_allows(global: &mut Option<Budget>, now: Instant, events: u64) -> bool {
    let b = global.get_or_insert(Budget {
        since: now,
        written: 0,
        suppressed: 0,
    });
    if now.duration_since(b.since) >= INTERVAL {
        close_budget(b);
        *b = Budget {
            since: now,
            written: 0,
            suppressed: 0,
        };
    }
    if b.written < GLOBAL_BURST {
        b.written += 1;
        true
    } else {
        b.suppressed += events;
        false
    }
}

/// `event=audit_suppressed count=N`: what the global budget left out.
fn close_budget(b: &Budget) {
    if b.suppressed > 0 {
        log::info!(target: TARGET, "event=audit_suppressed count={}", b.suppressed);
    }
}

/// Writes the counts of what was left out in finished intervals (`all`:
/// in every interval, at shutdown) and forgets those entries. The daemon
/// calls it every [`INTERVAL`].
pub fn flush_suppressed(all: bool) {
    lock().flush(Instant::now(), all);
}

/// A client address as the aggregation groups it: IPv4 whole (IPv4-mapped
/// IPv6 too), IPv6 by its /64, since one host may own a whole /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IpKey {
    V4(u32),
    /// The upper 64 bits.
    V6(u64),
}

impl From<std::net::IpAddr> for IpKey {
    fn from(ip: std::net::IpAddr) -> Self {
        match ip.to_canonical() {
            std::net::IpAddr::V4(v4) => IpKey::V4(u32::from(v4)),
            std::net::IpAddr::V6(v6) => IpKey::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aggregator() -> Aggregator {
        Aggregator {
            entries: HashMap::new(),
            global: None,
        }
    }

    fn written(a: Admit) -> Option<u64> {
        match a {
            Admit::Write { suppressed } => Some(suppressed),
            Admit::Drop => None,
        }
    }

    #[test]
    fn repeated_failures_of_one_address_are_counted_not_written() {
        let mut a = aggregator();
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let out: Vec<_> = (0..100)
            .map(|_| written(a.admit("throttled", ip, t0)))
            .collect();
        assert!(out[..BURST as usize].iter().all(|w| *w == Some(0)));
        assert!(out[BURST as usize..].iter().all(Option::is_none));
        // Another event kind, another address: their own lines.
        assert_eq!(written(a.admit("login_failed", ip, t0)), Some(0));
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(written(a.admit("throttled", other, t0)), Some(0));
        // The next interval's first line carries the count.
        let t1 = t0 + INTERVAL;
        assert_eq!(written(a.admit("throttled", ip, t1)), Some(95));
        assert_eq!(written(a.admit("throttled", ip, t1)), Some(0));
        // A flush forgets finished intervals.
        a.flush(t1 + INTERVAL, false);
        assert!(a.entries.is_empty());
    }

    #[test]
    fn one_ipv6_host_is_one_address_and_the_table_stays_bounded() {
        let mut a = aggregator();
        let t0 = Instant::now();
        for i in 0..100u128 {
            let ip = IpAddr::V6((0x2001_0db8_u128 << 96 | i).into());
            a.admit("throttled", ip, t0);
        }
        assert_eq!(a.entries.len(), 1);
        for i in 0..(MAX_ENTRIES as u32 * 3) {
            a.admit("throttled", IpAddr::V4(i.into()), t0);
            assert!(a.entries.len() <= MAX_ENTRIES);
        }
        // However many addresses, at most GLOBAL_BURST lines an interval.
        let mut a = aggregator();
        let lines = (0..10_000u32)
            .filter(|i| written(a.admit("throttled", IpAddr::V4((*i).into()), t0)).is_some())
            .count();
        assert_eq!(lines, GLOBAL_BURST as usize);
        assert_eq!(
            a.global.unwrap().suppressed,
            10_000 - u64::from(GLOBAL_BURST)
        );
    }

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
    fn mfa_events_name_the_user_and_nothing_secret() {
        let u = Subject {
            username: "bob",
            id: Uuid::nil(),
        };
        let id = Uuid::nil();
        assert_eq!(
            describe(&Event::OtpFailed {
                subject: u,
                during: "disable"
            }),
            format!("event=otp_failed user=\"bob\" id={id} during=disable")
        );
        assert_eq!(
            describe(&Event::MfaReset(u)),
            format!("event=mfa_reset user=\"bob\" id={id}: every token revoked")
        );
        assert_eq!(
            describe(&Event::MfaEnabled(u)),
            format!("event=mfa_enabled user=\"bob\" id={id}")
        );
        assert_eq!(
            Event::OtpFailed {
                subject: u,
                during: "login"
            }
            .level(),
            log::Level::Warn
        );
        assert_eq!(Event::MfaEnabled(u).level(), log::Level::Info);
        assert!(
            !Event::OtpFailed {
                subject: u,
                during: "login"
            }
            .repeatable()
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
            Event::KeyRevoked { kid: "k" },
            Event::SessionsEvicted {
                subject: u,
                sessions: &[Uuid::nil(), Uuid::max()],
            },
            Event::PasswordGuessing(u),
            Event::MfaEnabled(u),
            Event::MfaDisabled(u),
            Event::MfaReset(u),
            Event::OtpFailed {
                subject: u,
                during: "login",
            },
            Event::MfaGenerateFailed(u),
            Event::MqttLoginOk {
                subject: u,
                via: "token",
            },
            Event::MqttLoginFailed {
                username: "a",
                reason: "expired",
            },
            Event::ApiKeyCreated {
                subject: u,
                key: Uuid::nil(),
                roles: Roles::ALL,
            },
            Event::ApiKeyUsed {
                subject: u,
                key: Uuid::nil(),
            },
            Event::ApiKeyRevoked {
                subject: u,
                key: Uuid::nil(),
            },
        ] {
            let line = describe(&e);
            assert!(line.starts_with(&format!("event={} ", e.name())), "{line}");
        }
        let evicted = describe(&Event::SessionsEvicted {
            subject: u,
            sessions: &[Uuid::nil(), Uuid::max()],
        });
        assert_eq!(
            evicted,
            format!(
                "event=sessions_evicted user=\"a\" id={} count=2 sessions={},{}",
                Uuid::nil(),
                Uuid::nil(),
                Uuid::max()
            )
        );
    }
}
