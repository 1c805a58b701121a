//! Brute-force protection for password checks and refresh tokens, in memory.
//!
//! A password check (a login, or the current password when users change
//! their own) is counted per (username, address) and per address, both on
//! the full address, and for IPv6 also per /64 against a much higher limit:
//! a /64 can be one host or a whole SLAAC LAN, so one host cannot lock out
//! its neighbours, yet a host rotating through its /64 gets no more than
//! the prefix limit. Past a threshold within a window, each further
//! failure doubles a delay during which attempts are answered 429 without
//! touching a password hash.
//!
//! An attempt counts from *before* its hash: [`Throttle::attempt`] records
//! it as pending and the returned [`Attempt`] settles it as a success or a
//! failure (dropped unsettled, on an error path or with a cancelled request,
//! it counts as a failure). Pending attempts count toward the thresholds, so
//! a burst of concurrent guesses gets no more checks than the same guesses
//! one by one, and each address (and /64) has at most a few hashes in flight:
//! one client cannot fill the hash queue in front of everyone else.
//!
//! Refresh tokens that fail verification (garbage, forged, expired: no hash,
//! no credential) are limited in a table of their own, which only ever
//! refuses more such tokens, never a login or a valid refresh token. Wrong
//! current passwords are also counted per token generation (the tokens one
//! password change or "log out everywhere" ends), so that a stolen token's
//! guesses end its generation from whatever addresses they come.
//!
//! Nothing refuses on the username alone: an attacker can slow its own
//! addresses down, never lock the real admin out from another one
//! (Directus's account suspension is the counter-example). Every table is
//! bounded: when full, the entry that failed longest ago is evicted (one
//! with an attempt in flight last), so rotating through millions of
//! usernames or addresses costs the attacker its own history, not our
//! memory. Time is the one clock's ([`Clock::now_millis`]): tests move it
//! instead of sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use uuid::Uuid;

use crate::clock::Clock;

/// Tunables (all configurable; defaults in `Settings::new`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures per (username, address) before delays start; also the wrong
    /// current passwords after which a token generation is ended.
    pub per_user: u32,
    /// Failures per address (any username); also the refresh tokens that
    /// fail verification per address.
    pub per_address: u32,
    /// Failures per IPv6 /64 (every address in it, any username).
    pub per_prefix: u32,
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
            per_prefix: 200,
            window: Duration::from_secs(15 * 60),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            max_entries: 10_000,
        }
    }
}

/// Milliseconds on the clock.
type Millis = u64;

fn millis(d: Duration) -> Millis {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    failures: u32,
    /// Attempts begun and not settled yet.
    pending: u32,
    /// When the entry was made or last failed.
    last: Millis,
    /// Attempts wait until then (0: no delay).
    blocked_until: Millis,
}

impl Entry {
    /// Whether the failures are forgotten: out of the window, or from a
    /// future the clock has since been set back from.
    fn stale(&self, now: Millis, window: Millis) -> bool {
        now < self.last || now - self.last >= window
    }

    fn live_failures(&self, now: Millis, window: Millis) -> u32 {
        if self.stale(now, window) {
            0
        } else {
            self.failures
        }
    }

    fn blocked_for(&self, now: Millis) -> Option<Millis> {
        (self.last <= now && self.blocked_until > now).then(|| self.blocked_until - now)
    }

    /// Counts a failure; past `threshold`, starts (or doubles) the delay.
    fn fail(&mut self, threshold: u32, now: Millis, cfg: &ThrottleConfig) -> u32 {
        if self.stale(now, millis(cfg.window)) {
            self.failures = 0;
            self.blocked_until = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.last = now;
        if self.failures >= threshold {
            let doublings = (self.failures - threshold).min(30);
            let delay = cfg
                .base_delay
                .saturating_mul(1 << doublings)
                .min(cfg.max_delay);
            self.blocked_until = now.saturating_add(millis(delay));
        }
        self.failures
    }
}

/// What one table allows.
#[derive(Debug, Clone, Copy)]
struct Limit {
    /// Failures (pending attempts included) before attempts are refused.
    threshold: u32,
    /// Attempts in flight at once.
    in_flight: u32,
}

struct Table<K> {
    map: HashMap<K, Entry>,
    limit: Limit,
}

impl<K: Hash + Eq + Copy> Table<K> {
    fn new(threshold: u32, in_flight: u32) -> Self {
        Table {
            map: HashMap::new(),
            limit: Limit {
                threshold,
                in_flight,
            },
        }
    }

    /// How long a new attempt on `key` must wait, if it may not start now
    /// (zero: attempts in flight fill the limit; they end within a hash).
    /// Past the threshold, one attempt at a time once the delay is over.
    fn refusal(&self, key: &K, now: Millis, cfg: &ThrottleConfig) -> Option<Millis> {
        let e = self.map.get(key)?;
        if let Some(wait) = e.blocked_for(now) {
            return Some(wait);
        }
        let failures = e.live_failures(now, millis(cfg.window));
        let full = e.pending >= self.limit.in_flight
            || (e.pending > 0 && failures.saturating_add(e.pending) >= self.limit.threshold);
        full.then_some(0)
    }

    /// The entry for `key`, made (evicting another when full) if missing.
    fn entry(&mut self, key: K, now: Millis, cfg: &ThrottleConfig) -> &mut Entry {
        if !self.map.contains_key(&key) && self.map.len() >= cfg.max_entries {
            let window = millis(cfg.window);
            self.map.retain(|_, e| {
                e.pending > 0 || !e.stale(now, window) || e.blocked_for(now).is_some()
            });
            if self.map.len() >= cfg.max_entries
                && let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, e)| (e.pending > 0, e.last))
                    .map(|(k, _)| *k)
            {
                self.map.remove(&oldest);
            }
        }
        self.map.entry(key).or_insert(Entry {
            last: now,
            ..Entry::default()
        })
    }

    fn begin(&mut self, key: K, now: Millis, cfg: &ThrottleConfig) {
        let e = self.entry(key, now, cfg);
        e.pending = e.pending.saturating_add(1);
    }

    /// Ends an attempt begun on `key`: `failed` counts a failure (an entry
    /// evicted meanwhile is made again); `forget` clears the failures (a
    /// login that succeeded, for its account). Returns the failures.
    fn settle(
        &mut self,
        key: K,
        failed: bool,
        forget: bool,
        now: Millis,
        cfg: &ThrottleConfig,
    ) -> u32 {
        let threshold = self.limit.threshold;
        if failed {
            let e = self.entry(key, now, cfg);
            e.pending = e.pending.saturating_sub(1);
            return e.fail(threshold, now, cfg);
        }
        let Some(e) = self.map.get_mut(&key) else {
            return 0;
        };
        e.pending = e.pending.saturating_sub(1);
        if forget {
            e.failures = 0;
            e.blocked_until = 0;
        }
        let failures = e.live_failures(now, millis(cfg.window));
        if e.pending == 0 && failures == 0 && e.blocked_for(now).is_none() {
            self.map.remove(&key);
        }
        failures
    }

    /// A failure without an attempt in flight (a bad refresh token, a
    /// wrong current password per token generation). Returns the failures.
    fn fail(&mut self, key: K, now: Millis, cfg: &ThrottleConfig) -> u32 {
        let threshold = self.limit.threshold;
        self.entry(key, now, cfg).fail(threshold, now, cfg)
    }

    fn pending(&self) -> u64 {
        self.map.values().map(|e| u64::from(e.pending)).sum()
    }

    fn failures(&self) -> u64 {
        self.map.values().map(|e| u64::from(e.failures)).sum()
    }
}

/// An address as the throttle counts it: IPv4-mapped IPv6 as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The /64 of an IPv6 address (none for IPv4).
fn prefix(ip: IpAddr) -> Option<u64> {
    match ip {
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => Some((u128::from(v6) >> 64) as u64),
    }
}

/// SHA-256 of the folded username: fixed-size keys, so huge usernames
/// cannot inflate the table.
fn user_key(folded: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(folded.as_bytes()).into()
}

/// The tables one password attempt touches.
#[derive(Debug, Clone, Copy)]
struct Keys {
    user: ([u8; 32], IpAddr),
    address: IpAddr,
    prefix: Option<u64>,
}

impl Keys {
    fn new(ip: IpAddr, folded: &str) -> Keys {
        let ip = canonical(ip);
        Keys {
            user: (user_key(folded), ip),
            address: ip,
            prefix: prefix(ip),
        }
    }
}

struct Tables {
    by_user: Table<([u8; 32], IpAddr)>,
    by_address: Table<IpAddr>,
    by_prefix: Table<u64>,
    bad_tokens: Table<IpAddr>,
    /// Wrong current passwords per (user id, token generation).
    guesses: Table<(Uuid, u64)>,
}

/// How many entries the throttle holds (for tests and the memory bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entries {
    pub addresses: usize,
    pub user_addresses: usize,
    pub prefixes: usize,
    pub bad_tokens: usize,
    pub guesses: usize,
    /// Password attempts in flight (begun, not settled).
    pub pending: u64,
    /// Failed password attempts held, all addresses together.
    pub failures: u64,
}

/// Every table behind one lock (each call holds it for microseconds, but
/// for an eviction scan when a table is full).
pub struct Throttle {
    cfg: ThrottleConfig,
    clock: Clock,
    inner: Mutex<Tables>,
}

/// A password check under way, counted as pending from before its hash
/// until [`Attempt::succeed`], [`Attempt::fail`] or [`Attempt::abandon`].
/// Dropped unsettled (an error, or a request future cancelled because its
/// client hung up) it counts as a failure: hanging up once the hash is
/// queued cannot escape the count.
#[must_use = "an attempt dropped unsettled counts as a failure"]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    keys: Keys,
    settled: bool,
}

enum Outcome {
    Success,
    Failure,
    /// Never checked (the hash queue was full), or checked and neither
    /// right nor wrong (the right password of a user whose login needs a
    /// second factor): counts nothing, forgets nothing.
    NotChecked,
}

impl Attempt<'_> {
    /// The password was right: forgets this account's failures from this
    /// address.
    pub fn succeed(mut self) {
        self.settled = true;
        self.throttle.settle(&self.keys, &Outcome::Success);
    }

    /// The password was wrong. Returns whether this account is throttled
    /// from this address now.
    pub fn fail(mut self) -> bool {
        self.settled = true;
        self.throttle.settle(&self.keys, &Outcome::Failure) >= self.throttle.cfg.per_user
    }

    /// The password was not checked after all (no room in the hash queue).
    pub fn abandon(mut self) {
        self.settled = true;
        self.throttle.settle(&self.keys, &Outcome::NotChecked);
    }

    /// Neither a success nor a failure: the right password of a user whose
    /// login also needs a one-time password that was not sent ("OTP
    /// required"), or a right code where only a wrong one may count. Ends
    /// the attempt without counting a failure and without forgetting any:
    /// knowing the password alone cannot clear a count of wrong codes.
    pub fn neutral(mut self) {
        self.settled = true;
        self.throttle.settle(&self.keys, &Outcome::NotChecked);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle.settle(&self.keys, &Outcome::Failure);
        }
    }
}

impl Throttle {
    /// A throttle reading `clock`. At most `hash_threads` password checks
    /// run at once per address, twice that per IPv6 /64: one client cannot
    /// fill the hash queue (`password.rs`) that everyone shares.
    pub fn new(cfg: ThrottleConfig, hash_threads: usize, clock: Clock) -> Throttle {
        let per_address = u32::try_from(hash_threads.max(1)).unwrap_or(u32::MAX);
        Throttle {
            inner: Mutex::new(Tables {
                by_user: Table::new(cfg.per_user, u32::MAX),
                by_address: Table::new(cfg.per_address, per_address),
                by_prefix: Table::new(cfg.per_prefix, per_address.saturating_mul(2)),
                bad_tokens: Table::new(cfg.per_address, u32::MAX),
                guesses: Table::new(cfg.per_user, u32::MAX),
            }),
            cfg,
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Starts a password check by `username` (folded) from `ip`, or says how
    /// long to wait first (the caller answers 429 without hashing).
    pub fn attempt(&self, ip: IpAddr, username: &str) -> Result<Attempt<'_>, Duration> {
        let (now, cfg) = (self.clock.now_millis(), &self.cfg);
        let keys = Keys::new(ip, username);
        let mut g = self.lock();
        let wait = [
            g.by_user.refusal(&keys.user, now, cfg),
            g.by_address.refusal(&keys.address, now, cfg),
            keys.prefix.and_then(|p| g.by_prefix.refusal(&p, now, cfg)),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(Duration::from_millis(wait));
        }
        g.by_user.begin(keys.user, now, cfg);
        g.by_address.begin(keys.address, now, cfg);
        if let Some(p) = keys.prefix {
            g.by_prefix.begin(p, now, cfg);
        }
        Ok(Attempt {
            throttle: self,
            keys,
            settled: false,
        })
    }

    /// Settles an attempt; returns the (username, address) failures.
    fn settle(&self, keys: &Keys, outcome: &Outcome) -> u32 {
        let (now, cfg) = (self.clock.now_millis(), &self.cfg);
        let (failed, success) = match outcome {
            Outcome::Success => (false, true),
            Outcome::Failure => (true, false),
            Outcome::NotChecked => (false, false),
        };
        let mut g = self.lock();
        g.by_address.settle(keys.address, failed, false, now, cfg);
        if let Some(p) = keys.prefix {
            g.by_prefix.settle(p, failed, false, now, cfg);
        }
        g.by_user.settle(keys.user, failed, success, now, cfg)
    }

    /// A refresh token from `ip` failed verification. Counted unless this
    /// address has sent too many already: then how long it must wait (the
    /// caller answers 429). Never consulted for anything else.
    pub fn bad_token(&self, ip: IpAddr) -> Result<(), Duration> {
        let (now, cfg) = (self.clock.now_millis(), &self.cfg);
        let ip = canonical(ip);
        let mut g = self.lock();
        if let Some(wait) = g.bad_tokens.refusal(&ip, now, cfg) {
            return Err(Duration::from_millis(wait));
        }
        g.bad_tokens.fail(ip, now, cfg);
        Ok(())
    }

    /// A wrong current password with a token of `generation` of user `id`.
    /// Returns whether that generation has now guessed wrong `per_user`
    /// times within the window, from any address: the caller ends it.
    pub fn wrong_current_password(&self, id: Uuid, generation: u64) -> bool {
        let (now, cfg) = (self.clock.now_millis(), &self.cfg);
        self.lock().guesses.fail((id, generation), now, cfg) >= cfg.per_user
    }

    /// Entries held (for tests and the memory bound).
    pub fn entries(&self) -> Entries {
        let g = self.lock();
        Entries {
            addresses: g.by_address.map.len(),
            user_addresses: g.by_user.map.len(),
            prefixes: g.by_prefix.map.len(),
            bad_tokens: g.bad_tokens.map.len(),
            guesses: g.guesses.map.len(),
            pending: g.by_address.pending(),
            failures: g.by_address.failures(),
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
            per_prefix: 8,
            window: Duration::from_secs(60),
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(40),
            max_entries: 100,
        }
    }

    fn throttle(hash_threads: usize) -> (Throttle, Clock) {
        let clock = Clock::system();
        (Throttle::new(cfg(), hash_threads, clock.clone()), clock)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// One attempt, settled as a failure.
    fn fail(t: &Throttle, ip: IpAddr, user: &str) -> bool {
        t.attempt(ip, user).unwrap().fail()
    }

    #[test]
    fn delays_start_at_the_threshold_and_double_to_the_cap() {
        let (t, clock) = throttle(4);
        let a = ip("10.0.0.1");
        for _ in 0..2 {
            assert!(!fail(&t, a, "admin"));
        }
        assert!(fail(&t, a, "admin"), "the third failure throttles");
        let w = t.attempt(a, "admin").err().unwrap();
        assert!(
            w > Duration::from_secs(9) && w <= Duration::from_secs(10),
            "{w:?}"
        );
        // Once the delay is over, one more attempt; it doubles the delay.
        clock.advance(10);
        fail(&t, a, "admin");
        assert!(t.attempt(a, "admin").err().unwrap() > Duration::from_secs(19));
        for _ in 0..10 {
            clock.advance(40);
            fail(&t, a, "admin");
        }
        assert!(t.attempt(a, "admin").err().unwrap() <= Duration::from_secs(40));
        // Forgotten after the window.
        clock.advance(61);
        t.attempt(a, "admin").unwrap().succeed();
    }

    #[test]
    fn pending_attempts_count_so_a_burst_gets_no_more_checks() {
        let (t, clock) = throttle(100);
        let a = ip("10.0.0.1");
        let burst: Vec<_> = (0..50).filter_map(|_| t.attempt(a, "admin").ok()).collect();
        assert_eq!(burst.len(), 3, "the threshold, not the burst");
        assert_eq!(t.entries().pending, 3);
        assert!(t.attempt(a, "admin").err().unwrap() <= Duration::from_secs(1));
        for attempt in burst {
            attempt.fail();
        }
        assert_eq!(t.entries().pending, 0);
        assert!(t.attempt(a, "admin").err().unwrap() > Duration::from_secs(9));
        // After the delay: one at a time.
        clock.advance(10);
        let one = t.attempt(a, "admin").unwrap();
        assert!(t.attempt(a, "admin").is_err());
        one.fail();
    }

    #[test]
    fn a_success_forgets_the_accounts_failures_from_that_address_only() {
        let (t, _) = throttle(4);
        let a = ip("10.0.0.1");
        fail(&t, a, "admin");
        fail(&t, a, "admin");
        t.attempt(a, "admin").unwrap().succeed();
        fail(&t, a, "admin");
        fail(&t, a, "admin");
        assert!(
            t.attempt(a, "admin").unwrap().fail(),
            "admitted: the success restarted the account's count"
        );
        // The address's own count (any username) was not cleared: 5 now.
        assert!(t.attempt(a, "bob").is_err(), "address-wide limit");
    }

    #[test]
    fn an_unsettled_attempt_counts_as_a_failure_and_an_abandoned_one_not_at_all() {
        let (t, _) = throttle(4);
        let a = ip("10.0.0.1");
        for _ in 0..3 {
            let attempt = t.attempt(a, "admin").unwrap();
            drop(attempt); // a cancelled request, an error path
        }
        assert_eq!(t.entries().pending, 0);
        assert!(
            t.attempt(a, "admin").is_err(),
            "three dropped = three failures"
        );
        let b = ip("10.0.0.2");
        for _ in 0..10 {
            t.attempt(b, "admin").unwrap().abandon();
        }
        assert_eq!(t.entries().pending, 0);
        assert!(t.attempt(b, "admin").is_ok_and(|x| !x.fail()));
    }

    #[test]
    fn a_neutral_settle_neither_counts_nor_forgets() {
        let (t, _) = throttle(4);
        let a = ip("10.0.0.1");
        // Two wrong codes (failures), then any number of "OTP required".
        assert!(!fail(&t, a, "admin"));
        assert!(!fail(&t, a, "admin"));
        for _ in 0..20 {
            t.attempt(a, "admin").unwrap().neutral();
        }
        assert_eq!(t.entries().pending, 0);
        assert_eq!(
            t.entries().failures,
            2,
            "nothing counted, nothing forgotten"
        );
        // So the next wrong code still reaches the threshold.
        assert!(fail(&t, a, "admin"), "the third failure throttles");
        assert!(t.attempt(a, "admin").is_err());
        // On a clean slate, neutral settles leave no entry behind.
        let b = ip("10.0.0.2");
        for _ in 0..20 {
            t.attempt(b, "bob").unwrap().neutral();
        }
        assert!(t.attempt(b, "bob").is_ok_and(|x| !x.fail()));
    }

    #[test]
    fn each_address_has_at_most_hash_threads_checks_in_flight() {
        let (t, _) = throttle(2);
        let a = ip("10.0.0.1");
        let first = t.attempt(a, "u1").unwrap();
        let second = t.attempt(a, "u2").unwrap();
        assert_eq!(t.attempt(a, "u3").err(), Some(Duration::ZERO));
        assert!(t.attempt(ip("10.0.0.2"), "u3").is_ok_and(|x| {
            x.succeed();
            true
        }));
        first.succeed();
        t.attempt(a, "u3").unwrap().succeed();
        second.succeed();
        assert_eq!(t.entries().pending, 0);
    }

    #[test]
    fn another_address_is_not_locked_out() {
        let (t, _) = throttle(4);
        let attacker = ip("10.0.0.1");
        let admin = ip("10.0.0.2");
        for _ in 0..10 {
            if let Ok(a) = t.attempt(attacker, "admin") {
                a.fail();
            }
        }
        assert!(t.attempt(attacker, "admin").is_err());
        // Refused attempts are not counted: 3 failures so far, 5 per address.
        fail(&t, attacker, "carol");
        fail(&t, attacker, "dave");
        assert!(t.attempt(attacker, "bob").is_err(), "address-wide limit");
        t.attempt(admin, "admin").unwrap().succeed();
    }

    #[test]
    fn ipv6_counts_the_full_address_and_the_64_only_against_its_higher_limit() {
        let (t, clock) = throttle(4);
        let b = ip("fd00:1::b");
        let c = ip("fd00:1::c");
        for _ in 0..3 {
            fail(&t, b, "admin");
        }
        assert!(t.attempt(b, "admin").is_err());
        // The neighbour in the same /64: its own count for the account and
        // its own address count.
        t.attempt(c, "admin").unwrap().succeed();
        t.attempt(c, "bob").unwrap().succeed();
        // Rotating through the /64: 5 more failures from new addresses
        // reach the prefix's 8, then every address in it waits...
        for i in 0..5u16 {
            fail(&t, ip(&format!("fd00:1::1:{i:x}")), &format!("user{i}"));
        }
        assert!(t.attempt(c, "admin").is_err());
        assert!(t.attempt(ip("fd00:1::ffff"), "carol").is_err());
        // ...but not the next /64, and not IPv4.
        t.attempt(ip("fd00:1:0:1::c"), "admin").unwrap().succeed();
        t.attempt(ip("10.0.0.3"), "admin").unwrap().succeed();
        clock.advance(61);
        t.attempt(c, "admin").unwrap().succeed();
        // IPv4-mapped IPv6 is the IPv4 address (no /64 of its own).
        for _ in 0..3 {
            fail(&t, ip("::ffff:10.0.0.9"), "admin");
        }
        assert!(t.attempt(ip("10.0.0.9"), "admin").is_err());
        assert_eq!(prefix(canonical(ip("::ffff:10.0.0.9"))), None);
    }

    #[test]
    fn bad_refresh_tokens_are_limited_on_their_own() {
        let (t, clock) = throttle(4);
        let a = ip("10.0.0.1");
        for _ in 0..5 {
            assert!(t.bad_token(a).is_ok());
        }
        let w = t.bad_token(a).unwrap_err();
        assert!(w > Duration::from_secs(9), "{w:?}");
        // Logins from that address are untouched.
        t.attempt(a, "admin").unwrap().succeed();
        clock.advance(10);
        assert!(t.bad_token(a).is_ok());
        assert!(t.bad_token(a).is_err(), "the delay doubled");
    }

    #[test]
    fn wrong_current_passwords_end_a_token_generation_from_any_address() {
        let (t, _) = throttle(4);
        let id = Uuid::new_v4();
        assert!(!t.wrong_current_password(id, 7));
        assert!(!t.wrong_current_password(id, 7));
        assert!(!t.wrong_current_password(id, 8), "another generation");
        assert!(t.wrong_current_password(id, 7));
    }

    #[test]
    fn a_clock_set_back_forgets_rather_than_extends_delays() {
        let (t, clock) = throttle(4);
        let a = ip("10.0.0.1");
        for _ in 0..3 {
            fail(&t, a, "admin");
        }
        assert!(t.attempt(a, "admin").is_err());
        clock.advance(-3600);
        t.attempt(a, "admin").unwrap().succeed();
    }

    #[test]
    fn tables_stay_bounded() {
        let (t, _) = throttle(4);
        for i in 0..1000u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            fail(&t, a, &format!("user{i}"));
            assert!(t.bad_token(a).is_ok());
            t.wrong_current_password(Uuid::new_v4(), 0);
        }
        for i in 0..1000u128 {
            let a = IpAddr::from(std::net::Ipv6Addr::from((0xfd00u128 << 112) + (i << 64)));
            fail(&t, a, "admin");
        }
        let e = t.entries();
        for n in [
            e.addresses,
            e.user_addresses,
            e.prefixes,
            e.bad_tokens,
            e.guesses,
        ] {
            assert!(n <= 100, "{e:?}");
        }
        // A full table evicts an entry without an attempt in flight first.
        let held = t.attempt(ip("10.9.9.9"), "held").unwrap();
        for i in 0..200u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i));
            fail(&t, a, "x");
        }
        assert_eq!(t.entries().pending, 1);
        held.succeed();
        assert_eq!(t.entries().pending, 0);
    }
}
