//! Everything about older on-disk layouts, in one place so that it can go
//! in one piece. Each entry says which build wrote it and what removes it.
//! Every build so far is version 0.1.0, so builds are named by commit.
//!
//! - **One record per refresh token** (`refresh_tokens` tree,
//!   [`RefreshRecord`], keyed by the SHA-256 of a bare random `jti`), written
//!   by builds before 0e7ed20 (one-record sessions, 2026-12-01). Such tokens
//!   still rotate (their successor joins the session record, so it is of
//!   the new layout), log out and are pruned once expired; `check` counts
//!   them ("refresh tokens of 0.1.0"). Nothing writes the tree any more, so
//!   every store empties it within the longest refresh-token lifetime after
//!   its upgrade (housekeeping prunes it). Remove once no store older than
//!   that can still be upgraded: drop the tree (open it to `drop_tree` in
//!   [`Store::open`] for one release), this file's session code,
//!   [`Store::start_legacy_session`] and its tests.
//! - **Stores written by sled** (every build before the move to redb):
//!   `migrate` moves them to redb at their first open, keeping the sled
//!   store aside until the migrated one has started once. Remove `migrate`
//!   (and the sled dependency) once no sled store can still be upgraded.
//! - **No user or index count in `meta`**, in stores written before 7c7e64f,
//!   or counts left stale by such a build running on a newer store (it
//!   keeps the admin count, not the others). [`Store::recount`] counts them
//!   once at open. Remove with the last build before 7c7e64f that could run
//!   on a store; a store without counts would then be refused as damaged.
//! - **No per-user session lists** (`user_sessions` tree, no
//!   `session_lists` in `meta`), in stores written before the session cap
//!   (2026-12-06). [`Store::list_sessions`] lists every session in its
//!   user's list once at open, so sessions from before the upgrade count
//!   toward the cap. Remove once no such store can be upgraded; the lists
//!   of such a store would then start empty (its older sessions uncounted
//!   until they end, at most `session_max_secs`).
//! - Field defaults (not here, they are serde attributes):
//!   `UserRecord::generation` and `KeyRecord::retired_at` read as 0 / none
//!   when absent, for records written before 181a05d (2026-11-23). Harmless;
//!   remove with a schema version bump.

use super::kv::{Batch, Transactional};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

use super::check::Scan;
use super::codec::{decode, decode_tx, encode, from_tx};
use super::rotation::{Exchange, MAX_LIVE, Refusal, Rotation};
use super::sessions::SessionRecord;
use super::{META_NAMES, META_SESSION_LISTS, META_USERS, Result, Store};

/// A refresh token issued before sessions were named in the `jti`, keyed
/// by the SHA-256 of its `jti` in the `refresh_tokens` tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshRecord {
    #[serde(rename = "family")]
    pub session: Uuid,
    pub user_id: Uuid,
    pub exp: u64,
    /// Set when it was exchanged for a successor.
    pub spent_at: Option<u64>,
}

impl Store {
    /// The session of a token issued before sessions were named in the
    /// `jti`, if its record is still kept.
    pub(super) fn legacy_session_of(&self, hash: &[u8; 32]) -> Result<Option<Uuid>> {
        self.refresh
            .get(hash)?
            .map(|v| decode::<RefreshRecord>(&v).map(|r| r.session))
            .transpose()
    }

    /// [`Store::exchange_refresh`] for a token with its own record in the
    /// `refresh_tokens` tree. Its successor joins the session record.
    pub(super) fn exchange_legacy(&self, r: &Rotation) -> Result<Exchange> {
        self.write(|| {
            let outcome = (&self.refresh, &self.sessions)
                .transaction(|(refresh, sessions)| {
                    let Some(token) = refresh.get(r.old)? else {
                        return Ok(Exchange::Refused(Refusal::Unknown));
                    };
                    let mut token: RefreshRecord = decode_tx(&token)?;
                    let id = token.session;
                    let Some(rec) = sessions.get(id.as_bytes())? else {
                        return Ok(Exchange::Refused(Refusal::Unknown));
                    };
                    let mut rec: SessionRecord = decode_tx(&rec)?;
                    if let Some(why) = rec.refusal(r.now) {
                        return Ok(Exchange::Refused(why));
                    }
                    // One chain, as in `rotation`: once a token of the session
                    // was exchanged, an unspent old-layout token is a retired
                    // sibling, and a spent one may be retried only until the
                    // chain moves on past its successors.
                    let replay = match token.spent_at {
                        Some(at) => {
                            r.grace_secs == 0
                                || r.now.saturating_sub(at) > r.grace_secs
                                || !rec.spent.is_empty()
                        }
                        None => !rec.live.is_empty(),
                    };
                    if replay {
                        rec.revoked_at = Some(r.now);
                        sessions.insert(id.as_bytes(), encode(&rec))?;
                        return Ok(Exchange::ReuseDetected { session: id });
                    }
                    match token.spent_at {
                        Some(_) if rec.live.len() >= MAX_LIVE => {
                            return Ok(Exchange::Refused(Refusal::TooManyRetries));
                        }
                        Some(_) => {}
                        None => {
                            token.spent_at = Some(r.now);
                            refresh.insert(r.old, encode(&token))?;
                        }
                    }
                    let exp = rec.issue(r.new, r.wanted_exp);
                    sessions.insert(id.as_bytes(), encode(&rec))?;
                    Ok(Exchange::Rotated { session: id, exp })
                })
                .map_err(from_tx)?;
            self.flush()?;
            Ok(outcome)
        })
    }

    /// Deletes old-layout token records past their `exp` plus `slack`, and
    /// unreadable ones. Not flushed: [`Store::prune_sessions`] flushes.
    pub(super) fn prune_legacy_tokens(&self, now: u64, slack: u64) -> Result<usize> {
        let mut gone = 0;
        for item in self.refresh.iter() {
            let (k, v) = item?;
            let dead =
                decode::<RefreshRecord>(&v).map_or(true, |r| r.exp.saturating_add(slack) < now);
            if dead {
                self.refresh.remove(k)?;
                gone += 1;
            }
        }
        Ok(gone)
    }

    /// The full scan's part for old-layout token records.
    pub(super) fn scan_legacy_tokens(&self, s: &mut Scan) -> Result<()> {
        for item in self.refresh.iter() {
            let (k, v) = item?;
            s.refresh_tokens += 1;
            s.live_bytes += (k.len() + v.len()) as u64;
            if let Err(e) = decode::<RefreshRecord>(&v) {
                s.problem(format!(
                    "refresh token record {}: {e}",
                    crate::hex::encode(&k)
                ));
            }
        }
        Ok(())
    }

    /// Writes an old-layout session (a record per token), as builds before
    /// the one-record sessions did: for upgrade tests.
    #[doc(hidden)]
    pub fn start_legacy_session(
        &self,
        session: Uuid,
        token_hash: &[u8; 32],
        rec: &SessionRecord,
        exp: u64,
    ) -> Result<()> {
        self.write(|| {
            let token = RefreshRecord {
                session,
                user_id: rec.user_id,
                exp,
                spent_at: None,
            };
            (&self.refresh, &self.sessions)
                .transaction(|(refresh, sessions)| {
                    sessions.insert(session.as_bytes(), encode(rec))?;
                    refresh.insert(token_hash, encode(&token))?;
                    Ok(())
                })
                .map_err(from_tx)?;
            self.flush()
        })
    }

    /// Puts every session in its user's list (oldest first) and
    /// records that it did, in one transaction: once, at the first open of
    /// a store written before the lists were kept.
    pub(super) fn list_sessions(&self) -> Result<()> {
        self.write(|| {
            // Every session: a login drops those no longer live.
            let mut lists: HashMap<Uuid, Vec<(u64, Uuid)>> = HashMap::new();
            for item in self.sessions.iter() {
                let (k, v) = item?;
                let (Ok(id), Ok(rec)) = (Uuid::from_slice(&k), decode::<SessionRecord>(&v)) else {
                    continue; // left to pruning
                };
                lists
                    .entry(rec.user_id)
                    .or_default()
                    .push((rec.created_at, id));
            }
            let sessions: usize = lists.values().map(Vec::len).sum();
            (&self.user_sessions, &self.meta)
                .transaction(|(user_sessions, meta)| {
                    for (user, list) in &lists {
                        let mut list = list.clone();
                        list.sort();
                        let bytes: Vec<u8> =
                            list.iter().flat_map(|(_, id)| *id.as_bytes()).collect();
                        user_sessions.insert(user.as_bytes(), bytes)?;
                    }
                    meta.insert(META_SESSION_LISTS, b"1")?;
                    Ok(())
                })
                .map_err(from_tx)?;
            self.flush()?;
            if sessions > 0 {
                log::info!(
                    "listed {sessions} sessions of {} users, for the per-user session cap",
                    lists.len()
                );
            }
            Ok(())
        })
    }

    /// Counts users and index entries again and records them: every user
    /// decoded and counted, the index counted, refused if they disagree or
    /// the admin count is wrong (what every start did before the counts
    /// were kept), then the counts, committed and flushed. Run at open on a
    /// store without counts, or whose counts do not fit.
    pub fn recount(&self) -> Result<()> {
        self.write(|| {
            let scan = self.count_users()?;
            if let Some(problem) = scan.problems.first() {
                return Err(self.invalid(match scan.problems.len() {
                    1 => problem.clone(),
                    n => format!("{problem} (and {} more problems)", n - 1),
                }));
            }
            let mut batch = Batch::default();
            batch.insert(META_USERS, scan.users.to_be_bytes());
            batch.insert(META_NAMES, scan.names.to_be_bytes());
            self.meta.apply_batch(batch)?;
            self.flush()?;
            log::info!(
                "recorded the user count ({} users) in the store: later starts skip the full scan",
                scan.users
            );
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::sessions::tests::{new_session, open, tok};
    use super::super::testing::{counts, raw, reopen, seeded};
    use super::super::users::read_count;
    use super::super::{META_NAMES, META_USERS, NewSession, Opened, SessionRecord, SessionToken};
    use super::*;

    fn rec(user: Uuid, now: u64) -> SessionRecord {
        SessionRecord {
            user_id: user,
            created_at: now,
            expires_at: now + 1000,
            last_exp: now + 100,
            revoked_at: None,
            live: Vec::new(),
            spent: Vec::new(),
            client: Default::default(),
        }
    }

    #[test]
    fn sessions_from_before_the_lists_count_toward_the_cap_after_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        seeded(dir.path(), 1);
        let uid = Uuid::new_v4();
        let old: Vec<Uuid> = (0..3).map(|i| Uuid::from_u128(100 - i)).collect();
        {
            // As a build before the lists wrote them: records only.
            let db = raw(dir.path());
            let sessions = db.open_tree("sessions").unwrap();
            for (i, id) in old.iter().enumerate() {
                sessions
                    .insert(id.as_bytes(), encode(&rec(uid, i as u64)))
                    .unwrap();
            }
            db.open_tree("user_sessions").unwrap().clear().unwrap();
            db.open_tree("meta")
                .unwrap()
                .remove(META_SESSION_LISTS)
                .unwrap();
            db.flush().unwrap();
        }
        let (s, _) = reopen(dir.path()).unwrap();
        assert_eq!(s.sessions_of(uid, 50).unwrap(), old);
        let new = NewSession {
            keep_at_most: 2,
            ..new_session(uid, 9, 50)
        };
        assert_eq!(s.start_session(&new).unwrap(), old[..2].to_vec());
        assert_eq!(s.sessions_of(uid, 50).unwrap(), vec![old[2], new.id]);
    }

    #[test]
    fn sessions_from_the_old_layout_still_rotate_and_detect_reuse() {
        let (_dir, s) = open();
        let uid = Uuid::new_v4();
        let f = Uuid::new_v4();
        s.start_legacy_session(f, &[1; 32], &rec(uid, 0), 100)
            .unwrap();
        let legacy = |b| SessionToken {
            session: None,
            hash: [b; 32],
        };
        assert_eq!(s.session_of(&legacy(1)).unwrap(), Some(f));
        assert_eq!(
            s.exchange_refresh(&legacy(1), &[2; 32], 100, 10, 5)
                .unwrap(),
            Exchange::Rotated {
                session: f,
                exp: 100
            }
        );
        // The successor is a new-layout token of the same session.
        assert!(matches!(
            s.exchange_refresh(&tok(f, 2), &[3; 32], 100, 11, 5)
                .unwrap(),
            Exchange::Rotated { .. }
        ));
        // Replaying the old-layout token after the window revokes it all.
        assert_eq!(
            s.exchange_refresh(&legacy(1), &[4; 32], 100, 30, 5)
                .unwrap(),
            Exchange::ReuseDetected { session: f }
        );
        assert_eq!(
            s.exchange_refresh(&tok(f, 3), &[5; 32], 100, 31, 5)
                .unwrap(),
            Exchange::Refused(Refusal::Revoked)
        );
        // Logout by an old-layout token finds its session.
        let f2 = Uuid::new_v4();
        s.start_legacy_session(f2, &[9; 32], &rec(uid, 0), 100)
            .unwrap();
        assert_eq!(s.revoke_session_of(&legacy(9), 1).unwrap(), Some(uid));
        assert!(s.session(f2).unwrap().unwrap().revoked_at.is_some());
        // A token whose record is gone has no session.
        assert_eq!(s.session_of(&legacy(77)).unwrap(), None);
        // Pruned once expired.
        let pruned = s.prune_sessions(5000, 0).unwrap();
        assert_eq!(pruned.legacy_tokens, 2);
        assert_eq!(s.session_counts().unwrap().legacy_tokens, 0);
    }

    #[test]
    fn a_store_without_counts_gets_them_at_its_first_open() {
        let dir = tempfile::tempdir().unwrap();
        seeded(dir.path(), 3);
        {
            // As builds before 7c7e64f left it: no user or index count.
            let db = raw(dir.path());
            let meta = db.open_tree("meta").unwrap();
            meta.remove(META_USERS).unwrap();
            meta.remove(META_NAMES).unwrap();
            db.flush().unwrap();
        }
        let (s, opened) = reopen(dir.path()).unwrap();
        assert_eq!(opened, Opened::Ready);
        assert_eq!(counts(&s), [4, 4, 1]);
        drop(s);
        // Flushed: still there on the next open, which does not rescan.
        let db = raw(dir.path());
        let meta = db.open_tree("meta").unwrap();
        assert_eq!(read_count(&meta, META_USERS), 4);
        assert_eq!(read_count(&meta, META_NAMES), 4);
    }

    #[test]
    fn a_store_without_counts_and_a_damaged_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 3);
        {
            let db = raw(dir.path());
            let meta = db.open_tree("meta").unwrap();
            meta.remove(META_USERS).unwrap();
            meta.remove(META_NAMES).unwrap();
            db.open_tree("users")
                .unwrap()
                .insert(users[1].id.as_bytes(), &b"\x00garbage"[..])
                .unwrap();
            db.flush().unwrap();
        }
        let err = reopen(dir.path()).err().unwrap().to_string();
        assert!(err.contains("user record"), "{err}");
        assert!(err.contains("Refusing to start"), "{err}");
    }

    #[test]
    fn the_stored_field_names_of_the_old_layout_are_kept() {
        let json = r#"{"family":"00000000-0000-0000-0000-000000000007","user_id":"00000000-0000-0000-0000-000000000001","exp":5,"spent_at":null}"#;
        let r: RefreshRecord = serde_json::from_str(json).unwrap();
        assert_eq!(r.session, Uuid::from_u128(7));
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
    }

    #[test]
    fn sessions_from_the_old_layout_are_one_chain_too() {
        let (_dir, s) = open();
        let uid = Uuid::new_v4();
        let legacy = |b| SessionToken {
            session: None,
            hash: [b; 32],
        };
        let rotated = |e: Exchange| matches!(e, Exchange::Rotated { .. });
        let start = |tokens: &[u8]| {
            let f = Uuid::new_v4();
            for &b in tokens {
                s.start_legacy_session(f, &[b; 32], &rec(uid, 0), 100)
                    .unwrap();
            }
            f
        };
        // Two unspent siblings of the old layout: the first exchanged
        // retires the other.
        let f = start(&[1, 21]);
        assert!(rotated(
            s.exchange_refresh(&legacy(21), &[2; 32], 100, 10, 5)
                .unwrap()
        ));
        assert_eq!(
            s.exchange_refresh(&legacy(1), &[3; 32], 100, 10, 5)
                .unwrap(),
            Exchange::ReuseDetected { session: f }
        );
        // A spent one may be retried within the window (its successors
        // then are siblings) until the chain moves on past them.
        let g = start(&[41]);
        assert!(rotated(
            s.exchange_refresh(&legacy(41), &[42; 32], 100, 10, 5)
                .unwrap()
        ));
        assert!(rotated(
            s.exchange_refresh(&legacy(41), &[43; 32], 100, 11, 5)
                .unwrap()
        ));
        assert!(rotated(
            s.exchange_refresh(&tok(g, 43), &[44; 32], 100, 12, 5)
                .unwrap()
        ));
        assert_eq!(
            s.exchange_refresh(&legacy(41), &[45; 32], 100, 12, 5)
                .unwrap(),
            Exchange::ReuseDetected { session: g }
        );
        let h = start(&[51]);
        s.exchange_refresh(&legacy(51), &[52; 32], 100, 10, 5)
            .unwrap();
        s.exchange_refresh(&legacy(51), &[53; 32], 100, 11, 5)
            .unwrap();
        s.exchange_refresh(&tok(h, 53), &[54; 32], 100, 12, 5)
            .unwrap();
        assert_eq!(
            s.exchange_refresh(&tok(h, 52), &[55; 32], 100, 12, 5)
                .unwrap(),
            Exchange::ReuseDetected { session: h }
        );
    }
}
