//! One command's worth of changes, collected in a single `WriteBatch`.
//!
//! Reads through the `Txn` see its own earlier writes (an overlay over the database), so a
//! command made of several changes — a replica's batch — decides each one against the state
//! the previous ones left. Nothing reaches RocksDB until [`Txn::commit`].

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use prost::Message;
use rocksdb::WriteBatch;

use crate::codec;
use crate::db::{Cf, Db, Rows};
use crate::error::StorageError;
use crate::keys;
use crate::records::{AppliedMeta, JournalEntry, NodeRecord, VolumeRecord, KIND_DIR};
use crate::sync_records::PathLatest;
use tideline_types::path;

/// Mode of directories created implicitly or by mkdir.
pub const DIR_MODE: u32 = 0o755;
/// Mode of new files.
pub const FILE_MODE: u32 = 0o644;

pub(crate) struct Txn<'a> {
    db: &'a Db,
    /// This command's point writes (`None` = deleted), newest value per key.
    overlay: BTreeMap<(Cf, Vec<u8>), Option<Vec<u8>>>,
    /// This command's range deletions, `[from, to)`; point writes after them win.
    ranges: Vec<(Cf, Vec<u8>, Vec<u8>)>,
    /// How to take back each change to `overlay` and `ranges`, newest last; kept only from
    /// the first savepoint on (most commands never take one).
    undo: Option<Vec<Undo>>,
    /// Point reads of the database already made by this batch, absent keys included. Nothing
    /// else writes the state machine's families while a batch is open, so they stay true; the
    /// overlay and range deletions are consulted first. Commands of one batch mostly write into
    /// the same few directories, so their parents' and the volume's rows are read once per batch
    /// instead of once per command. Bounded: cleared when full.
    reads: RefCell<HashMap<RowKey, Option<Vec<u8>>>>,
}

/// A row's family and key.
type RowKey = (Cf, Vec<u8>);

/// Point reads a [`Txn`] remembers before it starts over.
const READS_CACHED_MAX: usize = 4096;

enum Undo {
    /// Restore this key's previous overlay value (`None`: it was not in the overlay).
    Point((Cf, Vec<u8>), Option<Option<Vec<u8>>>),
    /// Drop the newest range deletion.
    Range,
}

impl<'a> Txn<'a> {
    pub fn new(db: &'a Db) -> Self {
        Txn { db, overlay: BTreeMap::new(), ranges: Vec::new(), undo: None, reads: RefCell::new(HashMap::new()) }
    }

    /// A point to return to with [`Txn::rollback`]: a change refused halfway leaves nothing.
    pub fn savepoint(&mut self) -> Savepoint {
        Savepoint(self.undo.get_or_insert_with(Vec::new).len())
    }

    pub fn rollback(&mut self, to: Savepoint) {
        let Some(undo) = self.undo.as_mut() else { return };
        while undo.len() > to.0 {
            match undo.pop() {
                Some(Undo::Point(key, Some(prev))) => {
                    self.overlay.insert(key, prev);
                }
                Some(Undo::Point(key, None)) => {
                    self.overlay.remove(&key);
                }
                Some(Undo::Range) => {
                    self.ranges.pop();
                }
                None => break,
            }
        }
    }

    fn set(&mut self, cf: Cf, key: &[u8], value: Option<Vec<u8>>) {
        let key = (cf, key.to_vec());
        match self.undo.as_mut() {
            Some(undo) => {
                let prev = self.overlay.insert(key.clone(), value);
                undo.push(Undo::Point(key, prev));
            }
            None => {
                self.overlay.insert(key, value);
            }
        }
    }

    /// The database under the overlay: reads through it do not see this batch's writes.
    pub fn db(&self) -> &'a Db {
        self.db
    }

    pub fn put<M: Message>(&mut self, cf: Cf, key: &[u8], msg: &M) {
        self.put_raw(cf, key, &codec::encode(msg));
    }

    pub fn put_raw(&mut self, cf: Cf, key: &[u8], value: &[u8]) {
        self.set(cf, key, Some(value.to_vec()));
    }

    pub fn delete(&mut self, cf: Cf, key: &[u8]) {
        self.set(cf, key, None);
    }

    /// Deletes keys in `[from, to)`.
    pub fn delete_range(&mut self, cf: Cf, from: &[u8], to: &[u8]) {
        let doomed: Vec<_> =
            self.overlay.range((cf, from.to_vec())..(cf, to.to_vec())).map(|(k, _)| k.clone()).collect();
        for k in doomed {
            let prev = self.overlay.remove(&k);
            if let Some(undo) = self.undo.as_mut() {
                undo.push(Undo::Point(k, prev));
            }
        }
        self.ranges.push((cf, from.to_vec(), to.to_vec()));
        if let Some(undo) = self.undo.as_mut() {
            undo.push(Undo::Range);
        }
    }

    fn range_deleted(&self, cf: Cf, key: &[u8]) -> bool {
        self.ranges.iter().any(|(c, from, to)| *c == cf && key >= from.as_slice() && key < to.as_slice())
    }

    /// One raw value as this command sees it.
    pub fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let key = (cf, key.to_vec());
        if let Some(v) = self.overlay.get(&key) {
            return Ok(v.clone());
        }
        if self.range_deleted(cf, &key.1) {
            return Ok(None);
        }
        if let Some(v) = self.reads.borrow().get(&key) {
            return Ok(v.clone());
        }
        let value = self.db.get_raw(cf, &key.1)?;
        let mut reads = self.reads.borrow_mut();
        if reads.len() >= READS_CACHED_MAX {
            reads.clear();
        }
        reads.insert(key, value.clone());
        Ok(value)
    }

    /// One decoded value as this command sees it.
    pub fn get<M: Message + Default>(&self, cf: Cf, key: &[u8]) -> Result<Option<M>, StorageError> {
        match self.get_raw(cf, key)? {
            None => Ok(None),
            Some(bytes) => codec::decode(cf.name(), key, &bytes).map(Some),
        }
    }

    /// Every raw row whose key starts with `prefix`, in key order, as this command sees them.
    /// Collected, because the overlay is merged in: callers scan prefixes whose rows they must all
    /// touch anyway (a directory's children when a subtree is removed or moved, one folded
    /// name's spellings, one volume's replicas).
    pub fn scan_raw(&self, cf: Cf, prefix: &[u8]) -> Result<Rows, StorageError> {
        let mut rows: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for (k, v) in self.db.scan_raw(cf, prefix)? {
            if !self.range_deleted(cf, &k) {
                rows.insert(k, v);
            }
        }
        let end = keys::prefix_end(prefix);
        for ((_, k), v) in self.overlay.range((cf, prefix.to_vec())..(cf, end)) {
            match v {
                Some(v) => rows.insert(k.clone(), v.clone()),
                None => rows.remove(k),
            };
        }
        Ok(rows.into_iter().collect())
    }

    /// Every decoded value whose key starts with `prefix`, in key order, as this command sees them.
    pub fn scan<M: Message + Default>(&self, cf: Cf, prefix: &[u8]) -> Result<Vec<(Vec<u8>, M)>, StorageError> {
        self.scan_raw(cf, prefix)?.into_iter().map(|(k, v)| codec::decode(cf.name(), &k, &v).map(|m| (k, m))).collect()
    }

    pub fn delete_prefix(&mut self, cf: Cf, prefix: &[u8]) {
        self.delete_range(cf, prefix, &keys::prefix_end(prefix));
    }

    /// The node at a clean path; the root always exists as a directory.
    pub fn node(&self, volume: &str, node_path: &str) -> Result<Option<NodeRecord>, StorageError> {
        if path::is_root(node_path) {
            return Ok(Some(root_node()));
        }
        self.get(Cf::Namespace, &keys::node(volume, node_path))
    }

    pub fn put_node(&mut self, volume: &str, node_path: &str, node: &NodeRecord) {
        self.put(Cf::Namespace, &keys::node(volume, node_path), node);
        self.put_raw(Cf::FoldIndex, &fold_key(volume, node_path), &[codec::FORMAT_V1]);
    }

    pub fn delete_node(&mut self, volume: &str, node_path: &str) {
        self.delete(Cf::Namespace, &keys::node(volume, node_path));
        self.delete(Cf::FoldIndex, &fold_key(volume, node_path));
    }

    /// Every node strictly below `dir`, depth first, parents before children. Unbounded by
    /// nature: removing or moving a directory rewrites every node below it in this one batch.
    pub fn subtree(&self, volume: &str, dir: &str) -> Result<Vec<(String, NodeRecord)>, StorageError> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_string()];
        while let Some(d) = stack.pop() {
            let prefix = keys::children_prefix(volume, &d);
            for (k, node) in self.scan::<NodeRecord>(Cf::Namespace, &prefix)? {
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
    ///
    /// The entry must not name another volume: handlers build it from their origin, and this
    /// fills in the volume's id and team.
    pub fn append_journal(&mut self, volume: &mut VolumeRecord, mut entry: JournalEntry) -> u64 {
        assert!(
            entry.volume_id.is_empty() || entry.volume_id == volume.id,
            "journal entry of volume {:?} appended to volume {:?}",
            entry.volume_id,
            volume.id
        );
        assert!(
            entry.team_id.is_empty() || entry.team_id == volume.team_id,
            "journal entry of team {:?} appended to a volume of team {:?}",
            entry.team_id,
            volume.team_id
        );
        volume.assert_floor_within_head();
        // A stale copy of the record would reuse a seq: if this batch already wrote the volume,
        // its head is the one written (only the overlay is read, no I/O).
        if let Some(Some(written)) = self.overlay.get(&(Cf::Volumes, volume.id.as_bytes().to_vec())) {
            if let Ok(written) = codec::decode::<VolumeRecord>(Cf::Volumes.name(), volume.id.as_bytes(), written) {
                assert_eq!(written.head_seq, volume.head_seq, "append to volume {} from a stale record", volume.id);
            }
        }
        let seq = volume.head_seq + 1;
        entry.seq = seq;
        entry.volume_id = volume.id.clone();
        entry.team_id = volume.team_id.clone();
        entry.normalized_path = path::normalized(&entry.path);
        entry.normalized_old_path = entry.old_path.as_deref().map(path::normalized);
        let latest = PathLatest {
            seq,
            source: entry.source.clone(),
            replica_id: entry.replica_id.clone(),
            event_type: entry.event_type.clone(),
            path: entry.path.clone(),
            tombstone: entry.tombstone,
        };
        for touched in std::iter::once(&entry.path).chain(entry.old_path.as_ref()) {
            self.put(
                Cf::PathLatest,
                &keys::path_latest(&volume.id, touched),
                &PathLatest { path: touched.clone(), ..latest.clone() },
            );
        }
        self.put(Cf::Journal, &keys::journal(&volume.id, seq), &entry);
        volume.head_seq = seq;
        volume.updated_at_ms = volume.updated_at_ms.max(entry.created_at_ms);
        self.put(Cf::Volumes, volume.id.as_bytes(), volume);
        seq
    }

    /// Writes the batch together with the applied position: all of it or nothing.
    pub fn commit(mut self, applied: &AppliedMeta) -> Result<(), StorageError> {
        self.put(Cf::SmMeta, keys::APPLIED, applied);
        // Ranges first: a point write made after a range deletion already dropped the
        // overlay rows it covered, so writing points last gives the same final state.
        let mut batch = WriteBatch::default();
        for (cf, from, to) in &self.ranges {
            batch.delete_range_cf(self.db.cf(*cf), from, to);
        }
        for ((cf, key), value) in &self.overlay {
            match value {
                Some(v) => batch.put_cf(self.db.cf(*cf), key, v),
                None => batch.delete_cf(self.db.cf(*cf), key),
            }
        }
        self.db.raw().write(batch)?;
        Ok(())
    }
}

/// A position in a [`Txn`]'s undo log.
pub(crate) struct Savepoint(usize);

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

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(id: &str) -> VolumeRecord {
        VolumeRecord { id: id.into(), team_id: "t".into(), ..Default::default() }
    }

    fn entry(p: &str) -> JournalEntry {
        JournalEntry { event_type: "write".into(), path: p.into(), ..Default::default() }
    }

    #[test]
    fn appends_take_gapless_seqs_from_the_record_they_move() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let mut txn = Txn::new(&db);
        let mut vol = volume("v");
        assert_eq!(txn.append_journal(&mut vol, entry("/a")), 1);
        assert_eq!(txn.append_journal(&mut vol, entry("/b")), 2);
        let stored: VolumeRecord = txn.get(Cf::Volumes, b"v").unwrap().unwrap();
        assert_eq!(stored.head_seq, 2);
        let second: JournalEntry = txn.get(Cf::Journal, &keys::journal("v", 2)).unwrap().unwrap();
        assert_eq!((second.volume_id.as_str(), second.team_id.as_str()), ("v", "t"));
    }

    #[test]
    fn a_read_remembered_by_the_batch_never_hides_its_own_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.raw().put_cf(db.cf(Cf::Blobs), b"k1", b"stored").unwrap();
        let mut txn = Txn::new(&db);
        let start = txn.savepoint();
        // Both reads are remembered: one present, one absent.
        assert_eq!(txn.get_raw(Cf::Blobs, b"k1").unwrap().as_deref(), Some(&b"stored"[..]));
        assert_eq!(txn.get_raw(Cf::Blobs, b"k2").unwrap(), None);
        txn.put_raw(Cf::Blobs, b"k2", b"written");
        assert_eq!(txn.get_raw(Cf::Blobs, b"k2").unwrap().as_deref(), Some(&b"written"[..]));
        txn.delete(Cf::Blobs, b"k1");
        assert_eq!(txn.get_raw(Cf::Blobs, b"k1").unwrap(), None);
        // A rolled-back write falls back to what the database holds, not to a stale absence.
        let sp = txn.savepoint();
        txn.put_raw(Cf::Blobs, b"k3", b"gone");
        txn.rollback(sp);
        assert_eq!(txn.get_raw(Cf::Blobs, b"k3").unwrap(), None);
        txn.rollback(start);
        assert_eq!(txn.get_raw(Cf::Blobs, b"k1").unwrap().as_deref(), Some(&b"stored"[..]));
        // A range deletion covers remembered rows too.
        txn.delete_range(Cf::Blobs, b"k", b"l");
        assert_eq!(txn.get_raw(Cf::Blobs, b"k1").unwrap(), None);
        // Past the bound the memory starts over and reads still answer from the database.
        let fresh = Txn::new(&db);
        for i in 0..READS_CACHED_MAX + 10 {
            assert_eq!(fresh.get_raw(Cf::Blobs, format!("x{i}").as_bytes()).unwrap(), None);
        }
        assert!(fresh.reads.borrow().len() <= READS_CACHED_MAX);
        assert_eq!(fresh.get_raw(Cf::Blobs, b"k1").unwrap().as_deref(), Some(&b"stored"[..]));
    }

    #[test]
    #[should_panic(expected = "appended to volume")]
    fn an_entry_of_another_volume_is_never_appended() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let mut txn = Txn::new(&db);
        txn.append_journal(&mut volume("v"), JournalEntry { volume_id: "w".into(), ..entry("/a") });
    }

    #[test]
    #[should_panic(expected = "from a stale record")]
    fn a_stale_copy_of_the_volume_never_reuses_a_seq() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let mut txn = Txn::new(&db);
        let vol = volume("v");
        txn.append_journal(&mut vol.clone(), entry("/a"));
        txn.append_journal(&mut vol.clone(), entry("/b"));
    }

    #[test]
    #[should_panic(expected = "above head")]
    fn a_floor_above_the_head_is_never_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let mut txn = Txn::new(&db);
        txn.append_journal(&mut VolumeRecord { floor_seq: 3, head_seq: 2, ..volume("v") }, entry("/a"));
    }
}
