//! Things that happen to keys and sessions over time: key rotation (SIGHUP,
//! CLI, HTTP, age), revocation of every earlier key at once (a suspected
//! leak), deletion of retired keys once nothing they signed can still be
//! valid, and pruning of expired sessions. Every function here is blocking
//! (store writes end in a flush): call it off the async workers.

use crate::audit::{self, Event, Origin};
use crate::config::Settings;
use crate::store::{KeyState, Store};
use crate::tokens::{self, Tokens};

/// What a rotation does with the keys before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviousKeys {
    /// Retired: tokens they signed stay valid until they expire, then
    /// housekeeping deletes them (routine rotation; nobody is logged out).
    Retire,
    /// Deleted with the rotation: every token they signed, access or
    /// refresh, is refused from the next request on, so every session
    /// ends (a suspected leak of the store or a key).
    Revoke,
}

/// A rotation done: the new key id, and the ids of the keys it revoked.
#[derive(Debug, Clone)]
pub struct Replaced {
    pub kid: String,
    /// Empty unless [`PreviousKeys::Revoke`].
    pub revoked: Vec<String>,
}

/// Makes a new key active, in the store and in the running keyring, and
/// retires or revokes the earlier ones (see [`PreviousKeys`]). The keyring
/// is rebuilt from the store, so with its verified-token cache empty: a
/// revoked key's tokens fail at once. (The use case, with its audit lines,
/// is `accounts::Accounts::replace_signing_key`.)
pub fn replace_signing_key(
    store: &Store,
    tokens: Option<&Tokens>,
    now: u64,
    previous: PreviousKeys,
) -> anyhow::Result<Replaced> {
    let new = tokens::new_key_record(now)?;
    let revoked = match previous {
        PreviousKeys::Retire => {
            store.rotate_key(&new, now)?;
            Vec::new()
        }
        PreviousKeys::Revoke => store.rotate_key_revoking_previous(&new)?,
    };
    if let Some(t) = tokens {
        t.reload(&store.keys()?, &new.kid)?;
    }
    Ok(Replaced {
        kid: new.kid,
        revoked,
    })
}

/// One round of housekeeping: rotate the key if it is too old, delete
/// retired keys nothing valid depends on, prune dead sessions.
pub fn housekeeping(
    store: &Store,
    tokens: &Tokens,
    settings: &Settings,
    now: u64,
) -> anyhow::Result<()> {
    let active = store.active_kid()?;
    let age = store
        .keys()?
        .into_iter()
        .find(|k| k.kid == active && k.state == KeyState::Active)
        .map(|k| now.saturating_sub(k.created_at));
    if age.is_some_and(|a| a >= settings.key_max_age_secs) {
        log::info!(
            "the signing key is older than {} s; rotating",
            settings.key_max_age_secs
        );
        let replaced = replace_signing_key(store, Some(tokens), now, PreviousKeys::Retire)?;
        audit::emit(
            audit::Trail {
                store,
                now_ms: now.saturating_mul(1000),
            },
            Event::KeyRotated { kid: &replaced.kid },
            &Origin::Daemon,
        );
    }
    // A retired key signed its last token at `retired_at`; that token is
    // accepted until its exp plus the leeway.
    let cutoff = now.saturating_sub(settings.max_token_life() + settings.leeway_secs);
    let gone = store.delete_retired_keys(cutoff)?;
    if !gone.is_empty() {
        tokens.reload(&store.keys()?, &store.active_kid()?)?;
        for kid in gone {
            audit::emit(
                audit::Trail {
                    store,
                    now_ms: now.saturating_mul(1000),
                },
                Event::KeyDeleted { kid: &kid },
                &Origin::Daemon,
            );
        }
    }
    let pruned = store.prune_sessions(now, settings.leeway_secs)?;
    if pruned.legacy_tokens + pruned.sessions > 0 {
        log::info!(
            "pruned {} expired refresh tokens and {} sessions",
            pruned.legacy_tokens,
            pruned.sessions
        );
    }
    Ok(())
}
