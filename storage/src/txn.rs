//! One command's worth of changes, collected in a single `WriteBatch`.
//!
//! Reads see the database as it was before the command; a command never needs to read its
//! own writes (each row is decided once, then written).

use prost::Message;
use rocksdb::WriteBatch;

use crate::codec;
use crate::db::{Cf, Db};
use crate::error::StorageError;
use crate::keys;
use crate::path;
use crate::records::{AppliedMeta, JournalEntry, NodeRecord, VolumeRecord, KIND_DIR};

/// Key of the applied position in [`Cf::SmMeta`].
pub(crate) const APPLIED_KEY: &[u8] = b"applied";

/// Mode of directories created implicitly or by mkdir.
pub const DIR_MODE: u32 = 0o755;
/// Mode of new files.
pub const FILE_MODE: u32 = 0o644;

pub(crate) struct Txn<'a> {
    db: &'a Db,
    batch: WriteBatch,
}

impl<'a> Txn<'a> {
    pub fn new(db: &'a Db) -> Self {
        Txn { db, batch: WriteBatch::default() }
    }

    pub fn db(&self) -> &Db {
        self.db
    }

    pub fn put<M: Message>(&mut self, cf: Cf, key: &[u8], msg: &M) {
        self.batch.put_cf(self.db.cf(cf), key, codec::encode(msg));
    }

    pub fn put_raw(&mut self, cf: Cf, key: &[u8], value: &[u8]) {
        self.batch.put_cf(self.db.cf(cf), key, value);
    }

    pub fn delete(&mut self, cf: Cf, key: &[u8]) {
        self.batch.delete_cf(self.db.cf(cf), key);
    }

    /// Deletes keys in `[from, to)`.
    pub fn delete_range(&mut self, cf: Cf, from: &[u8], to: &[u8]) {
        self.batch.delete_range_cf(self.db.cf(cf), from, to);
    }

    pub fn delete_prefix(&mut self, cf: Cf, prefix: &[u8]) {
        self.batch.delete_range_cf(self.db.cf(cf), prefix, &keys::prefix_end(prefix)[..]);
    }

    /// The node at a clean path; the root always exists as a directory.
    pub fn node(&self, volume: &str, node_path: &str) -> Result<Option<NodeRecord>, StorageError> {
        if path::is_root(node_path) {
            return Ok(Some(root_node()));
        }
        self.db.get(Cf::Namespace, &keys::node(volume, node_path))
    }

    pub fn put_node(&mut self, volume: &str, node_path: &str, node: &NodeRecord) {
        self.put(Cf::Namespace, &keys::node(volume, node_path), node);
        self.put_raw(Cf::FoldIndex, &fold_key(volume, node_path), &[codec::FORMAT_V1]);
    }

    pub fn delete_node(&mut self, volume: &str, node_path: &str) {
        self.delete(Cf::Namespace, &keys::node(volume, node_path));
        self.delete(Cf::FoldIndex, &fold_key(volume, node_path));
    }

    /// Every node strictly below `dir`, depth first, parents before children.
    pub fn subtree(&self, volume: &str, dir: &str) -> Result<Vec<(String, NodeRecord)>, StorageError> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_string()];
        while let Some(d) = stack.pop() {
            let prefix = keys::children_prefix(volume, &d);
            for (k, node) in self.db.scan::<NodeRecord>(Cf::Namespace, &prefix, None, usize::MAX)? {
                let p = keys::node_path(volume, &k)
                    .ok_or_else(|| StorageError::corrupt("namespace", &k, "key is not a node path"))?;
                if node.is_dir() {
                    stack.push(p.clone());
                }
                out.push((p, node));
            }
        }
        Ok(out)
    }

    /// Appends the next journal entry of `volume` (gapless: `head_seq + 1`) and moves the head.
    pub fn append_journal(&mut self, volume: &mut VolumeRecord, mut entry: JournalEntry) -> u64 {
        let seq = volume.head_seq + 1;
        entry.seq = seq;
        entry.volume_id = volume.id.clone();
        entry.team_id = volume.team_id.clone();
        entry.normalized_path = path::normalized(&entry.path);
        entry.normalized_old_path = entry.old_path.as_deref().map(path::normalized);
        self.put(Cf::Journal, &keys::journal(&volume.id, seq), &entry);
        volume.head_seq = seq;
        volume.updated_at_ms = volume.updated_at_ms.max(entry.created_at_ms);
        self.put(Cf::Volumes, volume.id.as_bytes(), volume);
        seq
    }

    /// Writes the batch together with the applied position: all of it or nothing.
    pub fn commit(mut self, applied: &AppliedMeta) -> Result<(), StorageError> {
        self.put(Cf::SmMeta, APPLIED_KEY, applied);
        self.db.raw().write(self.batch)?;
        Ok(())
    }
}

/// `fold_index` key: `<volume> 0 <normalized path> 0 <exact path>`; several exact paths may
/// share a normalized one on a case-sensitive volume.
pub(crate) fn fold_key(volume: &str, node_path: &str) -> Vec<u8> {
    let mut k = keys::fold(volume, node_path);
    k.push(0);
    k.extend_from_slice(node_path.as_bytes());
    k
}

pub(crate) fn root_node() -> NodeRecord {
    NodeRecord { kind: KIND_DIR.into(), mode: DIR_MODE, ..Default::default() }
}
