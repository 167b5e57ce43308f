//! Whole-store passes for the leader's timers: blob garbage collection (`raft/src/collector.rs`)
//! and journal retention (`raft/src/compactor.rs`).

use std::collections::HashSet;

use crate::content_ref::ContentRef;
use crate::db::Cf;
use crate::error::StorageError;
use crate::keys;
use crate::records::{JournalEntry, NodeRecord, SnapshotRecord, VolumeRecord};
use crate::state_machine::StateMachine;

impl StateMachine {
    /// Every content digest a namespace row or a retained journal entry of any volume references
    /// (snapshot manifests live in the object store; the collector adds those).
    pub fn referenced_content(&self) -> Result<HashSet<[u8; 32]>, StorageError> {
        let mut out = HashSet::new();
        let mut add = |r: Option<&str>| {
            if let Some(c) = r.and_then(ContentRef::parse) {
                out.insert(c.0);
            }
        };
        for (_, n) in self.db().scan::<NodeRecord>(Cf::Namespace, b"", None, usize::MAX)? {
            add(n.content_ref.as_deref());
        }
        for (_, e) in self.db().scan::<JournalEntry>(Cf::Journal, b"", None, usize::MAX)? {
            add(e.content_ref.as_deref());
        }
        Ok(out)
    }

    /// Digests of content kept inline by the state machine.
    pub fn inline_content(&self) -> Result<Vec<[u8; 32]>, StorageError> {
        Ok(self.db().scan_raw(Cf::Blobs, b"")?.into_iter().filter_map(|(k, _)| k.try_into().ok()).collect())
    }

    /// Blobs marked as garbage, and when.
    pub fn garbage_marks(&self) -> Result<Vec<([u8; 32], i64)>, StorageError> {
        Ok(self
            .db()
            .scan_raw(Cf::GcMarks, b"")?
            .into_iter()
            .filter_map(|(k, v)| Some((k.try_into().ok()?, i64::from_be_bytes(v.as_slice().try_into().ok()?))))
            .collect())
    }

    /// Swept digests whose objects the leader has not yet reported deleted.
    pub fn swept_tombstones(&self) -> Result<Vec<[u8; 32]>, StorageError> {
        Ok(self
            .db()
            .scan_raw(Cf::GcMarks, b"T")?
            .into_iter()
            .filter_map(|(k, _)| k.get(1..).and_then(|s| <[u8; 32]>::try_from(s).ok()))
            .collect())
    }

    /// Every snapshot of every volume.
    pub fn all_snapshots(&self) -> Result<Vec<SnapshotRecord>, StorageError> {
        Ok(self
            .db()
            .scan::<SnapshotRecord>(Cf::Snapshots, b"", None, usize::MAX)?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    /// Volumes whose retained journal is longer than `retain` entries, with the seq to compact
    /// through: the leader turns each into a `Compact` proposal.
    pub fn compaction_candidates(&self, retain: u64, limit: usize) -> Result<Vec<(String, u64)>, StorageError> {
        let mut out = Vec::new();
        for (_, v) in self.db().scan::<VolumeRecord>(Cf::Volumes, b"", None, usize::MAX)? {
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
