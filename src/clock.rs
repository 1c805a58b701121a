//! The one clock. Every decision that depends on the time (token `iat` and
//! `exp`, session ends, key ages, the seed, the admin socket, the login
//! throttle's delays) reads [`Clock::now`] (or [`Clock::now_millis`]),
//! never the system clock directly. Production uses the
//! system clock; tests move a shared clock forward instead of sleeping, or
//! set it wrong to simulate a device whose time NTP later corrects.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch (u64 everywhere, also on 32-bit ARM).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
fn unix_now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The system clock plus an offset that only tests change. Clones share
/// the offset, so advancing the clock a test holds advances the server's.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Seconds since the Unix epoch, as this clock reads them.
    pub fn now(&self) -> u64 {
        unix_now().saturating_add_signed(self.offset_secs.load(Ordering::Relaxed))
    }

    /// Milliseconds since the Unix epoch, as this clock reads them (for
    /// delays shorter than a few seconds, which whole seconds would round
    /// away).
    pub fn now_millis(&self) -> u64 {
        let offset = self
            .offset_secs
            .load(Ordering::Relaxed)
            .saturating_mul(1000);
        unix_now_millis().saturating_add_signed(offset)
    }

    /// Moves this clock (and every clone of it) by `secs` (negative: back).
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }

    /// Sets this clock `secs` away from the system clock (0: correct again).
    pub fn set_offset(&self, secs: i64) {
        self.offset_secs.store(secs, Ordering::Relaxed);
    }
}

/// `millis` (since the Unix epoch) as RFC 3339 UTC with milliseconds,
/// `2025-03-01T04:05:06.789Z`: for names and headers people read, never
/// for a decision.
pub fn utc_rfc3339(millis: u64) -> String {
    let secs = millis / 1000;
    let (y, m, d) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        millis % 1000
    )
}

/// `millis` as a compact UTC stamp for file names, `20250301T040506.789Z`:
/// names in this form sort in time order.
pub fn utc_stamp(millis: u64) -> String {
    utc_rfc3339(millis).replace(['-', ':'], "")
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc_rfc3339(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(utc_stamp(1_735_689_600_000), "20250101T000000.000Z");
    }

    #[test]
    fn clones_share_one_offset() {
        let clock = Clock::system();
        let server = clock.clone();
        let before = server.now();
        clock.advance(3600);
        assert!(server.now() >= before + 3600);
        assert!(server.now_millis() / 1000 >= before + 3600);
        clock.set_offset(-60);
        assert!(server.now() < before);
        assert!(server.now_millis() / 1000 < before);
    }
}
