//! Signing and verifying the API's JWTs. Key material lives here (built from
//! the store's key records once, not per request) and never leaves: it is
//! not logged, printed or returned.
//!
//! Access tokens carry `_id`, `roles`, `iat`, `exp`; refresh tokens carry
//! `_id`, `refreshToken: true`, `iat`, `exp`. Every token names its key in
//! the `kid` header, so several keys can be valid at once.
//!
//! A key signs with HS256 (a shared secret), EdDSA (Ed25519) or ES256
//! (ECDSA P-256). The key a token's `kid` names decides the algorithm,
//! never the token's header: a header whose `alg` is not its key's is
//! refused, and a key the token brings along or points to (`jwk`, `jku`,
//! `x5u`, `x5c`) is never used. The public halves of the EdDSA and ES256
//! keys are published as a JWKS ([`Tokens::jwks`], RFC 7517, 7518 and
//! 8037), rendered once per keyring.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

use crate::domain::Roles;
use crate::keys::{KeyAlg, KeyRecord, KeyState};

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
    alg: KeyAlg,
    created_at: u64,
    signer: Signer,
    decoding: DecodingKey,
}

/// A key's private half, parsed once. The asymmetric keys are kept
/// expanded and signed with directly: jsonwebtoken's `encode` parses and
/// expands a PKCS#8 key at every signature, which doubles the cost of an
/// Ed25519 one.
enum Signer {
    Hmac(EncodingKey),
    Ed25519(Box<ed25519_dalek::SigningKey>),
    P256(Box<p256::ecdsa::SigningKey>),
}

impl Key {
    /// A compact JWS of `claims`, as `jsonwebtoken::encode` writes it.
    fn sign<T: Serialize>(&self, header: &Header, claims: &T) -> anyhow::Result<String> {
        use base64::Engine as _;
        let b64 = base64::prelude::BASE64_URL_SAFE_NO_PAD;
        let message = || -> anyhow::Result<String> {
            Ok(format!(
                "{}.{}",
                b64.encode(serde_json::to_vec(header)?),
                b64.encode(serde_json::to_vec(claims)?)
            ))
        };
        let (message, signature) = match &self.signer {
            Signer::Hmac(encoding) => return Ok(jsonwebtoken::encode(header, claims, encoding)?),
            Signer::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                let message = message()?;
                let signature = key.sign(message.as_bytes()).to_bytes();
                (message, signature)
            }
            Signer::P256(key) => {
                use p256::ecdsa::signature::Signer as _;
                let message = message()?;
                // RFC 7518 section 3.4: R and S, 32 bytes each, not DER.
                let signature: p256::ecdsa::Signature = key.sign(message.as_bytes());
                (message, signature.to_bytes().into())
            }
        };
        Ok(format!("{message}.{}", b64.encode(signature)))
    }
}

impl KeyAlg {
    fn jwt(self) -> Algorithm {
        match self {
            KeyAlg::HS256 => Algorithm::HS256,
            KeyAlg::EdDSA => Algorithm::EdDSA,
            KeyAlg::ES256 => Algorithm::ES256,
        }
    }
}

struct Keyring {
    active: String,
    keys: HashMap<String, Key>,
    /// Every kid, newest key first (who signs while a new key is unknown
    /// to verifiers' cached key sets).
    newest_first: Vec<String>,
    /// The published key set (the EdDSA and ES256 keys' public halves), as served.
    jwks: String,
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

/// A new key record for the store; `kid` is 64 random bits in hex. Every
/// algorithm's secret is 32 bytes from the OS: for EdDSA the seed of the
/// private key (RFC 8032), for ES256 the private scalar, drawn again in
/// the rare case (2^-32) that it is not below the curve's order.
pub fn new_key_record(now: u64, alg: KeyAlg) -> anyhow::Result<KeyRecord> {
    let mut secret_hex = new_secret_hex()?;
    while alg == KeyAlg::ES256 && p256_key(&secret_hex).is_none() {
        secret_hex = new_secret_hex()?;
    }
    Ok(KeyRecord {
        kid: random_hex(8)?,
        secret_hex,
        alg,
        created_at: now,
        state: KeyState::Active,
        retired_at: None,
    })
}

/// The P-256 private key whose scalar is `hex`, if it is one (not zero,
/// below the order).
fn p256_key(hex: &str) -> Option<p256::ecdsa::SigningKey> {
    let secret = parse_secret(hex)?;
    p256::ecdsa::SigningKey::from_bytes(&secret.into()).ok()
}

/// The public key of an Ed25519 seed (RFC 8032 section 5.1.5).
fn ed25519_public(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

/// One published key: an OKP key (RFC 8037 section 2) or an EC key (RFC
/// 7518 section 6.2), with RFC 7517's `kid`, `alg`, `use`.
#[derive(Serialize)]
struct Jwk<'a> {
    kty: &'static str,
    crv: &'static str,
    x: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    kid: &'a str,
    alg: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
}

/// Parses every key once, so requests never parse key material.
fn build_keyring(records: &[KeyRecord], active: &str) -> anyhow::Result<Keyring> {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::prelude::BASE64_URL_SAFE_NO_PAD.encode(bytes);
    let mut keys = HashMap::new();
    // (is active, created at, the key as published)
    let mut published: Vec<(bool, u64, Jwk)> = Vec::new();
    for r in records {
        let malformed = || anyhow::anyhow!("signing key {} is malformed", r.kid);
        let secret = parse_secret(&r.secret_hex).ok_or_else(malformed)?;
        let jwk = |kty, crv, x, y| Jwk {
            kty,
            crv,
            x,
            y,
            kid: r.kid.as_str(),
            alg: r.alg.as_str(),
            use_: "sig",
        };
        let (signer, decoding, public) = match r.alg {
            KeyAlg::HS256 => (
                Signer::Hmac(EncodingKey::from_secret(&secret)),
                DecodingKey::from_secret(&secret),
                None,
            ),
            KeyAlg::EdDSA => {
                let public = ed25519_public(&secret);
                (
                    Signer::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&secret))),
                    DecodingKey::from_ed_der(&public),
                    Some(jwk("OKP", "Ed25519", b64(&public), None)),
                )
            }
            KeyAlg::ES256 => {
                let key = p256_key(&r.secret_hex).ok_or_else(malformed)?;
                let point = key.verifying_key().to_encoded_point(false);
                let (x, y) = (
                    b64(point.x().ok_or_else(malformed)?),
                    b64(point.y().ok_or_else(malformed)?),
                );
                (
                    Signer::P256(Box::new(key)),
                    DecodingKey::from_ec_components(&x, &y)?,
                    Some(jwk("EC", "P-256", x, Some(y))),
                )
            }
        };
        if let Some(jwk) = public {
            let is_active = r.state == KeyState::Active && r.kid == active;
            published.push((is_active, r.created_at, jwk));
        }
        let key = Key {
            alg: r.alg,
            created_at: r.created_at,
            signer,
            decoding,
        };
        keys.insert(r.kid.clone(), key);
    }
    if !keys.contains_key(active) {
        anyhow::bail!("the active signing key {active} is not among the stored keys");
    }
    // The active key first, then the newest.
    published.sort_by_key(|(is_active, created, _)| (!is_active, std::cmp::Reverse(*created)));
    let set: Vec<&Jwk> = published.iter().map(|(_, _, jwk)| jwk).collect();
    let jwks = serde_json::to_string(&serde_json::json!({ "keys": set }))?;
    // Made in the same second (a restart that switched the algorithm, quick
    // rotations): the later retired is the newer, the active the newest.
    let mut order: Vec<(u64, u64, String)> = records
        .iter()
        .map(|r| {
            let retired = match r.state {
                KeyState::Active => u64::MAX,
                KeyState::Retired => r.retired_at.unwrap_or(0),
            };
            (r.created_at, retired, r.kid.clone())
        })
        .collect();
    order.sort_by(|a, b| b.cmp(a));
    let newest_first: Vec<String> = order.into_iter().map(|(_, _, kid)| kid).collect();
    Ok(Keyring {
        active: active.to_owned(),
        keys,
        newest_first,
        jwks,
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
    /// What new keys sign with (`--signing-alg`).
    signing_alg: KeyAlg,
    /// How long verifiers may cache the published key set: a new EdDSA key
    /// signs only once it has been published this long.
    jwks_max_age: u64,
    /// One validation per algorithm, each allowing only its own.
    hs256: Arc<Validation>,
    eddsa: Arc<Validation>,
    es256: Arc<Validation>,
}

impl Tokens {
    pub fn new(
        records: &[KeyRecord],
        active: &str,
        access_ttl: u64,
        leeway: u64,
        signing_alg: KeyAlg,
        jwks_max_age: u64,
    ) -> anyhow::Result<Tokens> {
        let validation = |alg| {
            let mut v = Validation::new(alg);
            // Time claims are checked below against the caller's clock, not
            // the library's, so tests and the clock-jump logic see one clock.
            v.validate_exp = false;
            v.set_required_spec_claims::<&str>(&[]);
            Arc::new(v)
        };
        Ok(Tokens {
            keyring: Arc::new(RwLock::new(Arc::new(build_keyring(records, active)?))),
            access_ttl,
            leeway,
            signing_alg,
            jwks_max_age,
            hs256: validation(Algorithm::HS256),
            eddsa: validation(Algorithm::EdDSA),
            es256: validation(Algorithm::ES256),
        })
    }

    /// The algorithm new keys get (`--signing-alg`).
    pub fn signing_alg(&self) -> KeyAlg {
        self.signing_alg
    }

    /// The published key set: the public keys of the EdDSA keys in the
    /// keyring, the active one first (an empty set when every key is
    /// HS256: shared secrets are never published).
    pub fn jwks(&self) -> String {
        self.ring().jwks.clone()
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
        let (kid, key) = self.signer(&ring, req.now)?;
        let mut header = Header::new(key.alg.jwt());
        header.kid = Some(kid.to_owned());
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
            token: key.sign(&header, &access)?,
            refresh_token: key.sign(&header, &refresh)?,
            issued_at: req.now,
            access_exp: access.exp,
            refresh_exp: req.refresh_exp,
        })
    }

    /// The key that signs at `now`: the active key, except that a new
    /// EdDSA key is published for `jwks_max_age` before it signs (a
    /// verifier holding the key set it fetched just before the rotation
    /// must find every new token's key once it fetches again); meanwhile
    /// the newest key published that long signs, or, when every key is
    /// younger (rotations in quick succession after a start), the oldest,
    /// the one published first. A key with no predecessor (the first, or
    /// after a revocation) signs at once. Either way a retired key signs
    /// for at most `jwks_max_age` after its retirement, which is when its
    /// successor was made.
    fn signer<'r>(&self, ring: &'r Keyring, now: u64) -> anyhow::Result<(&'r str, &'r Key)> {
        let active = ring
            .keys
            .get(&ring.active)
            .ok_or_else(|| anyhow::anyhow!("active key missing from keyring"))?;
        // Strictly later: `created_at` is the second the key was made in,
        // so this waits at least the whole max-age in real time.
        let settled = |k: &Key| k.created_at.saturating_add(self.jwks_max_age) < now;
        if !active.alg.is_published() || settled(active) {
            return Ok((&ring.active, active));
        }
        for kid in &ring.newest_first {
            if let Some(k) = ring.keys.get(kid)
                && *kid != ring.active
                && settled(k)
            {
                return Ok((kid, k));
            }
        }
        let oldest = ring
            .newest_first
            .last()
            .and_then(|kid| Some((kid, ring.keys.get(kid)?)));
        Ok(oldest.map_or((&ring.active, active), |(kid, k)| (kid.as_str(), k)))
    }

    /// The kid that signs new tokens at `now` (see [`Tokens::issue`]).
    pub fn signing_kid(&self, now: u64) -> Option<String> {
        let ring = self.ring();
        self.signer(&ring, now).ok().map(|(kid, _)| kid.to_owned())
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
        // Keys come from our keyring only, by `kid`: a key the token brings
        // along (`jwk`, `x5c`) or points to (`jku`, `x5u`) is never read,
        // let alone fetched (hardening::tokens).
        let ring = self.ring();
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| ring.keys.get(kid))
            .ok_or(TokenError::Invalid)?;
        // The key decides the algorithm: an EdDSA key's public half offered
        // as an HS256 secret, or `none`, never gets this far.
        if header.alg != key.alg.jwt() {
            return Err(TokenError::Invalid);
        }
        let validation = match key.alg {
            KeyAlg::HS256 => &self.hs256,
            KeyAlg::EdDSA => &self.eddsa,
            KeyAlg::ES256 => &self.es256,
        };
        let claims = jsonwebtoken::decode::<AnyClaims>(token, &key.decoding, validation)
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
        tokens_with(KeyAlg::HS256)
    }

    fn tokens_with(alg: KeyAlg) -> Tokens {
        keyed(alg).0
    }

    /// A keyring of one new key, and its record (the test knows the secret).
    fn keyed(alg: KeyAlg) -> (Tokens, KeyRecord) {
        let rec = new_key_record(1, alg).unwrap();
        let t = Tokens::new(std::slice::from_ref(&rec), &rec.kid, 600, 0, alg, 300).unwrap();
        (t, rec)
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
        let Signer::Hmac(encoding) = &key.signer else {
            panic!("sign_raw signs with an HS256 key")
        };
        let sig =
            jsonwebtoken::crypto::sign(message.as_bytes(), encoding, Algorithm::HS256).unwrap();
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
        let first = new_key_record(1, KeyAlg::HS256).unwrap();
        let t = Tokens::new(
            std::slice::from_ref(&first),
            &first.kid,
            600,
            0,
            KeyAlg::HS256,
            300,
        )
        .unwrap();
        let before = issue(&t, Uuid::new_v4(), 1000);
        let second = new_key_record(2, KeyAlg::EdDSA).unwrap();
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

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::prelude::BASE64_URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with this header and an admin's claims, signed by `sign`
    /// over `header.payload` (an attacker's choice of key and algorithm).
    fn forged(header: serde_json::Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let claims = serde_json::json!({"_id": Uuid::new_v4(), "roles": 159, "iat": 1000, "exp": 1600, "gen": 3});
        let message = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = sign(message.as_bytes());
        format!("{message}.{}", b64(&sig))
    }

    fn hmac(secret: &[u8], message: &[u8]) -> Vec<u8> {
        let key = EncodingKey::from_secret(secret);
        let sig = jsonwebtoken::crypto::sign(message, &key, Algorithm::HS256).unwrap();
        base64::Engine::decode(&base64::prelude::BASE64_URL_SAFE_NO_PAD, sig).unwrap()
    }

    fn ed_sign(seed: &[u8; 32], message: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        ed25519_dalek::SigningKey::from_bytes(seed)
            .sign(message)
            .to_bytes()
            .to_vec()
    }

    fn published_x(t: &Tokens) -> (String, String) {
        let set: serde_json::Value = serde_json::from_str(&t.jwks()).unwrap();
        let k = &set["keys"][0];
        (
            k["kid"].as_str().unwrap().into(),
            k["x"].as_str().unwrap().into(),
        )
    }

    #[test]
    fn eddsa_tokens_verify_and_their_public_key_is_published() {
        let (t, rec) = keyed(KeyAlg::EdDSA);
        let issued = issue(&t, Uuid::new_v4(), 1000);
        let header = jsonwebtoken::decode_header(&issued.pair.token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        // Our signing (the expanded key kept) writes exactly what
        // jsonwebtoken's `encode` does with the PKCS#8 key (RFC 8410: this
        // fixed prefix, then the seed): Ed25519 signatures are deterministic.
        const ED25519_PKCS8_PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let ring = t.ring();
        let key = &ring.keys[&ring.active];
        let seed = parse_secret(&rec.secret_hex).unwrap();
        let der = [&ED25519_PKCS8_PREFIX[..], &seed].concat();
        let claims = serde_json::json!({"_id": Uuid::nil(), "roles": 1, "iat": 1, "exp": 2});
        assert_eq!(
            key.sign(&header, &claims).unwrap(),
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&der)).unwrap()
        );
        // Only kty, crv, x, kid, alg and use: never the private half (`d`).
        published_alone(&t, &issued, "OKP", "Ed25519", 6);
    }

    /// Checks that `issued` verifies, that the key set holds only its key,
    /// of this kind and with `fields` fields (none of them the private
    /// half), and that the published key verifies the token through
    /// jsonwebtoken's own JWK path, independent of the keyring. Returns
    /// the published key.
    fn published_alone(
        t: &Tokens,
        issued: &Issued,
        kty: &str,
        crv: &str,
        fields: usize,
    ) -> serde_json::Value {
        let header = jsonwebtoken::decode_header(&issued.pair.token).unwrap();
        assert!(t.verify_access(&issued.pair.token, 1000).is_ok());
        assert!(t.verify_refresh(&issued.pair.refresh_token, 1000).is_ok());
        let set: serde_json::Value = serde_json::from_str(&t.jwks()).unwrap();
        let keys = set["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        let k = &keys[0];
        assert_eq!(k["kid"], header.kid.unwrap().as_str());
        let alg = serde_json::to_value(header.alg).unwrap();
        assert_eq!(
            (&k["kty"], &k["crv"], &k["alg"], &k["use"]),
            (
                &serde_json::json!(kty),
                &serde_json::json!(crv),
                &alg,
                &serde_json::json!("sig")
            )
        );
        assert_eq!(k.as_object().unwrap().len(), fields, "{k}");
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(k.clone()).unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let mut v = Validation::new(header.alg);
        v.validate_exp = false;
        v.set_required_spec_claims::<&str>(&[]);
        assert!(jsonwebtoken::decode::<serde_json::Value>(&issued.pair.token, &key, &v).is_ok());
        k.clone()
    }

    #[test]
    fn es256_tokens_verify_and_their_public_key_is_published() {
        let (t, rec) = keyed(KeyAlg::ES256);
        let issued = issue(&t, Uuid::new_v4(), 1000);
        let header = jsonwebtoken::decode_header(&issued.pair.token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        // RFC 7518 section 3.4: the signature is R and S, 64 bytes, not DER.
        let sig = issued.pair.token.rsplit('.').next().unwrap();
        let sig = base64::Engine::decode(&base64::prelude::BASE64_URL_SAFE_NO_PAD, sig).unwrap();
        assert_eq!(sig.len(), 64);
        // Only kty, crv, x, y, kid, alg and use: never the private scalar (`d`).
        let k = published_alone(&t, &issued, "EC", "P-256", 7);
        assert!(!t.jwks().contains(&rec.secret_hex));
        for coordinate in [&k["x"], &k["y"]] {
            let bytes = base64::Engine::decode(
                &base64::prelude::BASE64_URL_SAFE_NO_PAD,
                coordinate.as_str().unwrap(),
            )
            .unwrap();
            assert_eq!(bytes.len(), 32);
        }
    }

    #[test]
    fn es256_confusion_and_foreign_keys_are_refused() {
        use p256::ecdsa::signature::Signer as _;
        let (t, rec) = keyed(KeyAlg::ES256);
        let set: serde_json::Value = serde_json::from_str(&t.jwks()).unwrap();
        let k = &set["keys"][0];
        let kid = k["kid"].as_str().unwrap();
        let p256_sign = |hex: &str, m: &[u8]| {
            let sig: p256::ecdsa::Signature = p256_key(hex).unwrap().sign(m);
            sig.to_bytes().to_vec()
        };
        // The public key's coordinates, or the whole set, as an HS256 secret.
        for secret in [
            k["x"].as_str().unwrap().as_bytes().to_vec(),
            k["y"].as_str().unwrap().as_bytes().to_vec(),
            t.jwks().into_bytes(),
        ] {
            let token = forged(serde_json::json!({"alg": "HS256", "kid": kid}), |m| {
                hmac(&secret, m)
            });
            assert_eq!(
                t.verify_access(&token, 1000).unwrap_err(),
                TokenError::Invalid
            );
        }
        // Another P-256 key's signature under our kid, or with that key
        // embedded; our key's signature relabelled EdDSA or HS256.
        let theirs = new_key_record(1, KeyAlg::ES256).unwrap();
        let their_point = p256_key(&theirs.secret_hex)
            .unwrap()
            .verifying_key()
            .to_encoded_point(false);
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(their_point.x().unwrap()), "y": b64(their_point.y().unwrap())});
        for (header, signer) in [
            (
                serde_json::json!({"alg": "ES256", "kid": kid}),
                &theirs.secret_hex,
            ),
            (
                serde_json::json!({"alg": "ES256", "kid": kid, "jwk": jwk}),
                &theirs.secret_hex,
            ),
            (
                serde_json::json!({"alg": "EdDSA", "kid": kid}),
                &rec.secret_hex,
            ),
            (
                serde_json::json!({"alg": "HS256", "kid": kid}),
                &rec.secret_hex,
            ),
            (
                serde_json::json!({"alg": "ES384", "kid": kid}),
                &rec.secret_hex,
            ),
        ] {
            let token = forged(header.clone(), |m| p256_sign(signer, m));
            assert_eq!(
                t.verify_access(&token, 1000).unwrap_err(),
                TokenError::Invalid,
                "{header}"
            );
        }
        // Our own key's signature with a plain header passes (the forger
        // above is sound).
        let genuine = forged(serde_json::json!({"alg": "ES256", "kid": kid}), |m| {
            p256_sign(&rec.secret_hex, m)
        });
        assert!(t.verify_access(&genuine, 1000).is_ok());
    }

    #[test]
    fn hs256_keys_are_never_published() {
        let t = tokens();
        assert_eq!(t.jwks(), r#"{"keys":[]}"#);
        // Mixed: only the EdDSA one.
        let hs = new_key_record(1, KeyAlg::HS256).unwrap();
        let ed = new_key_record(2, KeyAlg::EdDSA).unwrap();
        t.reload(&[hs.clone(), ed.clone()], &ed.kid).unwrap();
        let set: serde_json::Value = serde_json::from_str(&t.jwks()).unwrap();
        let kids: Vec<_> = set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].clone())
            .collect();
        assert_eq!(kids, [serde_json::json!(ed.kid)]);
        assert!(!t.jwks().contains(&hs.secret_hex) && !t.jwks().contains(&ed.secret_hex));
    }

    #[test]
    fn algorithm_confusion_and_foreign_keys_are_refused() {
        let (t, rec) = keyed(KeyAlg::EdDSA);
        let (kid, x) = published_x(&t);
        let public = base64::Engine::decode(&base64::prelude::BASE64_URL_SAFE_NO_PAD, &x).unwrap();
        // The attacker's own Ed25519 key.
        let seed: [u8; 32] = parse_secret(&new_secret_hex().unwrap()).unwrap();
        // 1. The public key (raw, and as published) used as an HS256 secret.
        for secret in [
            public.clone(),
            x.clone().into_bytes(),
            t.jwks().into_bytes(),
        ] {
            let token = forged(
                serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
                |m| hmac(&secret, m),
            );
            assert_eq!(
                t.verify_access(&token, 1000).unwrap_err(),
                TokenError::Invalid
            );
        }
        // 2. alg none (and its spellings), with or without a signature.
        for alg in ["none", "None", "NONE", ""] {
            let token = forged(serde_json::json!({"alg": alg, "kid": kid}), |_| Vec::new());
            assert_eq!(
                t.verify_access(&token, 1000).unwrap_err(),
                TokenError::Invalid
            );
            let token = token.trim_end_matches('.').to_string();
            assert_eq!(
                t.verify_access(&token, 1000).unwrap_err(),
                TokenError::Invalid
            );
        }
        // 3. A forged kid: our kid on another key's signature, another kid,
        // none at all.
        for header in [
            serde_json::json!({"alg": "EdDSA", "kid": kid}),
            serde_json::json!({"alg": "EdDSA", "kid": "0000000000000000"}),
            serde_json::json!({"alg": "EdDSA"}),
        ] {
            let token = forged(header, |m| ed_sign(&seed, m));
            assert_eq!(
                t.verify_access(&token, 1000).unwrap_err(),
                TokenError::Invalid
            );
        }
        // 4. A key of the token's own: embedded (`jwk`) or at an address
        // (`jku`, `x5u`), signed by that key...
        let own = b64(&ed25519_public(&seed));
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": own, "kid": kid});
        for header in [
            serde_json::json!({"alg": "EdDSA", "kid": kid, "jwk": jwk}),
            serde_json::json!({"alg": "EdDSA", "kid": kid, "jku": "http://127.0.0.1:1/jwks.json"}),
            serde_json::json!({"alg": "EdDSA", "kid": kid, "x5u": "http://127.0.0.1:1/cert.pem"}),
        ] {
            let token = forged(header, |m| ed_sign(&seed, m));
            assert_eq!(
                t.verify_access(&token, 1000).unwrap_err(),
                TokenError::Invalid
            );
        }
        // ...while with our own key's signature such a header changes
        // nothing: the key is always the keyring's.
        let ours = parse_secret(&rec.secret_hex).unwrap();
        let genuine = forged(serde_json::json!({"alg": "EdDSA", "kid": kid}), |m| {
            ed_sign(&ours, m)
        });
        assert!(t.verify_access(&genuine, 1000).is_ok());
        let with_jku = forged(
            serde_json::json!({"alg": "EdDSA", "kid": kid, "jku": "http://127.0.0.1:1/jwks.json"}),
            |m| ed_sign(&ours, m),
        );
        assert!(t.verify_access(&with_jku, 1000).is_ok());
        // 5. An HS256 key's token relabelled EdDSA (and the reverse) is refused.
        let (hs, hs_rec) = keyed(KeyAlg::HS256);
        let hs_kid = hs_rec.kid.clone();
        let hs_secret = parse_secret(&hs_rec.secret_hex).unwrap();
        let relabelled = forged(serde_json::json!({"alg": "EdDSA", "kid": hs_kid}), |m| {
            hmac(&hs_secret, m)
        });
        assert_eq!(
            hs.verify_access(&relabelled, 1000).unwrap_err(),
            TokenError::Invalid
        );
        let as_hs = forged(serde_json::json!({"alg": "HS256", "kid": kid}), |m| {
            ed_sign(&ours, m)
        });
        assert_eq!(
            t.verify_access(&as_hs, 1000).unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn a_new_eddsa_key_signs_only_once_published_for_the_cache_lifetime() {
        let first = new_key_record(1000, KeyAlg::EdDSA).unwrap();
        let t = Tokens::new(
            std::slice::from_ref(&first),
            &first.kid,
            600,
            0,
            KeyAlg::EdDSA,
            300,
        )
        .unwrap();
        // The only key signs at once (nobody can have an older set).
        assert_eq!(t.signing_kid(1000).unwrap(), first.kid);
        let second = new_key_record(5000, KeyAlg::EdDSA).unwrap();
        t.reload(&[first.clone(), second.clone()], &second.kid)
            .unwrap();
        // Published at once, signing only 300 s later.
        assert!(t.jwks().contains(&second.kid) && t.jwks().contains(&first.kid));
        assert_eq!(t.signing_kid(5000).unwrap(), first.kid);
        assert_eq!(t.signing_kid(5300).unwrap(), first.kid);
        assert_eq!(t.signing_kid(5301).unwrap(), second.kid);
        let during = issue(&t, Uuid::new_v4(), 5100);
        assert_eq!(
            jsonwebtoken::decode_header(&during.pair.token)
                .unwrap()
                .kid
                .unwrap(),
            first.kid
        );
        assert!(t.verify_access(&during.pair.token, 5100).is_ok());
        // Two rotations close together: the newest key published long
        // enough signs, never one a verifier may not have yet.
        let third = new_key_record(5100, KeyAlg::EdDSA).unwrap();
        t.reload(&[first.clone(), second.clone(), third.clone()], &third.kid)
            .unwrap();
        assert_eq!(t.signing_kid(5200).unwrap(), first.kid);
        assert_eq!(t.signing_kid(5350).unwrap(), second.kid);
        assert_eq!(t.signing_kid(5401).unwrap(), third.kid);
        // After a revocation the new key is all there is: it signs at once.
        let fourth = new_key_record(6000, KeyAlg::EdDSA).unwrap();
        t.reload(std::slice::from_ref(&fourth), &fourth.kid)
            .unwrap();
        assert_eq!(t.signing_kid(6000).unwrap(), fourth.kid);
        // A rotation while every key is young: the one published first signs.
        let fifth = new_key_record(6001, KeyAlg::EdDSA).unwrap();
        t.reload(&[fourth.clone(), fifth.clone()], &fifth.kid)
            .unwrap();
        assert_eq!(t.signing_kid(6002).unwrap(), fourth.kid);
        assert_eq!(t.signing_kid(6301).unwrap(), fourth.kid);
        assert_eq!(t.signing_kid(6302).unwrap(), fifth.kid);
        // Made in the same second (a restart that switched the algorithm):
        // the retired one is the older, and signs meanwhile.
        for _ in 0..8 {
            let mut old = new_key_record(8000, KeyAlg::HS256).unwrap();
            old.state = KeyState::Retired;
            old.retired_at = Some(8000);
            let new = new_key_record(8000, KeyAlg::EdDSA).unwrap();
            t.reload(&[new.clone(), old.clone()], &new.kid).unwrap();
            assert_eq!(t.signing_kid(8000).unwrap(), old.kid);
            assert_eq!(t.signing_kid(8301).unwrap(), new.kid);
        }
        // HS256 keys are never published, so never wait.
        let hs = new_key_record(7000, KeyAlg::HS256).unwrap();
        t.reload(&[fourth.clone(), hs.clone()], &hs.kid).unwrap();
        assert_eq!(t.signing_kid(7000).unwrap(), hs.kid);
    }
}
