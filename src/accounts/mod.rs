//! The use cases: every rule about accounts and sessions — who may do what,
//! what a change revokes, what is audited — written once, called by the
//! HTTP handlers (`http::handlers`) and by the admin socket and offline CLI
//! (`admin`). Callers parse their input into domain types and render the
//! [`AccountError`] they get back; they never touch the store's records.
//!
//! Every function here is async: password hashing runs on the hash pool,
//! store writes (each ends in a flush) on tokio's blocking pool, never on
//! an async worker. The admin socket and the CLI drive them on a
//! current-thread runtime of their own.

mod apikeys;
mod error;
mod mfa;
mod mqtt;
mod overview;
mod sessions;
mod users;

pub use apikeys::{CreatedKey, KeyRequest, ListedKey, api_key_caller};
pub use error::AccountError;
pub use mfa::NewTotpSecret;
pub use mqtt::MqttAccess;
pub use overview::{
    AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT, AccountSummary, AuditQuery, ListedSession,
    ListedSigningKey,
};
pub use sessions::{LoginRequest, Sessions};
pub use users::PasswordProof;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use uuid::Uuid;

use crate::audit::{self, Event, Origin};
use crate::clock::Clock;
use crate::password::{Hasher, Slot};
use crate::store::{Store, UserView};
use crate::throttle::{Attempt, Throttle};
use crate::tokens::Tokens;

pub type Result<T, E = AccountError> = std::result::Result<T, E>;

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A user authenticated by a bearer token (its stored view: current
    /// roles, never the token's claim).
    User(&'a UserView),
    /// Root or the daemon's user, through the admin socket or the offline
    /// CLI: may do everything.
    Operator,
}

impl Actor<'_> {
    pub fn is_admin(&self) -> bool {
        match self {
            Actor::User(u) => u.roles.admin,
            Actor::Operator => true,
        }
    }

    fn is(&self, id: Uuid) -> bool {
        matches!(self, Actor::User(u) if u.id == id)
    }

    /// Admins (and operators) only.
    pub fn require_admin(&self) -> Result<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AccountError::Forbidden("This call requires the admin role"))
        }
    }

    /// Refuses a caller that presented an API key rather than a token:
    /// what only the user itself may do (keys, passwords, two-factor
    /// authentication); `refusal` says what.
    pub fn refuse_api_key(&self, refusal: &'static str) -> Result<()> {
        match self {
            Actor::User(u) if u.api_key.is_some() => Err(AccountError::Forbidden(refusal)),
            _ => Ok(()),
        }
    }

    /// An admin, or the user `id` itself; `refusal` says what was refused.
    fn require_admin_or_self(&self, id: Uuid, refusal: &'static str) -> Result<()> {
        if self.is_admin() || self.is(id) {
            Ok(())
        } else {
            Err(AccountError::Forbidden(refusal))
        }
    }

    /// The name audit lines give as `by=` when someone acts on an account.
    fn origin(&self, origin: &Origin) -> Origin {
        match self {
            Actor::User(u) => origin.acting_as(&u.username),
            Actor::Operator => origin.clone(),
        }
    }
}

/// What user management needs. Cheap to build: it borrows.
#[derive(Clone, Copy)]
pub struct Accounts<'a> {
    pub store: &'a Store,
    pub hasher: &'a Hasher,
    pub clock: &'a Clock,
    /// The running daemon's keyring, reloaded after a key rotation; `None`
    /// in the offline CLI (no daemon holds one).
    pub tokens: Option<&'a Tokens>,
    /// The daemon's throttle, for the password checks users ask for over
    /// HTTP; `None` for the admin socket and the offline CLI, whose
    /// operator never proves a password.
    pub throttle: Option<&'a Throttle>,
}

/// The client address the throttle counts for `origin` (all callers
/// without one share the unspecified address).
fn client_of(origin: &Origin) -> IpAddr {
    match origin {
        Origin::Http { peer: Some(ip), .. } => *ip,
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

/// Whole seconds to tell a client to wait (at least one).
fn retry_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// 429 for `wait`, audited.
fn throttled(
    trail: audit::Trail<'_>,
    origin: &Origin,
    username: Option<&str>,
    wait: Duration,
) -> AccountError {
    let secs = retry_secs(wait);
    audit::emit(
        trail,
        Event::Throttled {
            username,
            retry_after_secs: secs,
        },
        origin,
    );
    AccountError::Throttled(secs)
}

/// Starts checking a password of `username` for the client of `origin`:
/// 429 if that client is throttled, 503 if the hash queue is full, both
/// before any hash. Otherwise the pending attempt (settle it once the hash
/// has answered) and the place in the hash queue for its verify.
fn start_check<'t>(
    trail: audit::Trail<'_>,
    throttle: &'t Throttle,
    hasher: &Hasher,
    origin: &Origin,
    username: &str,
) -> Result<(Attempt<'t>, Slot)> {
    let attempt = throttle
        .attempt(client_of(origin), &crate::domain::fold(username))
        .map_err(|wait| throttled(trail, origin, Some(username), wait))?;
    match hasher.reserve() {
        Ok(slot) => Ok((attempt, slot)),
        Err(crate::password::QueueFull) => {
            attempt.abandon();
            Err(AccountError::Busy(1))
        }
    }
}

impl Accounts<'_> {
    /// Where this daemon keeps its audit events: its store, now.
    pub(crate) fn trail(&self) -> audit::Trail<'_> {
        audit::Trail {
            store: self.store,
            now_ms: self.clock.now_millis(),
        }
    }

    /// How long a failed login lasts at least ([`Hasher::failure_floor`]).
    /// The first call lists the argon2 parameter sets the store's hashes
    /// use (one read of every user), so start-up does not.
    async fn failure_floor(&self) -> std::time::Duration {
        if !self.hasher.knows_stored() {
            let (store, hasher) = (self.store.clone(), self.hasher.clone());
            let learnt = blocking(move || {
                let kinds = store.password_hash_kinds()?;
                hasher.learn_stored(kinds.iter().map(String::as_str));
                Ok(())
            })
            .await;
            if let Err(e) = learnt {
                log::warn!("cannot list the stored hashes' parameters: {e}");
            }
        }
        self.hasher.failure_floor()
    }
}

/// Runs a store call (which ends in a flush) on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AccountError::Internal(anyhow::anyhow!("blocking task failed: {e}")))?
}
