//! The Raft log and vote in RocksDB (`raft_log`, `raft_meta` column families).
//!
//! Appends go into RocksDB without a WAL sync; their `LogFlushed` callbacks are handed to one
//! flusher thread, which syncs the WAL once for everything queued so far (group commit) and only
//! then reports the entries durable. Vote, truncate and purge are written synced.
//!
//! ```text
//!  append ─▶ WriteBatch (no sync) ─▶ bounded queue ─▶ flusher: flush_wal(sync) ─▶ callbacks
//!        └─▶ recent: the newest entries in memory ─▶ replication and apply read them from there
//! ```
//!
//! The newest entries are also kept decoded in memory ([`Recent`]): replication to each
//! follower and apply read what was just appended, and would otherwise iterate and decode it
//! from RocksDB once per reader. The cache always ends at the log's last entry; truncate and
//! purge trim it, and any read it cannot serve whole goes to RocksDB.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftLogReader, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend};
use prost::Message;
use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch, WriteOptions};
use tideline_storage::{codec, Cf, Db};
use tokio::sync::mpsc;

use crate::codec::*;
use crate::typ::*;

const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const PURGED_KEY: &[u8] = b"purged";
/// Appends waiting for a WAL sync, at most; a full queue makes `append` wait.
const FLUSH_QUEUE_MAX: usize = 4096;
/// Callbacks completed by one WAL sync, at most.
const FLUSH_GROUP_MAX: usize = 1024;
/// Entries returned by one `limited_get_log_entries`, at most.
const READ_ENTRIES_MAX: u64 = 512;
/// The newest entries kept in memory, at most this many …
const RECENT_ENTRIES_MAX: usize = 1024;
/// … and at most this many encoded bytes.
const RECENT_BYTES_MAX: usize = 32 * 1024 * 1024;

/// The newest log entries, contiguous by index and ending at the log's last entry.
#[derive(Default)]
struct Recent {
    entries: VecDeque<(Entry, usize)>,
    bytes: usize,
}

impl Recent {
    fn push(&mut self, entry: Entry, bytes: usize) {
        if self.entries.back().is_some_and(|(last, _)| last.log_id.index + 1 != entry.log_id.index) {
            self.clear();
        }
        self.entries.push_back((entry, bytes));
        self.bytes += bytes;
        while self.entries.len() > RECENT_ENTRIES_MAX || self.bytes > RECENT_BYTES_MAX {
            let Some((_, b)) = self.entries.pop_front() else { break };
            self.bytes -= b;
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Drops entries with index ≥ `from` (truncate).
    fn truncate(&mut self, from: u64) {
        while self.entries.back().is_some_and(|(e, _)| e.log_id.index >= from) {
            let Some((_, b)) = self.entries.pop_back() else { break };
            self.bytes -= b;
        }
    }

    /// Drops entries with index ≤ `upto` (purge).
    fn purge(&mut self, upto: u64) {
        while self.entries.front().is_some_and(|(e, _)| e.log_id.index <= upto) {
            let Some((_, b)) = self.entries.pop_front() else { break };
            self.bytes -= b;
        }
    }

    /// Entries `[start, end)`, at most `limit`, if every one of them is here.
    fn read(&self, start: u64, end: u64, limit: u64) -> Option<Vec<Entry>> {
        let first = self.entries.front()?.0.log_id.index;
        let last = self.entries.back()?.0.log_id.index;
        let end = end.min(start.saturating_add(limit));
        if start < first || end > last + 1 || start >= end {
            return None;
        }
        let from = (start - first) as usize;
        let to = (end - first) as usize;
        Some(self.entries.range(from..to).map(|(e, _)| e.clone()).collect())
    }
}

/// The log store; clones share the database and the flusher.
#[derive(Clone)]
pub struct LogStore {
    db: Db,
    // Declared before `_flusher`: fields drop in order, so the last clone closes the channel
    // before its guard joins the thread.
    flush_tx: mpsc::Sender<LogFlushed>,
    _flusher: Arc<FlusherThread>, // held for its Drop
    recent: Arc<Mutex<Recent>>,
    /// The committed index as last reported by openraft (for status and metrics).
    committed: Arc<AtomicU64>,
}

/// Joins the flusher thread when the last [`LogStore`] clone is dropped, so the thread's
/// handle on the database is gone when the store is: a process exiting right after dropping its
/// node must not close RocksDB from a thread it no longer waits for (RocksDB aborts when its
/// statics are torn down under an open database).
struct FlusherThread(Option<std::thread::JoinHandle<()>>);

impl Drop for FlusherThread {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            if handle.join().is_err() {
                tracing::error!("the raft log flusher thread panicked");
            }
        }
    }
}

impl LogStore {
    /// Opens the log store over `db` and starts its flusher thread.
    pub fn new(db: Db) -> Self {
        let (flush_tx, flush_rx) = mpsc::channel(FLUSH_QUEUE_MAX);
        let flusher_db = db.clone();
        let handle = std::thread::Builder::new()
            .name("raft-log-sync".into())
            .spawn(move || flusher(flusher_db, flush_rx))
            .expect("spawn the raft log flusher thread");
        LogStore {
            db,
            flush_tx,
            _flusher: Arc::new(FlusherThread(Some(handle))),
            recent: Default::default(),
            committed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A live view of the committed index.
    pub fn committed_index(&self) -> Arc<AtomicU64> {
        self.committed.clone()
    }

    fn get_meta<M: Message + Default>(&self, key: &[u8]) -> Result<Option<M>, StorageError> {
        self.db.get(Cf::RaftMeta, key).map_err(|e| sto_err(ErrorSubject::Store, ErrorVerb::Read, e))
    }

    fn put_meta_synced<M: Message>(
        &self,
        key: &[u8],
        msg: &M,
        subject: ErrorSubject<NodeId>,
    ) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .raw()
            .put_cf_opt(self.db.cf(Cf::RaftMeta), key, codec::encode(msg), &wo)
            .map_err(|e| sto_err(subject, ErrorVerb::Write, e))
    }

    fn read_range(&self, start: u64, end_exclusive: Option<u64>, limit: u64) -> Result<Vec<Entry>, StorageError> {
        if let Some(end) = end_exclusive {
            if let Some(hit) = self.recent.lock().expect("recent entries lock").read(start, end, limit) {
                return Ok(hit);
            }
        }
        let err = |e: &dyn std::fmt::Display| {
            sto_err(ErrorSubject::Logs, ErrorVerb::Read, std::io::Error::other(e.to_string()))
        };
        let mut ro = ReadOptions::default();
        if let Some(end) = end_exclusive {
            ro.set_iterate_upper_bound(end.to_be_bytes());
        }
        let from = start.to_be_bytes();
        let mut out = Vec::new();
        let iter =
            self.db.raw().iterator_cf_opt(self.db.cf(Cf::RaftLog), ro, IteratorMode::From(&from, Direction::Forward));
        for item in iter {
            if out.len() as u64 >= limit {
                break;
            }
            let (k, v) = item.map_err(|e| err(&e))?;
            let rec: EntryRecord = codec::decode("raft_log", &k, &v).map_err(|e| err(&e))?;
            let entry = entry_from(rec).map_err(|e| err(&e))?;
            if entry.log_id.index != index_of(&k).map_err(|e| err(&e))? {
                return Err(err(&"log entry index does not match its key"));
            }
            out.push(entry);
        }
        Ok(out)
    }

    fn last_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let mut iter = self.db.raw().iterator_cf(self.db.cf(Cf::RaftLog), IteratorMode::End);
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item.map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
                let rec: EntryRecord =
                    codec::decode("raft_log", &k, &v).map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
                let log_id = rec.log_id.as_ref().map(log_id_from);
                Ok(log_id)
            }
        }
    }
}

fn index_of(key: &[u8]) -> Result<u64, String> {
    key.try_into().map(u64::from_be_bytes).map_err(|_| "malformed raft log key".to_string())
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => Some(e + 1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    };
    (start, end)
}

/// The flusher: a thread of its own that blocks in `fdatasync`, so a sync costs no hand-off to
/// tokio's blocking pool and back. It takes every callback queued so far (up to
/// [`FLUSH_GROUP_MAX`]), syncs the WAL once and completes them all; it ends when every
/// [`LogStore`] clone (every sender) is gone.
fn flusher(db: Db, mut rx: mpsc::Receiver<LogFlushed>) {
    let mut group = Vec::with_capacity(FLUSH_GROUP_MAX);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < FLUSH_GROUP_MAX {
            match rx.try_recv() {
                Ok(cb) => group.push(cb),
                Err(_) => break,
            }
        }
        let result = db.sync_wal().map_err(|e| e.to_string());
        metrics::counter!("tideline_raft_log_syncs_total").increment(1);
        if let Err(e) = &result {
            metrics::counter!("tideline_raft_log_sync_errors_total").increment(1);
            tracing::error!(error = %e, "raft log WAL sync failed");
        }
        for cb in group.drain(..) {
            cb.log_io_completed(result.clone().map_err(std::io::Error::other));
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = bounds(&range);
        self.read_range(start, end, u64::MAX)
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        self.read_range(start, Some(end), READ_ENTRIES_MAX)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState, StorageError> {
        let last_purged_log_id = self.get_meta::<LogIdRecord>(PURGED_KEY)?.as_ref().map(log_id_from);
        let last_log_id = self.last_log_id()?.or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.put_meta_synced(VOTE_KEY, &vote_to(vote), ErrorSubject::Vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.get_meta::<VoteRecord>(VOTE_KEY)?.as_ref().map(vote_from))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not synced: losing it only means re-applying from the state machine's position.
        self.committed.store(committed.map(|c| c.index).unwrap_or(0), Ordering::Relaxed);
        let cf = self.db.cf(Cf::RaftMeta);
        let res = match committed {
            Some(c) => self.db.raw().put_cf(cf, COMMITTED_KEY, codec::encode(&log_id_to(&c))),
            None => self.db.raw().delete_cf(cf, COMMITTED_KEY),
        };
        res.map_err(|e| sto_err(ErrorSubject::Store, ErrorVerb::Write, e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<LogIdRecord>(COMMITTED_KEY)?.as_ref().map(log_id_from))
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = self.db.cf(Cf::RaftLog);
        let mut batch = WriteBatch::default();
        let mut appended = Vec::new();
        for e in entries {
            let bytes = codec::encode(&entry_to(&e));
            batch.put_cf(cf, e.log_id.index.to_be_bytes(), &bytes);
            appended.push((e, bytes.len()));
        }
        let written = self.db.raw().write(batch);
        {
            let mut recent = self.recent.lock().expect("recent entries lock");
            match &written {
                Ok(()) => appended.into_iter().for_each(|(e, b)| recent.push(e, b)),
                // What reached RocksDB is unknown: read it back from there.
                Err(_) => recent.clear(),
            }
        }
        written.map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        self.flush_tx
            .send(callback)
            .await
            .map_err(|_| sto_err(ErrorSubject::Logs, ErrorVerb::Write, std::io::Error::other("log flusher stopped")))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.db.cf(Cf::RaftLog), log_id.index.to_be_bytes(), u64::MAX.to_be_bytes());
        batch.delete_cf(self.db.cf(Cf::RaftLog), u64::MAX.to_be_bytes());
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        let mut recent = self.recent.lock().expect("recent entries lock");
        recent.truncate(log_id.index);
        let written = self.db.raw().write_opt(batch, &wo);
        if written.is_err() {
            recent.clear();
        }
        written.map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        if let Some(prev) = self.get_meta::<LogIdRecord>(PURGED_KEY)? {
            assert!(prev.index <= log_id.index, "purge moves backwards: {} after {}", log_id.index, prev.index);
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(self.db.cf(Cf::RaftMeta), PURGED_KEY, codec::encode(&log_id_to(&log_id)));
        batch.delete_range_cf(
            self.db.cf(Cf::RaftLog),
            0u64.to_be_bytes(),
            log_id.index.saturating_add(1).to_be_bytes(),
        );
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.recent.lock().expect("recent entries lock").purge(log_id.index);
        self.db.raw().write_opt(batch, &wo).map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64) -> Entry {
        Entry { log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index), payload: EntryPayload::Blank }
    }

    fn indexes(v: Option<Vec<Entry>>) -> Option<Vec<u64>> {
        v.map(|v| v.iter().map(|e| e.log_id.index).collect())
    }

    #[test]
    fn recent_serves_only_ranges_it_holds_whole() {
        let mut r = Recent::default();
        assert_eq!(indexes(r.read(1, 2, 10)), None, "empty");
        for i in 5..=9 {
            r.push(entry(i), 10);
        }
        assert_eq!(indexes(r.read(5, 10, 100)), Some(vec![5, 6, 7, 8, 9]));
        assert_eq!(indexes(r.read(6, 8, 100)), Some(vec![6, 7]));
        assert_eq!(indexes(r.read(6, 10, 2)), Some(vec![6, 7]), "limit");
        assert_eq!(indexes(r.read(4, 7, 100)), None, "starts before the cache");
        assert_eq!(indexes(r.read(8, 11, 100)), None, "ends after the cache");
        r.truncate(8);
        assert_eq!(indexes(r.read(5, 8, 100)), Some(vec![5, 6, 7]));
        assert_eq!(indexes(r.read(5, 9, 100)), None, "truncated away");
        r.purge(5);
        assert_eq!(indexes(r.read(5, 8, 100)), None, "purged away");
        assert_eq!(indexes(r.read(6, 8, 100)), Some(vec![6, 7]));
        r.push(entry(20), 10);
        assert_eq!(indexes(r.read(6, 8, 100)), None, "a gap starts the cache anew");
        assert_eq!(indexes(r.read(20, 21, 100)), Some(vec![20]));
        assert_eq!(r.bytes, 10);
    }

    #[test]
    fn recent_is_bounded() {
        let mut r = Recent::default();
        for i in 1..=(RECENT_ENTRIES_MAX as u64 + 10) {
            r.push(entry(i), 1);
        }
        assert_eq!(r.entries.len(), RECENT_ENTRIES_MAX);
        r.push(entry(RECENT_ENTRIES_MAX as u64 + 11), RECENT_BYTES_MAX);
        assert_eq!(r.entries.len(), 1, "one entry at the byte bound pushes out the rest");
    }
}
