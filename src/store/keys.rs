//! Signing-key records (the `keys` tree, keyed by `kid`) and the active
//! key id in `meta`: rotation (retiring the active key, or revoking every
//! earlier key at once), and deletion of retired keys once nothing they
//! signed can still be valid. The record type is [`crate::keys`]'.

use super::kv::Transactional;

use super::codec::{decode, decode_tx, encode, from_tx};
use super::{KeyRecord, KeyState, META_ACTIVE_KID, Result, Store};

impl Store {
    /// All signing keys, oldest first.
    pub fn keys(&self) -> Result<Vec<KeyRecord>> {
        let mut keys = self
            .keys
            .iter()
            .map(|item| decode::<KeyRecord>(&item?.1))
            .collect::<Result<Vec<_>>>()?;
        keys.sort_by_key(|k| k.created_at);
        Ok(keys)
    }

    pub fn active_kid(&self) -> Result<String> {
        let v = self
            .meta
            .get(META_ACTIVE_KID)?
            .ok_or_else(|| self.invalid("no active signing key recorded"))?;
        String::from_utf8(v.to_vec()).map_err(|_| self.invalid("unreadable active key id"))
    }

    /// Makes `new` the signing key and retires the current one, atomically.
    pub fn rotate_key(&self, new: &KeyRecord, now: u64) -> Result<()> {
        self.write(|| {
            (&self.keys, &self.meta)
                .transaction(|(keys, meta)| {
                    let active = meta.get(META_ACTIVE_KID)?;
                    if let Some(old) = match active {
                        Some(kid) => keys.get(&kid)?,
                        None => None,
                    } {
                        let mut old: KeyRecord = decode_tx(&old)?;
                        old.state = KeyState::Retired;
                        old.retired_at = Some(now);
                        keys.insert(old.kid.as_bytes(), encode(&old))?;
                    }
                    keys.insert(new.kid.as_bytes(), encode(new))?;
                    meta.insert(META_ACTIVE_KID, new.kid.as_bytes())?;
                    Ok(())
                })
                .map_err(from_tx)?;
            self.flush()
        })
    }

    /// Makes `new` the only signing key: the active key and every retired
    /// one are deleted in the same transaction that makes `new` active, so
    /// nothing they signed verifies once the keyring is reloaded (a
    /// suspected leak). Returns the deleted key ids, oldest first.
    pub fn rotate_key_revoking_previous(&self, new: &KeyRecord) -> Result<Vec<String>> {
        self.write(|| {
            // transactions here do not iterate: the keys are listed here, and
            // the active one is read again inside, so a rotation that ran in
            // between loses its key too.
            let listed: Vec<String> = self
                .keys()?
                .into_iter()
                .map(|k| k.kid)
                .filter(|kid| *kid != new.kid)
                .collect();
            let gone = (&self.keys, &self.meta)
                .transaction(|(keys, meta)| {
                    let mut doomed = listed.clone();
                    if let Some(active) = meta.get(META_ACTIVE_KID)? {
                        let active = String::from_utf8_lossy(&active).into_owned();
                        if active != new.kid && !doomed.contains(&active) {
                            doomed.push(active);
                        }
                    }
                    let mut gone = Vec::new();
                    for kid in doomed {
                        if keys.remove(kid.as_bytes())?.is_some() {
                            gone.push(kid);
                        }
                    }
                    keys.insert(new.kid.as_bytes(), encode(new))?;
                    meta.insert(META_ACTIVE_KID, new.kid.as_bytes())?;
                    Ok(gone)
                })
                .map_err(from_tx)?;
            self.flush()?;
            Ok(gone)
        })
    }

    /// Deletes retired keys retired before `cutoff` (no token they signed
    /// can still be valid), in one transaction. Returns the deleted key
    /// ids, oldest first.
    pub fn delete_retired_keys(&self, cutoff: u64) -> Result<Vec<String>> {
        self.write(|| {
            let expired = |k: &KeyRecord| {
                k.state == KeyState::Retired && k.retired_at.is_some_and(|t| t < cutoff)
            };
            let candidates: Vec<String> = self
                .keys()?
                .into_iter()
                .filter(expired)
                .map(|k| k.kid)
                .collect();
            if candidates.is_empty() {
                return Ok(candidates);
            }
            // transactions here do not iterate: the candidates were read above,
            // and each is read again here, so the decision and the deletion
            // see the same record.
            let gone = self
                .keys
                .transaction(|keys| {
                    let mut gone = Vec::new();
                    for kid in &candidates {
                        let Some(v) = keys.get(kid.as_bytes())? else {
                            continue;
                        };
                        if expired(&decode_tx(&v)?) {
                            keys.remove(kid.as_bytes())?;
                            gone.push(kid.clone());
                        }
                    }
                    Ok(gone)
                })
                .map_err(from_tx)?;
            if !gone.is_empty() {
                self.flush()?;
            }
            Ok(gone)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::super::testing::{key, user};
    use crate::domain::Roles;

    #[test]
    fn key_rotation_retires_and_deletes_old_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        s.initialize(&user("admin", Roles::ALL), &key()).unwrap();
        let mut k2 = key();
        k2.kid = "k2".into();
        s.rotate_key(&k2, 50).unwrap();
        assert_eq!(s.active_kid().unwrap(), "k2");
        let keys = s.keys().unwrap();
        assert_eq!(
            keys.iter().find(|k| k.kid == "k1").unwrap().retired_at,
            Some(50)
        );
        assert!(s.delete_retired_keys(50).unwrap().is_empty());
        assert_eq!(s.delete_retired_keys(51).unwrap(), vec!["k1".to_string()]);
        assert_eq!(s.keys().unwrap().len(), 1);
    }

    #[test]
    fn a_revoking_rotation_leaves_only_the_new_key_in_one_flush() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        s.initialize(&user("admin", Roles::ALL), &key()).unwrap();
        let mut k2 = key();
        k2.kid = "k2".into();
        s.rotate_key(&k2, 50).unwrap();
        let mut k3 = key();
        k3.kid = "k3".into();
        let flushes = s.flush_count();
        assert_eq!(s.rotate_key_revoking_previous(&k3).unwrap(), ["k1", "k2"]);
        assert_eq!(s.flush_count(), flushes + 1);
        let left: Vec<_> = s.keys().unwrap().into_iter().map(|k| k.kid).collect();
        assert_eq!(left, ["k3"]);
        assert_eq!(s.active_kid().unwrap(), "k3");
        drop(s);
        let (reopened, _) = super::super::testing::reopen(dir.path()).unwrap();
        assert_eq!(reopened.active_kid().unwrap(), "k3");
        assert_eq!(reopened.keys().unwrap().len(), 1);
    }

    #[test]
    fn every_expired_retired_key_goes_at_once_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        s.initialize(&user("admin", Roles::ALL), &key()).unwrap();
        for (kid, at) in [("k2", 10), ("k3", 20), ("k4", 30)] {
            let mut k = key();
            k.kid = kid.into();
            k.created_at = at;
            s.rotate_key(&k, at).unwrap();
        }
        // k1 retired at 10, k2 at 20, k3 at 30; k4 is active.
        let flushes = s.flush_count();
        assert_eq!(s.delete_retired_keys(25).unwrap(), ["k1", "k2"]);
        assert_eq!(s.flush_count(), flushes + 1);
        let left: Vec<_> = s.keys().unwrap().into_iter().map(|k| k.kid).collect();
        assert_eq!(left, ["k3", "k4"]);
        assert!(s.delete_retired_keys(u64::MAX).unwrap() == ["k3"]);
        assert_eq!(s.active_kid().unwrap(), "k4");
    }
}
