//! Things that happen to keys and sessions over time: key rotation (SIGHUP,
//! CLI, HTTP, age), revocation of every earlier key at once (a suspected
//! leak), deletion of retired keys once nothing they signed can still be
//! valid, and pruning of expired sessions. Every function here is blocking
//! (store writes end in a flush): call it off the async workers.

use crate::audit::{self, Event, Origin};
use crate::config::Settings;
use crate::store::{KeyState, Store};
use crate::tokens::{self, Tokens};

/// At start: when the active key is not of the configured algorithm
/// (`--signing-alg` changed), a routine rotation makes one that is;
/// tokens signed before stay valid until they expire. Returns the new key
/// id, if it rotated.
pub fn align_signing_alg(
    store: &Store,
    tokens: &Tokens,
    now: u64,
) -> anyhow::Result<Option<String>> {
    let active = store.active_kid()?;
    let current = store
        .keys()?
        .into_iter()
        .find(|k| k.kid == active)
        .map(|k| k.alg);
    if current == Some(tokens.signing_alg()) {
        return Ok(None);
    }
    let replaced = replace_signing_key(store, Some(tokens), now, PreviousKeys::Retire)?;
    log::info!(
        "the signing algorithm is now {} (was {}): rotated to key {}",
        tokens.signing_alg(),
        current.map_or("unknown".into(), |a| a.to_string()),
        replaced.kid
    );
    Ok(Some(replaced.kid))
}

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
    // The daemon's `--signing-alg`; offline, the active key's algorithm
    // (the daemon rotates at its next start if it is configured otherwise).
    let alg = match tokens {
        Some(t) => t.signing_alg(),
        None => {
            let active = store.active_kid()?;
            store
                .keys()?
                .into_iter()
                .find(|k| k.kid == active)
                .map(|k| k.alg)
                .unwrap_or_default()
        }
    };
    let new = tokens::new_key_record(now, alg)?;
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
    // accepted until its exp plus the leeway. While any key is published, a
    // retired key may sign for one JWKS cache lifetime more (until its
    // successor has been published that long: `Tokens::issue`), and stays
    // published one more after its last token expires.
    let published = store.keys()?.iter().any(|k| k.alg.is_published());
    let extra = if published {
        2 * settings.jwks_max_age_secs
    } else {
        0
    };
    let cutoff = now.saturating_sub(settings.max_token_life() + settings.leeway_secs + extra);
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
