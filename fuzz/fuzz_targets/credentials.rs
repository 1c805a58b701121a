//! Username and password validation on arbitrary text, and the folding
//! (NFKC and case) that makes usernames unique. A parsed username must
//! satisfy the documented rules; folding must be stable (folding twice
//! changes nothing), or two spellings of one name could end up as two
//! accounts.
#![no_main]

use engine_auth::domain::{Password, Username, fold, is_invisible};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    // Every login's name is folded, valid or not: stable for any text.
    let any = fold(&s);
    assert_eq!(fold(&any), any, "folding is not idempotent for {s:?}");
    if let Ok(u) = Username::parse(&s) {
        let chars = s.chars().count();
        assert!((1..=256).contains(&chars), "{chars} characters accepted");
        assert!(
            !s.chars().any(char::is_control),
            "control character accepted"
        );
        assert!(
            !s.chars().any(is_invisible),
            "invisible or formatting character accepted"
        );
        assert!(!s.starts_with(char::is_whitespace) && !s.ends_with(char::is_whitespace));
        assert_eq!(u.as_str(), s, "stored as given");
        let folded = u.folded();
        assert_eq!(folded, any);
        // Case variants of the folded (NFKC) text are the same name. Not
        // of the raw text: upper-casing marks out of canonical order (`α`
        // U+0345 U+0301) moves the accent onto the new iota, another name.
        assert_eq!(
            fold(&folded.to_uppercase()),
            folded,
            "case variants differ for {s:?}"
        );
        assert_eq!(
            fold(&folded.to_lowercase()),
            folded,
            "case variants differ for {s:?}"
        );
        if s.is_ascii() {
            assert_eq!(fold(&s.to_uppercase()), folded);
            assert_eq!(folded, s.to_ascii_lowercase());
        }
    }
    match Password::parse(s.to_string()) {
        Ok(p) => {
            assert!(s.chars().count() >= 8 && s.len() <= 1024);
            assert_eq!(p.expose(), s, "compared exactly, never altered");
            assert_eq!(format!("{p:?}"), "Password(***)");
        }
        Err(_) => assert!(s.chars().count() < 8 || s.len() > 1024),
    }
});
