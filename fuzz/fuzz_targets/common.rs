//! The fixed keyring the token targets verify against, so seeds signed
//! with it (fuzz/seeds/) reach the claims checks, and a clock.

use engine_auth::store::{KeyRecord, KeyState};
use engine_auth::tokens::Tokens;
use std::sync::OnceLock;

pub const KID: &str = "fuzzkey000000000";
pub const SECRET_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// The clock the targets verify at (2027-01-15), and the leeway.
pub const NOW: u64 = 1_800_000_000;
pub const LEEWAY: u64 = 60;

#[allow(dead_code)] // used by token_claims only
pub fn secret() -> Vec<u8> {
    (0..32)
        .map(|i| u8::from_str_radix(&SECRET_HEX[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

pub fn tokens() -> &'static Tokens {
    static T: OnceLock<Tokens> = OnceLock::new();
    T.get_or_init(|| {
        let retired = KeyRecord {
            kid: "retired000000000".into(),
            secret_hex: "ff".repeat(32),
            alg: Default::default(),
            created_at: NOW - 100,
            state: KeyState::Retired,
            retired_at: Some(NOW - 10),
        };
        let active = KeyRecord {
            kid: KID.into(),
            secret_hex: SECRET_HEX.into(),
            alg: Default::default(),
            created_at: NOW - 10,
            state: KeyState::Active,
            retired_at: None,
        };
        Tokens::new(
            &[retired, active],
            KID,
            600,
            LEEWAY,
            Default::default(),
            300,
        )
        .unwrap()
    })
}
