//! API keys (service accounts): creating one for oneself (or, for the
//! operator, for any user) with at most the owner's roles, listing them
//! (one's own; admins and the operator: all), revoking one (its owner or an
//! admin), and authenticating a request by one: one SHA-256 and one store
//! lookup, the key's roles intersected with the owner's current roles, a
//! use written (and audited) at most once an hour per key. A caller that
//! presented a key may not manage keys, passwords or two-factor
//! authentication ([`Actor::refuse_api_key`]).

use std::sync::Arc;
use uuid::Uuid;

use super::{AccountError, Accounts, Actor, Result, blocking};
use crate::apikey::{self, NewKey};
use crate::audit::{self, Event, Origin, Subject};
use crate::clock::Clock;
use crate::domain::Roles;
use crate::store::{ApiKeyRecord, Store, TOUCH_INTERVAL_SECS, UserView};

/// What refuses a key-authenticated caller the management of keys.
const NO_KEY_MANAGEMENT: &str = "An API key cannot manage API keys";

/// A key just created: the only time its plaintext exists outside the client.
#[derive(Debug)]
pub struct CreatedKey {
    pub id: Uuid,
    pub key: NewKey,
}

/// A key as listed: never the key or its hash.
#[derive(Debug, Clone)]
pub struct ListedKey {
    pub record: ApiKeyRecord,
    /// The owner's username as given.
    pub owner_name: String,
}

/// What [`Accounts::create_api_key`] is asked for, as received.
pub struct KeyRequest<'a> {
    pub owner: Uuid,
    pub name: &'a str,
    pub roles: Roles,
    /// RFC 3339.
    pub expires_at: Option<&'a str>,
}

fn subject<'a>(name: &'a str, id: Uuid) -> Subject<'a> {
    Subject { username: name, id }
}

impl Accounts<'_> {
    /// Creates a key for `req.owner`: users for themselves only, the
    /// operator for anyone. Its roles must be among the owner's (403).
    pub async fn create_api_key(
        &self,
        actor: Actor<'_>,
        origin: &Origin,
        req: KeyRequest<'_>,
    ) -> Result<CreatedKey> {
        actor.refuse_api_key(NO_KEY_MANAGEMENT)?;
        if let Actor::User(me) = actor
            && me.id != req.owner
        {
            return Err(AccountError::Forbidden(
                "An API key is created by its owner itself",
            ));
        }
        let name = apikey::parse_name(req.name).map_err(AccountError::Invalid)?;
        let now = self.clock.now();
        let expires_at = match req.expires_at {
            None => None,
            Some(s) => {
                let t = apikey::parse_time(s).map_err(AccountError::Invalid)?;
                if t <= now {
                    return Err(AccountError::Invalid(
                        "expiresAt must be in the future".into(),
                    ));
                }
                Some(t)
            }
        };
        let owner = self
            .store
            .user_view(req.owner)?
            .ok_or(AccountError::NotFound("User not found"))?;
        if !owner.roles.includes(req.roles) {
            return Err(AccountError::Forbidden(
                "An API key's roles must be among its owner's",
            ));
        }
        let key = NewKey::generate()?;
        let rec = ApiKeyRecord {
            id: Uuid::new_v4(),
            owner: owner.id,
            name,
            roles: req.roles,
            created_at: now,
            expires_at,
            last_used_at: None,
        };
        let (store, hash, stored) = (self.store.clone(), key.hash(), rec.clone());
        blocking(move || Ok(store.create_api_key(&stored, &hash)?)).await?;
        audit::emit(
            self.trail(),
            Event::ApiKeyCreated {
                subject: subject(&owner.username, owner.id),
                key: rec.id,
                roles: rec.roles,
            },
            &actor.origin(origin),
        );
        Ok(CreatedKey { id: rec.id, key })
    }

    /// The caller's keys (admins and the operator: everyone's, or
    /// `owner`'s), oldest first.
    pub fn api_keys(&self, actor: Actor<'_>, owner: Option<Uuid>) -> Result<Vec<ListedKey>> {
        actor.refuse_api_key(NO_KEY_MANAGEMENT)?;
        let only = match actor {
            Actor::User(me) if !me.roles.admin => Some(me.id),
            _ => owner,
        };
        let mut keys = Vec::new();
        for rec in self.store.api_keys()? {
            if only.is_some_and(|o| o != rec.owner) {
                continue;
            }
            let owner_name = self
                .store
                .user_view(rec.owner)?
                .map_or_else(String::new, |u| u.username.to_string());
            keys.push(ListedKey {
                record: rec,
                owner_name,
            });
        }
        keys.sort_by(|a, b| {
            (a.record.created_at, a.record.id).cmp(&(b.record.created_at, b.record.id))
        });
        Ok(keys)
    }

    /// Revokes key `id` at once (its owner, admins, the operator).
    pub async fn revoke_api_key(
        &self,
        actor: Actor<'_>,
        origin: &Origin,
        id: Uuid,
    ) -> Result<ApiKeyRecord> {
        actor.refuse_api_key(NO_KEY_MANAGEMENT)?;
        let not_found = AccountError::NotFound("API key not found");
        let Some(rec) = self.store.api_key_by_id(id)? else {
            return Err(not_found);
        };
        if !actor.is_admin() && !actor.is(rec.owner) {
            // Someone else's key: as if there were none.
            return Err(not_found);
        }
        let store = self.store.clone();
        let rec = blocking(move || Ok(store.revoke_api_key(id)?))
            .await?
            .ok_or(not_found)?;
        let owner_name = self
            .store
            .user_view(rec.owner)?
            .map_or_else(String::new, |u| u.username.to_string());
        audit::emit(
            self.trail(),
            Event::ApiKeyRevoked {
                subject: subject(&owner_name, rec.owner),
                key: rec.id,
            },
            &actor.origin(origin),
        );
        Ok(rec)
    }
}

/// The caller a presented API key names: its owner's current view with the
/// key's roles within the owner's, marked as key-authenticated. One SHA-256
/// and one lookup; 401 for an unknown, revoked or expired key or a deleted
/// owner. A use is written at most once an hour per key, off the request
/// path (on the blocking pool), and audited when written.
pub fn api_key_caller(
    store: &Store,
    clock: &Clock,
    origin: impl FnOnce() -> Origin,
    presented: &str,
) -> Result<Arc<UserView>> {
    let hash = apikey::hash(presented);
    let rec = store
        .api_key_by_hash(&hash)?
        .ok_or_else(|| AccountError::Unauthorized("Invalid API key".into()))?;
    let now = clock.now();
    if rec.expires_at.is_some_and(|t| now >= t) {
        return Err(AccountError::Unauthorized("API key has expired".into()));
    }
    let owner = store
        .user_view(rec.owner)?
        .ok_or_else(|| AccountError::Unauthorized("The API key's user no longer exists".into()))?;
    let due = rec
        .last_used_at
        .is_none_or(|t| now.saturating_sub(t) >= TOUCH_INTERVAL_SECS);
    if due && let Ok(rt) = tokio::runtime::Handle::try_current() {
        let (store, origin, who) = (store.clone(), origin(), owner.clone());
        let now_ms = clock.now_millis();
        rt.spawn_blocking(move || match store.touch_api_key(&hash, now) {
            Ok(Some(rec)) => audit::emit(
                audit::Trail {
                    store: &store,
                    now_ms,
                },
                Event::ApiKeyUsed {
                    subject: subject(&who.username, who.id),
                    key: rec.id,
                },
                &origin,
            ),
            Ok(None) => {}
            Err(e) => log::warn!("cannot record the use of API key {}: {e}", rec.id),
        });
    }
    Ok(Arc::new(UserView {
        roles: Roles::from_bits(owner.roles.bits() & rec.roles.bits()),
        api_key: Some(rec.id),
        ..(*owner).clone()
    }))
}
