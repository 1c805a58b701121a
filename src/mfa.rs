//! Two-factor authentication's primitives, without rules or a clock (the
//! rules are `accounts/mfa.rs`'; callers pass the one clock's time): TOTP
//! per RFC 6238 through totp-rs (HMAC-SHA-1, 6 digits, 30 s steps, one step
//! of skew either way), its secret (20 bytes from the OS, base32 without
//! padding when shown or stored), the `otpauth://` URL authenticator apps
//! scan, and recovery codes (80 bits from the OS each, shown as
//! `xxxx-xxxx-xxxx-xxxx`, stored only as SHA-256s).
//!
//! Nothing here prints a secret or a code: [`TotpSecret`]'s `Debug` is
//! masked, and codes are only ever compared.

use sha2::{Digest, Sha256};
use std::fmt;
use totp_rs::{Algorithm, TOTP};

/// The issuer authenticator apps show, and the label's prefix.
pub const ISSUER: &str = "engine-auth";
/// RFC 4226's recommended secret length (160 bits).
pub const SECRET_BYTES: usize = 20;
/// Seconds per TOTP step.
pub const STEP_SECS: u64 = 30;
/// Digits of a TOTP code.
pub const DIGITS: usize = 6;
/// Recovery codes handed out when two-factor authentication is enabled.
pub const RECOVERY_CODES: usize = 10;
/// Random bytes per recovery code: 80 bits, 16 base32 characters.
const RECOVERY_BYTES: usize = 10;
const RECOVERY_CHARS: usize = 16;

/// RFC 4648's base32 alphabet.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A TOTP shared secret. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret([u8; SECRET_BYTES]);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A fresh secret from the OS's random source.
    pub fn generate() -> anyhow::Result<TotpSecret> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))?;
        Ok(TotpSecret(bytes))
    }

    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> TotpSecret {
        TotpSecret(bytes)
    }

    /// The secret from its base32 form (as stored or shown); `None` unless
    /// it is exactly [`SECRET_BYTES`] bytes.
    pub fn from_base32(s: &str) -> Option<TotpSecret> {
        let bytes = totp_rs::Secret::Encoded(s.to_owned()).to_bytes().ok()?;
        let bytes: [u8; SECRET_BYTES] = bytes.as_slice().try_into().ok()?;
        Some(TotpSecret(bytes))
    }

    /// Base32, upper case, no padding: what authenticator apps take.
    pub fn to_base32(&self) -> String {
        base32(&self.0)
    }

    fn totp(&self) -> TOTP {
        // The parameters are RFC 6238's and the secret is 160 bits, which
        // `new` would accept; `new_unchecked` just cannot fail.
        TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 1, STEP_SECS, self.0.to_vec())
    }

    /// The code of the step `time` (Unix seconds) falls in.
    pub fn code_at(&self, time: u64) -> String {
        self.totp().generate(time)
    }

    /// The step a code matches at `time`, one step of skew either way, or
    /// `None`. Accepting each step once is the caller's job (the store
    /// keeps the last accepted step per user).
    pub fn verify(&self, code: &str, time: u64) -> Option<u64> {
        let code = totp_code(code)?;
        let totp = self.totp();
        let step = time / STEP_SECS;
        (step.saturating_sub(1)..=step + 1).find(|&s| {
            let expected = totp.generate(s * STEP_SECS);
            // Constant time: every byte compared whatever differs.
            expected.len() == code.len()
                && expected
                    .bytes()
                    .zip(code.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
    }
}

/// `code` as a TOTP code (six ASCII digits, spaces ignored: apps show
/// `123 456`), or `None` if it cannot be one.
pub fn totp_code(code: &str) -> Option<String> {
    let code: String = code.chars().filter(|c| *c != ' ').collect();
    (code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// The `otpauth://` URL of `secret` for `username` (percent-encoded), as
/// Google Authenticator's key-URI format has it.
pub fn otpauth_url(secret: &TotpSecret, username: &str) -> String {
    format!(
        "otpauth://totp/{ISSUER}:{}?secret={}&issuer={ISSUER}",
        percent_encode(username),
        secret.to_base32()
    )
}

/// Every byte but RFC 3986's unreserved characters, percent-encoded.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Base32 (RFC 4648) of `bytes`, without padding.
fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// A recovery code as a client sends it, normalised: dashes and spaces
/// dropped, upper case; `None` unless 16 base32 characters remain.
fn normalise_recovery(code: &str) -> Option<String> {
    let code: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == RECOVERY_CHARS && code.bytes().all(|b| BASE32.contains(&b))).then_some(code)
}

/// The SHA-256 a recovery code is stored as (of its normalised form), or
/// `None` if `code` cannot be a recovery code.
pub fn recovery_hash(code: &str) -> Option<[u8; 32]> {
    normalise_recovery(code).map(|c| Sha256::digest(c.as_bytes()).into())
}

/// Fresh recovery codes: what the user is shown once (lower case, in
/// groups of four), and their hashes, the only form stored.
pub fn recovery_codes() -> anyhow::Result<(Vec<String>, Vec<[u8; 32]>)> {
    let mut shown = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut bytes = [0u8; RECOVERY_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))?;
        let code = base32(&bytes).to_ascii_lowercase();
        let grouped = code
            .as_bytes()
            .chunks(4)
            .map(|g| String::from_utf8_lossy(g).into_owned())
            .collect::<Vec<_>>()
            .join("-");
        hashes.push(recovery_hash(&code).unwrap_or_default());
        shown.push(grouped);
    }
    Ok((shown, hashes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 seed: ASCII "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(*b"12345678901234567890")
    }

    /// RFC 6238 appendix B, SHA-1 rows, as 6-digit codes (the last six of
    /// the 8-digit values the RFC lists).
    const VECTORS: &[(u64, &str)] = &[
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    #[test]
    fn rfc_6238_sha1_test_vectors() {
        let s = rfc_secret();
        for (time, eight) in VECTORS {
            let six = &eight[2..];
            assert_eq!(s.code_at(*time), six, "T={time}");
            assert_eq!(s.verify(six, *time), Some(time / STEP_SECS), "T={time}");
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let s = rfc_secret();
        let t = 1_234_567_890;
        let step = t / STEP_SECS;
        let code = s.code_at(t);
        assert_eq!(s.verify(&code, t - STEP_SECS), Some(step));
        assert_eq!(s.verify(&code, t + STEP_SECS), Some(step));
        assert_eq!(s.verify(&code, t + 2 * STEP_SECS), None);
        assert_eq!(s.verify(&code, t - 2 * STEP_SECS), None);
        // Spaces as apps show them; anything else is no code.
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(s.verify(&spaced, t), Some(step));
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "１２３４５６",
            &format!("{code}\n"),
        ] {
            assert_eq!(s.verify(bad, t), None, "{bad:?}");
        }
    }

    #[test]
    fn secrets_are_160_random_bits_and_round_trip_through_base32() {
        let a = TotpSecret::generate().unwrap();
        let b = TotpSecret::generate().unwrap();
        assert_ne!(a, b);
        let text = a.to_base32();
        assert_eq!(text.len(), 32, "160 bits: 32 base32 characters, no padding");
        assert!(text.bytes().all(|c| BASE32.contains(&c)), "{text}");
        assert_eq!(TotpSecret::from_base32(&text), Some(a.clone()));
        assert_eq!(TotpSecret::from_base32("MZXW6YTBOI"), None, "too short");
        assert_eq!(format!("{a:?}"), "TotpSecret(..)");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI", "RFC 4648 test vector");
        assert_eq!(base32(&a.0), text);
    }

    #[test]
    fn the_otpauth_url_names_issuer_and_percent_encoded_user() {
        let s = rfc_secret();
        assert_eq!(
            otpauth_url(&s, "bob z@home.com"),
            "otpauth://totp/engine-auth:bob%20z%40home.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=engine-auth"
        );
        assert_eq!(percent_encode("é:/?&"), "%C3%A9%3A%2F%3F%26");
    }

    #[test]
    fn recovery_codes_are_shown_grouped_and_accepted_loosely() {
        let (shown, hashes) = recovery_codes().unwrap();
        assert_eq!(shown.len(), RECOVERY_CODES);
        assert_eq!(hashes.len(), RECOVERY_CODES);
        for (code, hash) in shown.iter().zip(&hashes) {
            assert_eq!(code.len(), 19, "{code}");
            assert_eq!(code.matches('-').count(), 3, "{code}");
            assert_eq!(recovery_hash(code).as_ref(), Some(hash));
            let bare = code.replace('-', "");
            assert_eq!(recovery_hash(&bare).as_ref(), Some(hash));
            assert_eq!(recovery_hash(&code.to_uppercase()).as_ref(), Some(hash));
        }
        let mut distinct = hashes.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        assert_eq!(recovery_hash("123456"), None);
        assert_eq!(
            recovery_hash("abcd-efgh-ijkl-mno1"),
            None,
            "1 is not base32"
        );
        assert_eq!(recovery_hash("abcd-efgh-ijkl-mnop-q"), None);
    }
}
