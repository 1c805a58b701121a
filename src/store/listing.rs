//! Read-only listings for the admin console: every user record, and one
//! user's live sessions with their records. Only `iter` and `get`.

use uuid::Uuid;

use super::codec::decode;
use super::{Result, SessionRecord, Store, UserRecord};

impl Store {
    /// Every user record, in key order.
    pub fn user_records(&self) -> Result<Vec<UserRecord>> {
        let mut out = Vec::new();
        for item in self.users.iter() {
            let (_, v) = item?;
            out.push(decode(&v)?);
        }
        Ok(out)
    }

    /// User `user`'s live sessions (not revoked, not expired), oldest
    /// first, with their records.
    pub fn live_sessions(&self, user: Uuid, now: u64) -> Result<Vec<(Uuid, SessionRecord)>> {
        let mut out = Vec::new();
        for id in self.sessions_of(user, now)? {
            if let Some(rec) = self.session(id)? {
                out.push((id, rec));
            }
        }
        Ok(out)
    }
}
