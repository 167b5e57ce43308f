//! Whole-store passes for the leader's timers: blob garbage collection (`raft/src/collector.rs`)
//! and journal retention (`raft/src/compactor.rs`). Each reads a whole column family by nature;
//! each streams it, keeping only what it answers.

use std::collections::HashSet;

use crate::content_ref::ContentRef;
use crate::db::Cf;
use crate::error::StorageError;
use crate::keys;
use crate::records::{JournalEntry, NodeRecord, SnapshotRecord, VolumeRecord};
use crate::state_machine::StateMachine;

impl StateMachine {
    /// Every content digest a namespace row or a retained journal entry of any volume references
    /// (snapshot manifests live in the object store; the collector adds those). Whole-store: a
    /// digest is garbage only if nothing anywhere references it.
    pub fn referenced_content(&self) -> Result<HashSet<[u8; 32]>, StorageError> {
        let mut out = HashSet::new();
        let mut add = |r: Option<&str>| {
            if let Some(c) = r.and_then(ContentRef::parse) {
                out.insert(c.0);
            }
        };
        for row in self.db().iter::<NodeRecord>(Cf::Namespace, b"") {
            add(row?.1.content_ref.as_deref());
        }
        for row in self.db().iter::<JournalEntry>(Cf::Journal, b"") {
            add(row?.1.content_ref.as_deref());
        }
        Ok(out)
    }

    /// Digests of content kept inline by the state machine (whole-store: GC candidates).
    pub fn inline_content(&self) -> Result<Vec<[u8; 32]>, StorageError> {
        let mut out = Vec::new();
        for row in self.db().iter_raw(Cf::Blobs, b"") {
            if let Ok(sha) = <[u8; 32]>::try_from(&row?.0[..]) {
                out.push(sha);
            }
        }
        Ok(out)
    }

    /// Blobs marked as garbage, and when (whole-store: the collector sweeps the old ones).
    pub fn garbage_marks(&self) -> Result<Vec<([u8; 32], i64)>, StorageError> {
        let mut out = Vec::new();
        for row in self.db().iter_raw(Cf::GcMarks, b"") {
            let (k, v) = row?;
            if let (Ok(sha), Ok(at)) = (<[u8; 32]>::try_from(&k[..]), <[u8; 8]>::try_from(&v[..])) {
                out.push((sha, i64::from_be_bytes(at)));
            }
        }
        Ok(out)
    }

    /// Swept digests whose objects the leader has not yet reported deleted.
    pub fn swept_tombstones(&self) -> Result<Vec<[u8; 32]>, StorageError> {
        let mut out = Vec::new();
        for row in self.db().iter_raw(Cf::GcMarks, b"T") {
            if let Some(sha) = row?.0.get(1..).and_then(|s| <[u8; 32]>::try_from(s).ok()) {
                out.push(sha);
            }
        }
        Ok(out)
    }

    /// Every snapshot of every volume (whole-store: the collector reads every sealed manifest).
    pub fn all_snapshots(&self) -> Result<Vec<SnapshotRecord>, StorageError> {
        self.db().iter::<SnapshotRecord>(Cf::Snapshots, b"").map(|row| row.map(|(_, s)| s)).collect()
    }

    /// Volumes whose retained journal is longer than `retain` entries, with the seq to compact
    /// through, at most `limit`: the leader turns each into a `Compact` proposal.
    pub fn compaction_candidates(&self, retain: u64, limit: usize) -> Result<Vec<(String, u64)>, StorageError> {
        let mut out = Vec::new();
        for row in self.db().iter::<VolumeRecord>(Cf::Volumes, b"") {
            let (_, v) = row?;
            if v.head_seq.saturating_sub(v.floor_seq) > retain {
                out.push((v.id, v.head_seq - retain));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Whether some replica request id was stored before `before_ms` (and so can be pruned).
    pub fn requests_stored_before(&self, before_ms: i64) -> Result<bool, StorageError> {
        let prefix = [keys::REQUEST_EXPIRY_PREFIX];
        let first = self.db().scan_raw_limit(Cf::Requests, &prefix, 1)?;
        Ok(first.first().is_some_and(|(k, _)| k < &keys::request_expiry(before_ms, b"")))
    }
}
