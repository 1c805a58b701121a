//! Username and password validation on arbitrary text, and the case
//! folding that makes usernames unique. A parsed username must satisfy the
//! documented rules; folding must be stable (folding twice changes
//! nothing), or two spellings of one name could end up as two accounts.
#![no_main]

use engine_auth::domain::{Password, Username, fold};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(u) = Username::parse(&s) {
        let chars = s.chars().count();
        assert!((1..=256).contains(&chars), "{chars} characters accepted");
        assert!(
            !s.chars().any(char::is_control),
            "control character accepted"
        );
        assert!(!s.starts_with(char::is_whitespace) && !s.ends_with(char::is_whitespace));
        assert_eq!(u.as_str(), s, "stored as given");
        let folded = u.folded();
        assert_eq!(fold(&folded), folded, "folding is not idempotent for {s:?}");
        assert_eq!(
            fold(&s.to_uppercase()),
            folded,
            "case variants differ for {s:?}"
        );
        assert_eq!(
            fold(&s.to_lowercase()),
            folded,
            "case variants differ for {s:?}"
        );
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
