//! Signing and verifying the API's JWTs. Key material lives here (built from
//! the store's key records once, not per request) and never leaves: it is
//! not logged, printed or returned.
//!
//! Access tokens carry `_id`, `roles`, `iat`, `exp`; refresh tokens carry
//! `_id`, `refreshToken: true`, `iat`, `exp`. Every token names its key in
//! the `kid` header, so several keys can be valid at once.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

use crate::store::{KeyRecord, KeyState};

/// Why a token was refused. The message is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
    #[error("a refresh token cannot be used here")]
    RefreshNotAccess,
    #[error("an access token cannot be used to refresh")]
    AccessNotRefresh,
}

#[derive(Debug, Serialize)]
struct AccessClaims {
    #[serde(rename = "_id")]
    id: Uuid,
    roles: u8,
    iat: u64,
    exp: u64,
}

#[derive(Debug, Serialize)]
struct RefreshClaims {
    #[serde(rename = "_id")]
    id: Uuid,
    #[serde(rename = "refreshToken")]
    refresh_token: bool,
    iat: u64,
    exp: u64,
}

/// What verification reads from either kind of token.
#[derive(Debug, Deserialize)]
struct AnyClaims {
    #[serde(rename = "_id")]
    id: Uuid,
    roles: Option<u8>,
    #[serde(rename = "refreshToken")]
    refresh_token: Option<bool>,
}

/// A verified access token.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    pub user_id: Uuid,
    pub roles: u8,
}

/// A freshly issued pair, as the login and refresh calls return it.
#[derive(Debug, Serialize)]
pub struct TokenPair {
    pub token: String,
    #[serde(rename = "refreshToken")]
    pub refresh_token: String,
}

struct Key {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

struct Keyring {
    active: String,
    keys: HashMap<String, Key>,
}

/// Issues and checks tokens. Cheap to clone.
#[derive(Clone)]
pub struct Tokens {
    keyring: Arc<RwLock<Arc<Keyring>>>,
    access_ttl: u64,
    refresh_ttl: u64,
    validation: Arc<Validation>,
}

fn parse_secret(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// 256 random bits from the OS, hex-encoded.
pub fn new_secret_hex() -> anyhow::Result<String> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A new key record for the store; `kid` is 64 random bits in hex.
pub fn new_key_record(now: u64) -> anyhow::Result<KeyRecord> {
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))?;
    Ok(KeyRecord {
        kid: id.iter().map(|b| format!("{b:02x}")).collect(),
        secret_hex: new_secret_hex()?,
        created_at: now,
        state: KeyState::Active,
    })
}

fn build_keyring(records: &[KeyRecord], active: &str) -> anyhow::Result<Keyring> {
    let mut keys = HashMap::new();
    for r in records {
        let secret = parse_secret(&r.secret_hex)
            .ok_or_else(|| anyhow::anyhow!("signing key {} is malformed", r.kid))?;
        keys.insert(
            r.kid.clone(),
            Key {
                encoding: EncodingKey::from_secret(&secret),
                decoding: DecodingKey::from_secret(&secret),
            },
        );
    }
    if !keys.contains_key(active) {
        anyhow::bail!("the active signing key {active} is not among the stored keys");
    }
    Ok(Keyring {
        active: active.to_owned(),
        keys,
    })
}

impl Tokens {
    pub fn new(
        records: &[KeyRecord],
        active: &str,
        access_ttl: u64,
        refresh_ttl: u64,
        leeway: u64,
    ) -> anyhow::Result<Tokens> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = leeway;
        validation.set_required_spec_claims(&["exp"]);
        Ok(Tokens {
            keyring: Arc::new(RwLock::new(Arc::new(build_keyring(records, active)?))),
            access_ttl,
            refresh_ttl,
            validation: Arc::new(validation),
        })
    }

    fn ring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Signs a new access + refresh pair for a user, at time `now`.
    pub fn issue(&self, user_id: Uuid, roles: u8, now: u64) -> anyhow::Result<TokenPair> {
        let ring = self.ring();
        let key = ring
            .keys
            .get(&ring.active)
            .ok_or_else(|| anyhow::anyhow!("active key missing from keyring"))?;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(ring.active.clone());
        let access = AccessClaims {
            id: user_id,
            roles,
            iat: now,
            exp: now + self.access_ttl,
        };
        let refresh = RefreshClaims {
            id: user_id,
            refresh_token: true,
            iat: now,
            exp: now + self.refresh_ttl,
        };
        Ok(TokenPair {
            token: jsonwebtoken::encode(&header, &access, &key.encoding)?,
            refresh_token: jsonwebtoken::encode(&header, &refresh, &key.encoding)?,
        })
    }

    fn verify(&self, token: &str) -> Result<AnyClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Invalid);
        }
        let ring = self.ring();
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| ring.keys.get(kid))
            .ok_or(TokenError::Invalid)?;
        jsonwebtoken::decode::<AnyClaims>(token, &key.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }

    /// Checks a bearer token: signature, `exp` (with leeway), and that it
    /// is an access token, not a refresh token.
    pub fn verify_access(&self, token: &str) -> Result<Access, TokenError> {
        let c = self.verify(token)?;
        match (c.roles, c.refresh_token) {
            (_, Some(true)) => Err(TokenError::RefreshNotAccess),
            (Some(roles), _) => Ok(Access {
                user_id: c.id,
                roles,
            }),
            (None, _) => Err(TokenError::Invalid),
        }
    }

    /// Checks a refresh token and returns the user id it was issued to.
    pub fn verify_refresh(&self, token: &str) -> Result<Uuid, TokenError> {
        let c = self.verify(token)?;
        match c.refresh_token {
            Some(true) => Ok(c.id),
            _ => Err(TokenError::AccessNotRefresh),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let rec = new_key_record(1).unwrap();
        Tokens::new(std::slice::from_ref(&rec), &rec.kid, 600, 3600, 0).unwrap()
    }

    #[test]
    fn issue_then_verify_both_kinds() {
        let t = tokens();
        let id = Uuid::new_v4();
        let now = jsonwebtoken::get_current_timestamp();
        let pair = t.issue(id, 159, now).unwrap();
        let a = t.verify_access(&pair.token).unwrap();
        assert_eq!((a.user_id, a.roles), (id, 159));
        assert_eq!(t.verify_refresh(&pair.refresh_token).unwrap(), id);
        assert_eq!(
            t.verify_access(&pair.refresh_token).unwrap_err(),
            TokenError::RefreshNotAccess
        );
        assert_eq!(
            t.verify_refresh(&pair.token).unwrap_err(),
            TokenError::AccessNotRefresh
        );
    }

    #[test]
    fn other_keys_and_expiry_are_refused() {
        let t = tokens();
        let other = tokens();
        let id = Uuid::new_v4();
        let now = jsonwebtoken::get_current_timestamp();
        assert_eq!(
            t.verify_access(&other.issue(id, 1, now).unwrap().token)
                .unwrap_err(),
            TokenError::Invalid
        );
        let old = t.issue(id, 1, now - 4000).unwrap();
        assert_eq!(
            t.verify_access(&old.token).unwrap_err(),
            TokenError::Expired
        );
        assert_eq!(
            t.verify_refresh(&old.refresh_token).unwrap_err(),
            TokenError::Expired
        );
        assert_eq!(
            t.verify_access("not.a.token").unwrap_err(),
            TokenError::Invalid
        );
        assert_eq!(t.verify_access("").unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn secrets_are_256_bits_and_distinct() {
        let a = new_secret_hex().unwrap();
        assert_eq!(parse_secret(&a).unwrap().len(), 32);
        assert_ne!(a, new_secret_hex().unwrap());
        assert!(parse_secret("zz").is_none());
    }
}
