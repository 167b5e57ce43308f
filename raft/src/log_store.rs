//! The Raft log and vote in RocksDB (`raft_log`, `raft_meta` column families).
//!
//! Appends go into RocksDB without a WAL sync; their `LogFlushed` callbacks are handed to one
//! flusher task, which syncs the WAL once for everything queued so far (group commit) and only
//! then reports the entries durable. Vote, truncate and purge are written synced.
//!
//! ```text
//!  append ─▶ WriteBatch (no sync) ─▶ bounded queue ─▶ flusher: flush_wal(sync) ─▶ callbacks
//! ```

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

/// The log store; clones share the database and the flusher.
#[derive(Clone)]
pub struct LogStore {
    db: Db,
    flush_tx: mpsc::Sender<LogFlushed>,
    /// The committed index as last reported by openraft (for status and metrics).
    committed: Arc<AtomicU64>,
}

impl LogStore {
    /// Opens the log store over `db` and starts its flusher task (on the current runtime).
    pub fn new(db: Db) -> Self {
        let (flush_tx, flush_rx) = mpsc::channel(FLUSH_QUEUE_MAX);
        tokio::spawn(flusher(db.clone(), flush_rx));
        LogStore { db, flush_tx, committed: Arc::new(AtomicU64::new(0)) }
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

async fn flusher(db: Db, mut rx: mpsc::Receiver<LogFlushed>) {
    let mut group = Vec::with_capacity(FLUSH_GROUP_MAX);
    while rx.recv_many(&mut group, FLUSH_GROUP_MAX).await > 0 {
        let db2 = db.clone();
        let result = match tokio::task::spawn_blocking(move || db2.sync_wal()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(std::io::Error::other(e.to_string())),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "raft log WAL sync failed");
        }
        for cb in group.drain(..) {
            cb.log_io_completed(result.as_ref().map(|_| ()).map_err(|e| std::io::Error::other(e.to_string())));
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
        for e in entries {
            batch.put_cf(cf, e.log_id.index.to_be_bytes(), codec::encode(&entry_to(&e)));
        }
        self.db.raw().write(batch).map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
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
        self.db.raw().write_opt(batch, &wo).map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Delete, e))
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
        self.db.raw().write_opt(batch, &wo).map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }
}
