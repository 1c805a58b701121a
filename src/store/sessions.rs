//! Login sessions: their records, starting, exchanging and revoking them,
//! pruning the dead. The rules a rotation follows are in `rotation`.
//!
//! A session (every refresh token descended from one login) is one record
//! in the `sessions` tree. It holds the SHA-256 of each of its unspent
//! tokens (the next link of its one chain and that link's grace siblings)
//! and of the last token spent, while it is within the grace window. The token's
//! `jti` names its session (`<session>.<random>`), so a rotation reads and
//! rewrites exactly one key with a single `compare_and_swap`.
//!
//! Why one key: it was cheaper under sled, the engine before redb (a sled
//! transaction across trees cost two syncs); it stays because a rotation
//! then touches one record, whose compare-and-swap is covered by the
//! shared flush like any other write.
//!
//! Reuse detection needs no record of old tokens: a token that verifies
//! (our signature) and names this session, but is neither unspent nor the
//! last token spent (within the grace window), was spent earlier or retired
//! as a sibling, so it is a replay and the session is revoked.
//!
//! A user's live sessions are capped: the `user_sessions` tree holds, per
//! user, the ids of its sessions oldest first (one key, so a login reads
//! and rewrites it inside the same transaction that records the session,
//! and evicts the oldest beyond the cap there too). Rotations and logouts
//! never touch it: a login drops the ids whose session is gone, revoked or
//! expired, so the list never outgrows the cap. (A login is thus a
//! transaction across two trees, with the two syncs said above; next to its
//! password hash they cost little.)
//!
//! Tokens whose `jti` names no session come from an older layout; the
//! store resolves and rotates them in `legacy` ([`Store::session_of`] and
//! [`Store::exchange_refresh`] hide the difference from callers).

use super::kv::{IVec, Transactional};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::codec::{decode, encode, from_tx};
use super::rotation::{Exchange, Rotation, rotate};
use super::{Result, Store};

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

/// A token spent at `at`, remembered while a retry of it still gets a
/// grace sibling rather than counting as a replay: the last one spent
/// (records of older builds may hold more until their next spend).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpentToken {
    pub hash: TokenHash,
    pub at: u64,
}

/// A login session: every refresh token descended from one login.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
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
    /// Who began it and when it last rotated, for the sessions list
    /// (records written before it was kept have none).
    #[serde(default, skip_serializing_if = "SessionClient::is_empty")]
    pub client: SessionClient,
}

/// What a session's owner is shown about it: the client's address and
/// browser at login (as given, cut to [`USER_AGENT_MAX`] bytes), and when
/// a refresh last rotated it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, rename = "userAgent", skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(
        default,
        rename = "lastUsedAt",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_used_at: Option<u64>,
    /// The user's token generation at login: once the user's has moved on
    /// (a password or role change, "log out everywhere"), no token of the
    /// session is accepted, and the list leaves it out.
    #[serde(default, rename = "gen", skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
}

/// The longest user agent kept (a longer one is cut at a character
/// boundary): the record stays small whatever a client sends.
pub const USER_AGENT_MAX: usize = 256;

impl SessionClient {
    pub fn new(
        address: Option<std::net::IpAddr>,
        user_agent: Option<&str>,
        generation: u64,
    ) -> SessionClient {
        let user_agent = user_agent.map(|ua| {
            let mut end = ua.len().min(USER_AGENT_MAX);
            while !ua.is_char_boundary(end) {
                end -= 1;
            }
            ua[..end].to_owned()
        });
        SessionClient {
            address: address.map(|a| a.to_string()),
            user_agent,
            last_used_at: None,
            generation: Some(generation),
        }
    }

    fn is_empty(&self) -> bool {
        self == &SessionClient::default()
    }
}

/// What a login decided about its new session; the store builds the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    /// SHA-256 of the first refresh token's `jti`.
    pub token_hash: [u8; 32],
    pub now: u64,
    /// Absolute end of the session.
    pub ends_at: u64,
    /// The first refresh token's `exp`.
    pub token_exp: u64,
    /// The user's live sessions, this one included, at most: the oldest
    /// beyond it are deleted in the same write.
    pub keep_at_most: usize,
}

/// Whether a session can still issue tokens at `now`.
fn is_live(rec: &SessionRecord, now: u64) -> bool {
    rec.revoked_at.is_none() && rec.last_exp.min(rec.expires_at) >= now
}

/// A user's session list: 16-byte ids, oldest first.
fn session_ids(list: &[u8]) -> impl Iterator<Item = Uuid> + '_ {
    list.chunks_exact(16)
        .filter_map(|c| Uuid::from_slice(c).ok())
}

/// What [`Store::prune_sessions`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Refresh-token records of the old layout.
    pub legacy_tokens: usize,
    pub sessions: usize,
}

/// What [`Store::session_counts`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCounts {
    /// Refresh-token records of the old layout.
    pub legacy_tokens: usize,
    pub sessions: usize,
}

impl Store {
    /// Records a login: a new session holding its first refresh token, in
    /// one transaction with the user's session list, which also deletes the
    /// user's oldest live sessions beyond `keep_at_most`. Returns those.
    pub fn start_session(&self, new: &NewSession) -> Result<Vec<Uuid>> {
        self.start_session_of(new, SessionClient::default())
    }

    /// [`Store::start_session`] recording the client the login came from.
    pub fn start_session_of(&self, new: &NewSession, client: SessionClient) -> Result<Vec<Uuid>> {
        self.write(|| {
            let rec = SessionRecord {
                user_id: new.user_id,
                created_at: new.now,
                expires_at: new.ends_at,
                last_exp: new.token_exp,
                revoked_at: None,
                live: vec![LiveToken {
                    hash: TokenHash(new.token_hash),
                    exp: new.token_exp,
                }],
                spent: Vec::new(),
                client: client.clone(),
            };
            let user = new.user_id.as_bytes();
            let evicted = (&self.sessions, &self.user_sessions)
                .transaction(|(sessions, lists)| {
                    let mut live = Vec::new();
                    if let Some(list) = lists.get(user)? {
                        for id in session_ids(&list) {
                            // One that cannot be read is left to pruning.
                            if let Some(v) = sessions.get(id.as_bytes())?
                                && decode::<SessionRecord>(&v).is_ok_and(|r| is_live(&r, new.now))
                            {
                                live.push(id);
                            }
                        }
                    }
                    let excess = (live.len() + 1).saturating_sub(new.keep_at_most.max(1));
                    let evicted: Vec<Uuid> = live.drain(..excess.min(live.len())).collect();
                    for id in &evicted {
                        sessions.remove(id.as_bytes())?;
                    }
                    live.push(new.id);
                    sessions.insert(new.id.as_bytes(), encode(&rec))?;
                    let list: Vec<u8> = live.iter().flat_map(|id| *id.as_bytes()).collect();
                    lists.insert(user, list)?;
                    Ok(evicted)
                })
                .map_err(from_tx)?;
            self.flush()?;
            Ok(evicted)
        })
    }

    /// The ids of a user's live sessions, oldest first.
    pub fn sessions_of(&self, user: Uuid, now: u64) -> Result<Vec<Uuid>> {
        let Some(list) = self.user_sessions.get(user.as_bytes())? else {
            return Ok(Vec::new());
        };
        let mut live = Vec::new();
        for id in session_ids(&list) {
            if self.session(id)?.is_some_and(|r| is_live(&r, now)) {
                live.push(id);
            }
        }
        Ok(live)
    }

    /// Reads the session, lets `change` decide, and writes its answer with
    /// one compare-and-swap (retried if another request changed the session
    /// meanwhile). A write is flushed before returning.
    fn update_session<T>(
        &self,
        id: Uuid,
        mut change: impl FnMut(Option<SessionRecord>) -> (Option<SessionRecord>, T),
    ) -> Result<T> {
        self.write(|| {
            loop {
                let current = self.sessions.get(id.as_bytes())?;
                let rec = current
                    .as_deref()
                    .map(decode::<SessionRecord>)
                    .transpose()?;
                let (next, outcome) = change(rec);
                let Some(next) = next else {
                    return Ok(outcome);
                };
                let swapped =
                    self.sessions
                        .compare_and_swap(id.as_bytes(), current, Some(encode(&next)))?;
                if swapped.is_ok() {
                    self.flush()?;
                    return Ok(outcome);
                }
            }
        })
    }

    /// The session a presented refresh token belongs to: the one its `jti`
    /// names, or for a token of the old layout the one its record names
    /// (`None` once that record is pruned).
    pub fn session_of(&self, token: &SessionToken) -> Result<Option<Uuid>> {
        match token.session {
            Some(id) => Ok(Some(id)),
            None => self.legacy_session_of(&token.hash),
        }
    }

    /// Exchanges the refresh token `old` for `new` (see [`Exchange`]). The
    /// outcome, including a session revocation, is flushed before returning.
    pub fn exchange_refresh(
        &self,
        old: &SessionToken,
        new: &[u8; 32],
        wanted_exp: u64,
        now: u64,
        grace_secs: u64,
    ) -> Result<Exchange> {
        let rotation = Rotation {
            old: &old.hash,
            new,
            wanted_exp,
            now,
            grace_secs,
        };
        match old.session {
            Some(id) => self.update_session(id, |rec| rotate(id, rec, &rotation)),
            None => self.exchange_legacy(&rotation),
        }
    }

    /// Revokes the session a refresh token belongs to. Returns the owner, or
    /// `None` if the session is unknown (already pruned or never issued).
    pub fn revoke_session_of(&self, token: &SessionToken, now: u64) -> Result<Option<Uuid>> {
        let Some(id) = self.session_of(token)? else {
            return Ok(None);
        };
        self.update_session(id, |rec| match rec {
            None => (None, None),
            Some(mut rec) => {
                let owner = Some(rec.user_id);
                if rec.revoked_at.is_some() {
                    return (None, owner);
                }
                rec.revoked_at = Some(now);
                (Some(rec), owner)
            }
        })
    }

    pub fn session(&self, id: Uuid) -> Result<Option<SessionRecord>> {
        self.sessions
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Deletes sessions and old-layout refresh-token records that can no
    /// longer be used: past their `exp` (plus `slack`, the verification
    /// leeway).
    pub fn prune_sessions(&self, now: u64, slack: u64) -> Result<Pruned> {
        self.write(|| {
            let mut pruned = Pruned {
                legacy_tokens: self.prune_legacy_tokens(now, slack)?,
                sessions: 0,
            };
            for item in self.sessions.iter() {
                let (k, v) = item?;
                let dead = decode::<SessionRecord>(&v).map_or(true, |f| {
                    f.last_exp.min(f.expires_at).saturating_add(slack) < now
                });
                // Only if unchanged since read: a rotation that extended it wins.
                if dead
                    && self
                        .sessions
                        .compare_and_swap(&k, Some(v), None::<IVec>)?
                        .is_ok()
                {
                    pruned.sessions += 1;
                }
            }
            if pruned != Pruned::default() {
                self.flush()?;
            }
            Ok(pruned)
        })
    }

    /// Number of stored old-layout refresh-token records and sessions.
    pub fn session_counts(&self) -> Result<SessionCounts> {
        Ok(SessionCounts {
            legacy_tokens: self.refresh.len()? as usize,
            sessions: self.sessions.len()? as usize,
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::Refusal;
    use super::*;

    /// A session of `user` started at `now` whose first token is `[first; 32]`.
    pub(in super::super) fn new_session(user: Uuid, first: u8, now: u64) -> NewSession {
        NewSession {
            id: Uuid::new_v4(),
            user_id: user,
            token_hash: [first; 32],
            now,
            ends_at: now + 1000,
            token_exp: now + 100,
            keep_at_most: 50,
        }
    }

    pub(in super::super) fn session(s: &Store, user: Uuid, first: u8, now: u64) -> Uuid {
        let new = new_session(user, first, now);
        s.start_session(&new).unwrap();
        new.id
    }

    pub(in super::super) fn tok(session: Uuid, b: u8) -> SessionToken {
        SessionToken {
            session: Some(session),
            hash: [b; 32],
        }
    }

    pub(in super::super) fn open() -> (tempfile::TempDir, Store) {
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
                session: f,
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
                session: f,
                exp: 1000
            }
        );
        // 1 again after the window: the session dies, siblings included.
        assert_eq!(
            s.exchange_refresh(&tok(f, 1), &[5; 32], 100, 16, 5)
                .unwrap(),
            Exchange::ReuseDetected { session: f }
        );
        for b in [4, 3, 9] {
            assert_eq!(
                s.exchange_refresh(&tok(f, b), &[6; 32], 100, 17, 5)
                    .unwrap(),
                Exchange::Refused(Refusal::Revoked)
            );
        }
        // A session that was never recorded (or was pruned).
        assert_eq!(
            s.exchange_refresh(&tok(Uuid::new_v4(), 1), &[6; 32], 100, 17, 5)
                .unwrap(),
            Exchange::Refused(Refusal::Unknown)
        );
        // Absolute lifetime.
        let f7 = session(&s, uid, 7, 0);
        assert_eq!(
            s.exchange_refresh(&tok(f7, 7), &[8; 32], 2000, 1000, 5)
                .unwrap(),
            Exchange::Refused(Refusal::SessionEnded)
        );
        // Logout revokes a session by any of its tokens.
        let f2 = session(&s, uid, 10, 0);
        assert_eq!(s.revoke_session_of(&tok(f2, 10), 1).unwrap(), Some(uid));
        assert!(s.session(f2).unwrap().unwrap().revoked_at.is_some());
        assert_eq!(
            s.revoke_session_of(&tok(Uuid::new_v4(), 10), 1).unwrap(),
            None
        );
        // Pruning removes what expired, keeps what lives.
        let live = session(&s, uid, 11, 5000);
        s.prune_sessions(2000, 0).unwrap();
        assert!(s.session(live).unwrap().is_some());
        assert!(s.session(f).unwrap().is_none());
        assert_eq!(
            s.session_counts().unwrap(),
            SessionCounts {
                legacy_tokens: 0,
                sessions: 1
            }
        );
    }

    #[test]
    fn a_login_records_exactly_what_it_decided() {
        let (_dir, s) = open();
        let new = new_session(Uuid::new_v4(), 1, 10);
        s.start_session(&new).unwrap();
        let rec = s.session(new.id).unwrap().unwrap();
        assert_eq!(
            (rec.user_id, rec.created_at, rec.expires_at, rec.last_exp),
            (new.user_id, 10, 1010, 110)
        );
        assert_eq!(rec.revoked_at, None);
        assert_eq!(rec.live.len(), 1);
        assert_eq!((rec.live[0].hash.0, rec.live[0].exp), ([1; 32], 110));
        assert!(rec.spent.is_empty());
        assert_eq!(s.session_of(&tok(new.id, 9)).unwrap(), Some(new.id));
    }

    #[test]
    fn a_login_beyond_the_cap_evicts_the_oldest_live_sessions_of_that_user() {
        let (_dir, s) = open();
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let start = |user, keep, now| {
            let new = NewSession {
                keep_at_most: keep,
                ..new_session(user, 1, now)
            };
            (new.id, s.start_session(&new).unwrap())
        };
        let first: Vec<Uuid> = (0..3).map(|i| start(alice, 3, i).0).collect();
        let bobs = start(bob, 3, 0).0;
        // A revoked one no longer counts and is not evicted.
        s.revoke_session_of(&tok(first[1], 1), 5).unwrap();
        let (fourth, evicted) = start(alice, 3, 10);
        assert!(evicted.is_empty(), "{evicted:?}");
        let (fifth, evicted) = start(alice, 3, 11);
        assert_eq!(evicted, vec![first[0]]);
        assert!(s.session(first[0]).unwrap().is_none());
        assert_eq!(
            s.sessions_of(alice, 11).unwrap(),
            vec![first[2], fourth, fifth]
        );
        assert_eq!(s.sessions_of(bob, 11).unwrap(), vec![bobs]);
        // A lower cap evicts several at once; expired ones are not counted.
        let (_, evicted) = start(alice, 1, 12);
        assert_eq!(evicted, vec![first[2], fourth, fifth]);
        let (_, evicted) = start(alice, 1, 500);
        assert!(evicted.is_empty(), "{evicted:?}");
        assert_eq!(s.sessions_of(alice, 500).unwrap().len(), 1);
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
