//! The read side the API serves requests from: point reads and listings over the applied
//! state.
//!
//! Whole-store passes for the leader's timers are in `maintenance.rs`, the start-up check in
//! `verify.rs`.

use std::collections::BTreeMap;

use crate::codec;
use crate::content_ref::ContentRef;
use crate::db::Cf;
use crate::error::StorageError;
use crate::keys;
use crate::records::{JournalEntry, NodeRecord, ReplicaRecord, SnapshotRecord, TokenRecord, VolumeRecord};
use crate::state_machine::StateMachine;
use crate::sync_records::ConflictRecord;
use crate::txn::Txn;

impl StateMachine {
    pub fn volume(&self, id: &str) -> Result<Option<VolumeRecord>, StorageError> {
        self.db().get(Cf::Volumes, id.as_bytes())
    }

    /// The team's volumes, newest first, at most `limit`.
    pub fn volumes_of_team(&self, team: &str, limit: usize) -> Result<Vec<VolumeRecord>, StorageError> {
        let mut out: Vec<VolumeRecord> = self
            .db()
            .scan::<VolumeRecord>(Cf::Volumes, b"", None, usize::MAX)?
            .into_iter()
            .map(|(_, v)| v)
            .filter(|v| v.team_id == team)
            .collect();
        out.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then_with(|| b.id.cmp(&a.id)));
        out.truncate(limit);
        Ok(out)
    }

    /// The node at a clean path (the root is always a directory).
    pub fn node(&self, volume: &str, node_path: &str) -> Result<Option<NodeRecord>, StorageError> {
        Txn::new(self.db()).node(volume, node_path)
    }

    /// Direct children of a directory, by name, at most `limit`.
    pub fn children(&self, volume: &str, dir: &str, limit: usize) -> Result<Vec<(String, NodeRecord)>, StorageError> {
        let prefix = keys::children_prefix(volume, dir);
        self.db()
            .scan::<NodeRecord>(Cf::Namespace, &prefix, None, limit)?
            .into_iter()
            .map(|(k, n)| {
                let name =
                    std::str::from_utf8(&k[prefix.len()..]).map_err(|e| StorageError::corrupt("namespace", &k, e))?;
                Ok((name.to_string(), n))
            })
            .collect()
    }

    /// The whole namespace of a volume (tests, verification, small volumes only).
    pub fn namespace(&self, volume: &str) -> Result<BTreeMap<String, NodeRecord>, StorageError> {
        Ok(Txn::new(self.db()).subtree(volume, "/")?.into_iter().collect())
    }

    /// Journal entries with `seq > after`, ascending, at most `limit`.
    pub fn changes(&self, volume: &str, after: u64, limit: usize) -> Result<Vec<JournalEntry>, StorageError> {
        let prefix = keys::volume_prefix(volume);
        let start = keys::journal(volume, after.saturating_add(1));
        let rows = self.db().scan::<JournalEntry>(Cf::Journal, &prefix, Some(&start), limit)?;
        Ok(rows.into_iter().map(|(_, e)| e).collect())
    }

    pub fn token(&self, token_sha256: &[u8]) -> Result<Option<TokenRecord>, StorageError> {
        self.db().get(Cf::Tokens, token_sha256)
    }

    /// Content kept inline by the state machine (written with its command).
    pub fn inline_blob(&self, content: &ContentRef) -> Result<Option<Vec<u8>>, StorageError> {
        match self.db().get_raw(Cf::Blobs, &content.0)? {
            None => Ok(None),
            Some(v) => match v.split_first() {
                Some((&codec::FORMAT_V1, body)) => Ok(Some(body.to_vec())),
                _ => Err(StorageError::corrupt("blobs", &content.0, "bad format version")),
            },
        }
    }

    /// Whether `volume` has ever been written with this content (and so may serve it).
    pub fn volume_references(&self, volume: &str, content: &ContentRef) -> Result<bool, StorageError> {
        Ok(self.db().get_raw(Cf::VolumeBlobs, &keys::volume_blob(volume, &content.0))?.is_some())
    }

    pub fn replica(&self, volume: &str, replica_id: &str) -> Result<Option<ReplicaRecord>, StorageError> {
        self.db().get(Cf::Replicas, &keys::replica(volume, replica_id))
    }

    /// A volume's sync conflicts, newest first, optionally of one status, at most `limit`.
    pub fn conflicts(
        &self,
        volume: &str,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConflictRecord>, StorageError> {
        let db = self.db();
        let prefix = keys::conflicts_prefix(volume);
        let end = keys::prefix_end(&prefix);
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_iterate_lower_bound(prefix.clone());
        let mode = rocksdb::IteratorMode::From(&end, rocksdb::Direction::Reverse);
        let mut out = Vec::new();
        for item in db.raw().iterator_cf_opt(db.cf(Cf::Conflicts), ro, mode) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            let record: ConflictRecord = codec::decode("conflicts", &k, &v)?;
            if status.is_none_or(|s| s == record.status) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// A volume's snapshots, newest first.
    pub fn snapshots(&self, volume: &str) -> Result<Vec<SnapshotRecord>, StorageError> {
        let mut out: Vec<SnapshotRecord> = self
            .db()
            .scan::<SnapshotRecord>(Cf::Snapshots, &keys::volume_prefix(volume), None, usize::MAX)?
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        out.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then_with(|| b.id.cmp(&a.id)));
        Ok(out)
    }

    pub fn snapshot(&self, volume: &str, id: &str) -> Result<Option<SnapshotRecord>, StorageError> {
        self.db().get(Cf::Snapshots, &keys::snapshot(volume, id))
    }
}
