//! The storage engine underneath the store: redb, seen through the few
//! operations the store uses (named trees of byte keys and values, reads,
//! writes, atomic writes across trees, iteration in key order), so the
//! rest of `store/` reads as plain key-value code.
//!
//! Every table is `&[u8] → &[u8]`, ordered by bytes. Every write is one
//! redb write transaction committed with [`Durability::None`]: visible at
//! once to every later read, durable only once [`Db::flush`] (a commit with
//! `Durability::Immediate`: the commit slot written and the file
//! `fdatasync`ed) has run. That split is what lets concurrent writers share
//! one fsync (`commit`'s group commit). redb's write transactions are
//! exclusive (one at a time per database), so a write never conflicts and
//! never runs twice; a reader sees the last committed state.
//!
//! Why redb: it commits with checksums into the inactive of two commit
//! slots, so a power cut at any moment leaves the last durable commit
//! intact (the harness in `tests/it/powercut/` cuts at random moments);
//! sled 0.34, the engine before, failed rare cuts and stores written by it
//! are migrated once (`migrate`).

use redb::{
    Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    TableHandle,
};
use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

/// A value or key read out of the store.
pub type IVec = Vec<u8>;

/// The engine's errors, unified.
pub type KvResult<T> = std::result::Result<T, redb::Error>;

/// Every record of some trees: (tree name, (key, value) in key order).
pub type Records = Vec<(String, Vec<(IVec, IVec)>)>;

/// The file of the store inside its directory.
pub const DATA_FILE: &str = "data.redb";

type Def<'n> = TableDefinition<'n, &'static [u8], &'static [u8]>;

/// An open database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<redb::Database>,
}

impl Db {
    /// Opens (creating if absent) the database file `file`, with a page
    /// cache of `cache_bytes`. Fails with `DatabaseAlreadyOpen` while
    /// another handle, in this process or another, holds it.
    pub fn open(file: &Path, cache_bytes: u64) -> std::result::Result<Db, redb::DatabaseError> {
        let db = redb::Database::builder()
            .set_cache_size(usize::try_from(cache_bytes).unwrap_or(usize::MAX))
            .create(file)?;
        Ok(Db {
            inner: Arc::new(db),
        })
    }

    /// A handle on the tree `name`; reading a tree nobody wrote yet finds
    /// it empty, the first write creates it.
    pub fn open_tree(&self, name: &str) -> KvResult<Tree> {
        Ok(Tree {
            db: self.inner.clone(),
            name: name.into(),
        })
    }

    /// The trees that exist, in name order.
    pub fn tree_names(&self) -> KvResult<Vec<String>> {
        let tx = self.inner.begin_read()?;
        let mut names: Vec<String> = tx.list_tables()?.map(|t| t.name().to_owned()).collect();
        names.sort();
        Ok(names)
    }

    /// Makes every write committed so far durable: one commit with
    /// `Durability::Immediate` (redb writes its commit slot and ends in
    /// `fdatasync` of the file).
    pub fn flush(&self) -> KvResult<()> {
        let mut tx = self.inner.begin_write()?;
        tx.set_durability(Durability::Immediate)
            .map_err(redb::Error::from)?;
        tx.commit()?;
        Ok(())
    }

    /// Every record of every tree, tree by tree in name order.
    pub fn records(&self) -> KvResult<Records> {
        self.tree_names()?
            .into_iter()
            .map(|name| {
                let records = self.open_tree(&name)?.iter().collect::<KvResult<_>>()?;
                Ok((name, records))
            })
            .collect()
    }

    /// SHA-256 over every tree's name and every key and value in order: two
    /// databases with the same digest hold the same data.
    pub fn digest(&self) -> KvResult<[u8; 32]> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for name in self.tree_names()? {
            let tree = self.open_tree(&name)?;
            h.update((name.len() as u64).to_be_bytes());
            h.update(name.as_bytes());
            for item in tree.iter() {
                let (k, v) = item?;
                h.update((k.len() as u64).to_be_bytes());
                h.update(&k);
                h.update((v.len() as u64).to_be_bytes());
                h.update(&v);
            }
        }
        Ok(h.finalize().into())
    }

    /// Rewrites the file to hold only live pages, shrinking it; needs the
    /// only handle on the database (`false` otherwise, or when nothing was
    /// left to gain).
    pub fn compact(&mut self) -> KvResult<bool> {
        match Arc::get_mut(&mut self.inner) {
            Some(db) => Ok(db.compact().map_err(redb::Error::from)?),
            None => Ok(false),
        }
    }

    fn begin_write(&self) -> KvResult<redb::WriteTransaction> {
        let mut tx = self.inner.begin_write()?;
        tx.set_durability(Durability::None)
            .map_err(redb::Error::from)?;
        Ok(tx)
    }
}

/// One named tree (a redb table) of a [`Db`]; cheap to clone.
#[derive(Clone)]
pub struct Tree {
    db: Arc<redb::Database>,
    name: Arc<str>,
}

impl Tree {
    fn def(&self) -> Def<'_> {
        TableDefinition::new(&self.name)
    }

    fn db(&self) -> Db {
        Db {
            inner: self.db.clone(),
        }
    }

    /// Runs `f` on the tree as of now; `absent` when the tree was never
    /// written.
    fn read<T>(
        &self,
        absent: T,
        f: impl FnOnce(redb::ReadOnlyTable<&'static [u8], &'static [u8]>) -> KvResult<T>,
    ) -> KvResult<T> {
        let tx = self.db.begin_read()?;
        match tx.open_table(self.def()) {
            Ok(t) => f(t),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(absent),
            Err(e) => Err(e.into()),
        }
    }

    /// One write transaction on this tree alone.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>) -> KvResult<T>,
    ) -> KvResult<T> {
        let tx = self.db().begin_write()?;
        let out = {
            let mut t = tx.open_table(self.def())?;
            f(&mut t)?
        };
        tx.commit()?;
        Ok(out)
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> KvResult<Option<IVec>> {
        self.read(None, |t| {
            Ok(t.get(key.as_ref())?.map(|v| v.value().to_vec()))
        })
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> KvResult<bool> {
        self.read(false, |t| Ok(t.get(key.as_ref())?.is_some()))
    }

    /// Inserts, returning the value it replaced.
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> KvResult<Option<IVec>> {
        self.write(|t| {
            Ok(t.insert(key.as_ref(), value.as_ref())?
                .map(|v| v.value().to_vec()))
        })
    }

    /// Removes, returning the value it held.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> KvResult<Option<IVec>> {
        self.write(|t| Ok(t.remove(key.as_ref())?.map(|v| v.value().to_vec())))
    }

    /// Sets `key` to `new` (`None` removes it) only if it holds `old`
    /// (`None`: absent); otherwise changes nothing and says so.
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        old: Option<impl AsRef<[u8]>>,
        new: Option<impl AsRef<[u8]>>,
    ) -> KvResult<std::result::Result<(), Mismatch>> {
        let key = key.as_ref();
        let tx = self.db().begin_write()?;
        let swapped = {
            let mut t = tx.open_table(self.def())?;
            let current = t.get(key)?.map(|v| v.value().to_vec());
            if current.as_deref() != old.as_ref().map(AsRef::as_ref) {
                false
            } else {
                match &new {
                    Some(v) => drop(t.insert(key, v.as_ref())?),
                    None => drop(t.remove(key)?),
                }
                true
            }
        };
        if !swapped {
            tx.abort()?;
            return Ok(Err(Mismatch));
        }
        tx.commit()?;
        Ok(Ok(()))
    }

    /// Applies every change of `batch` in one transaction; creates the
    /// tree if need be, even for an empty batch (a copy keeps empty trees).
    pub fn apply_batch(&self, batch: Batch) -> KvResult<()> {
        self.write(|t| {
            for (k, v) in &batch.ops {
                match v {
                    Some(v) => drop(t.insert(&k[..], &v[..])?),
                    None => drop(t.remove(&k[..])?),
                }
            }
            Ok(())
        })
    }

    /// Removes every entry.
    pub fn clear(&self) -> KvResult<()> {
        self.write(|t| Ok(t.retain(|_, _| false)?))
    }

    pub fn len(&self) -> KvResult<u64> {
        self.read(0, |t| Ok(t.len()?))
    }

    pub fn is_empty(&self) -> KvResult<bool> {
        Ok(self.first()?.is_none())
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> KvResult<Option<(IVec, IVec)>> {
        self.iter().next().transpose()
    }

    /// Every entry in key order, read lazily from one snapshot.
    pub fn iter(&self) -> Iter {
        self.range_from(&[], None)
    }

    /// The entries whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let prefix = prefix.as_ref().to_vec();
        self.range_from(&prefix, Some(prefix.clone()))
    }

    fn range_from(&self, start: &[u8], prefix: Option<Vec<u8>>) -> Iter {
        let range = self.read(None, |t| Ok(Some(t.range::<&[u8]>(start..)?)));
        match range {
            Ok(range) => Iter {
                range,
                prefix,
                failed: None,
            },
            Err(e) => Iter {
                range: None,
                prefix: None,
                failed: Some(e),
            },
        }
    }
}

/// `compare_and_swap` found another value than the one expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch;

/// Changes to apply to one tree at once ([`Tree::apply_batch`]).
#[derive(Default)]
pub struct Batch {
    ops: Vec<(IVec, Option<IVec>)>,
}

impl Batch {
    pub fn insert(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.ops
            .push((key.as_ref().to_vec(), Some(value.as_ref().to_vec())));
    }

    pub fn remove(&mut self, key: impl AsRef<[u8]>) {
        self.ops.push((key.as_ref().to_vec(), None));
    }
}

/// Entries of one tree, in key order, from the snapshot taken when the
/// iteration began.
pub struct Iter {
    range: Option<redb::Range<'static, &'static [u8], &'static [u8]>>,
    prefix: Option<Vec<u8>>,
    failed: Option<redb::Error>,
}

impl Iterator for Iter {
    type Item = KvResult<(IVec, IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.failed.take() {
            return Some(Err(e));
        }
        let item = self.range.as_mut()?.next()?;
        match item {
            Ok((k, v)) => {
                let k = k.value().to_vec();
                if let Some(p) = &self.prefix
                    && !k.starts_with(p)
                {
                    self.range = None;
                    return None;
                }
                Some(Ok((k, v.value().to_vec())))
            }
            Err(e) => {
                self.range = None;
                Some(Err(e.into()))
            }
        }
    }
}

/// One tree inside a transaction across several ([`Transactional`]).
pub struct TxTree<'t> {
    table: RefCell<redb::Table<'t, &'static [u8], &'static [u8]>>,
}

impl TxTree<'_> {
    pub fn get(&self, key: impl AsRef<[u8]>) -> KvResult<Option<IVec>> {
        let t = self.table.borrow();
        Ok(t.get(key.as_ref())?.map(|v| v.value().to_vec()))
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> KvResult<Option<IVec>> {
        let mut t = self.table.borrow_mut();
        let old = t.insert(key.as_ref(), value.as_ref())?;
        Ok(old.map(|v| v.value().to_vec()))
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> KvResult<Option<IVec>> {
        let mut t = self.table.borrow_mut();
        let old = t.remove(key.as_ref())?;
        Ok(old.map(|v| v.value().to_vec()))
    }
}

/// How a transaction ended without committing.
#[derive(Debug)]
pub enum TxError<E> {
    /// The closure refused: nothing was written.
    Abort(E),
    /// The engine failed.
    Storage(redb::Error),
}

impl<E> From<redb::Error> for TxError<E> {
    fn from(e: redb::Error) -> Self {
        TxError::Storage(e)
    }
}

/// Trees that can be written in one atomic transaction: a tuple of trees
/// of one database. The closure sees each as a [`TxTree`]; when it returns
/// `Ok` every change commits together, when it returns `Err` none does.
pub trait Transactional {
    type View<'t>;

    fn transaction<T, E>(
        &self,
        f: impl FnOnce(&Self::View<'_>) -> std::result::Result<T, TxError<E>>,
    ) -> std::result::Result<T, TxError<E>>;
}

fn open_in<'t>(tx: &'t redb::WriteTransaction, tree: &Tree) -> KvResult<TxTree<'t>> {
    Ok(TxTree {
        table: RefCell::new(tx.open_table(tree.def())?),
    })
}

macro_rules! transactional {
    ($($t:ident),+) => {
        impl<'a> Transactional for ($(transactional!(@tree $t),)+) {
            type View<'t> = ($(transactional!(@tx $t),)+);

            #[allow(non_snake_case)]
            fn transaction<T, E>(
                &self,
                f: impl FnOnce(&Self::View<'_>) -> std::result::Result<T, TxError<E>>,
            ) -> std::result::Result<T, TxError<E>> {
                let ($($t,)+) = *self;
                let first = [$($t),+][0];
                debug_assert!([$($t),+].iter().all(|t| Arc::ptr_eq(&t.db, &first.db)));
                let tx = first.db().begin_write()?;
                let view = ($(open_in(&tx, $t)?,)+);
                let out = f(&view);
                drop(view);
                match out {
                    Ok(v) => {
                        tx.commit().map_err(redb::Error::from)?;
                        Ok(v)
                    }
                    Err(e) => {
                        tx.abort().map_err(redb::Error::from)?;
                        Err(e)
                    }
                }
            }
        }
    };
    (@tx $t:ident) => { TxTree<'t> };
    (@tree $t:ident) => { &'a Tree };
}

impl Transactional for Tree {
    type View<'t> = TxTree<'t>;

    fn transaction<T, E>(
        &self,
        f: impl FnOnce(&Self::View<'_>) -> std::result::Result<T, TxError<E>>,
    ) -> std::result::Result<T, TxError<E>> {
        (self,).transaction(|(t,)| f(t))
    }
}

transactional!(A);
transactional!(A, B);
transactional!(A, B, C);
transactional!(A, B, C, D);
transactional!(A, B, C, D, E);
transactional!(A, B, C, D, E, F);
transactional!(A, B, C, D, E, F, G);
