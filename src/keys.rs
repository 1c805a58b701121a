//! A signing key as the store keeps it and as the keyring (`tokens.rs`)
//! loads it. Neither owns it, so neither depends on the other for it. Its
//! `Debug` omits the secret.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Active,
    Retired,
}

/// A signing key. The secret never appears in `Debug` output.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub kid: String,
    /// 32 bytes from the OS, hex-encoded.
    pub secret_hex: String,
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
            created_at: 1,
            state: KeyState::Active,
            retired_at: None,
        };
        let shown = format!("{k:?}");
        assert!(shown.contains("k1") && !shown.contains("abab"), "{shown}");
    }
}
