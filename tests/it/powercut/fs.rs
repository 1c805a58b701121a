//! [`PowerCut`]: an in-memory FUSE filesystem that models what a power
//! cut leaves on a disk, for the daemon's data dir.
//!
//! Every file has what processes see (its *volatile* content) and what a
//! power cut keeps (its *durable* content, as of its last `fsync` or
//! `fdatasync`, which both make data and size durable). A directory's
//! entries likewise: creates, renames, unlinks, `mkdir` and `rmdir` become
//! durable only when that directory is fsynced. Writes and truncates not
//! yet synced are kept per file, in order; entry changes in one log, in
//! order (a rename, or a `RENAME_EXCHANGE` swap, is one atomic entry).
//! `sync_file_range` is no FUSE operation, so it makes nothing durable: a
//! disk that acknowledges writes from its cache loses them in a cut, and so
//! does this model. Modes, owners and times are not modelled as volatile: a
//! `chmod` is durable at once.
//!
//! A cut ([`PowerCut::cut`], after the daemon was SIGKILLed) unmounts, so
//! no kernel cache survives, computes the surviving image, and mounts a
//! fresh filesystem on it:
//! - [`Mode::Strict`]: exactly what was synced survives;
//! - [`Mode::Harsh`]: the synced state plus a random subset of the
//!   unsynced operations: entry changes in order, each file's writes and
//!   truncates in random order, each write torn at 512-byte sectors (a
//!   random subset of its sectors lands). A file's size is metadata, which
//!   filesystems journal in order with the syscall that set it: it is the
//!   size after a random prefix of the file's unsynced writes and
//!   truncates (each write extending it to its end, each truncate setting
//!   it), never one no syscall gave the file; landed sectors beyond it are
//!   gone, and what no landed write covers within it reads as zeros.
//!
//! Whatever no durable entry reaches from the root is gone. Sockets (the
//! admin socket in the data dir) are inodes like any other: the kernel
//! binds them, the filesystem only holds the name.

use fuser::{
    AccessFlags, BackgroundSession, BsdFileFlags, Config, Errno, FileAttr, FileHandle, FileType,
    Filesystem, FopenFlags, Generation, INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::rng::Rng;

const ROOT: u64 = 1;
const SECTOR: u64 = 512;
/// Nothing the kernel learns about an entry or inode is cached.
const TTL: Duration = Duration::ZERO;
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFIFO: u32 = 0o010_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Strict,
    Harsh,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Harsh => "harsh",
        }
    }
}

/// An unsynced change to one file's content.
#[derive(Clone)]
enum DataOp {
    Write { offset: u64, bytes: Vec<u8> },
    Truncate { size: u64 },
}

impl DataOp {
    /// The file's size once this op has run on a file of `size` bytes.
    fn size_after(&self, size: u64) -> u64 {
        match self {
            DataOp::Write { offset, bytes } => size.max(offset + bytes.len() as u64),
            DataOp::Truncate { size } => *size,
        }
    }

    fn apply(&self, data: &mut Vec<u8>) {
        match self {
            DataOp::Write { offset, bytes } => {
                let (start, end) = (*offset as usize, *offset as usize + bytes.len());
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[start..end].copy_from_slice(bytes);
            }
            DataOp::Truncate { size } => data.resize(*size as usize, 0),
        }
    }

    /// The same write with only a random subset of its sectors (counted on
    /// the file's sector grid); a truncate is atomic.
    fn torn(&self, rng: &mut Rng) -> Vec<DataOp> {
        let DataOp::Write { offset, bytes } = self else {
            return vec![self.clone()];
        };
        let end = offset + bytes.len() as u64;
        let mut pieces = Vec::new();
        let mut at = *offset;
        while at < end {
            let next = ((at / SECTOR + 1) * SECTOR).min(end);
            if rng.coin() {
                let slice = &bytes[(at - offset) as usize..(next - offset) as usize];
                pieces.push(DataOp::Write {
                    offset: at,
                    bytes: slice.to_vec(),
                });
            }
            at = next;
        }
        pieces
    }
}

/// An unsynced change to directory entries.
#[derive(Clone, Debug)]
enum MetaOp {
    /// `name` in `dir` now names `ino` (create, mkdir, mknod).
    Set { dir: u64, name: OsString, ino: u64 },
    /// `name` in `dir` is gone (unlink, rmdir).
    Remove { dir: u64, name: OsString },
    /// One atomic rename (replacing whatever `to` named).
    Rename {
        from: u64,
        from_name: OsString,
        to: u64,
        to_name: OsString,
        ino: u64,
    },
    /// One atomic `RENAME_EXCHANGE`: `a_name` in `a` now names `b_ino`,
    /// `b_name` in `b` names `a_ino`.
    Exchange {
        a: u64,
        a_name: OsString,
        a_ino: u64,
        b: u64,
        b_name: OsString,
        b_ino: u64,
    },
}

#[derive(Clone)]
enum Body {
    File {
        data: Vec<u8>,
        durable: Vec<u8>,
        pending: Vec<DataOp>,
    },
    Dir {
        entries: BTreeMap<OsString, u64>,
        durable: BTreeMap<OsString, u64>,
        /// The entry log's sequence number at this directory's last fsync:
        /// later entry changes to it are not durable.
        synced: u64,
    },
    /// A socket or FIFO: a name and an inode, no content.
    Special(FileType),
}

#[derive(Clone)]
struct Node {
    perm: u16,
    uid: u32,
    gid: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
    body: Body,
}

impl Node {
    fn new(perm: u16, uid: u32, gid: u32, body: Body) -> Node {
        let now = SystemTime::now();
        Node {
            perm,
            uid,
            gid,
            atime: now,
            mtime: now,
            ctime: now,
            body,
        }
    }

    fn kind(&self) -> FileType {
        match &self.body {
            Body::File { .. } => FileType::RegularFile,
            Body::Dir { .. } => FileType::Directory,
            Body::Special(kind) => *kind,
        }
    }

    fn size(&self) -> u64 {
        match &self.body {
            Body::File { data, .. } => data.len() as u64,
            Body::Dir { entries, .. } => entries.len() as u64,
            Body::Special(_) => 0,
        }
    }

    fn attr(&self, ino: u64) -> FileAttr {
        let size = self.size();
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(SECTOR),
            atime: self.atime,
            mtime: self.mtime,
            ctime: self.ctime,
            crtime: self.ctime,
            kind: self.kind(),
            perm: self.perm,
            nlink: if matches!(self.body, Body::Dir { .. }) {
                2
            } else {
                1
            },
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: SECTOR as u32,
            flags: 0,
        }
    }

    fn entries(&self) -> Option<&BTreeMap<OsString, u64>> {
        match &self.body {
            Body::Dir { entries, .. } => Some(entries),
            _ => None,
        }
    }

    fn entries_mut(&mut self) -> Option<&mut BTreeMap<OsString, u64>> {
        match &mut self.body {
            Body::Dir { entries, .. } => Some(entries),
            _ => None,
        }
    }
}

/// What the model counted since the last cut: how much the daemon synced.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub writes: u64,
    pub fsyncs: u64,
    pub fsyncdirs: u64,
}

/// The whole state: every inode, volatile and durable, and the entry log.
pub struct Image {
    nodes: HashMap<u64, Node>,
    log: Vec<(u64, MetaOp)>,
    seq: u64,
    next_ino: u64,
    pub counts: Counts,
}

impl Image {
    /// An empty root directory owned by `uid`/`gid`, mode 0700, durable.
    pub fn new(uid: u32, gid: u32) -> Image {
        let root = Node::new(
            0o700,
            uid,
            gid,
            Body::Dir {
                entries: BTreeMap::new(),
                durable: BTreeMap::new(),
                synced: 0,
            },
        );
        Image {
            nodes: HashMap::from([(ROOT, root)]),
            log: Vec::new(),
            seq: 0,
            next_ino: ROOT + 1,
            counts: Counts::default(),
        }
    }

    /// `sync(2)`: everything becomes durable.
    pub fn sync_all(&mut self) {
        for node in self.nodes.values_mut() {
            match &mut node.body {
                Body::File {
                    data,
                    durable,
                    pending,
                } => {
                    durable.clone_from(data);
                    pending.clear();
                }
                Body::Dir {
                    entries,
                    durable,
                    synced,
                } => {
                    durable.clone_from(entries);
                    *synced = self.seq;
                }
                Body::Special(_) => {}
            }
        }
        self.log.clear();
    }

    /// The image a power cut leaves: see the module doc.
    pub fn cut(&self, mode: Mode, rng: &mut Rng) -> Image {
        let mut nodes: HashMap<u64, Node> = self
            .nodes
            .iter()
            .map(|(&ino, node)| {
                let mut n = node.clone();
                n.body = match &node.body {
                    Body::File {
                        durable, pending, ..
                    } => {
                        let mut data = durable.clone();
                        if mode == Mode::Harsh {
                            // The size: after a prefix of the size changes.
                            let kept = rng.range(0, pending.len() as u64) as usize;
                            let size = pending[..kept]
                                .iter()
                                .fold(data.len() as u64, |size, op| op.size_after(size));
                            let mut landed = Vec::new();
                            for op in pending {
                                if rng.coin() {
                                    landed.extend(op.torn(rng));
                                }
                            }
                            rng.shuffle(&mut landed);
                            for op in &landed {
                                op.apply(&mut data);
                            }
                            data.resize(size as usize, 0);
                        }
                        Body::File {
                            durable: data.clone(),
                            data,
                            pending: Vec::new(),
                        }
                    }
                    Body::Dir { durable, .. } => Body::Dir {
                        entries: durable.clone(),
                        durable: durable.clone(),
                        synced: 0,
                    },
                    Body::Special(kind) => Body::Special(*kind),
                };
                (ino, n)
            })
            .collect();
        if mode == Mode::Harsh {
            for (seq, op) in &self.log {
                if rng.coin() {
                    self.replay(&mut nodes, *seq, op);
                }
            }
        }
        // Whatever no entry reaches from the root is gone.
        let mut reachable = HashSet::from([ROOT]);
        let mut todo = vec![ROOT];
        while let Some(dir) = todo.pop() {
            if let Some(entries) = nodes.get(&dir).and_then(Node::entries) {
                for &ino in entries.values() {
                    if reachable.insert(ino) {
                        todo.push(ino);
                    }
                }
            }
        }
        nodes.retain(|ino, _| reachable.contains(ino));
        for node in nodes.values_mut() {
            if let Body::Dir {
                entries, durable, ..
            } = &mut node.body
            {
                entries.retain(|_, ino| reachable.contains(ino));
                durable.clone_from(entries);
            }
        }
        Image {
            nodes,
            log: Vec::new(),
            seq: self.seq,
            next_ino: self.next_ino,
            counts: Counts::default(),
        }
    }

    /// Applies one unsynced entry change to the surviving entries of the
    /// directories it touches that were not synced since.
    fn replay(&self, nodes: &mut HashMap<u64, Node>, seq: u64, op: &MetaOp) {
        let unsynced = |dir: u64| {
            matches!(self.nodes.get(&dir).map(|n| &n.body),
                Some(Body::Dir { synced, .. }) if *synced < seq)
        };
        let mut edit = |dir: u64, f: &mut dyn FnMut(&mut BTreeMap<OsString, u64>)| {
            if unsynced(dir)
                && let Some(entries) = nodes.get_mut(&dir).and_then(Node::entries_mut)
            {
                f(entries);
            }
        };
        match op {
            MetaOp::Set { dir, name, ino } => edit(*dir, &mut |e| {
                e.insert(name.clone(), *ino);
            }),
            MetaOp::Remove { dir, name } => edit(*dir, &mut |e| {
                e.remove(name);
            }),
            MetaOp::Rename {
                from,
                from_name,
                to,
                to_name,
                ino,
            } => {
                edit(*from, &mut |e| {
                    if e.get(from_name) == Some(ino) {
                        e.remove(from_name);
                    }
                });
                edit(*to, &mut |e| {
                    e.insert(to_name.clone(), *ino);
                });
            }
            MetaOp::Exchange {
                a,
                a_name,
                a_ino,
                b,
                b_name,
                b_ino,
            } => {
                edit(*a, &mut |e| {
                    e.insert(a_name.clone(), *b_ino);
                });
                edit(*b, &mut |e| {
                    e.insert(b_name.clone(), *a_ino);
                });
            }
        }
    }

    fn log(&mut self, op: MetaOp) {
        self.seq += 1;
        self.log.push((self.seq, op));
    }

    fn node(&self, ino: INodeNo) -> Result<&Node, Errno> {
        self.nodes.get(&ino.0).ok_or(Errno::ENOENT)
    }

    fn node_mut(&mut self, ino: INodeNo) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino.0).ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<u64, Errno> {
        let entries = self.node(parent)?.entries().ok_or(Errno::ENOTDIR)?;
        entries.get(name).copied().ok_or(Errno::ENOENT)
    }

    /// A new inode named `name` in `parent` (a logged entry change).
    fn make(
        &mut self,
        (uid, gid): (u32, u32),
        parent: INodeNo,
        name: &OsStr,
        perm: u32,
        body: Body,
    ) -> Result<FileAttr, Errno> {
        if self.child(parent, name).is_ok() {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let node = Node::new((perm & 0o7777) as u16, uid, gid, body);
        let attr = node.attr(ino);
        self.nodes.insert(ino, node);
        let dir = self.node_mut(parent)?;
        dir.mtime = SystemTime::now();
        dir.entries_mut()
            .ok_or(Errno::ENOTDIR)?
            .insert(name.to_owned(), ino);
        self.log(MetaOp::Set {
            dir: parent.0,
            name: name.to_owned(),
            ino,
        });
        Ok(attr)
    }

    fn remove(&mut self, parent: INodeNo, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let ino = self.child(parent, name)?;
        let node = self.nodes.get(&ino).ok_or(Errno::ENOENT)?;
        match (node.entries(), dir) {
            (Some(entries), true) if !entries.is_empty() => return Err(Errno::ENOTEMPTY),
            (Some(_), false) => return Err(Errno::EISDIR),
            (None, true) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        let p = self.node_mut(parent)?;
        p.mtime = SystemTime::now();
        p.entries_mut().ok_or(Errno::ENOTDIR)?.remove(name);
        self.log(MetaOp::Remove {
            dir: parent.0,
            name: name.to_owned(),
        });
        Ok(())
    }

    fn rename(
        &mut self,
        from: INodeNo,
        from_name: &OsStr,
        to: INodeNo,
        to_name: &OsStr,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        if flags.contains(RenameFlags::RENAME_WHITEOUT) {
            return Err(Errno::EINVAL);
        }
        let ino = self.child(from, from_name)?;
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            // `compact` and `restore` swap stores with it: both names must
            // exist; each then names the other's inode, in one step.
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                return Err(Errno::EINVAL);
            }
            let other = self.child(to, to_name)?;
            self.node_mut(from)?
                .entries_mut()
                .ok_or(Errno::ENOTDIR)?
                .insert(from_name.to_owned(), other);
            self.node_mut(to)?
                .entries_mut()
                .ok_or(Errno::ENOTDIR)?
                .insert(to_name.to_owned(), ino);
            self.log(MetaOp::Exchange {
                a: from.0,
                a_name: from_name.to_owned(),
                a_ino: ino,
                b: to.0,
                b_name: to_name.to_owned(),
                b_ino: other,
            });
            return Ok(());
        }
        if let Ok(target) = self.child(to, to_name) {
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            if target == ino {
                return Ok(());
            }
            let is_dir = self.nodes.get(&ino).and_then(Node::entries).is_some();
            match self.nodes.get(&target).and_then(Node::entries) {
                Some(e) if !e.is_empty() => return Err(Errno::ENOTEMPTY),
                Some(_) if !is_dir => return Err(Errno::EISDIR),
                None if is_dir => return Err(Errno::ENOTDIR),
                _ => {}
            }
        }
        self.node_mut(to)?.entries().ok_or(Errno::ENOTDIR)?;
        self.node_mut(from)?
            .entries_mut()
            .ok_or(Errno::ENOTDIR)?
            .remove(from_name);
        self.node_mut(to)?
            .entries_mut()
            .ok_or(Errno::ENOTDIR)?
            .insert(to_name.to_owned(), ino);
        self.log(MetaOp::Rename {
            from: from.0,
            from_name: from_name.to_owned(),
            to: to.0,
            to_name: to_name.to_owned(),
            ino,
        });
        Ok(())
    }

    fn change(&mut self, ino: INodeNo, op: DataOp) -> Result<(), Errno> {
        let node = self.node_mut(ino)?;
        let Body::File { data, pending, .. } = &mut node.body else {
            return Err(Errno::EISDIR);
        };
        op.apply(data);
        pending.push(op);
        node.mtime = SystemTime::now();
        node.ctime = node.mtime;
        Ok(())
    }

    fn fsync(&mut self, ino: INodeNo) -> Result<(), Errno> {
        let seq = self.seq;
        match &mut self.node_mut(ino)?.body {
            Body::File {
                data,
                durable,
                pending,
            } => {
                // Incremental: a store file is MiBs, its pending writes few.
                for op in pending.drain(..) {
                    op.apply(durable);
                }
                debug_assert!(durable == data);
            }
            Body::Dir {
                entries,
                durable,
                synced,
            } => {
                durable.clone_from(entries);
                *synced = seq;
            }
            Body::Special(_) => {}
        }
        Ok(())
    }
}

/// The calling process's uid and gid: the new inode's owner.
fn owner(req: &Request) -> (u32, u32) {
    (req.uid(), req.gid())
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

/// The FUSE side: every operation on one shared [`Image`].
struct Fs(Arc<Mutex<Image>>);

impl Fs {
    fn image(&self) -> MutexGuard<'_, Image> {
        // A panicking operation leaves the image as it was mid-change:
        // the test then fails on what it finds, which is what we want.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn entry(reply: ReplyEntry, result: Result<FileAttr, Errno>) {
    match result {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn empty(reply: ReplyEmpty, result: Result<(), Errno>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let img = self.image();
        let result = img
            .child(parent, name)
            .and_then(|ino| Ok(img.node(INodeNo(ino))?.attr(ino)));
        entry(reply, result);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.image().node(ino) {
            Ok(node) => reply.attr(&TTL, &node.attr(ino.0)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut img = self.image();
        let result = (|| {
            if let Some(size) = size {
                img.change(ino, DataOp::Truncate { size })?;
            }
            let node = img.node_mut(ino)?;
            if let Some(mode) = mode {
                node.perm = (mode & 0o7777) as u16;
            }
            if let Some(uid) = uid {
                node.uid = uid;
            }
            if let Some(gid) = gid {
                node.gid = gid;
            }
            if let Some(t) = atime {
                node.atime = time(t);
            }
            if let Some(t) = mtime {
                node.mtime = time(t);
            }
            node.ctime = SystemTime::now();
            Ok(node.attr(ino.0))
        })();
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let body = match mode & S_IFMT {
            S_IFREG => Body::File {
                data: Vec::new(),
                durable: Vec::new(),
                pending: Vec::new(),
            },
            S_IFSOCK => Body::Special(FileType::Socket),
            S_IFIFO => Body::Special(FileType::NamedPipe),
            _ => return reply.error(Errno::EPERM),
        };
        let result = self
            .image()
            .make(owner(req), parent, name, mode & !umask, body);
        entry(reply, result);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let body = Body::Dir {
            entries: BTreeMap::new(),
            durable: BTreeMap::new(),
            synced: 0,
        };
        let result = self
            .image()
            .make(owner(req), parent, name, mode & !umask, body);
        entry(reply, result);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.image().remove(parent, name, false));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.image().remove(parent, name, true));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let result = self.image().rename(parent, name, newparent, newname, flags);
        empty(reply, result);
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.image().node(ino) {
            // direct_io: no page cache between the daemon and the model.
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let img = self.image();
        match img.node(ino).map(|n| &n.body) {
            Ok(Body::File { data, .. }) => {
                let start = (offset as usize).min(data.len());
                let end = (start + size as usize).min(data.len());
                reply.data(&data[start..end]);
            }
            Ok(_) => reply.error(Errno::EISDIR),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut img = self.image();
        img.counts.writes += 1;
        let op = DataOp::Write {
            offset,
            bytes: data.to_vec(),
        };
        match img.change(ino, op) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) makes nothing durable.
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut img = self.image();
        img.counts.fsyncs += 1;
        empty(reply, img.fsync(ino));
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.image().node(ino).map(Node::entries) {
            Ok(Some(_)) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Ok(None) => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let img = self.image();
        let Ok(Some(entries)) = img.node(ino).map(Node::entries) else {
            return reply.error(Errno::ENOTDIR);
        };
        let mut all = vec![
            (ino.0, FileType::Directory, OsString::from(".")),
            (ino.0, FileType::Directory, OsString::from("..")),
        ];
        for (name, &child) in entries {
            if let Some(node) = img.nodes.get(&child) {
                all.push((child, node.kind(), name.clone()));
            }
        }
        for (i, (child, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut img = self.image();
        img.counts.fsyncdirs += 1;
        empty(reply, img.fsync(ino));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // 1 GiB, nearly all free: nobody should think the disk full.
        let blocks = (1u64 << 30) / SECTOR;
        reply.statfs(
            blocks,
            blocks - 1024,
            blocks - 1024,
            1 << 20,
            1 << 20,
            512,
            255,
            512,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // Only root runs here (checked before mounting).
        empty(reply, self.image().node(ino).map(|_| ()));
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let body = Body::File {
            data: Vec::new(),
            durable: Vec::new(),
            pending: Vec::new(),
        };
        match self
            .image()
            .make(owner(req), parent, name, mode & !umask, body)
        {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(e) => reply.error(e),
        }
    }
}

/// The data dir on the model: mounted, cut, remounted.
pub struct PowerCut {
    mountpoint: PathBuf,
    image: Arc<Mutex<Image>>,
    session: Option<BackgroundSession>,
}

impl PowerCut {
    /// Mounts an empty root (mode 0700, owned by this process's user) on
    /// `mountpoint`, which must be an existing empty directory.
    pub fn mount(mountpoint: &Path) -> PowerCut {
        let image = Image::new(
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        let mut pc = PowerCut {
            mountpoint: mountpoint.to_path_buf(),
            image: Arc::new(Mutex::new(image)),
            session: None,
        };
        pc.attach();
        pc
    }

    fn attach(&mut self) {
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("powercut".into()),
            MountOption::Subtype("powercut".into()),
        ];
        let fs = Fs(Arc::clone(&self.image));
        let session = fuser::spawn_mount(fs, &self.mountpoint, &config).unwrap_or_else(|e| {
            panic!(
                "cannot mount the power-cut filesystem on {} \
                 (needs root, /dev/fuse and fusermount3 from Debian's fuse3): {e}",
                self.mountpoint.display()
            )
        });
        self.session = Some(session);
    }

    fn detach(&mut self) {
        if let Some(session) = self.session.take() {
            session
                .umount_and_join()
                .expect("unmount the power-cut filesystem");
        }
    }

    fn lock(&self) -> MutexGuard<'_, Image> {
        self.image.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `sync(2)`: everything so far is durable.
    pub fn sync_all(&self) {
        self.lock().sync_all();
    }

    /// What the daemon synced since the last cut.
    pub fn counts(&self) -> Counts {
        self.lock().counts
    }

    /// The power cut (the daemon must be dead already): unmount, keep what
    /// survives per `mode`, mount a fresh filesystem on it.
    pub fn cut(&mut self, mode: Mode, rng: &mut Rng) {
        self.detach();
        let survived = self.lock().cut(mode, rng);
        *self.lock() = survived;
        self.attach();
    }
}

impl Drop for PowerCut {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
    }
}

/// The model itself, without FUSE: what each kind of sync keeps.
mod model {
    use super::*;

    const FILE: u32 = 0o600;

    fn file() -> Body {
        Body::File {
            data: Vec::new(),
            durable: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn write(img: &mut Image, ino: u64, offset: u64, bytes: &[u8]) {
        let op = DataOp::Write {
            offset,
            bytes: bytes.to_vec(),
        };
        img.change(INodeNo(ino), op).expect("write");
    }

    /// The content of `name` in the root after a cut, if it survived.
    fn survivor(img: &Image, name: &str) -> Option<Vec<u8>> {
        let ino = img.child(INodeNo(ROOT), OsStr::new(name)).ok()?;
        match &img.nodes.get(&ino)?.body {
            Body::File { data, .. } => Some(data.clone()),
            _ => None,
        }
    }

    fn new_file(img: &mut Image, name: &str) -> u64 {
        let attr = img
            .make((0, 0), INodeNo(ROOT), OsStr::new(name), FILE, file())
            .expect("create");
        attr.ino.0
    }

    #[test]
    fn strict_keeps_exactly_what_was_synced() {
        let mut rng = Rng::new(1);
        let mut img = Image::new(0, 0);
        // Synced file, synced entry: survives with its synced content only.
        let a = new_file(&mut img, "a");
        write(&mut img, a, 0, b"synced");
        img.fsync(INodeNo(a)).expect("fsync");
        img.fsync(INodeNo(ROOT)).expect("fsyncdir");
        write(&mut img, a, 6, b" and not");
        // Synced file, entry never synced: gone.
        let b = new_file(&mut img, "b");
        write(&mut img, b, 0, b"orphan");
        img.fsync(INodeNo(b)).expect("fsync");
        let cut = img.cut(Mode::Strict, &mut rng);
        assert_eq!(survivor(&cut, "a").as_deref(), Some(&b"synced"[..]));
        assert_eq!(survivor(&cut, "b"), None);
        assert_eq!(cut.nodes.len(), 2, "the orphan's inode is collected");
        // A rename is durable only once its directory is synced.
        let mut img = cut;
        img.rename(
            INodeNo(ROOT),
            OsStr::new("a"),
            INodeNo(ROOT),
            OsStr::new("c"),
            RenameFlags::empty(),
        )
        .expect("rename");
        let cut = img.cut(Mode::Strict, &mut rng);
        assert!(survivor(&cut, "a").is_some() && survivor(&cut, "c").is_none());
        img.fsync(INodeNo(ROOT)).expect("fsyncdir");
        let cut = img.cut(Mode::Strict, &mut rng);
        assert!(survivor(&cut, "a").is_none() && survivor(&cut, "c").is_some());
    }

    #[test]
    fn an_exchange_is_atomic_and_durable_once_its_directory_is_synced() {
        let mut rng = Rng::new(1);
        let mut img = Image::new(0, 0);
        for (name, content) in [("x", b"old"), ("y", b"new")] {
            let ino = new_file(&mut img, name);
            write(&mut img, ino, 0, content);
            img.fsync(INodeNo(ino)).expect("fsync");
        }
        img.fsync(INodeNo(ROOT)).expect("fsyncdir");
        let swap = |img: &mut Image| {
            img.rename(
                INodeNo(ROOT),
                OsStr::new("x"),
                INodeNo(ROOT),
                OsStr::new("y"),
                RenameFlags::RENAME_EXCHANGE,
            )
            .expect("exchange")
        };
        swap(&mut img);
        assert_eq!(survivor(&img, "x").as_deref(), Some(&b"new"[..]));
        let cut = img.cut(Mode::Strict, &mut rng);
        assert_eq!(survivor(&cut, "x").as_deref(), Some(&b"old"[..]));
        for seed in 0..50 {
            let cut = img.cut(Mode::Harsh, &mut Rng::new(seed));
            let pair = (survivor(&cut, "x"), survivor(&cut, "y"));
            assert!(
                pair == (Some(b"old".to_vec()), Some(b"new".to_vec()))
                    || pair == (Some(b"new".to_vec()), Some(b"old".to_vec())),
                "half an exchange: {pair:?}"
            );
        }
        img.fsync(INodeNo(ROOT)).expect("fsyncdir");
        let cut = img.cut(Mode::Strict, &mut rng);
        assert_eq!(survivor(&cut, "x").as_deref(), Some(&b"new"[..]));
        assert_eq!(survivor(&cut, "y").as_deref(), Some(&b"old"[..]));
    }

    #[test]
    fn harsh_tears_writes_at_sectors_and_keeps_some_entries() {
        let (mut torn, mut whole, mut none, mut entries) = (0, 0, 0, 0);
        for seed in 0..200 {
            let mut rng = Rng::new(seed);
            let mut img = Image::new(0, 0);
            let a = new_file(&mut img, "a");
            img.fsync(INodeNo(ROOT)).expect("fsyncdir");
            // Four sectors of 1s over four durable sectors of 0s.
            write(&mut img, a, 0, &[0; 2048]);
            img.fsync(INodeNo(a)).expect("fsync");
            write(&mut img, a, 0, &[1; 2048]);
            new_file(&mut img, "b");
            let cut = img.cut(Mode::Harsh, &mut rng);
            let data = survivor(&cut, "a").expect("a is durable");
            assert_eq!(data.len(), 2048);
            for sector in data.chunks(512) {
                assert!(
                    sector.iter().all(|&b| b == sector[0]),
                    "a sector is all old or all new"
                );
            }
            match data.chunks(512).filter(|s| s[0] == 1).count() {
                0 => none += 1,
                4 => whole += 1,
                _ => torn += 1,
            }
            entries += usize::from(survivor(&cut, "b").is_some());
            let strict = img.cut(Mode::Strict, &mut rng);
            assert_eq!(survivor(&strict, "a"), Some(vec![0; 2048]));
            assert_eq!(survivor(&strict, "b"), None);
        }
        assert!(torn > 0 && whole > 0 && none > 0, "{torn} {whole} {none}");
        assert!(entries > 0 && entries < 200, "{entries}");
    }

    #[test]
    fn harsh_keeps_only_sizes_the_file_had_in_order() {
        let mut sizes = std::collections::BTreeSet::new();
        for seed in 0..300 {
            let mut rng = Rng::new(seed);
            let mut img = Image::new(0, 0);
            let a = new_file(&mut img, "a");
            img.fsync(INodeNo(ROOT)).expect("fsyncdir");
            write(&mut img, a, 0, &[7; 1000]);
            img.fsync(INodeNo(a)).expect("fsync");
            // Unsynced: grown to 8192 (as `set_len` does), pages written
            // inside, then an append of 1500 bytes.
            img.change(INodeNo(a), DataOp::Truncate { size: 8192 })
                .expect("truncate");
            write(&mut img, a, 4096, &[1; 4096]);
            write(&mut img, a, 8192, &[2; 1500]);
            let cut = img.cut(Mode::Harsh, &mut rng);
            let data = survivor(&cut, "a").expect("a is durable");
            sizes.insert(data.len());
            assert!(data[..1000].iter().all(|&b| b == 7), "synced data kept");
            if data.len() > 8192 {
                assert!(data[8192..].iter().all(|&b| b == 2 || b == 0));
            }
        }
        // The durable size, after the truncate, after the append: nothing
        // torn in between.
        assert_eq!(
            sizes.into_iter().collect::<Vec<_>>(),
            vec![1000, 8192, 9692]
        );
    }
}
