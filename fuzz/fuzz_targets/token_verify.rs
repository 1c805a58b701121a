//! Arbitrary bytes as a bearer or refresh token: verification must never
//! panic, whatever the header, payload, signature or encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let t = common::tokens();
    let text = String::from_utf8_lossy(data);
    for now in [common::NOW, 0, u64::MAX] {
        let _ = t.verify_access(&text, now);
        let _ = t.verify_refresh(&text, now);
    }
});
