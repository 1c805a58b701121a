//! The recent security events (what `GET /audit` lists) and each user's
//! last login, in one tree, `audit`:
//!
//! - `n`: the next event's sequence number (8 bytes, big-endian);
//! - `e` + sequence number (big-endian): one event, oldest first;
//! - `l` + user id (16 bytes): that user's last login, Unix seconds.
//!
//! Recording an event queues it in memory ([`Store::record_event`]); the
//! queue is written in one transaction by the next group commit's leader
//! just before its durable commit (every change, login and refresh
//! flushes), by a reader of the events, or at once when [`PENDING_MAX`]
//! are waiting. Writing an event takes the next number, writes the event,
//! deletes the event [`AUDIT_KEPT`] numbers before it (so exactly the last
//! [`AUDIT_KEPT`] are kept, without ever counting the tree), and for a
//! login or a deletion writes or removes the user's last login. The log
//! line is the durable record: a crash may lose the last few events here,
//! never a change. Queued rather than one transaction each because a
//! refresh would otherwise take the store's write lock twice (redb's write
//! transactions are exclusive): 3,933 refreshes/s, against ≥5,000 wanted.
//!
//! Only get, insert, remove and scan_prefix are used, inside one
//! transaction or alone.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

use super::codec::{decode, encode, from_tx};
use super::kv::Transactional;
use super::{Result, Store};

/// Events kept; older ones are dropped as new ones come.
pub const AUDIT_KEPT: u64 = 10_000;

/// Events queued in memory before one is written out without waiting for
/// a flush (failed logins, say, which write nothing else).
const PENDING_MAX: usize = 256;

/// Events recorded but not written yet (see the module's documentation).
pub(super) type Pending = std::sync::Mutex<Vec<(Vec<u8>, LastLogin)>>;

const NEXT: &[u8] = b"n";
const EVENT: u8 = b'e';
const LAST_LOGIN: u8 = b'l';

/// One event as kept: never a secret (the `audit::Event` it comes from
/// cannot hold one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Unix milliseconds.
    pub time: u64,
    /// The event's name, e.g. `login_ok`.
    pub event: String,
    /// The user it is about (as given, for a failed login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    /// The client's address, for requests over HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Who acted, when someone acted on another user's account (`cli`
    /// for the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// What recording an event does to a user's last login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastLogin {
    Keep,
    /// A login of this user at these Unix seconds.
    Set(Uuid, u64),
    /// This user is gone.
    Forget(Uuid),
}

fn event_key(seq: u64) -> [u8; 9] {
    let mut k = [EVENT; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn login_key(user: Uuid) -> [u8; 17] {
    let mut k = [LAST_LOGIN; 17];
    k[1..].copy_from_slice(user.as_bytes());
    k
}

fn be_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

impl Store {
    /// Keeps `rec` as the newest event, dropping the one [`AUDIT_KEPT`]
    /// before it, and applies `login` (see the module's documentation:
    /// not flushed on its own).
    pub fn record_event(&self, rec: &AuditRecord, login: LastLogin) -> Result<()> {
        let waiting = {
            let mut pending = self
                .pending_audit
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.push((encode(rec), login));
            pending.len()
        };
        if waiting >= PENDING_MAX {
            self.write(|| self.write_pending_events())?;
        }
        Ok(())
    }

    /// Writes the queued events in one transaction (not flushed).
    pub(super) fn write_pending_events(&self) -> Result<()> {
        let events = std::mem::take(
            &mut *self
                .pending_audit
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if events.is_empty() {
            return Ok(());
        }
        self.audit
            .transaction(|t| {
                let mut seq = t.get(NEXT)?.as_deref().and_then(be_u64).unwrap_or(0);
                for (value, login) in &events {
                    t.insert(&event_key(seq)[..], value.as_slice())?;
                    if let Some(old) = seq.checked_sub(AUDIT_KEPT) {
                        t.remove(&event_key(old)[..])?;
                    }
                    match login {
                        LastLogin::Keep => {}
                        LastLogin::Set(user, at) => {
                            t.insert(&login_key(*user)[..], &at.to_be_bytes()[..])?;
                        }
                        LastLogin::Forget(user) => {
                            t.remove(&login_key(*user)[..])?;
                        }
                    }
                    seq += 1;
                }
                t.insert(NEXT, &seq.to_be_bytes()[..])?;
                Ok(())
            })
            .map_err(from_tx)
    }

    /// The kept events, oldest first. A record that cannot be read is
    /// skipped (and reported by `check`).
    pub fn audit_events(&self) -> Result<Vec<AuditRecord>> {
        self.write(|| self.write_pending_events())?;
        let mut out = Vec::new();
        for item in self.audit.scan_prefix([EVENT]) {
            let (_, v) = item?;
            if let Ok(rec) = decode::<AuditRecord>(&v) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Every user's last login (Unix seconds), by user id.
    pub fn last_logins(&self) -> Result<HashMap<Uuid, u64>> {
        self.write(|| self.write_pending_events())?;
        let mut out = HashMap::new();
        for item in self.audit.scan_prefix([LAST_LOGIN]) {
            let (k, v) = item?;
            if let (Ok(id), Some(at)) = (Uuid::from_slice(&k[1..]), be_u64(&v)) {
                out.insert(id, at);
            }
        }
        Ok(out)
    }

    /// Records of the `audit` tree that cannot be read, for `check`.
    pub(super) fn scan_audit(&self) -> Result<(u64, Vec<String>)> {
        let (mut n, mut problems) = (0, Vec::new());
        for item in self.audit.scan_prefix([EVENT]) {
            let (k, v) = item?;
            n += 1;
            if let Err(e) = decode::<AuditRecord>(&v) {
                problems.push(format!("audit event {}: {e}", crate::hex::encode(&k)));
            }
        }
        Ok((n, problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> AuditRecord {
        AuditRecord {
            time: n,
            event: "login_ok".into(),
            username: Some(format!("u{n}")),
            user_id: None,
            address: None,
            by: None,
        }
    }

    #[test]
    fn the_last_events_are_kept_oldest_first_and_older_ones_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        let total = AUDIT_KEPT + 25;
        for n in 0..total {
            s.record_event(&event(n), LastLogin::Keep).unwrap();
        }
        let kept = s.audit_events().unwrap();
        assert_eq!(kept.len() as u64, AUDIT_KEPT);
        assert_eq!(kept.first().unwrap().time, 25);
        assert_eq!(kept.last().unwrap().time, total - 1);
        assert!(kept.windows(2).all(|w| w[0].time < w[1].time));
        assert_eq!(s.scan_audit().unwrap(), (AUDIT_KEPT, Vec::new()));
    }

    #[test]
    fn last_logins_are_set_and_forgotten_with_their_events() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        s.record_event(&event(1), LastLogin::Set(a, 100)).unwrap();
        s.record_event(&event(2), LastLogin::Set(b, 200)).unwrap();
        s.record_event(&event(3), LastLogin::Set(a, 300)).unwrap();
        let logins = s.last_logins().unwrap();
        assert_eq!((logins[&a], logins[&b], logins.len()), (300, 200, 2));
        s.record_event(&event(4), LastLogin::Forget(a)).unwrap();
        let logins = s.last_logins().unwrap();
        assert_eq!((logins.get(&a), logins.len()), (None, 1));
        assert_eq!(s.audit_events().unwrap().len(), 4);
    }
}
