//! The rotation rules: what exchanging a refresh token does to its
//! session's record (spend it, allow a grace-window sibling, detect a
//! replay, cap the successor at the session's end), decided without I/O.
//! `sessions` reads and writes the record around them.

use uuid::Uuid;

use super::sessions::{LiveToken, SessionRecord, SpentToken, TokenHash};

/// At most this many unspent tokens per session. Only grace-window retries
/// add one (a rotation spends one and issues one); beyond this a retry is
/// refused rather than letting a client grow the record.
pub const MAX_LIVE: usize = 8;
/// At most this many spent tokens are remembered for the grace window. A
/// client that rotates more often than this within the window and then
/// replays an older one is treated as a replay.
pub const MAX_SPENT: usize = 16;

/// What exchanging a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// The old token is spent (or was spent within the grace window) and the
    /// new one recorded; its `exp` may be cut to the session's end.
    Rotated { session: Uuid, exp: u64 },
    /// The token may not be exchanged; nothing changed.
    Refused(Refusal),
    /// A spent token came back after the grace window: the whole session is
    /// now revoked (committed and flushed).
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
    if let Some(i) = rec.live.iter().position(|t| t.hash.0 == *r.old) {
        rec.live.remove(i);
        if rec.spent.len() >= MAX_SPENT {
            rec.spent.remove(0);
        }
        rec.spent.push(SpentToken {
            hash: TokenHash(*r.old),
            at: r.now,
        });
    } else if rec.spent.iter().any(|s| s.hash.0 == *r.old) {
        // Within the grace window: a sibling in the same session; the first
        // spend time stays, so the window never grows.
        if rec.live.len() >= MAX_LIVE {
            return (None, Exchange::Refused(Refusal::TooManyRetries));
        }
    } else {
        rec.revoked_at = Some(r.now);
        return (Some(rec), Exchange::ReuseDetected { session: id });
    }
    let exp = rec.issue(r.new, r.wanted_exp);
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
            Exchange::Refused(Refusal::TooManyRetries)
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
        let rec = s.session(f).unwrap().unwrap();
        assert!(rec.spent.len() <= MAX_SPENT, "{}", rec.spent.len());
        assert_eq!(rec.live.len(), MAX_LIVE);
        // Outside the window the spent ones are forgotten: a replay.
        assert_eq!(
            s.exchange_refresh(&tok(f, 0), &[98; 32], 100, 30, 10)
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
