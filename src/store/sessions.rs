//! Login sessions and refresh-token rotation.
//!
//! A session (a "family": every refresh token descended from one login) is
//! one record in the `sessions` tree. It holds the SHA-256 of each of its
//! unspent tokens and of the tokens spent within the grace window. The
//! token's `jti` names its session (`<session>.<random>`), so a rotation
//! reads and rewrites exactly one key with a single `compare_and_swap`.
//!
//! Why one key: a sled 0.34 transaction across trees writes the log twice
//! and costs two syncs whatever the flush policy, so under load the group
//! commit could not share them (2.03 syncs per refresh, measured). A
//! single-key CAS is covered by the shared flush like any other write.
//!
//! Reuse detection needs no record of old tokens: a token that verifies
//! (our signature) and names this session, but is neither unspent nor
//! spent within the grace window, was spent earlier, so it is a replay and
//! the session is revoked.
//!
//! Tokens issued by builds before this layout have a bare random `jti`
//! and a record of their own in the `refresh_tokens` tree. They are still
//! honoured (the legacy path below); their successors use the new layout,
//! and pruning empties the old tree as they expire.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sled::Transactional;
use uuid::Uuid;

use super::codec::{abort, decode, encode, from_tx};
use super::{Result, Store};

/// At most this many unspent tokens per session. Only grace-window retries
/// add one (a rotation spends one and issues one); beyond this a retry is
/// refused rather than letting a client grow the record.
pub const MAX_LIVE: usize = 8;
/// At most this many spent tokens are remembered for the grace window. A
/// client that rotates more often than this within the window and then
/// replays an older one is treated as a replay.
pub const MAX_SPENT: usize = 16;

/// Which session a presented refresh token names, and the SHA-256 of its
/// `jti` (the token itself is never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionToken {
    /// `None` for a token issued before sessions were named in the `jti`.
    pub session: Option<Uuid>,
    pub hash: [u8; 32],
}

/// A SHA-256, stored as hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl Serialize for TokenHash {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&crate::hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <&str>::deserialize(d)?;
        crate::hex::decode(s)
            .map(TokenHash)
            .ok_or_else(|| serde::de::Error::custom("token hash: 64 hex digits expected"))
    }
}

/// An unspent refresh token of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveToken {
    pub hash: TokenHash,
    pub exp: u64,
}

/// A token spent at `at`, remembered while a retry of it is still a grace
/// sibling rather than a replay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpentToken {
    pub hash: TokenHash,
    pub at: u64,
}

/// A login session: every refresh token descended from one login.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FamilyRecord {
    pub user_id: Uuid,
    pub created_at: u64,
    /// Absolute end of the session, however often it is refreshed.
    pub expires_at: u64,
    /// Latest `exp` of any token issued in it; pruned after that.
    pub last_exp: u64,
    pub revoked_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub live: Vec<LiveToken>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spent: Vec<SpentToken>,
}

/// A refresh token issued before sessions were named in the `jti`, keyed
/// by the SHA-256 of its `jti` in the `refresh_tokens` tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub family: Uuid,
    pub user_id: Uuid,
    pub exp: u64,
    /// Set when it was exchanged for a successor.
    pub spent_at: Option<u64>,
}

/// What exchanging a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// The old token is spent (or was spent within the grace window) and the
    /// new one recorded; its `exp` may be cut to the session's end.
    Rotated { family: Uuid, exp: u64 },
    /// Unknown, pruned or revoked token, or a session past its end.
    Refused(&'static str),
    /// A spent token came back after the grace window: the whole family is
    /// now revoked (committed and flushed).
    ReuseDetected { family: Uuid },
}

const UNKNOWN: &str = "Unknown or revoked refresh token";
const REVOKED: &str = "This session has been revoked";
const EXPIRED: &str = "Session expired: log in again";
const TOO_MANY: &str = "Too many retries of one refresh token: log in again";

/// The rotation rules on one session record. Returns the record to write
/// (if any) and the outcome.
fn rotate(
    id: Uuid,
    fam: Option<FamilyRecord>,
    old: &[u8; 32],
    new: &[u8; 32],
    wanted_exp: u64,
    now: u64,
    grace_secs: u64,
) -> (Option<FamilyRecord>, Exchange) {
    let Some(mut fam) = fam else {
        return (None, Exchange::Refused(UNKNOWN));
    };
    if fam.revoked_at.is_some() {
        return (None, Exchange::Refused(REVOKED));
    }
    if now >= fam.expires_at {
        return (None, Exchange::Refused(EXPIRED));
    }
    fam.spent
        .retain(|s| grace_secs > 0 && now.saturating_sub(s.at) <= grace_secs);
    if let Some(i) = fam.live.iter().position(|t| t.hash.0 == *old) {
        fam.live.remove(i);
        if fam.spent.len() >= MAX_SPENT {
            fam.spent.remove(0);
        }
        fam.spent.push(SpentToken {
            hash: TokenHash(*old),
            at: now,
        });
    } else if fam.spent.iter().any(|s| s.hash.0 == *old) {
        // Within the grace window: a sibling in the same family; the first
        // spend time stays, so the window never grows.
        if fam.live.len() >= MAX_LIVE {
            return (None, Exchange::Refused(TOO_MANY));
        }
    } else {
        fam.revoked_at = Some(now);
        return (Some(fam), Exchange::ReuseDetected { family: id });
    }
    let exp = wanted_exp.min(fam.expires_at);
    fam.live.push(LiveToken {
        hash: TokenHash(*new),
        exp,
    });
    fam.last_exp = fam.last_exp.max(exp);
    (Some(fam), Exchange::Rotated { family: id, exp })
}

impl Store {
    /// Records a login: a new session holding its first refresh token.
    pub fn start_session(
        &self,
        family: Uuid,
        token_hash: &[u8; 32],
        fam: &FamilyRecord,
        exp: u64,
    ) -> Result<()> {
        let mut fam = fam.clone();
        fam.live = vec![LiveToken {
            hash: TokenHash(*token_hash),
            exp,
        }];
        fam.spent.clear();
        self.families.insert(family.as_bytes(), encode(&fam))?;
        self.flush()
    }

    /// Reads the session, lets `change` decide, and writes its answer with
    /// one compare-and-swap (retried if another request changed the session
    /// meanwhile). A write is flushed before returning.
    fn update_family<T>(
        &self,
        id: Uuid,
        mut change: impl FnMut(Option<FamilyRecord>) -> (Option<FamilyRecord>, T),
    ) -> Result<T> {
        loop {
            let current = self.families.get(id.as_bytes())?;
            let fam = current.as_deref().map(decode::<FamilyRecord>).transpose()?;
            let (next, outcome) = change(fam);
            let Some(next) = next else {
                return Ok(outcome);
            };
            let swapped =
                self.families
                    .compare_and_swap(id.as_bytes(), current, Some(encode(&next)))?;
            if swapped.is_ok() {
                self.flush()?;
                return Ok(outcome);
            }
        }
    }

    /// Exchanges the refresh token `old` for `new` (see [`Exchange`]). The
    /// outcome, including a family revocation, is flushed before returning.
    pub fn exchange_refresh(
        &self,
        old: &SessionToken,
        new: &[u8; 32],
        wanted_exp: u64,
        now: u64,
        grace_secs: u64,
    ) -> Result<Exchange> {
        let Some(id) = old.session else {
            return self.exchange_legacy(&old.hash, new, wanted_exp, now, grace_secs);
        };
        self.update_family(id, |fam| {
            rotate(id, fam, &old.hash, new, wanted_exp, now, grace_secs)
        })
    }

    /// [`Store::exchange_refresh`] for a token with its own record in the
    /// `refresh_tokens` tree. Its successor joins the session record.
    fn exchange_legacy(
        &self,
        old: &[u8; 32],
        new: &[u8; 32],
        wanted_exp: u64,
        now: u64,
        grace_secs: u64,
    ) -> Result<Exchange> {
        let outcome = (&self.refresh, &self.families)
            .transaction(|(refresh, families)| {
                let Some(rec) = refresh.get(old)? else {
                    return Ok(Exchange::Refused(UNKNOWN));
                };
                let mut rec: RefreshRecord = match decode(&rec) {
                    Ok(r) => r,
                    Err(e) => return abort(e),
                };
                let Some(fam) = families.get(rec.family.as_bytes())? else {
                    return Ok(Exchange::Refused(UNKNOWN));
                };
                let mut fam: FamilyRecord = match decode(&fam) {
                    Ok(f) => f,
                    Err(e) => return abort(e),
                };
                if fam.revoked_at.is_some() {
                    return Ok(Exchange::Refused(REVOKED));
                }
                if now >= fam.expires_at {
                    return Ok(Exchange::Refused(EXPIRED));
                }
                match rec.spent_at {
                    Some(at) if grace_secs == 0 || now.saturating_sub(at) > grace_secs => {
                        fam.revoked_at = Some(now);
                        families.insert(rec.family.as_bytes(), encode(&fam))?;
                        return Ok(Exchange::ReuseDetected { family: rec.family });
                    }
                    Some(_) if fam.live.len() >= MAX_LIVE => {
                        return Ok(Exchange::Refused(TOO_MANY));
                    }
                    Some(_) => {}
                    None => {
                        rec.spent_at = Some(now);
                        refresh.insert(old, encode(&rec))?;
                    }
                }
                let exp = wanted_exp.min(fam.expires_at);
                fam.live.push(LiveToken {
                    hash: TokenHash(*new),
                    exp,
                });
                fam.last_exp = fam.last_exp.max(exp);
                families.insert(rec.family.as_bytes(), encode(&fam))?;
                Ok(Exchange::Rotated {
                    family: rec.family,
                    exp,
                })
            })
            .map_err(from_tx)?;
        self.flush()?;
        Ok(outcome)
    }

    /// Revokes the session a refresh token belongs to. Returns the owner, or
    /// `None` if the session is unknown (already pruned or never issued).
    pub fn revoke_session_of(&self, token: &SessionToken, now: u64) -> Result<Option<Uuid>> {
        let id = match token.session {
            Some(id) => id,
            None => match self.refresh.get(token.hash)? {
                Some(rec) => decode::<RefreshRecord>(&rec)?.family,
                None => return Ok(None),
            },
        };
        self.update_family(id, |fam| match fam {
            None => (None, None),
            Some(mut fam) => {
                let owner = Some(fam.user_id);
                if fam.revoked_at.is_some() {
                    return (None, owner);
                }
                fam.revoked_at = Some(now);
                (Some(fam), owner)
            }
        })
    }

    /// The session of a token issued before sessions were named in the
    /// `jti`, if its record is still kept.
    pub fn legacy_session_of(&self, hash: &[u8; 32]) -> Result<Option<Uuid>> {
        self.refresh
            .get(hash)?
            .map(|v| decode::<RefreshRecord>(&v).map(|r| r.family))
            .transpose()
    }

    pub fn family(&self, id: Uuid) -> Result<Option<FamilyRecord>> {
        self.families
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Deletes sessions and old-layout refresh-token records that can no
    /// longer be used: past their `exp` (plus `slack`, the verification
    /// leeway). Returns (old-layout tokens, sessions) removed.
    pub fn prune_sessions(&self, now: u64, slack: u64) -> Result<(usize, usize)> {
        let mut tokens = 0;
        for item in self.refresh.iter() {
            let (k, v) = item?;
            let dead =
                decode::<RefreshRecord>(&v).map_or(true, |r| r.exp.saturating_add(slack) < now);
            if dead {
                self.refresh.remove(k)?;
                tokens += 1;
            }
        }
        let mut sessions = 0;
        for item in self.families.iter() {
            let (k, v) = item?;
            let dead = decode::<FamilyRecord>(&v).map_or(true, |f| {
                f.last_exp.min(f.expires_at).saturating_add(slack) < now
            });
            // Only if unchanged since read: a rotation that extended it wins.
            if dead
                && self
                    .families
                    .compare_and_swap(&k, Some(v), None::<sled::IVec>)?
                    .is_ok()
            {
                sessions += 1;
            }
        }
        if tokens + sessions > 0 {
            self.flush()?;
        }
        Ok((tokens, sessions))
    }

    /// Number of stored old-layout refresh-token records and sessions.
    pub fn session_counts(&self) -> (usize, usize) {
        (self.refresh.len(), self.families.len())
    }

    /// Writes an old-layout session (a record per token), as builds before
    /// the one-record sessions did: for upgrade tests.
    #[doc(hidden)]
    pub fn start_legacy_session(
        &self,
        family: Uuid,
        token_hash: &[u8; 32],
        fam: &FamilyRecord,
        exp: u64,
    ) -> Result<()> {
        let rec = RefreshRecord {
            family,
            user_id: fam.user_id,
            exp,
            spent_at: None,
        };
        (&self.refresh, &self.families)
            .transaction(|(refresh, families)| {
                families.insert(family.as_bytes(), encode(fam))?;
                refresh.insert(token_hash, encode(&rec))?;
                Ok(())
            })
            .map_err(from_tx)?;
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fam(user: Uuid, now: u64) -> FamilyRecord {
        FamilyRecord {
            user_id: user,
            created_at: now,
            expires_at: now + 1000,
            last_exp: now + 100,
            revoked_at: None,
            live: Vec::new(),
            spent: Vec::new(),
        }
    }

    fn session(s: &Store, user: Uuid, first: u8, now: u64) -> Uuid {
        let id = Uuid::new_v4();
        s.start_session(id, &[first; 32], &fam(user, now), now + 100)
            .unwrap();
        id
    }

    fn tok(session: Uuid, b: u8) -> SessionToken {
        SessionToken {
            session: Some(session),
            hash: [b; 32],
        }
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        (dir, s)
    }

    #[test]
    fn rotation_grace_reuse_and_pruning() {
        let (_dir, s) = open();
        let uid = Uuid::new_v4();
        let f = session(&s, uid, 1, 0);
        // Normal rotation: 1 -> 2.
        assert_eq!(
            s.exchange_refresh(&tok(f, 1), &[2; 32], 100, 10, 5)
                .unwrap(),
            Exchange::Rotated {
                family: f,
                exp: 100
            }
        );
        // A retry of 1 within the grace window gets a sibling, 3.
        assert!(matches!(
            s.exchange_refresh(&tok(f, 1), &[3; 32], 100, 15, 5)
                .unwrap(),
            Exchange::Rotated { .. }
        ));
        // Successors are capped at the session's absolute end.
        assert_eq!(
            s.exchange_refresh(&tok(f, 2), &[4; 32], 5000, 20, 5)
                .unwrap(),
            Exchange::Rotated {
                family: f,
                exp: 1000
            }
        );
        // 1 again after the window: the family dies, siblings included.
        assert_eq!(
            s.exchange_refresh(&tok(f, 1), &[5; 32], 100, 16, 5)
                .unwrap(),
            Exchange::ReuseDetected { family: f }
        );
        for b in [4, 3, 9] {
            assert_eq!(
                s.exchange_refresh(&tok(f, b), &[6; 32], 100, 17, 5)
                    .unwrap(),
                Exchange::Refused(REVOKED)
            );
        }
        // A session that was never recorded (or was pruned).
        assert_eq!(
            s.exchange_refresh(&tok(Uuid::new_v4(), 1), &[6; 32], 100, 17, 5)
                .unwrap(),
            Exchange::Refused(UNKNOWN)
        );
        // Absolute lifetime.
        let f7 = session(&s, uid, 7, 0);
        assert_eq!(
            s.exchange_refresh(&tok(f7, 7), &[8; 32], 2000, 1000, 5)
                .unwrap(),
            Exchange::Refused(EXPIRED)
        );
        // Logout revokes a session by any of its tokens.
        let f2 = session(&s, uid, 10, 0);
        assert_eq!(s.revoke_session_of(&tok(f2, 10), 1).unwrap(), Some(uid));
        assert!(s.family(f2).unwrap().unwrap().revoked_at.is_some());
        assert_eq!(
            s.revoke_session_of(&tok(Uuid::new_v4(), 10), 1).unwrap(),
            None
        );
        // Pruning removes what expired, keeps what lives.
        let live = session(&s, uid, 11, 5000);
        s.prune_sessions(2000, 0).unwrap();
        assert!(s.family(live).unwrap().is_some());
        assert!(s.family(f).unwrap().is_none());
        assert_eq!(s.session_counts(), (0, 1));
    }

    #[test]
    fn a_token_of_another_session_is_a_replay_there_not_a_key() {
        // A signed token names its session; presenting a hash the session
        // never held means it was spent and forgotten: revoke.
        let (_dir, s) = open();
        let f = session(&s, Uuid::new_v4(), 1, 0);
        assert_eq!(
            s.exchange_refresh(&tok(f, 42), &[2; 32], 100, 1, 5)
                .unwrap(),
            Exchange::ReuseDetected { family: f }
        );
    }

    #[test]
    fn grace_siblings_and_memory_are_bounded() {
        let (_dir, s) = open();
        let f = session(&s, Uuid::new_v4(), 0, 0);
        s.exchange_refresh(&tok(f, 0), &[1; 32], 100, 1, 10)
            .unwrap();
        // Retries of token 0 within the window: siblings up to MAX_LIVE.
        for i in 1..MAX_LIVE {
            assert!(matches!(
                s.exchange_refresh(&tok(f, 0), &[100 + i as u8; 32], 100, 2, 10)
                    .unwrap(),
                Exchange::Rotated { .. }
            ));
        }
        assert_eq!(
            s.exchange_refresh(&tok(f, 0), &[99; 32], 100, 3, 10)
                .unwrap(),
            Exchange::Refused(TOO_MANY)
        );
        // A long chain of rotations keeps at most MAX_SPENT spent hashes.
        let mut cur = 1u8;
        for i in 0..40u8 {
            let next = 200u8.wrapping_add(i);
            assert!(matches!(
                s.exchange_refresh(&tok(f, cur), &[next; 32], 100, 4, 10)
                    .unwrap(),
                Exchange::Rotated { .. }
            ));
            cur = next;
        }
        let rec = s.family(f).unwrap().unwrap();
        assert!(rec.spent.len() <= MAX_SPENT, "{}", rec.spent.len());
        assert_eq!(rec.live.len(), MAX_LIVE);
        // Outside the window the spent ones are forgotten: a replay.
        assert_eq!(
            s.exchange_refresh(&tok(f, 0), &[98; 32], 100, 30, 10)
                .unwrap(),
            Exchange::ReuseDetected { family: f }
        );
    }

    #[test]
    fn concurrent_rotations_of_one_token_spend_it_once() {
        let (_dir, s) = open();
        let f = session(&s, Uuid::new_v4(), 0, 0);
        // No grace: exactly one of the racers rotates, the others are
        // replays (and revoke the session).
        let outcomes: Vec<Exchange> = std::thread::scope(|sc| {
            let handles: Vec<_> = (1..=8u8)
                .map(|b| {
                    let s = s.clone();
                    sc.spawn(move || s.exchange_refresh(&tok(f, 0), &[b; 32], 100, 1, 0))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        let rotated = outcomes
            .iter()
            .filter(|o| matches!(o, Exchange::Rotated { .. }))
            .count();
        assert_eq!(rotated, 1, "{outcomes:?}");
    }

    #[test]
    fn sessions_from_the_old_layout_still_rotate_and_detect_reuse() {
        let (_dir, s) = open();
        let uid = Uuid::new_v4();
        let f = Uuid::new_v4();
        s.start_legacy_session(f, &[1; 32], &fam(uid, 0), 100)
            .unwrap();
        let legacy = |b| SessionToken {
            session: None,
            hash: [b; 32],
        };
        assert_eq!(
            s.exchange_refresh(&legacy(1), &[2; 32], 100, 10, 5)
                .unwrap(),
            Exchange::Rotated {
                family: f,
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
            Exchange::ReuseDetected { family: f }
        );
        assert_eq!(
            s.exchange_refresh(&tok(f, 3), &[5; 32], 100, 31, 5)
                .unwrap(),
            Exchange::Refused(REVOKED)
        );
        // Logout by an old-layout token finds its session.
        let f2 = Uuid::new_v4();
        s.start_legacy_session(f2, &[9; 32], &fam(uid, 0), 100)
            .unwrap();
        assert_eq!(s.revoke_session_of(&legacy(9), 1).unwrap(), Some(uid));
        assert!(s.family(f2).unwrap().unwrap().revoked_at.is_some());
    }

    #[test]
    fn token_hash_round_trips_as_hex() {
        let h = TokenHash([0xab; 32]);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<TokenHash>(&json).unwrap(), h);
        assert!(serde_json::from_str::<TokenHash>("\"zz\"").is_err());
        assert!(serde_json::from_str::<TokenHash>(&format!("\"{}\"", "g".repeat(64))).is_err());
    }
}
