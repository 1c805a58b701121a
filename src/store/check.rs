//! The full consistency scan behind `engine-auth check`: every record
//! decoded, users against the username index both ways, the counts in
//! `meta` against what is there, signing keys and sessions, usernames that
//! are one name under today's fold; and `check --fix-counts`. Start-up
//! never runs it (see `open`).

use std::collections::BTreeMap;
use std::path::Path;

use super::codec::{decode, read_u64};
use super::users::{id_of_entry, index_keys};
use super::{
    KeyRecord, KeyState, META_ADMINS, META_NAMES, META_SCHEMA, META_USERS, Result, SCHEMA_VERSION,
    SessionRecord, Store, StoreError, UserRecord,
};

/// Problems kept word for word in a [`Scan`]; the rest are only counted.
const MAX_PROBLEMS: usize = 50;

/// What the full scan found.
#[derive(Debug, Default, Clone)]
pub struct Scan {
    pub users: u64,
    pub admins: u64,
    /// Username index entries.
    pub names: u64,
    pub keys: u64,
    pub refresh_tokens: u64,
    pub sessions: u64,
    /// API key records.
    pub api_keys: u64,
    /// Keys + values over every tree: what a perfect store would occupy.
    pub live_bytes: u64,
    /// The counts `meta` keeps (`None`: not recorded).
    pub recorded: Counts<Option<u64>>,
    /// The first [`MAX_PROBLEMS`] inconsistencies, in words.
    pub problems: Vec<String>,
    /// All inconsistencies found.
    pub problem_count: u64,
    /// Users whose names are one name under today's fold (NFKC and case),
    /// one group per name, the first [`MAX_PROBLEMS`] groups: a store from
    /// before the fold applied NFKC may hold `admin` and `ａｄｍｉｎ`. Not a
    /// problem: each still logs in by its own name (see `users::find_entry`),
    /// but they look alike, so an admin should rename or delete one.
    pub collisions: Vec<Vec<String>>,
}

/// Users, username index entries and admins: what `meta` counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts<T> {
    pub users: T,
    pub names: T,
    pub admins: T,
}

impl<T: Copy> Counts<T> {
    /// Users, index entries, admins: the order problems are reported in.
    fn to_array(self) -> [T; 3] {
        [self.users, self.names, self.admins]
    }

    fn from_array([users, names, admins]: [T; 3]) -> Self {
        Counts {
            users,
            names,
            admins,
        }
    }
}

/// What a scan is for, which decides how much it reads and which recorded
/// counts it holds against the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanFor {
    /// `engine-auth check`: everything.
    Check,
    /// [`Store::recount`]: every user decoded and counted, the index
    /// counted, and only the recorded admin count compared (the others are
    /// about to be replaced).
    Recount,
    /// `check --fix-counts`: everything, but no recorded count compared
    /// (all are about to be rewritten).
    FixCounts,
}

impl ScanFor {
    /// Whether users and the index are checked against each other, and the
    /// other trees scanned.
    fn full(self) -> bool {
        self != ScanFor::Recount
    }

    fn compared(self) -> Counts<bool> {
        match self {
            ScanFor::Check => Counts::from_array([true; 3]),
            ScanFor::Recount => Counts {
                users: false,
                names: false,
                admins: true,
            },
            ScanFor::FixCounts => Counts::from_array([false; 3]),
        }
    }
}

impl Scan {
    pub(super) fn problem(&mut self, what: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(what);
        }
    }

    pub fn is_consistent(&self) -> bool {
        self.problem_count == 0
    }
}

impl Store {
    /// Reads and decodes every record: users against the index both ways,
    /// the counts in `meta` against what is there, signing keys, sessions.
    /// Never changes anything. Takes time and memory in proportion to the
    /// store; the daemon's start-up does not run it.
    pub fn scan(&self) -> Result<Scan> {
        self.scan_with(ScanFor::Check)
    }

    /// What [`Store::recount`] reads: every user decoded and counted, the
    /// index counted, the admin count compared; as much as every start did
    /// before, no more (about as long as those starts took).
    pub(super) fn count_users(&self) -> Result<Scan> {
        self.scan_with(ScanFor::Recount)
    }

    /// `engine-auth check --fix-counts`: the full scan, and if it finds
    /// nothing wrong but the recorded counts (users, index entries, admins;
    /// all derived from the records), writes them as counted. Refused,
    /// changing nothing, if anything else is inconsistent.
    pub fn fix_counts(&self) -> Result<Scan> {
        self.write(|| {
            let scan = self.scan_with(ScanFor::FixCounts)?;
            if let Some(problem) = scan.problems.first() {
                return Err(self.invalid(format!(
                    "not rewriting the counts of an inconsistent store: {problem}"
                )));
            }
            let mut batch = super::kv::Batch::default();
            batch.insert(META_USERS, scan.users.to_be_bytes());
            batch.insert(META_NAMES, scan.names.to_be_bytes());
            batch.insert(META_ADMINS, scan.admins.to_be_bytes());
            self.meta.apply_batch(batch)?;
            self.flush()?;
            self.scan()
        })
    }

    fn scan_with(&self, purpose: ScanFor) -> Result<Scan> {
        let full = purpose.full();
        let compare = purpose.compared().to_array();
        let mut recorded = [None; 3];
        let mut s = Scan::default();
        let mut by_fold: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for item in self.users.iter() {
            let (k, v) = item?;
            s.users += 1;
            s.live_bytes += (k.len() + v.len()) as u64;
            let rec: UserRecord = match decode(&v) {
                Ok(r) => r,
                Err(e) => {
                    s.problem(format!("user record {}: {e}", crate::hex::encode(&k)));
                    continue;
                }
            };
            if k[..] != rec.id.as_bytes()[..] {
                s.problem(format!(
                    "user record {} holds user {} ({:?})",
                    crate::hex::encode(&k),
                    rec.id,
                    rec.username
                ));
            }
            if rec.is_admin() {
                s.admins += 1;
            }
            if !full {
                continue;
            }
            // Under today's key, or still under the old one.
            let mut other = false;
            let mut found = false;
            for key in index_keys(&rec.username) {
                match self.names.get(key)? {
                    Some(entry) if id_of_entry(&entry).ok() == Some(rec.id) => found = true,
                    Some(_) => other = true,
                    None => {}
                }
            }
            if !found {
                s.problem(if other {
                    format!("the index entry for {:?} names another user", rec.username)
                } else {
                    format!("user {:?} has no index entry", rec.username)
                });
            }
            by_fold
                .entry(crate::domain::fold(&rec.username))
                .or_default()
                .push(rec.username);
        }
        s.collisions = by_fold
            .into_values()
            .filter(|names| names.len() > 1)
            .take(MAX_PROBLEMS)
            .map(|mut names| {
                names.sort();
                names
            })
            .collect();
        for item in self.names.iter() {
            let (k, v) = item?;
            s.names += 1;
            s.live_bytes += (k.len() + v.len()) as u64;
            if !full {
                continue;
            }
            let name = String::from_utf8_lossy(&k).into_owned();
            match id_of_entry(&v) {
                Ok(id) if self.users.contains_key(id.as_bytes())? => {}
                Ok(id) => s.problem(format!("index entry {name:?} names user {id}, not stored")),
                Err(e) => s.problem(format!("index entry {name:?}: {e}")),
            }
        }
        if full {
            self.scan_rest(&mut s)?;
        }
        let labels = ["user count", "index count", "admin count"];
        for (i, key) in [META_USERS, META_NAMES, META_ADMINS]
            .into_iter()
            .enumerate()
        {
            match self.meta.get(key)?.map(|v| read_u64(Some(v))).transpose() {
                Ok(v) => recorded[i] = v,
                Err(_) if compare[i] => {
                    s.problem(format!("the recorded {} is unreadable", labels[i]))
                }
                Err(_) => {}
            }
        }
        if s.names != s.users {
            s.problem(format!("{} index entries for {} users", s.names, s.users));
        }
        if s.admins == 0 {
            s.problem("no user has the admin role".into());
        }
        let actual = [s.users, s.names, s.admins];
        s.recorded = Counts::from_array(recorded);
        for (i, ((rec, act), label)) in recorded.into_iter().zip(actual).zip(labels).enumerate() {
            if let Some(rec) = rec
                && rec != act
                && compare[i]
            {
                s.problem(format!(
                    "the recorded {label} is {rec}, the store holds {act}"
                ));
            }
        }
        if s.recorded.admins.is_none() && compare[2] {
            s.problem("no admin count recorded".into());
        }
        Ok(s)
    }

    /// The full scan's part beyond users and the index.
    fn scan_rest(&self, s: &mut Scan) -> Result<()> {
        match self.meta.get(META_SCHEMA)? {
            None => s.problem("no schema version".into()),
            Some(v) if v[..] != *SCHEMA_VERSION.to_string().as_bytes() => s.problem(format!(
                "schema version {:?}, this build reads version {SCHEMA_VERSION}",
                String::from_utf8_lossy(&v)
            )),
            Some(_) => {}
        }
        for item in self.keys.iter() {
            let (k, v) = item?;
            s.keys += 1;
            s.live_bytes += (k.len() + v.len()) as u64;
            if let Err(e) = decode::<KeyRecord>(&v) {
                s.problem(format!("signing key {}: {e}", String::from_utf8_lossy(&k)));
            }
        }
        match (self.active_kid(), self.keys()) {
            (Ok(kid), Ok(keys)) => {
                if !keys
                    .iter()
                    .any(|k| k.kid == kid && k.state == KeyState::Active)
                {
                    s.problem(format!("the active signing key {kid:?} is missing"));
                }
            }
            (Err(e), _) => s.problem(format!("active signing key: {e}")),
            (_, Err(_)) => {} // reported per key above
        }
        self.scan_legacy_tokens(s)?;
        for item in self.sessions.iter() {
            let (k, v) = item?;
            s.sessions += 1;
            s.live_bytes += (k.len() + v.len()) as u64;
            if let Err(e) = decode::<SessionRecord>(&v) {
                s.problem(format!("session record {}: {e}", crate::hex::encode(&k)));
            }
        }
        let (api_keys, problems) = self.scan_api_keys()?;
        s.api_keys = api_keys;
        for p in problems {
            s.problem(p);
        }
        let (_, problems) = self.scan_audit()?;
        for p in problems {
            s.problem(p);
        }
        // `meta` and anything else: bytes only.
        let scanned = ["users", "usernames", "keys", "refresh_tokens", "sessions"];
        for name in self.db.tree_names()? {
            if scanned.contains(&name.as_str()) {
                continue;
            }
            for item in self.db.open_tree(&name)?.iter() {
                let (k, v) = item?;
                s.live_bytes += (k.len() + v.len()) as u64;
            }
        }
        Ok(())
    }
}

/// For `engine-auth check`: an existing store, locked, with none of the
/// start-up checks (nor their count migration), so that the scan can report
/// everything wrong with a store start-up would refuse.
pub fn open_for_check(data_dir: &Path, cache_capacity_bytes: u64) -> Result<Store> {
    let path = Store::path_in(data_dir);
    if !path.join(super::DATA_FILE).exists() && !super::migrate::is_sled_store(&path) {
        return Err(StoreError::Missing(data_dir.to_path_buf()));
    }
    Store::open_unchecked(data_dir, cache_capacity_bytes)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{counts, not_first, raw, reopen, seeded};
    use super::super::{META_ADMINS, META_NAMES, META_USERS, Opened};

    #[test]
    fn the_full_scan_finds_what_start_up_does_not_look_at() {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 20);
        // A record in the middle of the tree, damaged; and a stale count
        // that is still plausible.
        let mut ids: Vec<_> = users.iter().map(|u| u.id).collect();
        ids.sort();
        let victim = ids[ids.len() / 2];
        {
            let db = raw(dir.path());
            db.open_tree("users")
                .unwrap()
                .insert(victim.as_bytes(), &b"\xffnot json"[..])
                .unwrap();
            let meta = db.open_tree("meta").unwrap();
            meta.insert(META_USERS, 20u64.to_be_bytes()).unwrap();
            meta.insert(META_NAMES, 20u64.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let (s, opened) = reopen(dir.path()).unwrap();
        assert_eq!(opened, Opened::Ready);
        let scan = s.scan().unwrap();
        assert!(!scan.is_consistent());
        assert_eq!(scan.users, 21);
        let all = scan.problems.join("\n");
        assert!(all.contains("user record"), "{all}");
        assert!(
            all.contains("the recorded user count is 20, the store holds 21"),
            "{all}"
        );
    }

    #[test]
    fn fix_counts_rewrites_counts_that_are_all_that_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 4);
        {
            let db = raw(dir.path());
            let meta = db.open_tree("meta").unwrap();
            meta.insert(META_USERS, 3u64.to_be_bytes()).unwrap();
            meta.insert(META_NAMES, 3u64.to_be_bytes()).unwrap();
            meta.insert(META_ADMINS, 2u64.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        {
            let (s, _) = reopen(dir.path()).unwrap();
            assert_eq!(s.scan().unwrap().problem_count, 3);
            let scan = s.fix_counts().unwrap();
            assert!(scan.is_consistent(), "{:?}", scan.problems);
            assert_eq!(counts(&s), [5, 5, 1]);
        }
        // With a damaged record it changes nothing.
        {
            let db = raw(dir.path());
            db.open_tree("users")
                .unwrap()
                .insert(not_first(&users).as_bytes(), &b"junk"[..])
                .unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert(META_ADMINS, 2u64.to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let (s, _) = reopen(dir.path()).unwrap();
        let err = s.fix_counts().err().unwrap().to_string();
        assert!(err.contains("user record"), "{err}");
        assert_eq!(counts(&s), [5, 5, 2]);
    }
}
