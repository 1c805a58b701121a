//! Lowercase hex, the one encoding the store and tokens use for binary
//! values (key secrets, refresh-token hashes, random ids).

/// `bytes` as lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Exactly `N` bytes from `2 * N` hex digits (either case); nothing else.
pub fn decode<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_refuses_anything_else() {
        let bytes = [0x00, 0x7f, 0xab, 0xff];
        assert_eq!(super::encode(&bytes), "007fabff");
        assert_eq!(super::decode::<4>("007fabff"), Some(bytes));
        assert_eq!(super::decode::<4>("007FABFF"), Some(bytes));
        assert_eq!(super::decode::<4>("007fab"), None);
        assert_eq!(super::decode::<2>("+a0b"), None);
        assert_eq!(super::decode::<2>("0g0b"), None);
        assert_eq!(super::decode::<2>("é0b"), None);
    }
}
