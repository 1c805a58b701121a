//! Signing and verifying the API's JWTs. Key material lives here (built from
//! the store's key records once, not per request) and never leaves: it is
//! not logged, printed or returned.
//!
//! Access tokens carry `_id`, `roles`, `iat`, `exp`; refresh tokens carry
//! `_id`, `refreshToken: true`, `iat`, `exp`. Every token names its key in
//! the `kid` header, so several keys can be valid at once.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

use crate::domain::Roles;
use crate::keys::{KeyRecord, KeyState};

/// Why a token was refused. The message is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("Token expired")]
    Expired,
    #[error("Invalid token")]
    Invalid,
    #[error("A refresh token cannot be used here")]
    RefreshNotAccess,
    #[error("An access token cannot be used to refresh")]
    AccessNotRefresh,
    #[error("Token issued in the future (was the clock changed?)")]
    FromTheFuture,
}

#[derive(Debug, Serialize)]
struct AccessClaims {
    #[serde(rename = "_id")]
    id: Uuid,
    roles: u8,
    iat: u64,
    exp: u64,
    /// The user's token generation at issue time (revocation).
    #[serde(rename = "gen")]
    generation: u64,
}

#[derive(Debug, Serialize)]
struct RefreshClaims<'a> {
    #[serde(rename = "_id")]
    id: Uuid,
    #[serde(rename = "refreshToken")]
    refresh_token: bool,
    iat: u64,
    exp: u64,
    #[serde(rename = "gen")]
    generation: u64,
    /// Random id; the store keeps only its SHA-256.
    jti: &'a str,
}

/// What verification reads from either kind of token.
#[derive(Debug, Deserialize)]
struct AnyClaims {
    #[serde(rename = "_id")]
    id: Uuid,
    roles: Option<u8>,
    #[serde(rename = "refreshToken")]
    refresh_token: Option<bool>,
    iat: u64,
    exp: u64,
    #[serde(default, rename = "gen")]
    generation: u64,
    jti: Option<String>,
}

/// A verified access token.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    pub user_id: Uuid,
    /// The roles the token claims (authorization reads the stored ones).
    pub roles: Roles,
    pub generation: u64,
    /// `iat`: the session that issued the token rotated (or began) then.
    pub issued_at: u64,
}

/// A verified refresh token.
#[derive(Debug, Clone)]
pub struct Refresh {
    pub user_id: Uuid,
    pub generation: u64,
    /// SHA-256 of the token's `jti`: what the store keeps of it.
    pub id_hash: [u8; 32],
    /// The session the `jti` names (`None` for tokens issued before the
    /// `jti` carried it).
    pub session: Option<Uuid>,
    pub exp: u64,
}

/// SHA-256 of a refresh token id.
pub fn hash_jti(jti: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(jti.as_bytes()).into()
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))?;
    Ok(crate::hex::encode(&buf))
}

/// A fresh refresh-token id and its SHA-256 (what the store keeps). The
/// `jti` is `<session>.<128 random bits>`: it names its session so the
/// store reads one record per rotation, and stays unguessable.
pub struct RefreshId {
    pub jti: String,
    pub hash: [u8; 32],
}

/// The session named by a `jti`, if it has the `<session>.<random>` form.
fn session_of(jti: &str) -> Option<Uuid> {
    let (session, _) = jti.split_once('.')?;
    Uuid::try_parse(session).ok()
}

impl RefreshId {
    pub fn new(session: Uuid) -> anyhow::Result<RefreshId> {
        let jti = format!("{}.{}", session.simple(), random_hex(16)?);
        Ok(RefreshId {
            hash: hash_jti(&jti),
            jti,
        })
    }
}

/// What [`Tokens::issue`] needs to know about the session.
pub struct Issue<'a> {
    pub user_id: Uuid,
    pub roles: Roles,
    pub generation: u64,
    pub now: u64,
    /// The refresh token's id and `exp` (already capped to the session's end).
    pub refresh_id: &'a RefreshId,
    pub refresh_exp: u64,
}

/// A freshly issued pair. How it reaches the client (both in JSON, or the
/// refresh token as a cookie) is the HTTP layer's choice.
#[derive(Debug)]
pub struct TokenPair {
    pub token: String,
    pub refresh_token: String,
    /// When both were issued, and when each expires (Unix seconds).
    pub issued_at: u64,
    pub access_exp: u64,
    pub refresh_exp: u64,
}

impl TokenPair {
    /// The access token's remaining lifetime at issue, in seconds.
    pub fn access_lifetime_secs(&self) -> u64 {
        self.access_exp.saturating_sub(self.issued_at)
    }

    /// The same in milliseconds (the token responses' `expires`).
    pub fn expires_in_ms(&self) -> u64 {
        self.access_lifetime_secs() * 1000
    }

    /// The refresh token's remaining lifetime at issue, in seconds.
    pub fn refresh_lifetime_secs(&self) -> u64 {
        self.refresh_exp.saturating_sub(self.issued_at)
    }
}

struct Key {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

struct Keyring {
    active: String,
    keys: HashMap<String, Key>,
    /// Access tokens this keyring verified, by their exact text, so a
    /// client presenting the same token again (every request until it
    /// expires) skips the base64, JSON and HMAC work. Only tokens that
    /// verified get in; times are still checked on every use. A new
    /// keyring (rotation, key deletion) starts empty.
    verified: RwLock<HashMap<Box<str>, VerifiedAccess>>,
}

#[derive(Clone, Copy)]
struct VerifiedAccess {
    access: Access,
    iat: u64,
    exp: u64,
}

/// RFC 7515/7519: the header and the claims are UTF-8 JSON. serde_json
/// skips the strings of fields it ignores without checking their UTF-8,
/// so a token with a stray byte in an unknown claim would otherwise pass
/// (only a holder of our key could make one, but the contract is strict).
/// Called after the signature check, so only genuine tokens pay for it.
fn json_segments_are_utf8(token: &str) -> bool {
    use base64::Engine as _;
    token.split('.').take(2).all(|segment| {
        base64::prelude::BASE64_URL_SAFE_NO_PAD
            .decode(segment)
            .is_ok_and(|bytes| std::str::from_utf8(&bytes).is_ok())
    })
}

/// Bound on [`Keyring::verified`]; when full it starts over.
const VERIFIED_CACHE: usize = 4096;

fn parse_secret(hex: &str) -> Option<[u8; 32]> {
    crate::hex::decode(hex)
}

/// 256 random bits from the OS, hex-encoded.
pub fn new_secret_hex() -> anyhow::Result<String> {
    random_hex(32)
}

/// A new key record for the store; `kid` is 64 random bits in hex.
pub fn new_key_record(now: u64) -> anyhow::Result<KeyRecord> {
    Ok(KeyRecord {
        kid: random_hex(8)?,
        secret_hex: new_secret_hex()?,
        created_at: now,
        state: KeyState::Active,
        retired_at: None,
    })
}

/// Parses every key once, so requests never parse key material.
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
        verified: RwLock::default(),
    })
}

/// Issues and checks tokens. Cheap to clone; the keyring can be swapped
/// at run time (key rotation) without blocking verifiers.
#[derive(Clone)]
pub struct Tokens {
    keyring: Arc<RwLock<Arc<Keyring>>>,
    access_ttl: u64,
    leeway: u64,
    validation: Arc<Validation>,
}

impl Tokens {
    pub fn new(
        records: &[KeyRecord],
        active: &str,
        access_ttl: u64,
        leeway: u64,
    ) -> anyhow::Result<Tokens> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Time claims are checked below against the caller's clock, not
        // the library's, so tests and the clock-jump logic see one clock.
        validation.validate_exp = false;
        validation.set_required_spec_claims::<&str>(&[]);
        Ok(Tokens {
            keyring: Arc::new(RwLock::new(Arc::new(build_keyring(records, active)?))),
            access_ttl,
            leeway,
            validation: Arc::new(validation),
        })
    }

    /// Replaces the keyring (after a rotation or a retired key's deletion).
    pub fn reload(&self, records: &[KeyRecord], active: &str) -> anyhow::Result<()> {
        let ring = Arc::new(build_keyring(records, active)?);
        match self.keyring.write() {
            Ok(mut g) => *g = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        Ok(())
    }

    fn ring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Signs a new access + refresh pair.
    pub fn issue(&self, req: &Issue) -> anyhow::Result<TokenPair> {
        let ring = self.ring();
        let key = ring
            .keys
            .get(&ring.active)
            .ok_or_else(|| anyhow::anyhow!("active key missing from keyring"))?;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(ring.active.clone());
        let access = AccessClaims {
            id: req.user_id,
            roles: req.roles.bits(),
            iat: req.now,
            exp: req.now + self.access_ttl,
            generation: req.generation,
        };
        let refresh = RefreshClaims {
            id: req.user_id,
            refresh_token: true,
            iat: req.now,
            exp: req.refresh_exp,
            generation: req.generation,
            jti: &req.refresh_id.jti,
        };
        Ok(TokenPair {
            token: jsonwebtoken::encode(&header, &access, &key.encoding)?,
            refresh_token: jsonwebtoken::encode(&header, &refresh, &key.encoding)?,
            issued_at: req.now,
            access_exp: access.exp,
            refresh_exp: req.refresh_exp,
        })
    }

    fn verify(&self, token: &str, now: u64) -> Result<AnyClaims, TokenError> {
        self.verify_inner(token, now, true)
    }

    fn verify_inner(
        &self,
        token: &str,
        now: u64,
        check_exp: bool,
    ) -> Result<AnyClaims, TokenError> {
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
        let claims = jsonwebtoken::decode::<AnyClaims>(token, &key.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|_| TokenError::Invalid)?;
        if !json_segments_are_utf8(token) {
            return Err(TokenError::Invalid);
        }
        self.check_times(claims.iat, claims.exp, now, check_exp)?;
        Ok(claims)
    }

    fn check_times(&self, iat: u64, exp: u64, now: u64, check_exp: bool) -> Result<(), TokenError> {
        if check_exp && exp.saturating_add(self.leeway) <= now {
            return Err(TokenError::Expired);
        }
        if iat > now.saturating_add(self.leeway) {
            return Err(TokenError::FromTheFuture);
        }
        Ok(())
    }

    /// Checks a bearer token: signature, `exp` and `iat` (with leeway), and
    /// that it is an access token, not a refresh token.
    pub fn verify_access(&self, token: &str, now: u64) -> Result<Access, TokenError> {
        let ring = self.ring();
        let hit = match ring.verified.read() {
            Ok(m) => m.get(token).copied(),
            Err(p) => p.into_inner().get(token).copied(),
        };
        if let Some(v) = hit {
            self.check_times(v.iat, v.exp, now, true)?;
            return Ok(v.access);
        }
        let c = self.verify(token, now)?;
        let access = match (c.roles, c.refresh_token) {
            (_, Some(true)) => return Err(TokenError::RefreshNotAccess),
            (Some(roles), _) => Access {
                user_id: c.id,
                roles: Roles::from_bits(roles),
                generation: c.generation,
                issued_at: c.iat,
            },
            (None, _) => return Err(TokenError::Invalid),
        };
        let mut m = ring.verified.write().unwrap_or_else(|p| p.into_inner());
        if m.len() >= VERIFIED_CACHE {
            m.clear();
        }
        m.insert(
            token.into(),
            VerifiedAccess {
                access,
                iat: c.iat,
                exp: c.exp,
            },
        );
        Ok(access)
    }

    /// Checks a refresh token (signature, times, kind).
    pub fn verify_refresh(&self, token: &str, now: u64) -> Result<Refresh, TokenError> {
        self.refresh_claims(self.verify(token, now)?)
    }

    /// Like [`Tokens::verify_refresh`] but accepts an expired token: logout
    /// must still find (and end) the session an expired token belongs to,
    /// whose newer tokens may be alive.
    pub fn verify_refresh_for_logout(&self, token: &str, now: u64) -> Result<Refresh, TokenError> {
        self.refresh_claims(self.verify_inner(token, now, false)?)
    }

    fn refresh_claims(&self, c: AnyClaims) -> Result<Refresh, TokenError> {
        match (c.refresh_token, c.jti) {
            (Some(true), Some(jti)) => Ok(Refresh {
                user_id: c.id,
                generation: c.generation,
                id_hash: hash_jti(&jti),
                session: session_of(&jti),
                exp: c.exp,
            }),
            (Some(true), None) => Err(TokenError::Invalid),
            _ => Err(TokenError::AccessNotRefresh),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let rec = new_key_record(1).unwrap();
        Tokens::new(std::slice::from_ref(&rec), &rec.kid, 600, 0).unwrap()
    }

    const SESSION: Uuid = Uuid::from_u128(0x1234);

    struct Issued {
        pair: TokenPair,
        refresh_hash: [u8; 32],
    }

    fn issue(t: &Tokens, id: Uuid, now: u64) -> Issued {
        let rid = RefreshId::new(SESSION).unwrap();
        let pair = t
            .issue(&Issue {
                user_id: id,
                roles: Roles::ALL,
                generation: 3,
                now,
                refresh_id: &rid,
                refresh_exp: now + 3600,
            })
            .unwrap();
        Issued {
            pair,
            refresh_hash: rid.hash,
        }
    }

    #[test]
    fn issue_then_verify_both_kinds() {
        let t = tokens();
        let id = Uuid::new_v4();
        let issued = issue(&t, id, 1000);
        let a = t.verify_access(&issued.pair.token, 1000).unwrap();
        assert_eq!((a.user_id, a.roles.bits(), a.generation), (id, 159, 3));
        let r = t.verify_refresh(&issued.pair.refresh_token, 1000).unwrap();
        assert_eq!((r.user_id, r.generation, r.exp), (id, 3, 4600));
        assert_eq!(r.id_hash, issued.refresh_hash);
        assert_eq!(r.session, Some(SESSION));
        assert_eq!(session_of("0123abcd"), None, "old-layout jti");
        assert_eq!(session_of("nope.0123"), None);
        assert_eq!(
            t.verify_access(&issued.pair.refresh_token, 1000)
                .unwrap_err(),
            TokenError::RefreshNotAccess
        );
        assert_eq!(
            t.verify_refresh(&issued.pair.token, 1000).unwrap_err(),
            TokenError::AccessNotRefresh
        );
        assert_ne!(issue(&t, id, 1000).refresh_hash, issued.refresh_hash);
    }

    #[test]
    fn other_keys_times_and_garbage_are_refused() {
        let t = tokens();
        let other = tokens();
        let id = Uuid::new_v4();
        assert_eq!(
            t.verify_access(&issue(&other, id, 1000).pair.token, 1000)
                .unwrap_err(),
            TokenError::Invalid
        );
        let old = issue(&t, id, 1000);
        assert_eq!(
            t.verify_access(&old.pair.token, 1600).unwrap_err(),
            TokenError::Expired
        );
        assert!(t.verify_access(&old.pair.token, 1599).is_ok());
        // Now it is in the verified cache: times are still checked...
        assert_eq!(
            t.verify_access(&old.pair.token, 1600).unwrap_err(),
            TokenError::Expired
        );
        // ...and a copy with another payload is not a hit.
        let mut parts: Vec<String> = old.pair.token.split('.').map(String::from).collect();
        parts[1] = issue(&t, Uuid::new_v4(), 1000)
            .pair
            .token
            .split('.')
            .nth(1)
            .unwrap()
            .into();
        assert_eq!(
            t.verify_access(&parts.join("."), 1000).unwrap_err(),
            TokenError::Invalid
        );
        assert_eq!(
            t.verify_refresh(&old.pair.refresh_token, 4600).unwrap_err(),
            TokenError::Expired
        );
        assert_eq!(
            t.verify_access(&old.pair.token, 999).unwrap_err(),
            TokenError::FromTheFuture
        );
        assert_eq!(
            t.verify_access("not.a.token", 1000).unwrap_err(),
            TokenError::Invalid
        );
        assert_eq!(t.verify_access("", 1000).unwrap_err(), TokenError::Invalid);
    }

    /// Signs raw header and payload bytes with `t`'s active key, as only a
    /// holder of the key could.
    fn sign_raw(t: &Tokens, header: &[u8], payload: &[u8]) -> String {
        use base64::Engine as _;
        let b64 = base64::prelude::BASE64_URL_SAFE_NO_PAD;
        let message = format!("{}.{}", b64.encode(header), b64.encode(payload));
        let ring = t.ring();
        let key = &ring.keys[&ring.active];
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key.encoding, Algorithm::HS256)
            .unwrap();
        format!("{message}.{sig}")
    }

    #[test]
    fn signed_segments_that_are_not_utf8_are_refused() {
        // Found by fuzz/token_claims: serde skips an unknown claim's string
        // without checking its UTF-8, so this verified before.
        let t = tokens();
        let kid = t.ring().active.clone();
        let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#);
        let id = Uuid::new_v4();
        let claims = |extra: &[u8]| {
            let mut p =
                format!(r#"{{"_id":"{id}","roles":159,"iat":1000,"exp":1600,"x":""#).into_bytes();
            p.extend_from_slice(extra);
            p.extend_from_slice(br#""}"#);
            p
        };
        let fine = sign_raw(&t, header.as_bytes(), &claims(b"\xc3\xa9"));
        assert_eq!(t.verify_access(&fine, 1000).unwrap().roles.bits(), 159);
        let bad_claims = sign_raw(&t, header.as_bytes(), &claims(b"\xff"));
        assert_eq!(
            t.verify_access(&bad_claims, 1000).unwrap_err(),
            TokenError::Invalid
        );
        let bad_header = format!(r#"{{"alg":"HS256","kid":"{kid}","x":""#).into_bytes();
        let bad_header = [bad_header.as_slice(), b"\xff\"}"].concat();
        assert_eq!(
            t.verify_access(&sign_raw(&t, &bad_header, &claims(b"")), 1000)
                .unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_until_their_key_is_dropped() {
        let first = new_key_record(1).unwrap();
        let t = Tokens::new(std::slice::from_ref(&first), &first.kid, 600, 0).unwrap();
        let before = issue(&t, Uuid::new_v4(), 1000);
        let second = new_key_record(2).unwrap();
        t.reload(&[first.clone(), second.clone()], &second.kid)
            .unwrap();
        assert!(t.verify_access(&before.pair.token, 1000).is_ok());
        let after = issue(&t, Uuid::new_v4(), 1000);
        assert!(after.pair.token.len() > 10 && t.verify_access(&after.pair.token, 1000).is_ok());
        t.reload(std::slice::from_ref(&second), &second.kid)
            .unwrap();
        assert_eq!(
            t.verify_access(&before.pair.token, 1000).unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn secrets_are_256_bits_and_distinct() {
        let a = new_secret_hex().unwrap();
        assert_eq!(parse_secret(&a).unwrap().len(), 32);
        assert_ne!(a, new_secret_hex().unwrap());
        assert!(parse_secret("zz").is_none());
    }
}
