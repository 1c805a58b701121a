//! Things that happen to keys and sessions over time: key rotation (SIGHUP,
//! CLI, age), deletion of retired keys once nothing they signed can still
//! be valid, and pruning of expired sessions. Every function here is
//! blocking (store writes end in a flush): call it off the async workers.

use crate::audit::{self, Event, Origin};
use crate::config::Settings;
use crate::store::{KeyState, Store};
use crate::tokens::{self, Tokens};

/// Retires the active key and makes a new one active, in the store and in
/// the running keyring. Tokens signed with the old key stay valid until they
/// expire. Returns the new key id. (The use case, with its audit line, is
/// `accounts::Accounts::rotate_signing_key`.)
pub fn replace_signing_key(
    store: &Store,
    tokens: Option<&Tokens>,
    now: u64,
) -> anyhow::Result<String> {
    let new = tokens::new_key_record(now)?;
    store.rotate_key(&new, now)?;
    if let Some(t) = tokens {
        t.reload(&store.keys()?, &new.kid)?;
    }
    Ok(new.kid)
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
        let kid = replace_signing_key(store, Some(tokens), now)?;
        audit::emit(Event::KeyRotated { kid: &kid }, &Origin::Daemon);
    }
    // A retired key signed its last token at `retired_at`; that token is
    // accepted until its exp plus the leeway.
    let cutoff = now.saturating_sub(settings.max_token_life() + settings.leeway_secs);
    let gone = store.delete_retired_keys(cutoff)?;
    if !gone.is_empty() {
        tokens.reload(&store.keys()?, &store.active_kid()?)?;
        for kid in gone {
            audit::emit(Event::KeyDeleted { kid: &kid }, &Origin::Daemon);
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
