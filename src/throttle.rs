//! Brute-force protection for the unauthenticated endpoints, in memory.
//!
//! Failures are counted per client address (IPv6 per /64, since one host
//! owns a whole /64) and per (username, address). Past a threshold within a
//! window, each further failure doubles a delay during which attempts are
//! answered 429 without touching a password hash. Nothing is keyed on the
//! username alone: an attacker can slow its own addresses down, never lock
//! the real admin out from another one (Directus's account suspension is
//! the counter-example). Both tables are bounded: when full, the entry
//! that failed longest ago is evicted, so rotating through millions of
//! usernames or addresses costs the attacker its own history, not our
//! memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tunables (all configurable; defaults in `Settings::new`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures per (username, address) before delays start.
    pub per_user: u32,
    /// Failures per address (any username, bad refresh tokens too).
    pub per_address: u32,
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// First delay; doubles with every further failure.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Entries per table.
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            per_user: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            max_entries: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

struct Table<K> {
    map: HashMap<K, Entry>,
    threshold: u32,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(threshold: u32) -> Self {
        Table {
            map: HashMap::new(),
            threshold,
        }
    }

    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let until = self.map.get(key)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    fn fail(&mut self, key: K, now: Instant, cfg: &ThrottleConfig) {
        if !self.map.contains_key(&key) && self.map.len() >= cfg.max_entries {
            self.map
                .retain(|_, e| now.duration_since(e.last) < cfg.window);
            if self.map.len() >= cfg.max_entries
                && let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.last)
                    .map(|(k, _)| k.clone())
            {
                self.map.remove(&oldest);
            }
        }
        let e = self.map.entry(key).or_insert(Entry {
            failures: 0,
            last: now,
            blocked_until: None,
        });
        if now.duration_since(e.last) >= cfg.window {
            *e = Entry {
                failures: 0,
                last: now,
                blocked_until: None,
            };
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        if e.failures >= self.threshold {
            let doublings = (e.failures - self.threshold).min(30);
            let delay = cfg
                .base_delay
                .saturating_mul(1 << doublings)
                .min(cfg.max_delay);
            e.blocked_until = Some(now + delay);
        }
    }
}

/// Failures per address, and per (SHA-256 of the folded username, address):
/// fixed-size keys, so huge usernames cannot inflate the table.
struct Tables {
    by_address: Table<IpKey>,
    /// Keyed on (SHA-256 of the folded username, address).
    by_user: Table<([u8; 32], IpKey)>,
}

/// How many entries the throttle holds (for tests and the memory bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entries {
    pub addresses: usize,
    pub user_addresses: usize,
}

fn user_key(folded: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(folded.as_bytes()).into()
}

/// The two tables behind one lock (each call holds it for microseconds).
pub struct Throttle {
    cfg: ThrottleConfig,
    inner: Mutex<Tables>,
}

/// An address as throttling sees it: IPv4 whole, IPv6 by its /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpKey {
    V4(u32),
    /// The upper 64 bits.
    V6(u64),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => IpKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpKey::V4(u32::from(v4)),
                None => IpKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Throttle {
        Throttle {
            inner: Mutex::new(Tables {
                by_address: Table::new(cfg.per_address),
                by_user: Table::new(cfg.per_user),
            }),
            cfg,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// How long this client must wait before it may try again, if at all.
    /// `username` is the folded name for logins, `None` for refreshes.
    pub fn wait(&self, ip: IpAddr, username: Option<&str>) -> Option<Duration> {
        let now = Instant::now();
        let ip = IpKey::from(ip);
        let g = self.lock();
        let by_user = username.and_then(|u| g.by_user.wait(&(user_key(u), ip), now));
        g.by_address.wait(&ip, now).max(by_user)
    }

    /// Records a failed attempt.
    pub fn fail(&self, ip: IpAddr, username: Option<&str>) {
        let now = Instant::now();
        let ip = IpKey::from(ip);
        let mut g = self.lock();
        g.by_address.fail(ip, now, &self.cfg);
        if let Some(u) = username {
            g.by_user.fail((user_key(u), ip), now, &self.cfg);
        }
    }

    /// A successful login forgets that account's failures from that address.
    pub fn succeed(&self, ip: IpAddr, username: &str) {
        let mut g = self.lock();
        g.by_user.map.remove(&(user_key(username), IpKey::from(ip)));
    }

    /// Entries held (for tests and the memory bound).
    pub fn entries(&self) -> Entries {
        let g = self.lock();
        Entries {
            addresses: g.by_address.map.len(),
            user_addresses: g.by_user.map.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ThrottleConfig {
        ThrottleConfig {
            per_user: 3,
            per_address: 5,
            window: Duration::from_secs(60),
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(40),
            max_entries: 100,
        }
    }

    #[test]
    fn delays_start_at_the_threshold_and_double_to_the_cap() {
        let t = Throttle::new(cfg());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..2 {
            t.fail(ip, Some("admin"));
            assert!(t.wait(ip, Some("admin")).is_none());
        }
        t.fail(ip, Some("admin"));
        let w = t.wait(ip, Some("admin")).unwrap();
        assert!(
            w > Duration::from_secs(9) && w <= Duration::from_secs(10),
            "{w:?}"
        );
        t.fail(ip, Some("admin"));
        assert!(t.wait(ip, Some("admin")).unwrap() > Duration::from_secs(19));
        for _ in 0..10 {
            t.fail(ip, Some("admin"));
        }
        assert!(t.wait(ip, Some("admin")).unwrap() <= Duration::from_secs(40));
    }

    #[test]
    fn another_address_is_not_locked_out() {
        let t = Throttle::new(cfg());
        let attacker: IpAddr = "10.0.0.1".parse().unwrap();
        let admin: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..10 {
            t.fail(attacker, Some("admin"));
        }
        assert!(t.wait(attacker, Some("admin")).is_some());
        assert!(
            t.wait(attacker, Some("bob")).is_some(),
            "address-wide limit"
        );
        assert!(t.wait(admin, Some("admin")).is_none());
    }

    #[test]
    fn ipv6_is_grouped_by_64_and_tables_stay_bounded() {
        let t = Throttle::new(cfg());
        for i in 0..10u16 {
            let ip: IpAddr = format!("2001:db8::{i:x}").parse().unwrap();
            t.fail(ip, None);
        }
        assert!(t.wait("2001:db8::ffff".parse().unwrap(), None).is_some());
        assert!(t.wait("2001:db8:0:1::1".parse().unwrap(), None).is_none());
        for i in 0..1000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.fail(ip, Some(&format!("user{i}")));
        }
        let Entries {
            addresses: a,
            user_addresses: u,
        } = t.entries();
        assert!(a <= 100 && u <= 100, "{a} {u}");
    }
}
