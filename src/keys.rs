//! A signing key as the store keeps it and as the keyring (`tokens.rs`)
//! loads it. Neither owns it, so neither depends on the other for it. Its
//! `Debug` omits the secret.
//!
//! A key is HS256 (a shared secret), EdDSA (Ed25519; the secret is the
//! private key's 32-byte seed) or ES256 (ECDSA on P-256; the secret is the
//! private scalar); only the public half of the last two is ever
//! published, by the JWKS. Records written before EdDSA existed have no `alg` and
//! are HS256; HS256 records are still written without it, byte for byte
//! as before.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Active,
    Retired,
}

/// How a key signs. The names are the JWS `alg` values (RFC 7518, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum KeyAlg {
    /// HMAC-SHA-256 with a shared secret: never published.
    #[default]
    HS256,
    /// Ed25519: other services verify with the published public key.
    EdDSA,
    /// ECDSA with P-256 and SHA-256: published too, for verifiers without
    /// Ed25519.
    ES256,
}

impl KeyAlg {
    /// Every algorithm, as the metrics list them.
    pub const ALL: [KeyAlg; 3] = [KeyAlg::HS256, KeyAlg::EdDSA, KeyAlg::ES256];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlg::HS256 => "HS256",
            KeyAlg::EdDSA => "EdDSA",
            KeyAlg::ES256 => "ES256",
        }
    }

    /// The `--signing-alg` values, as typed: `HS256`, `EdDSA`, `ES256`
    /// (any case).
    pub fn parse(s: &str) -> Result<KeyAlg, String> {
        match s.to_ascii_lowercase().as_str() {
            "hs256" => Ok(KeyAlg::HS256),
            "eddsa" | "ed25519" => Ok(KeyAlg::EdDSA),
            "es256" => Ok(KeyAlg::ES256),
            _ => Err(format!(
                "unknown signing algorithm {s:?}: expected HS256, EdDSA or ES256"
            )),
        }
    }

    fn is_hs256(&self) -> bool {
        *self == KeyAlg::HS256
    }

    /// Whether its public key is published (the JWKS): every algorithm but
    /// the shared secret's.
    pub fn is_published(self) -> bool {
        self != KeyAlg::HS256
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signing key. The secret never appears in `Debug` output.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub kid: String,
    /// 32 bytes from the OS, hex-encoded: the HMAC secret, the Ed25519
    /// private key's seed, or the P-256 private scalar.
    pub secret_hex: String,
    /// Absent (HS256) in records written before EdDSA.
    #[serde(default, skip_serializing_if = "KeyAlg::is_hs256")]
    pub alg: KeyAlg,
    pub created_at: u64,
    pub state: KeyState,
    /// When it stopped signing; it verifies until every token it signed has
    /// expired, then it is deleted. Absent in records of keys never retired.
    #[serde(default)]
    pub retired_at: Option<u64>,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("state", &self.state)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_omits_the_secret() {
        let k = KeyRecord {
            kid: "k1".into(),
            secret_hex: "ab".repeat(32),
            alg: KeyAlg::EdDSA,
            created_at: 1,
            state: KeyState::Active,
            retired_at: None,
        };
        let shown = format!("{k:?}");
        assert!(shown.contains("k1") && !shown.contains("abab"), "{shown}");
    }

    #[test]
    fn hs256_records_are_written_as_before_and_old_records_read_as_hs256() {
        let old = r#"{"kid":"k1","secret_hex":"ab","created_at":1,"state":"active"}"#;
        let k: KeyRecord = serde_json::from_str(old).unwrap();
        assert_eq!(k.alg, KeyAlg::HS256);
        assert!(!serde_json::to_string(&k).unwrap().contains("alg"));
        let ed = KeyRecord {
            alg: KeyAlg::EdDSA,
            ..k
        };
        let text = serde_json::to_string(&ed).unwrap();
        assert!(text.contains(r#""alg":"EdDSA""#), "{text}");
        let back: KeyRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back.alg, KeyAlg::EdDSA);
        assert_eq!(KeyAlg::parse("eddsa"), Ok(KeyAlg::EdDSA));
        assert_eq!(KeyAlg::parse("es256"), Ok(KeyAlg::ES256));
        assert_eq!(KeyAlg::parse("HS256"), Ok(KeyAlg::HS256));
        assert!(KeyAlg::parse("none").is_err());
    }
}
