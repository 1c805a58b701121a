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

#[cfg(test)]
mod tests {
    use super::*;

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
