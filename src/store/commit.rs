//! Group commit: concurrent writers share fsyncs. A writer takes a ticket
//! after its transaction committed (not yet durably: `kv`); if no flush is
//! running it becomes the leader and flushes for every ticket taken so
//! far, else it waits. Writers arriving during a flush are covered by the
//! next one. On an SD card an fsync costs 5-20 ms, so under load this is
//! what keeps throughput up.
//!
//! A flush is one durable redb commit ([`Db::flush`]): it makes every
//! transaction committed before it durable, in one `fdatasync`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::kv::{Db, KvResult};

/// The flusher; [`super::Store::flush`] names the store in its errors.
#[derive(Default)]
pub(super) struct GroupCommit {
    state: Mutex<CommitState>,
    done: Condvar,
    flushes: AtomicU64,
}

#[derive(Default)]
struct CommitState {
    /// Tickets handed out.
    requested: u64,
    /// Every ticket up to this one is durable (or failed: `last_error`).
    completed: u64,
    in_progress: bool,
    /// The last flush's failure, for the writers it covered (redb's
    /// error is not `Clone`: its kind and words).
    last_error: Option<(std::io::ErrorKind, String)>,
    /// Tickets the last flush covered.
    last_batch: u64,
}

/// How long a flush leader waits for more writers under concurrency.
const COMMIT_DELAY: Duration = Duration::from_micros(200);

impl GroupCommit {
    /// Returns once everything written before the call is on disk.
    /// The leader runs `first` (other writes for the same commit) before
    /// the durable commit.
    pub(super) fn flush(&self, db: &Db, first: impl FnOnce() -> KvResult<()>) -> KvResult<()> {
        let mut first = Some(first);
        let lock = || self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = lock();
        st.requested += 1;
        let ticket = st.requested;
        loop {
            if st.completed >= ticket {
                return match &st.last_error {
                    None => Ok(()),
                    Some((kind, why)) => {
                        Err(redb::Error::Io(std::io::Error::new(*kind, why.clone())))
                    }
                };
            }
            if st.in_progress {
                st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            st.in_progress = true;
            // Commit delay (PostgreSQL's commit_delay, made adaptive): when
            // the last flush covered several writers, others are probably
            // about to ask; wait a moment so this flush covers them too.
            // A lone writer never waits. On a fast disk this is what keeps
            // syncs per write low; on an SD card the slow fsync batches
            // writers anyway.
            if st.last_batch > 1 {
                drop(st);
                std::thread::sleep(COMMIT_DELAY);
                st = lock();
            }
            let target = st.requested;
            st.last_batch = target - st.completed;
            drop(st);
            let started = std::time::Instant::now();
            let result = first
                .take()
                .map_or(Ok(()), |f| f())
                .and_then(|()| db.flush());
            crate::metrics::fsync_done(started.elapsed());
            self.flushes.fetch_add(1, Ordering::Relaxed);
            st = lock();
            st.in_progress = false;
            st.completed = target;
            // A later successful flush covers earlier writes too, so the
            // latest outcome is the truth for every ticket up to `target`.
            st.last_error = result.as_ref().err().map(|e| match e {
                redb::Error::Io(io) => (io.kind(), e.to_string()),
                e => (std::io::ErrorKind::Other, e.to_string()),
            });
            self.done.notify_all();
            result?;
        }
    }

    pub(super) fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::super::testing::{key, user};
    use crate::domain::Roles;

    #[test]
    fn concurrent_writers_share_flushes_and_all_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..64).map(|i| format!("user{i}")).collect();
        {
            let (s, _) = Store::open(dir.path(), 1 << 20).unwrap();
            s.initialize(&user("admin", Roles::ALL), &key()).unwrap();
            let before = s.flush_count();
            std::thread::scope(|scope| {
                for chunk in names.chunks(8) {
                    let s = s.clone();
                    scope.spawn(move || {
                        for n in chunk {
                            s.create_user(&user(n, Roles::from_bits(1))).unwrap();
                        }
                    });
                }
            });
            assert!(s.flush_count() > before);
        }
        let (s, _) = super::super::testing::reopen(dir.path()).unwrap();
        for n in &names {
            assert!(s.user_by_name(n).unwrap().is_some(), "{n} lost");
        }
    }
}
