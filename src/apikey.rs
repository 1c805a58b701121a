//! API keys as values: a new key (32 bytes from the OS, `eak_` + base64url),
//! the SHA-256 it is stored and looked up by, a key's name and its expiry
//! as given. No clock, no rules (those are `accounts/apikeys.rs`').

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::fmt;

/// What every key starts with, so a leaked one is recognised (secret
/// scanners, logs) and told from a JWT at a glance.
pub const PREFIX: &str = "eak_";
/// Random bytes in a key: 256 bits.
const KEY_BYTES: usize = 32;
/// Longest key name, in characters.
pub const NAME_MAX_CHARS: usize = 100;

/// A new key, in plaintext only until it is shown once; its `Debug` masks it.
pub struct NewKey(String);

impl NewKey {
    pub fn generate() -> anyhow::Result<NewKey> {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))?;
        Ok(NewKey(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))))
    }

    pub fn hash(&self) -> [u8; 32] {
        hash(&self.0)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewKey(***)")
    }
}

/// Whether a presented bearer credential is meant as an API key.
pub fn looks_like_key(presented: &str) -> bool {
    presented.starts_with(PREFIX)
}

/// The SHA-256 a key is stored under.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A key's name: 1 to 100 characters, no control characters.
pub fn parse_name(name: &str) -> Result<String, String> {
    let chars = name.chars().count();
    if chars == 0 {
        return Err("name must not be empty".into());
    }
    if chars > NAME_MAX_CHARS {
        return Err(format!("name must be at most {NAME_MAX_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters".into());
    }
    Ok(name.to_string())
}

/// An RFC 3339 time as Unix seconds (fractions dropped).
pub fn parse_time(s: &str) -> Result<u64, String> {
    use actix_web::cookie::time::OffsetDateTime;
    use actix_web::cookie::time::format_description::well_known::Rfc3339;
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| "expiresAt must be an RFC 3339 time, e.g. 2030-01-01T00:00:00Z".to_string())?;
    u64::try_from(t.unix_timestamp()).map_err(|_| "expiresAt must be after 1970".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_prefix_and_256_random_bits() {
        let a = NewKey::generate().unwrap();
        let b = NewKey::generate().unwrap();
        assert_ne!(a.hash(), b.hash());
        assert_eq!(format!("{a:?}"), "NewKey(***)");
        let h = a.hash();
        let text = a.into_inner();
        assert!(looks_like_key(&text));
        assert_eq!(hash(&text), h);
        let raw = URL_SAFE_NO_PAD.decode(&text[PREFIX.len()..]).unwrap();
        assert_eq!(raw.len(), 32);
    }

    #[test]
    fn names_and_times() {
        assert!(parse_name("").is_err());
        assert!(parse_name("a\nb").is_err());
        assert!(parse_name(&"é".repeat(100)).is_ok());
        assert!(parse_name(&"é".repeat(101)).is_err());
        assert_eq!(parse_time("1970-01-01T00:01:40Z"), Ok(100));
        assert_eq!(parse_time("1970-01-01T01:01:40.5+01:00"), Ok(100));
        assert!(parse_time("2030-01-01").is_err());
        assert!(parse_time("1969-12-31T23:59:59Z").is_err());
    }
}
