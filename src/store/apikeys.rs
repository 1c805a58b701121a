//! API keys (service accounts): one record per key in `api_keys`, keyed by
//! the SHA-256 of the key (so verifying a presented key is one hash and one
//! lookup), `api_key_ids` (key id → that hash, for revocation by id) and
//! `user_api_keys` (owner id → its key ids, so deleting a user deletes its
//! keys in the same transaction). The key itself is never stored.

use super::kv::{IVec, Transactional, TxTree};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

use super::codec::{TxResult, abort, decode, decode_tx, encode, from_tx};
use super::{Result, Store, StoreError};
use crate::domain::Roles;

/// One API key as stored (never the key: its SHA-256 is the record's key).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub owner: Uuid,
    pub name: String,
    /// At most the owner's roles when created; intersected with the
    /// owner's current roles on every use.
    #[serde(with = "crate::domain::role_bits")]
    pub roles: Roles,
    /// Unix seconds.
    pub created_at: u64,
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Written at most once an hour ([`Store::touch_api_key`]).
    #[serde(default)]
    pub last_used_at: Option<u64>,
}

impl fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("owner", &self.owner)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// The SHA-256 of a presented key: the record's key in `api_keys`.
pub type KeyHash = [u8; 32];

/// How often a key's `last_used_at` is written at most (seconds).
pub const TOUCH_INTERVAL_SECS: u64 = 3600;

/// A per-user list of key ids: 16 bytes each.
fn ids_of(list: Option<IVec>) -> Vec<Uuid> {
    list.map(|l| {
        l.chunks_exact(16)
            .filter_map(|c| Uuid::from_slice(c).ok())
            .collect()
    })
    .unwrap_or_default()
}

fn list_bytes(ids: &[Uuid]) -> Vec<u8> {
    ids.iter().flat_map(|id| *id.as_bytes()).collect()
}

/// Removes every key of `owner` inside a transaction (its user is being
/// deleted).
pub(super) fn remove_keys_of(
    owner: Uuid,
    keys: &TxTree,
    ids: &TxTree,
    lists: &TxTree,
) -> TxResult<()> {
    for id in ids_of(lists.remove(owner.as_bytes())?) {
        if let Some(hash) = ids.remove(id.as_bytes())? {
            keys.remove(hash)?;
        }
    }
    Ok(())
}

impl Store {
    /// Stores a new key under `hash`, if its owner exists (else `NotFound`).
    pub fn create_api_key(&self, rec: &ApiKeyRecord, hash: &KeyHash) -> Result<()> {
        self.write(|| {
            (
                &self.users,
                &self.api_keys,
                &self.api_key_ids,
                &self.user_api_keys,
            )
                .transaction(|(users, keys, ids, lists)| {
                    if users.get(rec.owner.as_bytes())?.is_none() {
                        return abort(StoreError::NotFound);
                    }
                    keys.insert(&hash[..], encode(rec))?;
                    ids.insert(rec.id.as_bytes(), &hash[..])?;
                    let mut list = ids_of(lists.get(rec.owner.as_bytes())?);
                    list.push(rec.id);
                    lists.insert(rec.owner.as_bytes(), list_bytes(&list))?;
                    Ok(())
                })
                .map_err(from_tx)?;
            self.flush()
        })
    }

    /// The key whose SHA-256 is `hash`: the request path's one lookup.
    pub fn api_key_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>> {
        self.api_keys
            .get(&hash[..])?
            .map(|v| decode(&v))
            .transpose()
    }

    /// How many API keys are stored.
    pub fn api_key_count(&self) -> Result<usize> {
        Ok(usize::try_from(self.api_key_ids.len()?).unwrap_or(usize::MAX))
    }

    pub fn api_key_by_id(&self, id: Uuid) -> Result<Option<ApiKeyRecord>> {
        let Some(hash) = self.api_key_ids.get(id.as_bytes())? else {
            return Ok(None);
        };
        self.api_keys.get(hash)?.map(|v| decode(&v)).transpose()
    }

    /// Every key, in hash order.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        self.api_keys.iter().map(|item| decode(&item?.1)).collect()
    }

    /// Deletes key `id`; `None` when there is none.
    pub fn revoke_api_key(&self, id: Uuid) -> Result<Option<ApiKeyRecord>> {
        self.write(|| {
            let gone = (&self.api_keys, &self.api_key_ids, &self.user_api_keys)
                .transaction(|(keys, ids, lists)| {
                    let Some(hash) = ids.remove(id.as_bytes())? else {
                        return Ok(None);
                    };
                    let Some(rec) = keys.remove(hash)? else {
                        return Ok(None);
                    };
                    let rec: ApiKeyRecord = decode_tx(&rec)?;
                    let mut list = ids_of(lists.get(rec.owner.as_bytes())?);
                    list.retain(|k| *k != id);
                    if list.is_empty() {
                        lists.remove(rec.owner.as_bytes())?;
                    } else {
                        lists.insert(rec.owner.as_bytes(), list_bytes(&list))?;
                    }
                    Ok(Some(rec))
                })
                .map_err(from_tx)?;
            if gone.is_some() {
                self.flush()?;
            }
            Ok(gone)
        })
    }

    /// Records a use of the key at `now` if its last recorded use is
    /// [`TOUCH_INTERVAL_SECS`] old or more (or none); returns the record if
    /// it wrote, so that only one of concurrent uses reports it.
    pub fn touch_api_key(&self, hash: &KeyHash, now: u64) -> Result<Option<ApiKeyRecord>> {
        self.write(|| {
            let touched = self
                .api_keys
                .transaction(|keys| {
                    let Some(cur) = keys.get(&hash[..])? else {
                        return Ok(None);
                    };
                    let mut rec: ApiKeyRecord = decode_tx(&cur)?;
                    if rec
                        .last_used_at
                        .is_some_and(|t| now.saturating_sub(t) < TOUCH_INTERVAL_SECS)
                    {
                        return Ok(None);
                    }
                    rec.last_used_at = Some(now);
                    keys.insert(&hash[..], encode(&rec))?;
                    Ok(Some(rec))
                })
                .map_err(from_tx)?;
            if touched.is_some() {
                self.flush()?;
            }
            Ok(touched)
        })
    }

    /// The full scan's part for API keys: every record decodes, sits under
    /// an id entry naming it, and has an owner; returns the problems.
    pub(super) fn scan_api_keys(&self) -> Result<(u64, Vec<String>)> {
        let mut problems = Vec::new();
        let mut count = 0;
        for item in self.api_keys.iter() {
            let (k, v) = item?;
            count += 1;
            let rec: ApiKeyRecord = match decode(&v) {
                Ok(r) => r,
                Err(e) => {
                    problems.push(format!("API key record {}: {e}", crate::hex::encode(&k)));
                    continue;
                }
            };
            if !self.users.contains_key(rec.owner.as_bytes())? {
                problems.push(format!(
                    "API key {} belongs to user {}, not stored",
                    rec.id, rec.owner
                ));
            }
            if self.api_key_ids.get(rec.id.as_bytes())?.as_deref() != Some(k.as_ref()) {
                problems.push(format!("API key {} has no id entry", rec.id));
            }
        }
        for item in self.api_key_ids.iter() {
            let (k, v) = item?;
            if !self.api_keys.contains_key(&v)? {
                let id =
                    Uuid::from_slice(&k).map_or_else(|_| crate::hex::encode(&k), |u| u.to_string());
                problems.push(format!("API key id {id} names no key"));
            }
        }
        Ok((count, problems))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::super::testing::user;
    use super::*;

    fn key_of(owner: Uuid, n: u8) -> (ApiKeyRecord, KeyHash) {
        let rec = ApiKeyRecord {
            id: Uuid::new_v4(),
            owner,
            name: format!("k{n}"),
            roles: Roles::from_bits(1),
            created_at: 100,
            expires_at: None,
            last_used_at: None,
        };
        (rec, [n; 32])
    }

    #[test]
    fn keys_are_found_by_hash_and_id_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        let bob = user("bob", Roles::from_bits(3));
        s.create_user(&bob).unwrap();
        let (a, ha) = key_of(bob.id, 1);
        let (b, hb) = key_of(bob.id, 2);
        s.create_api_key(&a, &ha).unwrap();
        s.create_api_key(&b, &hb).unwrap();
        assert_eq!(s.api_key_by_hash(&ha).unwrap(), Some(a.clone()));
        assert_eq!(s.api_key_by_id(b.id).unwrap(), Some(b.clone()));
        assert_eq!(s.api_keys().unwrap().len(), 2);
        assert_eq!(s.revoke_api_key(a.id).unwrap(), Some(a.clone()));
        assert_eq!(s.revoke_api_key(a.id).unwrap(), None);
        assert_eq!(s.api_key_by_hash(&ha).unwrap(), None);
        assert_eq!(s.api_keys().unwrap(), vec![b]);
        assert!(s.scan_api_keys().unwrap().1.is_empty());
    }

    #[test]
    fn a_key_needs_its_owner_and_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        let (orphan, h) = key_of(Uuid::new_v4(), 9);
        assert!(matches!(
            s.create_api_key(&orphan, &h),
            Err(StoreError::NotFound)
        ));
        let admin = user("admin", Roles::ALL);
        let bob = user("bob", Roles::from_bits(3));
        s.create_user(&admin).unwrap();
        s.create_user(&bob).unwrap();
        let (a, ha) = key_of(bob.id, 1);
        let (b, hb) = key_of(admin.id, 2);
        s.create_api_key(&a, &ha).unwrap();
        s.create_api_key(&b, &hb).unwrap();
        s.delete_user(bob.id).unwrap();
        assert_eq!(s.api_key_by_hash(&ha).unwrap(), None);
        assert_eq!(s.api_key_by_id(a.id).unwrap(), None);
        assert_eq!(s.api_keys().unwrap(), vec![b]);
        assert!(s.scan_api_keys().unwrap().1.is_empty());
    }

    #[test]
    fn a_use_is_written_at_most_once_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        let bob = user("bob", Roles::from_bits(3));
        s.create_user(&bob).unwrap();
        let (a, ha) = key_of(bob.id, 1);
        s.create_api_key(&a, &ha).unwrap();
        let flushes = s.flush_count();
        assert!(s.touch_api_key(&ha, 1000).unwrap().is_some());
        assert!(s.touch_api_key(&ha, 1000).unwrap().is_none());
        assert!(s.touch_api_key(&ha, 1000 + 3599).unwrap().is_none());
        assert_eq!(s.flush_count(), flushes + 1);
        let again = s.touch_api_key(&ha, 1000 + 3600).unwrap().unwrap();
        assert_eq!(again.last_used_at, Some(4600));
        assert!(s.touch_api_key(&[7; 32], 1000).unwrap().is_none());
    }

    #[test]
    fn the_scan_reports_an_undecodable_or_orphaned_key() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        let bob = user("bob", Roles::from_bits(3));
        s.create_user(&bob).unwrap();
        let (a, ha) = key_of(bob.id, 1);
        s.create_api_key(&a, &ha).unwrap();
        // Damage made by hand, as no write of the store would.
        s.users.remove(bob.id.as_bytes()).unwrap();
        s.api_keys.insert([5u8; 32], b"not json").unwrap();
        let (count, problems) = s.scan_api_keys().unwrap();
        assert_eq!(count, 2);
        assert!(
            problems.iter().any(|p| p.contains("not stored")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("API key record")),
            "{problems:?}"
        );
    }
}
