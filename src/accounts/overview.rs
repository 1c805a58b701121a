//! What the admin console shows and the one session-level change it adds:
//! the accounts list (admins), a user's live sessions (its own; admins:
//! anyone's) and ending one of them, the signing keys (ids, states and
//! ages, never key material) and the recent security events, newest
//! first. Every rule is here; `http::handlers::console` parses and renders.

use std::collections::HashMap;
use uuid::Uuid;

use super::{AccountError, Accounts, Actor, Result, blocking};
use crate::audit::{self, Event, Origin, Subject};
use crate::domain::fold;
use crate::keys::KeyState;
use crate::store::{AUDIT_KEPT, AuditRecord, SessionRecord, SessionToken, UserRecord};

/// One account as the console lists it.
#[derive(Debug, Clone)]
pub struct AccountSummary {
    pub user: UserRecord,
    /// Unix seconds; `None` if it never logged in (since this was kept).
    pub last_login_at: Option<u64>,
}

/// One live session as its owner (or an admin) sees it.
#[derive(Debug, Clone)]
pub struct ListedSession {
    pub id: Uuid,
    pub record: SessionRecord,
    /// The session that issued the caller's access token.
    pub current: bool,
}

/// One signing key: never its secret.
#[derive(Debug, Clone)]
pub struct ListedSigningKey {
    pub kid: String,
    pub state: KeyState,
    pub created_at: u64,
}

/// Which events `GET /audit` asks for.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// At most this many, newest first (1 to [`AUDIT_KEPT`]).
    pub limit: usize,
    /// Only events of this name (`login_ok`, …).
    pub event: Option<String>,
    /// Only events about this user: a username (compared as usernames
    /// are, after NFKC and case folding) or a user id.
    pub user: Option<String>,
}

/// The default and the largest `limit` of [`AuditQuery`].
pub const AUDIT_DEFAULT_LIMIT: usize = 100;
pub const AUDIT_MAX_LIMIT: usize = AUDIT_KEPT as usize;

const NO_KEY_SESSIONS: &str = "An API key cannot list or end sessions";

impl Accounts<'_> {
    /// Every account with its last login, ordered as `GET /users` orders
    /// names (case-insensitively). Admins only.
    pub fn accounts(&self, actor: Actor<'_>) -> Result<Vec<AccountSummary>> {
        actor.require_admin()?;
        let logins: HashMap<Uuid, u64> = self.store.last_logins()?;
        let mut out: Vec<AccountSummary> = self
            .store
            .user_records()?
            .into_iter()
            .map(|user| AccountSummary {
                last_login_at: logins.get(&user.id).copied(),
                user,
            })
            .collect();
        out.sort_by_cached_key(|a| (a.user.username.to_lowercase(), a.user.id));
        Ok(out)
    }

    /// The live sessions of `user` (default: the caller's own; another
    /// user's for admins only), oldest first. A session whose tokens a
    /// later password or role change, or a "log out everywhere", revoked is
    /// not live. `issued_at` is the caller's access token's `iat`: the one
    /// session whose last rotation (or login) was then is `current`.
    pub fn sessions(
        &self,
        actor: Actor<'_>,
        user: Option<Uuid>,
        issued_at: Option<u64>,
    ) -> Result<Vec<ListedSession>> {
        actor.refuse_api_key(NO_KEY_SESSIONS)?;
        let Actor::User(me) = actor else {
            return Err(AccountError::Forbidden("Sessions are listed for a user"));
        };
        let id = user.unwrap_or(me.id);
        actor.require_admin_or_self(id, "Only an admin may list another user's sessions")?;
        let owner = self
            .store
            .user_view(id)?
            .ok_or(AccountError::NotFound("User not found"))?;
        let now = self.clock.now();
        let mut out: Vec<ListedSession> = self
            .store
            .live_sessions(id, now)?
            .into_iter()
            .filter(|(_, r)| r.client.generation.is_none_or(|g| g == owner.generation))
            .map(|(id, record)| ListedSession {
                id,
                record,
                current: false,
            })
            .collect();
        if owner.id == me.id
            && let Some(iat) = issued_at
        {
            let issued = |s: &ListedSession| {
                s.record.client.last_used_at.unwrap_or(s.record.created_at) == iat
            };
            // Two sessions of one user rotated in the same second: which
            // one is the caller's cannot be told, so neither is marked.
            if out.iter().filter(|s| issued(s)).count() == 1 {
                for s in out.iter_mut() {
                    s.current = issued(s);
                }
            }
        }
        Ok(out)
    }

    /// Ends session `id` at once (its refresh tokens are refused; access
    /// tokens it issued run out within their lifetime): its owner, or an
    /// admin. Another user's session is, for a non-admin, as if unknown.
    /// Ending an ended (not yet pruned) session changes nothing and is
    /// not audited again.
    pub async fn end_session(&self, actor: Actor<'_>, origin: &Origin, id: Uuid) -> Result<()> {
        actor.refuse_api_key(NO_KEY_SESSIONS)?;
        let not_found = AccountError::NotFound("Session not found");
        let now = self.clock.now();
        let Some(rec) = self.store.session(id)? else {
            return Err(not_found);
        };
        if !actor.is_admin() && !actor.is(rec.user_id) {
            return Err(not_found);
        }
        let owner = self
            .store
            .user_view(rec.user_id)?
            .ok_or(AccountError::NotFound("Session not found"))?;
        let store = self.store.clone();
        let token = SessionToken {
            session: Some(id),
            hash: [0; 32],
        };
        blocking(move || Ok(store.revoke_session_of(&token, now)?)).await?;
        if rec.revoked_at.is_some() {
            return Ok(()); // ended before: nothing happened now
        }
        let origin = if actor.is(owner.id) {
            origin.clone()
        } else {
            actor.origin(origin)
        };
        audit::emit(
            self.trail(),
            Event::Logout(Subject {
                username: &owner.username,
                id: owner.id,
            }),
            &origin,
        );
        Ok(())
    }

    /// The signing keys: the active one, then the others newest first.
    /// Admins only.
    pub fn signing_keys(&self, actor: Actor<'_>) -> Result<Vec<ListedSigningKey>> {
        actor.require_admin()?;
        let mut keys: Vec<ListedSigningKey> = self
            .store
            .keys()?
            .into_iter()
            .map(|k| ListedSigningKey {
                kid: k.kid,
                state: k.state,
                created_at: k.created_at,
            })
            .collect();
        // The active key first (a rotation within the second of the key
        // before it gives both one creation time), then newest first.
        keys.sort_by_key(|k| {
            (
                k.state != KeyState::Active,
                std::cmp::Reverse(k.created_at),
                k.kid.clone(),
            )
        });
        Ok(keys)
    }

    /// The kept security events matching `q`, newest first. Admins only.
    pub fn audit_events(&self, actor: Actor<'_>, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        actor.require_admin()?;
        if q.limit == 0 || q.limit > AUDIT_MAX_LIMIT {
            return Err(AccountError::Invalid(format!(
                "limit must be between 1 and {AUDIT_MAX_LIMIT}"
            )));
        }
        let user_id = q.user.as_deref().and_then(|u| Uuid::parse_str(u).ok());
        let user_key = q.user.as_deref().map(fold);
        let wanted = |r: &AuditRecord| {
            q.event.as_deref().is_none_or(|e| r.event == e)
                && match (&user_key, user_id) {
                    (None, _) => true,
                    (Some(key), id) => {
                        r.username.as_deref().is_some_and(|n| &fold(n) == key)
                            || id.is_some_and(|id| r.user_id == Some(id))
                    }
                }
        };
        Ok(self
            .store
            .audit_events()?
            .into_iter()
            .rev()
            .filter(wanted)
            .take(q.limit)
            .collect())
    }
}
