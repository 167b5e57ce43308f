//! The read side the API serves requests from: point reads and bounded listings over the
//! applied state. Every listing takes a limit or stops at one; none collects a column family.
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

    /// The team's volumes, newest first, at most `limit`. Volumes are keyed by id alone, so this
    /// reads every volume record, but holds at most 2 × `limit` of the team's at a time.
    pub fn volumes_of_team(&self, team: &str, limit: usize) -> Result<Vec<VolumeRecord>, StorageError> {
        let rows = self.db().iter::<VolumeRecord>(Cf::Volumes, b"").filter_map(|row| match row {
            Ok((_, v)) if v.team_id != team => None,
            row => Some(row.map(|(_, v)| v)),
        });
        newest(rows, limit, |v| (v.created_at_ms, v.id.as_str()))
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

    /// The whole namespace of a volume. Unbounded by nature: for tests, verification and a
    /// restore, which diffs the live namespace against a snapshot's manifest.
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

    /// Up to `limit` tokens in the order of their hashes, after the hash `after` (exclusive),
    /// only those of `team` if given: (hash, record) pairs, for a paged listing.
    pub fn tokens(
        &self,
        after: Option<&[u8]>,
        team: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, TokenRecord)>, StorageError> {
        let mut out = Vec::new();
        for row in self.db().iter::<TokenRecord>(Cf::Tokens, b"") {
            if out.len() >= limit {
                break;
            }
            let (sha, t) = row?;
            if after.is_some_and(|a| &*sha <= a) || team.is_some_and(|team| t.team_id != team) {
                continue;
            }
            out.push((sha.into_vec(), t));
        }
        Ok(out)
    }

    /// The token with id `id` and its hash, found by a pass over every token (there are few).
    pub fn token_by_id(&self, id: &str) -> Result<Option<(Vec<u8>, TokenRecord)>, StorageError> {
        for row in self.db().iter::<TokenRecord>(Cf::Tokens, b"") {
            let (sha, t) = row?;
            if t.id == id {
                return Ok(Some((sha.into_vec(), t)));
            }
        }
        Ok(None)
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

    /// A volume's snapshots, newest first, at most `limit` (holding at most 2 × `limit` at a time).
    pub fn snapshots(&self, volume: &str, limit: usize) -> Result<Vec<SnapshotRecord>, StorageError> {
        let rows = self.db().iter::<SnapshotRecord>(Cf::Snapshots, &keys::volume_prefix(volume));
        newest(rows.map(|row| row.map(|(_, s)| s)), limit, |s| (s.created_at_ms, s.id.as_str()))
    }

    pub fn snapshot(&self, volume: &str, id: &str) -> Result<Option<SnapshotRecord>, StorageError> {
        self.db().get(Cf::Snapshots, &keys::snapshot(volume, id))
    }
}

/// The `limit` newest of `rows` by `(created_at_ms, id)`, newest first: the first `limit` of
/// them sorted, kept without ever holding more than 2 × `limit` (or 64) of them.
fn newest<T>(
    rows: impl Iterator<Item = Result<T, StorageError>>,
    limit: usize,
    key: impl Fn(&T) -> (i64, &str),
) -> Result<Vec<T>, StorageError> {
    let newest_first = |a: &T, b: &T| {
        let ((a_ms, a_id), (b_ms, b_id)) = (key(a), key(b));
        b_ms.cmp(&a_ms).then_with(|| b_id.cmp(a_id))
    };
    let keep = limit.saturating_mul(2).max(64);
    let mut out = Vec::new();
    for row in rows {
        out.push(row?);
        if out.len() > keep {
            out.sort_by(newest_first);
            out.truncate(limit);
        }
    }
    out.sort_by(newest_first);
    out.truncate(limit);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{CommandKind, CreateVolume};
    use crate::db::Db;
    use crate::records::AppliedMeta;

    #[test]
    fn volumes_of_team_lists_the_newest_of_that_team_only() {
        let dir = tempfile::tempdir().unwrap();
        let sm = StateMachine::new(Db::open(dir.path()).unwrap());
        for (i, team) in ["a", "b", "a", "a", "b"].into_iter().enumerate() {
            let created_at_ms = [5, 9, 7, 5, 1][i];
            let volume =
                VolumeRecord { id: format!("v{i}"), team_id: team.into(), created_at_ms, ..Default::default() };
            let pos = AppliedMeta { index: i as u64 + 1, ..Default::default() };
            sm.apply(&pos, &CommandKind::CreateVolume(CreateVolume { volume: Some(volume) }).into()).unwrap();
        }
        let ids = |limit| sm.volumes_of_team("a", limit).unwrap().into_iter().map(|v| v.id).collect::<Vec<_>>();
        assert_eq!(ids(10), ["v2", "v3", "v0"], "newest first, a tie by id descending");
        assert_eq!(ids(2), ["v2", "v3"]);
        assert!(ids(0).is_empty());
    }

    #[test]
    fn newest_keeps_the_first_of_the_whole_sort_whatever_the_limit() {
        // (created_at_ms, id) with ties on the time, in an order no prefix of which is sorted.
        let rows: Vec<(i64, String)> =
            (0..500).map(|i| ((i * 37) % 101, format!("id-{:03}", (i * 53) % 500))).collect();
        let mut sorted = rows.clone();
        sorted.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
        for limit in [0, 1, 2, 31, 64, 65, 200, 499, 500, 10_000] {
            let got = newest(rows.iter().cloned().map(Ok), limit, |r| (r.0, r.1.as_str())).unwrap();
            let want: Vec<_> = sorted.iter().take(limit).cloned().collect();
            assert_eq!(got, want, "limit {limit}");
        }
    }

    #[test]
    fn newest_passes_a_read_error_on() {
        let rows = vec![Ok((1, "a".to_string())), Err(StorageError::Invariant("boom".into()))];
        assert!(newest(rows.into_iter(), 10, |r| (r.0, r.1.as_str())).is_err());
    }
}
