//! Two-factor authentication state, kept in the user record
//! ([`MfaRecord`]): the TOTP secret while on, a pending secret between
//! `generate` and `enable`, the last accepted time step, and the recovery
//! codes' SHA-256s. Each change is one transaction on the user's record
//! that checks what the caller verified is still what is stored (the
//! secret a code matched, a step above the last, a recovery code not yet
//! used), so two requests with one code cannot both pass. The store
//! decides and refuses ([`MfaRefusal`]); `accounts/mfa.rs` chooses the
//! words.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

use super::codec::{abort, decode_tx, encode, from_tx};
use super::kv::Transactional;
use super::{Result, Store, StoreError, UserRecord};

/// A user's two-factor state as stored. Its `Debug` says only what is set.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaRecord {
    /// The TOTP secret (base32) while two-factor authentication is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// A secret generated but not enabled yet (base32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    /// The last time step a code was accepted for: only later ones are.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_step: u64,
    /// SHA-256s (hex) of the recovery codes not used yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl MfaRecord {
    pub fn is_on(&self) -> bool {
        self.secret.is_some()
    }

    /// Off with nothing pending: what records without the field decode to.
    pub fn is_blank(&self) -> bool {
        *self == MfaRecord::default()
    }
}

impl fmt::Debug for MfaRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaRecord")
            .field("on", &self.secret.is_some())
            .field("pending", &self.pending.is_some())
            .field("last_step", &self.last_step)
            .field("recovery_codes", &self.recovery.len())
            .finish()
    }
}

/// What an MFA change was refused for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaRefusal {
    /// Two-factor authentication is on already.
    AlreadyOn,
    /// It is off.
    NotOn,
    /// No secret is pending, or not the one the code was checked against.
    NoPending,
    /// The code's step was accepted already (or the secret changed since it
    /// was checked), or the recovery code is not (or no longer) the user's.
    Spent,
}

/// A one-time password the caller verified, for the store to spend.
#[derive(Clone)]
pub enum OtpProof {
    /// A TOTP code of `step`, matched against `secret` (base32).
    Step { secret: String, step: u64 },
    /// A recovery code's SHA-256.
    Recovery([u8; 32]),
}

impl fmt::Debug for OtpProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OtpProof::Step { step, .. } => write!(f, "Step({step})"),
            OtpProof::Recovery(_) => f.write_str("Recovery(..)"),
        }
    }
}

/// Spends `proof` on `mfa` (which must be on), or says why not.
fn spend(mfa: &mut MfaRecord, proof: &OtpProof) -> Result<(), MfaRefusal> {
    if !mfa.is_on() {
        return Err(MfaRefusal::NotOn);
    }
    match proof {
        OtpProof::Step { secret, step } => {
            if mfa.secret.as_deref() != Some(secret) || *step <= mfa.last_step {
                return Err(MfaRefusal::Spent);
            }
            mfa.last_step = *step;
        }
        OtpProof::Recovery(hash) => {
            let hash = crate::hex::encode(hash);
            let Some(i) = mfa.recovery.iter().position(|h| *h == hash) else {
                return Err(MfaRefusal::Spent);
            };
            mfa.recovery.remove(i);
        }
    }
    Ok(())
}

impl Store {
    /// Changes user `id`'s record by `change` in one transaction, unless it
    /// refuses; flushed, and the cached view dropped, when it changed.
    fn change_mfa(
        &self,
        id: Uuid,
        change: impl Fn(&mut UserRecord) -> Result<(), MfaRefusal>,
    ) -> Result<Result<UserRecord, MfaRefusal>> {
        self.write(|| {
            let outcome = self
                .users
                .transaction(|users| {
                    let Some(old) = users.get(id.as_bytes())? else {
                        return abort(StoreError::NotFound);
                    };
                    let mut rec: UserRecord = decode_tx(&old)?;
                    if let Err(why) = change(&mut rec) {
                        return Ok(Err(why));
                    }
                    users.insert(id.as_bytes(), encode(&rec))?;
                    Ok(Ok(rec))
                })
                .map_err(from_tx)?;
            if outcome.is_ok() {
                self.cache.invalidate(&id);
                self.flush()?;
            }
            Ok(outcome)
        })
    }

    /// Keeps `secret` (base32) as user `id`'s pending secret, replacing an
    /// earlier one; refused while two-factor authentication is on.
    pub fn mfa_set_pending(
        &self,
        id: Uuid,
        secret: &str,
        now: u64,
    ) -> Result<Result<UserRecord, MfaRefusal>> {
        self.change_mfa(id, |rec| {
            if rec.mfa.is_on() {
                return Err(MfaRefusal::AlreadyOn);
            }
            rec.mfa.pending = Some(secret.to_owned());
            rec.updated_at = now;
            Ok(())
        })
    }

    /// Turns two-factor authentication on with the pending secret
    /// `pending`, which a code of `step` matched, and the recovery codes'
    /// `hashes`.
    pub fn mfa_enable(
        &self,
        id: Uuid,
        pending: &str,
        step: u64,
        hashes: &[[u8; 32]],
        now: u64,
    ) -> Result<Result<UserRecord, MfaRefusal>> {
        let recovery: Vec<String> = hashes.iter().map(|h| crate::hex::encode(h)).collect();
        self.change_mfa(id, |rec| {
            if rec.mfa.is_on() {
                return Err(MfaRefusal::AlreadyOn);
            }
            if rec.mfa.pending.as_deref() != Some(pending) {
                return Err(MfaRefusal::NoPending);
            }
            rec.mfa = MfaRecord {
                secret: Some(pending.to_owned()),
                pending: None,
                last_step: step,
                recovery: recovery.clone(),
            };
            rec.updated_at = now;
            Ok(())
        })
    }

    /// Spends a one-time password of user `id` (a login's second factor):
    /// a code's step only if later than the last accepted, a recovery code
    /// once.
    pub fn mfa_spend(&self, id: Uuid, proof: &OtpProof) -> Result<Result<UserRecord, MfaRefusal>> {
        self.change_mfa(id, |rec| spend(&mut rec.mfa, proof))
    }

    /// Spends `proof` and turns two-factor authentication off, in one
    /// transaction.
    pub fn mfa_disable(
        &self,
        id: Uuid,
        proof: &OtpProof,
        now: u64,
    ) -> Result<Result<UserRecord, MfaRefusal>> {
        self.change_mfa(id, |rec| {
            spend(&mut rec.mfa, proof)?;
            rec.mfa = MfaRecord::default();
            rec.updated_at = now;
            Ok(())
        })
    }

    /// An admin's reset: two-factor authentication off, the pending secret
    /// and the recovery codes gone, and every token of the user revoked.
    pub fn mfa_reset(&self, id: Uuid, now: u64) -> Result<UserRecord> {
        let reset = self.change_mfa(id, |rec| {
            rec.mfa = MfaRecord::default();
            rec.updated_at = now;
            rec.generation += 1;
            Ok(())
        })?;
        // `change` above never refuses.
        reset.map_err(|_| StoreError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Roles;
    use crate::store::testing::{reopen, seeded, user};

    fn on(s: &Store, id: Uuid) -> [u8; 32] {
        let code = [7u8; 32];
        s.mfa_set_pending(id, "SECRET", 1).unwrap().unwrap();
        s.mfa_enable(id, "SECRET", 10, &[code, [8u8; 32]], 2)
            .unwrap()
            .unwrap();
        code
    }

    #[test]
    fn steps_and_recovery_codes_are_spent_once_and_old_records_decode() {
        let dir = tempfile::tempdir().unwrap();
        let rec = seeded(dir.path(), 1).remove(0);
        let (s, _) = reopen(dir.path()).unwrap();
        // Written without the field: as before MFA existed.
        let raw = s.users.get(rec.id.as_bytes()).unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("mfa"));
        assert_eq!(
            s.mfa_enable(rec.id, "SECRET", 1, &[], 1).unwrap().err(),
            Some(MfaRefusal::NoPending)
        );
        let recovery = on(&s, rec.id);
        assert!(s.user_view(rec.id).unwrap().unwrap().mfa);
        assert_eq!(
            s.mfa_set_pending(rec.id, "OTHER", 3).unwrap().err(),
            Some(MfaRefusal::AlreadyOn)
        );
        let step = |step| OtpProof::Step {
            secret: "SECRET".into(),
            step,
        };
        // The enabling code's step, or an earlier one, is spent.
        for n in [9, 10] {
            assert_eq!(
                s.mfa_spend(rec.id, &step(n)).unwrap().err(),
                Some(MfaRefusal::Spent)
            );
        }
        s.mfa_spend(rec.id, &step(11)).unwrap().unwrap();
        assert_eq!(
            s.mfa_spend(rec.id, &step(11)).unwrap().err(),
            Some(MfaRefusal::Spent)
        );
        let wrong_secret = OtpProof::Step {
            secret: "OTHER".into(),
            step: 12,
        };
        assert_eq!(
            s.mfa_spend(rec.id, &wrong_secret).unwrap().err(),
            Some(MfaRefusal::Spent)
        );
        s.mfa_spend(rec.id, &OtpProof::Recovery(recovery))
            .unwrap()
            .unwrap();
        assert_eq!(
            s.mfa_spend(rec.id, &OtpProof::Recovery(recovery))
                .unwrap()
                .err(),
            Some(MfaRefusal::Spent)
        );
        // Kept across a reopen.
        drop(s);
        let (s, _) = reopen(dir.path()).unwrap();
        let stored = s.user_by_id(rec.id).unwrap().unwrap();
        assert_eq!(stored.mfa.last_step, 11);
        assert_eq!(stored.mfa.recovery.len(), 1);
        assert!(
            s.scan().unwrap().is_consistent(),
            "check passes with MFA data"
        );
        // Disabling spends a code too; then nothing is left.
        assert_eq!(
            s.mfa_disable(rec.id, &step(11), 5).unwrap().err(),
            Some(MfaRefusal::Spent)
        );
        s.mfa_disable(rec.id, &step(12), 5).unwrap().unwrap();
        assert!(s.user_by_id(rec.id).unwrap().unwrap().mfa.is_blank());
        assert!(!s.user_view(rec.id).unwrap().unwrap().mfa);
        assert_eq!(
            s.mfa_spend(rec.id, &step(13)).unwrap().err(),
            Some(MfaRefusal::NotOn)
        );
    }

    #[test]
    fn a_reset_clears_everything_and_revokes_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = reopen(dir.path()).unwrap();
        let rec = user("bob", Roles::from_bits(1));
        s.create_user(&rec).unwrap();
        on(&s, rec.id);
        let before = s.user_view(rec.id).unwrap().unwrap().generation;
        let after = s.mfa_reset(rec.id, 9).unwrap();
        assert!(after.mfa.is_blank());
        assert_eq!(after.generation, before + 1);
        let view = s.user_view(rec.id).unwrap().unwrap();
        assert!(!view.mfa);
        assert_eq!(view.generation, before + 1);
        assert!(matches!(
            s.mfa_reset(Uuid::new_v4(), 9),
            Err(StoreError::NotFound)
        ));
    }
}
