//! argon2id password hashing, off the async workers and capped.
//!
//! A hash costs ~19 MiB and tens of milliseconds by design, so it never runs
//! on an HTTP worker (it would stall every connection on that worker) and at
//! most `max_concurrent_hashes` run at once (so a login flood queues instead
//! of exhausting memory). Unknown usernames are verified against a dummy
//! hash with the same parameters so both failures cost the same.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

use crate::config::Argon2Params;
use crate::domain::Password;

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy: Arc<OnceLock<String>>,
}

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn random_salt() -> anyhow::Result<SaltString> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))?;
    SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("salt encoding: {e}"))
}

impl Hasher {
    pub fn new(p: Argon2Params, max_concurrent: usize) -> anyhow::Result<Hasher> {
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        Ok(Hasher {
            params,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy: Arc::new(OnceLock::new()),
        })
    }

    /// Hashes on the calling thread: for the CLI and start-up, not for
    /// request handlers.
    pub fn hash_blocking(&self, password: &Password) -> anyhow::Result<String> {
        let salt = random_salt()?;
        argon2(self.params.clone())
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    }

    /// Verifies on the calling thread. `None` checks against the dummy hash
    /// and always fails. A stored hash that cannot be parsed fails too.
    pub fn verify_blocking(&self, password: &str, phc: Option<&str>) -> bool {
        let dummy;
        let phc = match phc {
            Some(p) => p,
            None => {
                dummy = self.dummy_hash();
                dummy
            }
        };
        let ok = match PasswordHash::new(phc) {
            Ok(parsed) => argon2(self.params.clone())
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        };
        ok && phc_is_real(phc, self.dummy.get())
    }

    fn dummy_hash(&self) -> &str {
        self.dummy.get_or_init(|| {
            let mut pw = [0u8; 24];
            let _ = getrandom::fill(&mut pw);
            let pw: String = pw.iter().map(|b| format!("{b:02x}")).collect();
            match Password::parse(pw).map(|p| self.hash_blocking(&p)) {
                Ok(Ok(h)) => h,
                // Without a random source hashing fails anyway; keep a
                // parseable placeholder so verification still costs time.
                _ => "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$invalid".into(),
            }
        })
    }

    /// Whether a stored hash should be recomputed with the configured
    /// parameters (older or different ones, or not argon2id at all).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false; // unreadable: verification fails anyway
        };
        let Ok(stored) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || stored.m_cost() != self.params.m_cost()
            || stored.t_cost() != self.params.t_cost()
            || stored.p_cost() != self.params.p_cost()
    }

    /// Computes the dummy hash now, so the first unknown-user login is not
    /// slower than the rest.
    pub fn warm_up(&self) {
        let _ = self.dummy_hash();
    }

    /// Hashes a new password off the async workers, within the cap.
    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.hash_blocking(&password)).await?
    }

    /// Verifies off the async workers, within the cap.
    pub async fn verify(&self, password: String, phc: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let this = self.clone();
        Ok(
            tokio::task::spawn_blocking(move || this.verify_blocking(&password, phc.as_deref()))
                .await?,
        )
    }
}

/// The dummy hash must never verify as a real account, even if an attacker
/// somehow guessed its random password.
fn phc_is_real(phc: &str, dummy: Option<&String>) -> bool {
    dummy.is_none_or(|d| d != phc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Hasher {
        Hasher::new(
            Argon2Params {
                memory_kib: 256,
                iterations: 1,
                parallelism: 1,
            },
            2,
        )
        .unwrap()
    }

    #[test]
    fn hash_is_argon2id_phc_and_verifies_exactly() {
        let h = cheap();
        let phc = h
            .hash_blocking(&Password::parse("correct horse".into()).unwrap())
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{phc}");
        assert!(h.verify_blocking("correct horse", Some(&phc)));
        assert!(!h.verify_blocking("correct horse ", Some(&phc)));
        assert!(!h.verify_blocking("Correct horse", Some(&phc)));
        assert!(!h.verify_blocking("correct horse", Some("garbage")));
        assert!(!h.verify_blocking("anything", None));
        assert!(!h.needs_rehash(&phc));
        let stronger = Hasher::new(
            Argon2Params {
                memory_kib: 512,
                iterations: 1,
                parallelism: 1,
            },
            1,
        )
        .unwrap();
        assert!(stronger.needs_rehash(&phc));
        assert!(
            stronger.verify_blocking("correct horse", Some(&phc)),
            "old hashes still verify"
        );
    }
}
