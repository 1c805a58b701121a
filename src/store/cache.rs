//! In-memory views for the hot read path: every authenticated request
//! needs the caller's current roles and generation, and GET /users the
//! whole username list. Both are cached here and invalidated by the
//! store's own writes, which are the only writes (the store is locked to
//! one process).
//!
//! Coherence: a reader that misses reads the store, then inserts only if no
//! write invalidated anything since it started (the epoch). A writer
//! invalidates after its commit. So a reader can see the old value only
//! while the write is not yet acknowledged, as without a cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use uuid::Uuid;

use super::UserRecord;
use crate::domain::Roles;

/// What a request needs to know about a user, without the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub id: Uuid,
    pub username: Arc<str>,
    pub roles: Roles,
    pub generation: u64,
    /// Whether two-factor authentication is on.
    pub mfa: bool,
    /// The API key the caller presented (its id), if it did not present a
    /// token: its roles are then the key's within the user's. The rules
    /// (`accounts`) refuse such a caller what only the user may do.
    pub api_key: Option<Uuid>,
}

impl From<&UserRecord> for UserView {
    fn from(rec: &UserRecord) -> UserView {
        UserView {
            id: rec.id,
            username: rec.username.as_str().into(),
            roles: rec.roles,
            generation: rec.generation,
            mfa: rec.mfa.is_on(),
            api_key: None,
        }
    }
}

/// Above this many cached users the map starts over (bounded memory; a
/// miss costs one store read).
const MAX_USERS: usize = 100_000;

#[derive(Default)]
pub(super) struct Cache {
    users: RwLock<HashMap<Uuid, Arc<UserView>>>,
    /// GET /users' answer, serialised.
    list: RwLock<Option<Arc<[u8]>>>,
    epoch: AtomicU64,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Cache {
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub(super) fn user(&self, id: &Uuid) -> Option<Arc<UserView>> {
        read(&self.users).get(id).cloned()
    }

    /// Caches a view read from the store when the epoch was `epoch`.
    pub(super) fn fill_user(&self, epoch: u64, view: Arc<UserView>) {
        let mut users = write(&self.users);
        if self.epoch() == epoch {
            if users.len() >= MAX_USERS {
                users.clear();
            }
            users.insert(view.id, view);
        }
    }

    pub(super) fn list(&self) -> Option<Arc<[u8]>> {
        read(&self.list).clone()
    }

    pub(super) fn fill_list(&self, epoch: u64, list: Arc<[u8]>) {
        let mut slot = write(&self.list);
        if self.epoch() == epoch {
            *slot = Some(list);
        }
    }

    /// After a committed write to user `id` (or a new or deleted user).
    pub(super) fn invalidate(&self, id: &Uuid) {
        let mut users = write(&self.users);
        let mut list = write(&self.list);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        users.remove(id);
        *list = None;
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::super::testing::{key, user};
    use crate::domain::Roles;

    #[test]
    fn views_and_list_follow_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        let admin = user("admin", Roles::ALL);
        s.initialize(&admin, &key()).unwrap();
        assert_eq!(&*s.usernames_json().unwrap(), br#"["admin"]"#);
        let bob = user("Bob", Roles::from_bits(1));
        s.create_user(&bob).unwrap();
        assert_eq!(&*s.usernames_json().unwrap(), br#"["admin","Bob"]"#);

        let v = s.user_view(bob.id).unwrap().unwrap();
        assert_eq!((v.roles.bits(), v.generation, &*v.username), (1, 0, "Bob"));
        // Cached now; every kind of change must show at once.
        s.set_roles(bob.id, Roles::from_bits(3), 2).unwrap();
        let v = s.user_view(bob.id).unwrap().unwrap();
        assert_eq!((v.roles.bits(), v.generation), (3, 1));
        s.revoke_all_tokens(bob.id, 3).unwrap();
        assert_eq!(s.user_view(bob.id).unwrap().unwrap().generation, 2);
        s.set_password_hash(bob.id, "$argon2id$y".into(), 4)
            .unwrap();
        assert_eq!(s.user_view(bob.id).unwrap().unwrap().generation, 3);
        s.delete_user(bob.id).unwrap();
        assert!(s.user_view(bob.id).unwrap().is_none());
        assert_eq!(&*s.usernames_json().unwrap(), br#"["admin"]"#);
    }

    #[test]
    fn a_reader_racing_a_writer_never_caches_the_old_view() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
        let bob = user("bob", Roles::from_bits(1));
        s.create_user(&bob).unwrap();
        std::thread::scope(|sc| {
            for _ in 0..4 {
                let s = s.clone();
                sc.spawn(move || {
                    for _ in 0..2000 {
                        s.user_view(bob.id).unwrap();
                    }
                });
            }
            for g in 0..50u8 {
                s.set_roles(bob.id, Roles::from_bits(g % 2 + 1), 1).unwrap();
            }
        });
        let fresh = s.user_by_id(bob.id).unwrap().unwrap();
        let view = s.user_view(bob.id).unwrap().unwrap();
        assert_eq!(
            (view.roles, view.generation),
            (fresh.roles, fresh.generation)
        );
        assert_eq!(view.generation, 50);
    }
}
