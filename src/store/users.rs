//! User records (the `users` tree, keyed by id), the case-insensitive
//! username index (`usernames`: folded name → id and name as given) and the
//! counts `meta` keeps of both and of admins. All three change in the same
//! transaction, which is also what makes the last-admin rule hold under
//! concurrent requests.
//!
//! Index keys are [`crate::domain::fold`]. Stores written before the fold
//! applied NFKC keep some entries under the old key (case mapping alone,
//! [`legacy_fold_key`]); see [`find_entry`] for how lookups still find them.

use super::kv::{IVec, Transactional, Tree, TxTree};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

use super::codec::{TxResult, abort, decode, decode_tx, encode, from_tx, read_u64};
use super::{META_ADMINS, META_NAMES, META_USERS, MfaRecord, Result, Store, StoreError, UserView};
use crate::domain::{Roles, Username};

/// One user as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    /// argon2id in PHC string format.
    pub password_hash: String,
    /// Stored as the bitmask ([`Roles::bits`]).
    #[serde(with = "crate::domain::role_bits")]
    pub roles: Roles,
    /// Unix seconds.
    pub created_at: u64,
    pub updated_at: u64,
    /// Bumped by every change that must revoke the user's tokens (password,
    /// roles, "log out everywhere"). Tokens carry the generation they were
    /// issued under; a mismatch is a revoked token. A counter rather than a
    /// timestamp, so a login in the same second as a change still works.
    #[serde(default)]
    pub generation: u64,
    /// Two-factor authentication: absent (off, nothing pending) in records
    /// written before it, and left out of the record while so.
    #[serde(default, skip_serializing_if = "MfaRecord::is_blank")]
    pub mfa: MfaRecord,
}

impl UserRecord {
    pub(super) fn is_admin(&self) -> bool {
        self.roles.admin
    }
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// A new user's record with a fresh id, for callers that create users.
pub fn new_user_record(
    username: &Username,
    password_hash: String,
    roles: Roles,
    now: u64,
) -> UserRecord {
    UserRecord {
        id: Uuid::new_v4(),
        username: username.as_str().to_owned(),
        password_hash,
        roles,
        created_at: now,
        updated_at: now,
        generation: 0,
        mfa: MfaRecord::default(),
    }
}

impl Store {
    pub fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>> {
        self.users
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// The request path's view of a user (roles, generation, name), from
    /// memory when possible.
    pub fn user_view(&self, id: Uuid) -> Result<Option<Arc<UserView>>> {
        if let Some(v) = self.cache.user(&id) {
            return Ok(Some(v));
        }
        let epoch = self.cache.epoch();
        let Some(rec) = self.user_by_id(id)? else {
            return Ok(None);
        };
        let view = Arc::new(UserView::from(&rec));
        self.cache.fill_user(epoch, view.clone());
        Ok(Some(view))
    }

    /// GET /users' answer (the JSON array of [`Store::usernames`]), built
    /// once and kept until a user is created or deleted.
    pub fn usernames_json(&self) -> Result<Arc<[u8]>> {
        if let Some(list) = self.cache.list() {
            return Ok(list);
        }
        let epoch = self.cache.epoch();
        let list: Arc<[u8]> = encode(&self.usernames()?).into();
        self.cache.fill_list(epoch, list.clone());
        Ok(list)
    }

    /// Looks a user up by name, case-insensitively (see [`find_entry`]).
    /// Any string is accepted; one that is not a valid username simply
    /// finds nobody.
    pub fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>> {
        let Some(entry) = find_entry(name, |k| self.names.get(k))? else {
            return Ok(None);
        };
        let id = id_of_entry(&entry)?;
        self.user_by_id(id)
    }

    /// Usernames as given, ordered case-insensitively; reads only the index.
    pub fn usernames(&self) -> Result<Vec<String>> {
        self.names
            .iter()
            .map(|item| {
                let (_, v) = item?;
                if v.len() < 16 {
                    return Err(StoreError::Decode("username index entry".into()));
                }
                String::from_utf8(v[16..].to_vec())
                    .map_err(|_| StoreError::Decode("username index entry".into()))
            })
            .collect()
    }

    /// The password hashes' parameter parts (`$argon2id$v=19$m=…,t=…,p=…`),
    /// each once: what a verification can cost ([`crate::password::Hasher::calibrate`]).
    /// Reads every user record; at start-up.
    pub fn password_hash_kinds(&self) -> Result<Vec<String>> {
        let mut kinds: Vec<String> = Vec::new();
        for item in self.users.iter() {
            let (_, v) = item?;
            let rec: UserRecord = decode(&v)?;
            // The salt and the output follow the fourth `$`.
            let kind = match rec.password_hash.match_indices('$').nth(4) {
                Some((i, _)) => rec.password_hash[..i].to_string(),
                None => rec.password_hash,
            };
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(kinds)
    }

    pub fn user_count(&self) -> usize {
        read_count(&self.meta, META_USERS) as usize
    }

    /// Adds a user; fails with `UsernameTaken` if the name is found (see
    /// [`find_entry`]).
    pub fn create_user(&self, rec: &UserRecord) -> Result<()> {
        self.write(|| {
            let key = fold_key(&rec.username);
            (&self.users, &self.names, &self.meta)
                .transaction(|(users, names, meta)| {
                    if find_entry(&rec.username, |k| names.get(k))?.is_some() {
                        return abort(StoreError::UsernameTaken);
                    }
                    users.insert(rec.id.as_bytes(), encode(rec))?;
                    names.insert(key.as_slice(), name_entry(rec))?;
                    adjust_user_count(meta, 1)?;
                    if rec.is_admin() {
                        adjust_admins(meta, 1)?;
                    }
                    Ok(())
                })
                .map_err(from_tx)?;
            self.cache.invalidate(&rec.id);
            self.flush()
        })
    }

    /// Replaces a user's roles; refuses to demote the last admin.
    pub fn set_roles(&self, id: Uuid, roles: Roles, now: u64) -> Result<UserRecord> {
        self.update(id, |rec| {
            rec.roles = roles;
            rec.updated_at = now;
            rec.generation += 1;
        })
    }

    /// Replaces a hash computed with outdated parameters, only if the
    /// stored hash is still `old` (a concurrent password change wins). Does
    /// not revoke tokens: the password did not change. Returns whether it
    /// replaced the hash.
    pub fn upgrade_password_hash(&self, id: Uuid, old: &str, new: String) -> Result<bool> {
        self.write(|| {
            let replaced = self
                .users
                .transaction(|users| {
                    let Some(cur) = users.get(id.as_bytes())? else {
                        return Ok(false);
                    };
                    let mut rec: UserRecord = decode_tx(&cur)?;
                    if rec.password_hash != old {
                        return Ok(false);
                    }
                    rec.password_hash = new.clone();
                    users.insert(id.as_bytes(), encode(&rec))?;
                    Ok(true)
                })
                .map_err(from_tx)?;
            if replaced {
                self.flush()?;
            }
            Ok(replaced)
        })
    }

    /// Revokes every token issued to the user so far.
    pub fn revoke_all_tokens(&self, id: Uuid, now: u64) -> Result<UserRecord> {
        self.update(id, |rec| {
            rec.updated_at = now;
            rec.generation += 1;
        })
    }

    /// Replaces a user's password hash.
    pub fn set_password_hash(&self, id: Uuid, hash: String, now: u64) -> Result<UserRecord> {
        self.update(id, |rec| {
            rec.password_hash = hash.clone();
            rec.updated_at = now;
            rec.generation += 1;
        })
    }

    fn update(&self, id: Uuid, change: impl Fn(&mut UserRecord)) -> Result<UserRecord> {
        self.write(|| {
            let rec = (&self.users, &self.meta)
                .transaction(|(users, meta)| {
                    let Some(old) = users.get(id.as_bytes())? else {
                        return abort(StoreError::NotFound);
                    };
                    let old: UserRecord = decode_tx(&old)?;
                    let mut new = old.clone();
                    change(&mut new);
                    adjust_admins_for(meta, &old, &new)?;
                    users.insert(id.as_bytes(), encode(&new))?;
                    Ok(new)
                })
                .map_err(from_tx)?;
            self.cache.invalidate(&id);
            self.flush()?;
            Ok(rec)
        })
    }

    /// `engine-auth recover-admin`: gives `username` every role and the
    /// password `hash`, revoking its tokens, or creates it so when absent;
    /// one transaction either way.
    pub fn recover_admin(&self, username: &Username, hash: String, now: u64) -> Result<Recovered> {
        self.write(|| {
            let key = fold_key(username.as_str());
            // Made outside the transaction.
            let fresh = new_user_record(username, hash.clone(), Roles::ALL, now);
            let recovered = (&self.users, &self.names, &self.meta)
                .transaction(|(users, names, meta)| {
                    let Some(entry) = find_entry(username.as_str(), |k| names.get(k))? else {
                        users.insert(fresh.id.as_bytes(), encode(&fresh))?;
                        names.insert(key.as_slice(), name_entry(&fresh))?;
                        adjust_user_count(meta, 1)?;
                        adjust_admins(meta, 1)?;
                        return Ok(Recovered {
                            user: fresh.clone(),
                            created: true,
                        });
                    };
                    let id = id_of_entry(&entry).or_else(abort)?;
                    // An index entry without its user: the name is taken, as
                    // creating the user would find.
                    let Some(old) = users.get(id.as_bytes())? else {
                        return abort(StoreError::UsernameTaken);
                    };
                    let old: UserRecord = decode_tx(&old)?;
                    let mut new = old.clone();
                    new.roles = Roles::ALL;
                    new.password_hash = hash.clone();
                    new.updated_at = now;
                    new.generation += 1;
                    adjust_admins_for(meta, &old, &new)?;
                    users.insert(id.as_bytes(), encode(&new))?;
                    Ok(Recovered {
                        user: new,
                        created: false,
                    })
                })
                .map_err(from_tx)?;
            self.cache.invalidate(&recovered.user.id);
            self.flush()?;
            Ok(recovered)
        })
    }

    /// Deletes a user (its session list and its API keys too); refuses to delete the last
    /// admin.
    pub fn delete_user(&self, id: Uuid) -> Result<UserRecord> {
        self.write(|| {
            let trees = (
                &self.users,
                &self.names,
                &self.meta,
                &self.user_sessions,
                &self.api_keys,
                &self.api_key_ids,
                &self.user_api_keys,
            );
            let rec = trees
                .transaction(
                    |(users, names, meta, session_lists, keys, key_ids, key_lists)| {
                        let Some(old) = users.remove(id.as_bytes())? else {
                            return abort(StoreError::NotFound);
                        };
                        let old: UserRecord = decode_tx(&old)?;
                        // The entry that names this user: never another user's
                        // under the same key (two users can share a fold when one
                        // of them is indexed under its old key).
                        for key in index_keys(&old.username) {
                            if let Some(entry) = names.get(key.as_slice())?
                                && id_of_entry(&entry).ok() == Some(id)
                            {
                                names.remove(key)?;
                                break;
                            }
                        }
                        // Its sessions are refused ("user gone") until pruned.
                        session_lists.remove(id.as_bytes())?;
                        // Its API keys go with it: no key outlives its owner.
                        super::apikeys::remove_keys_of(id, keys, key_ids, key_lists)?;
                        adjust_user_count(meta, -1)?;
                        if old.is_admin() {
                            adjust_admins(meta, -1)?;
                        }
                        Ok(old)
                    },
                )
                .map_err(from_tx)?;
            self.cache.invalidate(&id);
            self.flush()?;
            Ok(rec)
        })
    }
}

/// What [`Store::recover_admin`] did.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The user as now stored.
    pub user: UserRecord,
    /// Whether it was created (else an existing user was changed).
    pub created: bool,
}

/// The username index's key: the folded name.
pub(super) fn fold_key(username: &str) -> Vec<u8> {
    crate::domain::fold(username).into_bytes()
}

/// The index key before the fold applied NFKC: case mapping alone. Entries
/// written then are still under it where the two differ (names with
/// fullwidth or other compatibility characters, or decomposed accents);
/// nothing moves them. It can go once a start-up re-key has moved every
/// such entry to [`fold_key`] (one index scan, once) and stores older than
/// that are no longer upgraded from.
pub(super) fn legacy_fold_key(username: &str) -> Vec<u8> {
    username
        .to_lowercase()
        .to_uppercase()
        .to_lowercase()
        .into_bytes()
}

/// The keys a user named `username` may be indexed under: [`fold_key`],
/// then [`legacy_fold_key`] if it differs.
pub(super) fn index_keys(username: &str) -> Vec<Vec<u8>> {
    let key = fold_key(username);
    let legacy = legacy_fold_key(username);
    if legacy == key {
        vec![key]
    } else {
        vec![key, legacy]
    }
}

/// Finds `name`'s entry in the index with `get` (the tree's, or a
/// transaction's). Two rules, one per kind of entry:
///
/// - an entry written under the old key (its key is not the fold of the
///   name it holds) is found as before, by a name with the same old key;
/// - every other entry is found by a name with the same fold.
///
/// The old key is tried first: when a user indexed under its old key and a
/// newer one share a fold (`ａｄｍｉｎ` from before, `admin`), each still
/// logs in by its own name, as before. `engine-auth check` reports such
/// pairs. A name written under its old key is not found by a spelling only
/// the new fold equates with it (`ａｄｍｉｎ`'s user by `admin`), so such a
/// spelling can still be created beside it; `check` reports that pair too.
pub(super) fn find_entry<E>(
    name: &str,
    get: impl Fn(&[u8]) -> std::result::Result<Option<IVec>, E>,
) -> std::result::Result<Option<IVec>, E> {
    let key = fold_key(name);
    let legacy = legacy_fold_key(name);
    if legacy != key
        && let Some(entry) = get(&legacy)?
        && name_of_entry(&entry).is_some_and(|held| fold_key(held) != legacy)
    {
        return Ok(Some(entry));
    }
    get(&key)
}

/// Index value: 16 id bytes followed by the username as given.
pub(super) fn name_entry(rec: &UserRecord) -> Vec<u8> {
    let mut v = rec.id.as_bytes().to_vec();
    v.extend_from_slice(rec.username.as_bytes());
    v
}

/// The username an index entry holds, as given.
fn name_of_entry(entry: &[u8]) -> Option<&str> {
    std::str::from_utf8(entry.get(16..)?).ok()
}

pub(super) fn id_of_entry(entry: &[u8]) -> Result<Uuid> {
    entry
        .get(..16)
        .and_then(|b| Uuid::from_slice(b).ok())
        .ok_or_else(|| StoreError::Decode("username index entry".into()))
}

/// Keeps `admin_count` in step when a user record changes from `old` to
/// `new`.
fn adjust_admins_for(meta: &TxTree, old: &UserRecord, new: &UserRecord) -> TxResult<()> {
    match (old.is_admin(), new.is_admin()) {
        (true, false) => adjust_admins(meta, -1),
        (false, true) => adjust_admins(meta, 1),
        _ => Ok(()),
    }
}

/// Keeps `admin_count` in step with the users, inside the same transaction,
/// so that two concurrent demotions cannot both pass the last-admin check.
fn adjust_admins(meta: &TxTree, delta: i64) -> TxResult<()> {
    let current = read_u64(meta.get(META_ADMINS)?).or_else(abort)?;
    let next = current as i64 + delta;
    if next < 1 {
        return abort(StoreError::LastAdmin);
    }
    meta.insert(META_ADMINS, (next as u64).to_be_bytes())?;
    Ok(())
}

/// Keeps `user_count` and `name_count` in step with the users and the index,
/// inside the transaction that adds or removes one.
fn adjust_user_count(meta: &TxTree, delta: i64) -> TxResult<()> {
    for key in [META_USERS, META_NAMES] {
        let current = read_u64(meta.get(key)?).or_else(abort)?;
        let next = current.saturating_add_signed(delta);
        meta.insert(key, next.to_be_bytes())?;
    }
    Ok(())
}

/// A count from `meta`; 0 when absent or unreadable (`check` refuses a store
/// whose counts are unreadable, so this is only for display).
pub(super) fn read_count(meta: &Tree, key: &[u8]) -> u64 {
    meta.get(key)
        .ok()
        .flatten()
        .and_then(|v| read_u64(Some(v)).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::super::codec::encode;
    use super::super::testing::{counts, key, reopen, seeded, user};
    use super::super::{Counts, META_NAMES, META_USERS, Store, UserRecord};
    use super::{legacy_fold_key, name_entry};
    use crate::domain::{Roles, Username};

    /// A user as a release before NFKC wrote it: its index entry under the
    /// old key. Any name, also one `Username::parse` refuses today.
    fn old_user(s: &Store, name: &str) -> UserRecord {
        let mut rec = user("placeholder", Roles::from_bits(1));
        rec.username = name.into();
        s.users.insert(rec.id.as_bytes(), encode(&rec)).unwrap();
        s.names
            .insert(legacy_fold_key(name), name_entry(&rec))
            .unwrap();
        for key in [META_USERS, META_NAMES] {
            let n = super::read_count(&s.meta, key) + 1;
            s.meta.insert(key, n.to_be_bytes()).unwrap();
        }
        rec
    }

    #[test]
    fn users_indexed_under_the_old_fold_are_found_created_against_and_deleted_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        let admin = user("admin", Roles::ALL);
        s.initialize(&admin, &key()).unwrap();
        let fullwidth = old_user(&s, "ａｄｍｉｎ");
        let decomposed = old_user(&s, "a\u{300}lice");
        let rlo = old_user(&s, "\u{202e}nimda");
        let found = |name: &str| s.user_by_name(name).unwrap().map(|u| u.id);
        // Each by its own spelling, in any case: the old key first.
        assert_eq!(found("admin"), Some(admin.id));
        assert_eq!(found("ａｄｍｉｎ"), Some(fullwidth.id));
        assert_eq!(found("ＡＤＭＩＮ"), Some(fullwidth.id));
        assert_eq!(found("A\u{300}LICE"), Some(decomposed.id));
        assert_eq!(found("\u{202e}NIMDA"), Some(rlo.id));
        // Not by a spelling only the new fold equates (nothing re-keys), so
        // that spelling can still be created beside it (`check` reports the
        // pair), and each is found by its own spelling.
        assert_eq!(found("\u{e0}lice"), None);
        let later = user("\u{e0}lice", Roles::from_bits(1));
        s.create_user(&later).unwrap();
        assert_eq!(found("\u{e0}lice"), Some(later.id));
        assert_eq!(found("A\u{300}lice"), Some(decomposed.id));
        // Creating a spelling of an old user's name is refused.
        assert!(
            s.create_user(&user("ＡＤＭＩＮ", Roles::from_bits(1)))
                .is_err()
        );
        // recover-admin promotes the user that logs in by that name.
        let name = Username::parse("ａｄｍｉｎ").unwrap();
        let got = s.recover_admin(&name, "$argon2id$r".into(), 5).unwrap();
        assert_eq!((got.created, got.user.id), (false, fullwidth.id));
        let scan = s.scan().unwrap();
        assert!(scan.is_consistent(), "{:?}", scan.problems);
        assert_eq!(
            scan.collisions,
            [
                vec!["admin".to_string(), "ａｄｍｉｎ".to_string()],
                vec!["a\u{300}lice".to_string(), "\u{e0}lice".to_string()],
            ]
        );
        // Deleting the old user removes its own entry, not the admin's.
        s.delete_user(fullwidth.id).unwrap();
        assert_eq!(found("ａｄｍｉｎ"), Some(admin.id));
        s.delete_user(decomposed.id).unwrap();
        assert_eq!(found("A\u{300}lice"), Some(later.id));
        let scan = s.scan().unwrap();
        assert!(scan.is_consistent(), "{:?}", scan.problems);
        assert!(scan.collisions.is_empty());
        assert_eq!(counts(&s), [3, 3, 1]);
    }

    #[test]
    fn counts_are_kept_in_meta_across_creates_deletes_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let users = seeded(dir.path(), 5);
        let (s, _) = reopen(dir.path()).unwrap();
        assert_eq!(counts(&s), [6, 6, 1]);
        assert_eq!(s.user_count(), 6);
        s.delete_user(users[0].id).unwrap();
        // Refused changes leave the counts alone.
        assert!(s.create_user(&user("USER1", Roles::from_bits(1))).is_err());
        let admin2 = user("admin2", Roles::ALL);
        s.create_user(&admin2).unwrap();
        assert_eq!(counts(&s), [6, 6, 2]);
        s.delete_user(admin2.id).unwrap();
        assert_eq!(counts(&s), [5, 5, 1]);
        drop(s);
        let (s, _) = reopen(dir.path()).unwrap();
        assert_eq!(s.user_count(), 5);
        let scan = s.scan().unwrap();
        assert!(scan.is_consistent(), "{:?}", scan.problems);
        assert_eq!((scan.users, scan.names, scan.admins), (5, 5, 1));
        assert_eq!(
            scan.recorded,
            Counts {
                users: Some(5),
                names: Some(5),
                admins: Some(1)
            }
        );
    }

    #[test]
    fn recover_admin_creates_or_promotes_in_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        s.initialize(&user("admin", Roles::ALL), &key()).unwrap();
        let bob = user("Bob", Roles::from_bits(1));
        s.create_user(&bob).unwrap();
        assert_eq!(counts(&s), [2, 2, 1]);
        // An existing user, found case-insensitively: every role, the new
        // hash, its tokens revoked, the admin count up; one flush.
        let view = s.user_view(bob.id).unwrap().unwrap();
        let flushes = s.flush_count();
        let name = Username::parse("bob").unwrap();
        let got = s.recover_admin(&name, "$argon2id$new".into(), 9).unwrap();
        assert_eq!(s.flush_count(), flushes + 1);
        assert!(!got.created);
        assert_eq!((got.user.id, got.user.username.as_str()), (bob.id, "Bob"));
        let stored = s.user_by_id(bob.id).unwrap().unwrap();
        assert_eq!(stored.roles, Roles::ALL);
        assert_eq!(stored.password_hash, "$argon2id$new");
        assert_eq!(stored.updated_at, 9);
        assert!(stored.generation > view.generation);
        assert_eq!(s.user_view(bob.id).unwrap().unwrap().roles, Roles::ALL);
        assert_eq!(counts(&s), [2, 2, 2]);
        // Again: already an admin, so the count stays.
        s.recover_admin(&name, "$argon2id$again".into(), 10)
            .unwrap();
        assert_eq!(counts(&s), [2, 2, 2]);
        // An unknown name: created with every role.
        let carol = Username::parse("carol").unwrap();
        let got = s.recover_admin(&carol, "$argon2id$c".into(), 11).unwrap();
        assert!(got.created);
        let stored = s.user_by_name("CAROL").unwrap().unwrap();
        assert_eq!((stored.id, stored.roles), (got.user.id, Roles::ALL));
        assert_eq!(stored.password_hash, "$argon2id$c");
        assert_eq!(counts(&s), [3, 3, 3]);
        assert_eq!(
            s.usernames_json().unwrap().as_ref(),
            br#"["admin","Bob","carol"]"#
        );
        assert!(s.scan().unwrap().is_consistent());
    }
}
