//! The rotation rules: what exchanging a refresh token does to its
//! session's record (spend it, allow a grace-window sibling, detect a
//! replay, cap the successor at the session's end), decided without I/O.
//! `sessions` reads and writes the record around them.
//!
//! A session is one chain. Its `live` tokens are the candidates for the
//! next link: the successor of the last spent token and, if that token was
//! retried within the grace window, its siblings. Spending any candidate
//! retires the others and ends the window of the token before it, so of
//! two successors of one token at most one can ever be exchanged; the
//! other, presented later, is a replay like any spent token and revokes
//! the session. A grace retry therefore never forks the session: a thief
//! who replays a token within the window gets a sibling, and whichever of
//! thief and owner refreshes second trips reuse detection (security review
//! finding 8).
//!
//! Why siblings and not the same successor again: only SHA-256s of `jti`s
//! are stored, and a refresh token exists in plaintext only in the response
//! that issues it (ARCHITECTURE.md). Re-sending the successor would mean
//! keeping it (on disk, or in memory where a restart loses it) for the
//! window; retiring the siblings keeps one chain without that.

use uuid::Uuid;

use super::sessions::{LiveToken, SessionRecord, SpentToken, TokenHash};

/// At most this many unspent tokens per session: the successor and the
/// siblings grace-window retries added. Beyond this a retry is refused
/// rather than letting a client grow the record. However many there are,
/// only one of them can be exchanged.
pub const MAX_LIVE: usize = 8;

/// What exchanging a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// The old token is spent (or was spent within the grace window) and the
    /// new one recorded; its `exp` may be cut to the session's end. Spending
    /// an unspent token retired its siblings.
    Rotated { session: Uuid, exp: u64 },
    /// The token may not be exchanged; nothing changed.
    Refused(Refusal),
    /// A spent token came back after the grace window, or a retired sibling
    /// came back at all: the whole session is now revoked (committed and
    /// flushed).
    ReuseDetected { session: Uuid },
}

/// Why [`Store::exchange_refresh`] refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such session (never issued, or pruned).
    Unknown,
    /// The session was revoked (logout, or a detected replay).
    Revoked,
    /// The session is past its absolute end.
    SessionEnded,
    /// A token retried within the grace window more often than
    /// [`MAX_LIVE`] allows.
    TooManyRetries,
}

/// One exchange of a refresh token, as [`rotate`] applies it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rotation<'a> {
    pub old: &'a [u8; 32],
    pub new: &'a [u8; 32],
    pub wanted_exp: u64,
    pub now: u64,
    pub grace_secs: u64,
}

/// The rotation rules on session `id`'s record. Returns the record to write
/// (if any) and the outcome.
pub(super) fn rotate(
    id: Uuid,
    rec: Option<SessionRecord>,
    r: &Rotation,
) -> (Option<SessionRecord>, Exchange) {
    let Some(mut rec) = rec else {
        return (None, Exchange::Refused(Refusal::Unknown));
    };
    if let Some(why) = rec.refusal(r.now) {
        return (None, Exchange::Refused(why));
    }
    rec.spent
        .retain(|s| r.grace_secs > 0 && r.now.saturating_sub(s.at) <= r.grace_secs);
    if rec.live.iter().any(|t| t.hash.0 == *r.old) {
        // The chain moves on: the token's siblings retire, and only this
        // token may still be retried within the window (the one before it
        // may not: its other successors are retired).
        rec.advance(r.old, r.now, r.grace_secs);
    } else if rec.spent.iter().any(|s| s.hash.0 == *r.old) {
        // Within the grace window: a sibling of the live successor; the
        // first spend time stays, so the window never grows.
        if rec.live.len() >= MAX_LIVE {
            return (None, Exchange::Refused(Refusal::TooManyRetries));
        }
    } else {
        // Spent before the window, or a retired sibling: a replay.
        rec.revoked_at = Some(r.now);
        return (Some(rec), Exchange::ReuseDetected { session: id });
    }
    let exp = rec.issue(r.new, r.wanted_exp);
    rec.client.last_used_at = Some(r.now);
    (Some(rec), Exchange::Rotated { session: id, exp })
}

impl SessionRecord {
    /// Why no token of this session may be exchanged at `now`, if so.
    pub(super) fn refusal(&self, now: u64) -> Option<Refusal> {
        if self.revoked_at.is_some() {
            Some(Refusal::Revoked)
        } else if now >= self.expires_at {
            Some(Refusal::SessionEnded)
        } else {
            None
        }
    }

    /// Spends the live token `old` at `now`: every other live token
    /// retires, and `old` alone is remembered for grace retries (records
    /// written before one-chain sessions may remember several until then).
    pub(super) fn advance(&mut self, old: &[u8; 32], now: u64, grace_secs: u64) {
        self.live.clear();
        self.spent.clear();
        if grace_secs > 0 {
            self.spent.push(SpentToken {
                hash: TokenHash(*old),
                at: now,
            });
        }
    }

    /// Records a new unspent token wanting `wanted_exp`; returns its `exp`,
    /// cut to the session's end.
    pub(super) fn issue(&mut self, hash: &[u8; 32], wanted_exp: u64) -> u64 {
        let exp = wanted_exp.min(self.expires_at);
        self.live.push(LiveToken {
            hash: TokenHash(*hash),
            exp,
        });
        self.last_exp = self.last_exp.max(exp);
        exp
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::super::codec::encode;
    use super::super::sessions::tests::{open, session, tok};
    use super::*;

    #[test]
    fn a_token_of_another_session_is_a_replay_there_not_a_key() {
        // A signed token names its session; presenting a hash the session
        // never held means it was spent and forgotten: revoke.
        let (_dir, s) = open();
        let f = session(&s, Uuid::new_v4(), 1, 0);
        assert_eq!(
            s.exchange_refresh(&tok(f, 42), &[2; 32], 100, 1, 5)
                .unwrap(),
            Exchange::ReuseDetected { session: f }
        );
    }

    fn rotated(e: Exchange) -> bool {
        matches!(e, Exchange::Rotated { .. })
    }

    #[test]
    fn grace_siblings_and_memory_are_bounded() {
        let (_dir, s) = open();
        let f = session(&s, Uuid::new_v4(), 0, 0);
        s.exchange_refresh(&tok(f, 0), &[1; 32], 100, 1, 10)
            .unwrap();
        // Retries of token 0 within the window: siblings up to MAX_LIVE.
        for i in 1..MAX_LIVE {
            assert!(rotated(
                s.exchange_refresh(&tok(f, 0), &[100 + i as u8; 32], 100, 2, 10)
                    .unwrap()
            ));
        }
        assert_eq!(
            s.exchange_refresh(&tok(f, 0), &[99; 32], 100, 3, 10)
                .unwrap(),
            Exchange::Refused(Refusal::TooManyRetries)
        );
        // A long chain of rotations remembers one live and one spent token.
        let mut cur = 1u8;
        for i in 0..40u8 {
            let next = 200u8.wrapping_add(i);
            assert!(rotated(
                s.exchange_refresh(&tok(f, cur), &[next; 32], 100, 4, 10)
                    .unwrap()
            ));
            cur = next;
        }
        let rec = s.session(f).unwrap().unwrap();
        assert_eq!((rec.live.len(), rec.spent.len()), (1, 1));
        // Outside the window the spent one is forgotten: a replay.
        assert_eq!(rec.spent[0].hash.0, [cur.wrapping_sub(1); 32]);
        assert_eq!(
            s.exchange_refresh(&tok(f, cur.wrapping_sub(1)), &[98; 32], 100, 30, 10)
                .unwrap(),
            Exchange::ReuseDetected { session: f }
        );
    }

    #[test]
    fn a_session_is_one_chain_the_first_sibling_spent_retires_the_others() {
        let (_dir, s) = open();
        // 1 -> 2, and a retry of 1 within the window gets a sibling, 3.
        let f = session(&s, Uuid::new_v4(), 1, 0);
        assert!(rotated(
            s.exchange_refresh(&tok(f, 1), &[2; 32], 100, 10, 5)
                .unwrap()
        ));
        assert!(rotated(
            s.exchange_refresh(&tok(f, 1), &[3; 32], 100, 11, 5)
                .unwrap()
        ));
        // Spending 3 retires 2, even within the window: 2 is a replay.
        assert!(rotated(
            s.exchange_refresh(&tok(f, 3), &[4; 32], 100, 12, 5)
                .unwrap()
        ));
        let rec = s.session(f).unwrap().unwrap();
        let live: Vec<_> = rec.live.iter().map(|t| t.hash.0[0]).collect();
        let spent: Vec<_> = rec.spent.iter().map(|t| (t.hash.0[0], t.at)).collect();
        assert_eq!((live, spent), (vec![4], vec![(3, 12)]));
        assert_eq!(
            s.exchange_refresh(&tok(f, 2), &[5; 32], 100, 12, 5)
                .unwrap(),
            Exchange::ReuseDetected { session: f }
        );
        assert_eq!(
            s.exchange_refresh(&tok(f, 4), &[6; 32], 100, 12, 5)
                .unwrap(),
            Exchange::Refused(Refusal::Revoked)
        );

        // Once the chain moved on, the token before may not be retried
        // either, window or not: its other successors are retired.
        let g = session(&s, Uuid::new_v4(), 1, 0);
        for (old, new) in [(1, 2), (2, 3)] {
            assert!(rotated(
                s.exchange_refresh(&tok(g, old), &[new; 32], 100, 10, 5)
                    .unwrap()
            ));
        }
        assert_eq!(
            s.exchange_refresh(&tok(g, 1), &[7; 32], 100, 10, 5)
                .unwrap(),
            Exchange::ReuseDetected { session: g }
        );

        // The last spent token may be retried; the siblings it gets stay
        // one chain whichever of them is spent.
        let h = session(&s, Uuid::new_v4(), 1, 0);
        for (old, new) in [(1, 2), (2, 3), (2, 4), (4, 5), (4, 6), (6, 7)] {
            assert!(rotated(
                s.exchange_refresh(&tok(h, old), &[new; 32], 100, 20, 5)
                    .unwrap()
            ));
        }
        let rec = s.session(h).unwrap().unwrap();
        assert_eq!(
            rec.live.iter().map(|t| t.hash.0[0]).collect::<Vec<_>>(),
            [7]
        );
        assert_eq!(
            s.exchange_refresh(&tok(h, 3), &[8; 32], 100, 40, 5)
                .unwrap(),
            Exchange::ReuseDetected { session: h }
        );
    }

    #[test]
    fn records_of_older_builds_converge_to_one_chain_at_their_next_spend() {
        // Before one-chain sessions a retried token left independent
        // siblings (2, 3) and several spent tokens (1, 7) remembered.
        let older = |s: &Store| {
            let f = session(s, Uuid::new_v4(), 1, 0);
            let mut rec = s.session(f).unwrap().unwrap();
            rec.live = [2, 3]
                .map(|b| LiveToken {
                    hash: TokenHash([b; 32]),
                    exp: 100,
                })
                .to_vec();
            rec.spent = [1, 7]
                .map(|b| SpentToken {
                    hash: TokenHash([b; 32]),
                    at: 10,
                })
                .to_vec();
            s.sessions.insert(f.as_bytes(), encode(&rec)).unwrap();
            f
        };
        let (_dir, s) = open();
        // Within the window, either spent token is still a grace retry.
        let f = older(&s);
        assert!(rotated(
            s.exchange_refresh(&tok(f, 7), &[4; 32], 100, 11, 5)
                .unwrap()
        ));
        // Spending a live token retires the other and forgets 1 and 7.
        for (retired, spent) in [(2, 3), (3, 2)] {
            let f = older(&s);
            assert!(rotated(
                s.exchange_refresh(&tok(f, spent), &[4; 32], 100, 11, 5)
                    .unwrap()
            ));
            let rec = s.session(f).unwrap().unwrap();
            assert_eq!((rec.live.len(), rec.spent.len()), (1, 1));
            assert_eq!(
                s.exchange_refresh(&tok(f, retired), &[5; 32], 100, 11, 5)
                    .unwrap(),
                Exchange::ReuseDetected { session: f }
            );
        }
        let f = older(&s);
        s.exchange_refresh(&tok(f, 2), &[4; 32], 100, 11, 5)
            .unwrap();
        assert_eq!(
            s.exchange_refresh(&tok(f, 7), &[5; 32], 100, 11, 5)
                .unwrap(),
            Exchange::ReuseDetected { session: f }
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
}
