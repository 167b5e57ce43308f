//! The journal state machine: `apply(command) -> response`, deterministic, one `WriteBatch`
//! per command, plus the read side the API serves from.
//!
//! ```text
//!  apply(pos, cmd) ─▶ validate against current rows ─▶ Txn: journal entry (seq = head + 1),
//!                     namespace + fold rows, volume head, inline blob, applied = pos ─▶ write
//! ```
//!
//! A refused command (missing volume, type clash, …) still moves the applied position and
//! returns a [`Response`] carrying an [`ApplyError`]; only I/O failures are `Err`.

use std::collections::BTreeMap;

use crate::command::*;
use crate::content_ref::ContentRef;
use crate::db::{Cf, Db};
use crate::error::StorageError;
use crate::keys;
use crate::path;
use crate::records::*;
use crate::txn::{root_node, Txn, APPLIED_KEY, DIR_MODE, FILE_MODE};

pub use crate::txn::{DIR_MODE as DEFAULT_DIR_MODE, FILE_MODE as DEFAULT_FILE_MODE};

/// Source of mutations made through the files API.
pub const SOURCE_SANDBOX: &str = "sandbox";

#[derive(Clone)]
pub struct StateMachine {
    db: Db,
    freezer: crate::freezer::Freezer,
}

/// What [`StateMachine::verify`] read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub volumes: u64,
    pub journal_entries: u64,
    pub nodes: u64,
    pub tokens: u64,
}

/// Why a command stopped: a deterministic refusal, or an I/O failure that must stop the node.
pub(crate) enum Halt {
    Refuse(ApplyError),
    Fail(StorageError),
}

impl From<ApplyError> for Halt {
    fn from(e: ApplyError) -> Self {
        Halt::Refuse(e)
    }
}

impl From<StorageError> for Halt {
    fn from(e: StorageError) -> Self {
        Halt::Fail(e)
    }
}

pub(crate) fn refuse<T>(e: ApplyError) -> Result<T, Halt> {
    Err(Halt::Refuse(e))
}

pub(crate) type Applied = Result<Response, Halt>;

/// Commands applied into one `WriteBatch`, written with the position of the last of them:
/// all of them reach RocksDB, or none.
///
/// ```text
///  begin ─▶ apply(cmd) ─▶ savepoint ─▶ handler ─▶ refused? roll back to the savepoint
///        ─▶ apply(cmd) … ─▶ commit(pos): one write ─▶ freeze a snapshot taken in it
/// ```
///
/// A snapshot freezes the namespace right after its own commit, so it ends its batch
/// ([`ApplyBatch::must_commit`]); a caller holding several entries commits there and begins anew.
pub struct ApplyBatch<'a> {
    sm: &'a StateMachine,
    txn: Txn<'a>,
    /// Commands applied so far (refused ones included).
    commands: usize,
    /// The snapshot whose namespace is frozen once this batch is written.
    freeze: Option<(String, String, u64)>,
}

impl ApplyBatch<'_> {
    /// Commands applied into this batch so far.
    pub fn len(&self) -> usize {
        self.commands
    }

    pub fn is_empty(&self) -> bool {
        self.commands == 0
    }

    /// Whether the batch must be committed before another command is applied.
    pub fn must_commit(&self) -> bool {
        self.freeze.is_some()
    }

    /// Applies one command (a [`CommandBatch`] command by command). A refusal is the command's
    /// response and leaves the batch as it was before it; only I/O failures are `Err`.
    pub fn apply(&mut self, cmd: &Command) -> Result<Response, StorageError> {
        assert!(!self.must_commit(), "a snapshot ends its batch: commit before applying more");
        match &cmd.kind {
            Some(CommandKind::Batch(b)) => {
                let mut batch = Vec::with_capacity(b.commands.len());
                for c in &b.commands {
                    let r = if c.batchable() {
                        self.apply_one(c)?
                    } else {
                        self.commands += 1;
                        Response::err(ApplyError::bad_request(format!("a {} command cannot be batched", c.name())))
                    };
                    batch.push(r);
                }
                Ok(Response { batch, ..Default::default() })
            }
            _ => self.apply_one(cmd),
        }
    }

    fn apply_one(&mut self, cmd: &Command) -> Result<Response, StorageError> {
        self.commands += 1;
        let before = self.txn.savepoint();
        match dispatch(&mut self.txn, cmd) {
            Ok(response) => {
                if let (Some(CommandKind::CreateSnapshot(_)), Some(s)) = (&cmd.kind, &response.snapshot) {
                    self.freeze = Some((s.volume_id.clone(), s.id.clone(), s.seq));
                }
                Ok(response)
            }
            // A refused command changes nothing.
            Err(Halt::Refuse(refusal)) => {
                self.txn.rollback(before);
                Ok(Response::err(refusal))
            }
            Err(Halt::Fail(e)) => Err(e),
        }
    }

    /// Writes every command applied so far and the applied position `pos`, in one batch.
    pub fn commit(self, pos: &AppliedMeta) -> Result<(), StorageError> {
        self.txn.commit(pos)?;
        if let Some((volume, id, seq)) = &self.freeze {
            self.sm.freezer.on_applied(&self.sm.db, volume, id, *seq);
        }
        Ok(())
    }
}

/// The one place that names every command's handler.
fn dispatch(txn: &mut Txn, cmd: &Command) -> Applied {
    match &cmd.kind {
        None => refuse(ApplyError::bad_request("empty command")),
        Some(CommandKind::CreateVolume(c)) => create_volume(txn, c),
        Some(CommandKind::DeleteVolume(c)) => delete_volume(txn, c),
        Some(CommandKind::CreateToken(c)) => create_token(txn, c),
        Some(CommandKind::WriteFile(c)) => write_file(txn, c),
        Some(CommandKind::MakeDir(c)) => make_dir(txn, c),
        Some(CommandKind::Remove(c)) => remove(txn, c),
        Some(CommandKind::Move(c)) => move_path(txn, c),
        Some(CommandKind::ForkVolume(c)) => fork_volume(txn, c),
        Some(CommandKind::Compact(c)) => compact(txn, c),
        Some(CommandKind::UpsertReplica(c)) => upsert_replica(txn, c),
        Some(CommandKind::UpdateCursor(c)) => update_cursor(txn, c),
        Some(CommandKind::AppendChanges(c)) => crate::append::append_changes(txn, c),
        Some(CommandKind::ResolveConflict(c)) => crate::append::resolve_conflict(txn, c),
        Some(CommandKind::CreateSnapshot(c)) => crate::volume_snapshot::create_snapshot(txn, c),
        Some(CommandKind::SealSnapshot(c)) => crate::volume_snapshot::seal_snapshot(txn, c),
        Some(CommandKind::DeleteSnapshot(c)) => crate::volume_snapshot::delete_snapshot(txn, c),
        Some(CommandKind::PruneRequests(c)) => crate::append::prune_requests(txn, c),
        Some(CommandKind::RestoreChunk(c)) => crate::restore::restore_chunk(txn, c),
        Some(CommandKind::MarkGarbage(c)) => crate::gc::mark(txn, c),
        Some(CommandKind::SweepGarbage(c)) => crate::gc::sweep(txn, c),
        Some(CommandKind::SweepDone(c)) => crate::gc::sweep_done(txn, c),
        Some(CommandKind::Batch(_)) => refuse(ApplyError::bad_request("a batch cannot be nested")),
    }
}

impl StateMachine {
    pub fn new(db: Db) -> Self {
        StateMachine { db, freezer: Default::default() }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Where snapshot requests wait for their frozen namespace.
    pub fn freezer(&self) -> &crate::freezer::Freezer {
        &self.freezer
    }

    /// The last applied log position, if any.
    pub fn applied(&self) -> Result<Option<AppliedMeta>, StorageError> {
        self.db.get(Cf::SmMeta, APPLIED_KEY)
    }

    /// Records a log position that carries no command (blank or membership entries).
    pub fn apply_marker(&self, pos: &AppliedMeta) -> Result<(), StorageError> {
        Txn::new(&self.db).commit(pos)
    }

    /// Applies one command at log position `pos`, in its own `WriteBatch`.
    pub fn apply(&self, pos: &AppliedMeta, cmd: &Command) -> Result<Response, StorageError> {
        let mut batch = self.begin();
        let response = batch.apply(cmd)?;
        batch.commit(pos)?;
        Ok(response)
    }

    /// Starts one `WriteBatch` that the commands of one or more Raft entries apply into.
    pub fn begin(&self) -> ApplyBatch<'_> {
        ApplyBatch { sm: self, txn: Txn::new(&self.db), commands: 0, freeze: None }
    }

    pub fn volume(&self, id: &str) -> Result<Option<VolumeRecord>, StorageError> {
        self.db.get(Cf::Volumes, id.as_bytes())
    }

    /// The team's volumes, newest first, at most `limit`.
    pub fn volumes_of_team(&self, team: &str, limit: usize) -> Result<Vec<VolumeRecord>, StorageError> {
        let mut out: Vec<VolumeRecord> = self
            .db
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
        Txn::new(&self.db).node(volume, node_path)
    }

    /// Direct children of a directory, by name, at most `limit`.
    pub fn children(&self, volume: &str, dir: &str, limit: usize) -> Result<Vec<(String, NodeRecord)>, StorageError> {
        let prefix = keys::children_prefix(volume, dir);
        self.db
            .scan::<NodeRecord>(Cf::Namespace, &prefix, None, limit)?
            .into_iter()
            .map(|(k, n)| {
                let name =
                    std::str::from_utf8(&k[prefix.len()..]).map_err(|e| StorageError::corrupt("namespace", &k, e))?;
                Ok((name.to_string(), n))
            })
            .collect()
    }

    /// Journal entries with `seq > after`, ascending, at most `limit`.
    pub fn changes(&self, volume: &str, after: u64, limit: usize) -> Result<Vec<JournalEntry>, StorageError> {
        let prefix = keys::volume_prefix(volume);
        let start = keys::journal(volume, after.saturating_add(1));
        let rows = self.db.scan::<JournalEntry>(Cf::Journal, &prefix, Some(&start), limit)?;
        Ok(rows.into_iter().map(|(_, e)| e).collect())
    }

    pub fn token(&self, token_sha256: &[u8]) -> Result<Option<TokenRecord>, StorageError> {
        self.db.get(Cf::Tokens, token_sha256)
    }

    /// Content kept inline by the state machine (written with its command).
    pub fn inline_blob(&self, content: &ContentRef) -> Result<Option<Vec<u8>>, StorageError> {
        match self.db.get_raw(Cf::Blobs, &content.0)? {
            None => Ok(None),
            Some(v) => match v.split_first() {
                Some((&crate::codec::FORMAT_V1, body)) => Ok(Some(body.to_vec())),
                _ => Err(StorageError::corrupt("blobs", &content.0, "bad format version")),
            },
        }
    }

    pub fn replica(&self, volume: &str, replica_id: &str) -> Result<Option<ReplicaRecord>, StorageError> {
        self.db.get(Cf::Replicas, &keys::replica(volume, replica_id))
    }

    /// A volume's sync conflicts, newest first, optionally of one status, at most `limit`.
    pub fn conflicts(
        &self,
        volume: &str,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::ConflictRecord>, StorageError> {
        let prefix = keys::conflicts_prefix(volume);
        let end = keys::prefix_end(&prefix);
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_iterate_lower_bound(prefix.clone());
        let mode = rocksdb::IteratorMode::From(&end, rocksdb::Direction::Reverse);
        let mut out = Vec::new();
        for item in self.db.raw().iterator_cf_opt(self.db.cf(Cf::Conflicts), ro, mode) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            let record: crate::ConflictRecord = crate::codec::decode("conflicts", &k, &v)?;
            if status.is_none_or(|s| s == record.status) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Every content digest a namespace row or a retained journal entry of any volume references
    /// (snapshot manifests live in the object store; the collector adds those).
    pub fn referenced_content(&self) -> Result<std::collections::HashSet<[u8; 32]>, StorageError> {
        let mut out = std::collections::HashSet::new();
        let mut add = |r: Option<&str>| {
            if let Some(c) = r.and_then(ContentRef::parse) {
                out.insert(c.0);
            }
        };
        for (_, n) in self.db.scan::<NodeRecord>(Cf::Namespace, b"", None, usize::MAX)? {
            add(n.content_ref.as_deref());
        }
        for (_, e) in self.db.scan::<JournalEntry>(Cf::Journal, b"", None, usize::MAX)? {
            add(e.content_ref.as_deref());
        }
        Ok(out)
    }

    /// Digests of content kept inline by the state machine.
    pub fn inline_content(&self) -> Result<Vec<[u8; 32]>, StorageError> {
        Ok(self.db.scan_raw(Cf::Blobs, b"")?.into_iter().filter_map(|(k, _)| k.try_into().ok()).collect())
    }

    /// Blobs marked as garbage, and when.
    pub fn garbage_marks(&self) -> Result<Vec<([u8; 32], i64)>, StorageError> {
        Ok(self
            .db
            .scan_raw(Cf::GcMarks, b"")?
            .into_iter()
            .filter_map(|(k, v)| Some((k.try_into().ok()?, i64::from_be_bytes(v.as_slice().try_into().ok()?))))
            .collect())
    }

    /// Swept digests whose objects the leader has not yet reported deleted.
    pub fn swept_tombstones(&self) -> Result<Vec<[u8; 32]>, StorageError> {
        Ok(self
            .db
            .scan_raw(Cf::GcMarks, b"T")?
            .into_iter()
            .filter_map(|(k, _)| k.get(1..).and_then(|s| <[u8; 32]>::try_from(s).ok()))
            .collect())
    }

    /// Every snapshot of every volume.
    pub fn all_snapshots(&self) -> Result<Vec<crate::SnapshotRecord>, StorageError> {
        Ok(self
            .db
            .scan::<crate::SnapshotRecord>(Cf::Snapshots, b"", None, usize::MAX)?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    /// A volume's snapshots, newest first.
    pub fn snapshots(&self, volume: &str) -> Result<Vec<crate::SnapshotRecord>, StorageError> {
        let mut out: Vec<crate::SnapshotRecord> = self
            .db
            .scan::<crate::SnapshotRecord>(Cf::Snapshots, &keys::volume_prefix(volume), None, usize::MAX)?
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        out.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then_with(|| b.id.cmp(&a.id)));
        Ok(out)
    }

    pub fn snapshot(&self, volume: &str, id: &str) -> Result<Option<crate::SnapshotRecord>, StorageError> {
        self.db.get(Cf::Snapshots, &keys::snapshot(volume, id))
    }

    /// Whether some replica request id was stored before `before_ms` (and so can be pruned).
    pub fn requests_stored_before(&self, before_ms: i64) -> Result<bool, StorageError> {
        let prefix = [keys::REQUEST_EXPIRY_PREFIX];
        let first = self.db.scan_raw_limit(Cf::Requests, &prefix, 1)?;
        Ok(first.first().is_some_and(|(k, _)| k < &keys::request_expiry(before_ms, b"")))
    }

    /// Whether `volume` has ever been written with this content (and so may serve it).
    pub fn volume_references(&self, volume: &str, content: &ContentRef) -> Result<bool, StorageError> {
        Ok(self.db.get_raw(Cf::VolumeBlobs, &keys::volume_blob(volume, &content.0))?.is_some())
    }

    /// The whole namespace of a volume (tests, verification, small volumes only).
    pub fn namespace(&self, volume: &str) -> Result<BTreeMap<String, NodeRecord>, StorageError> {
        Ok(Txn::new(&self.db).subtree(volume, "/")?.into_iter().collect())
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

    /// Decodes every record and checks that each volume's journal is gapless from its floor to
    /// its head. Run at start-up: a corrupt store is refused, never served as empty.
    pub fn verify(&self) -> Result<VerifyReport, StorageError> {
        let mut report = VerifyReport::default();
        self.applied()?;
        report.tokens = self.db.scan::<TokenRecord>(Cf::Tokens, b"", None, usize::MAX)?.len() as u64;
        for (_, vol) in self.db.scan::<VolumeRecord>(Cf::Volumes, b"", None, usize::MAX)? {
            report.volumes += 1;
            let prefix = keys::volume_prefix(&vol.id);
            let mut expect = vol.floor_seq + 1;
            for item in self.db.raw().prefix_iterator_cf(self.db.cf(Cf::Journal), &prefix) {
                let (k, v) = item?;
                if !k.starts_with(&prefix) {
                    break;
                }
                let seq = keys::journal_seq(&vol.id, &k)
                    .ok_or_else(|| StorageError::corrupt("journal", &k, "malformed journal key"))?;
                let entry: JournalEntry = crate::codec::decode("journal", &k, &v)?;
                if seq != expect || entry.seq != seq {
                    return Err(StorageError::Invariant(format!(
                        "volume {} journal has seq {seq} (entry says {}) where {expect} was expected",
                        vol.id, entry.seq
                    )));
                }
                expect += 1;
                report.journal_entries += 1;
            }
            if expect != vol.head_seq + 1 {
                return Err(StorageError::Invariant(format!(
                    "volume {} journal ends at {} but head_seq is {}",
                    vol.id,
                    expect - 1,
                    vol.head_seq
                )));
            }
            report.nodes += self.db.scan::<NodeRecord>(Cf::Namespace, &prefix, None, usize::MAX)?.len() as u64;
        }
        Ok(report)
    }
}

fn ok(seq: u64, head_seq: u64) -> Applied {
    Ok(Response { seq, head_seq, ..Default::default() })
}

fn create_volume(txn: &mut Txn, c: &CreateVolume) -> Applied {
    let vol = c.volume.clone().ok_or_else(|| ApplyError::bad_request("create_volume without a volume"))?;
    if vol.id.is_empty() || vol.id.contains('\0') {
        return refuse(ApplyError::bad_request("invalid volume id"));
    }
    if txn.get::<VolumeRecord>(Cf::Volumes, vol.id.as_bytes())?.is_some() {
        return refuse(ApplyError::conflict("volume already exists"));
    }
    txn.put(Cf::Volumes, vol.id.as_bytes(), &vol);
    Ok(Response { volume: Some(vol), ..Default::default() })
}

fn delete_volume(txn: &mut Txn, c: &DeleteVolume) -> Applied {
    let vol = team_volume(txn, &c.volume_id, &c.team_id)?;
    let prefix = keys::volume_prefix(&vol.id);
    if !c.force {
        let live = txn
            .scan::<ReplicaRecord>(Cf::Replicas, &prefix)?
            .into_iter()
            .filter(|(_, r)| c.at_ms <= r.lease_expires_at_ms())
            .count();
        if live > 0 {
            return refuse(ApplyError::conflict(format!(
                "volume has {live} active sync replica(s); detach them or delete with force=true"
            )));
        }
    }
    for cf in [
        Cf::Journal,
        Cf::Namespace,
        Cf::FoldIndex,
        Cf::VolumeBlobs,
        Cf::Replicas,
        Cf::PathLatest,
        Cf::Conflicts,
        Cf::Requests,
        Cf::Snapshots,
    ] {
        txn.delete_prefix(cf, &prefix);
    }
    txn.delete(Cf::Volumes, vol.id.as_bytes());
    Ok(Response { volume: Some(vol), ..Default::default() })
}

fn fork_volume(txn: &mut Txn, c: &ForkVolume) -> Applied {
    let source = team_volume(txn, &c.source_volume_id, &c.team_id)?;
    let mut vol = c.volume.clone().ok_or_else(|| ApplyError::bad_request("fork_volume without a volume"))?;
    if vol.id.is_empty() || vol.id.contains('\0') || vol.team_id != c.team_id {
        return refuse(ApplyError::bad_request("invalid fork volume"));
    }
    if txn.get::<VolumeRecord>(Cf::Volumes, vol.id.as_bytes())?.is_some() {
        return refuse(ApplyError::conflict("volume already exists"));
    }
    vol.head_seq = source.head_seq;
    vol.floor_seq = source.floor_seq;
    let from = keys::volume_prefix(&source.id);
    let to = keys::volume_prefix(&vol.id);
    for cf in [Cf::Namespace, Cf::FoldIndex, Cf::VolumeBlobs, Cf::PathLatest] {
        for (k, v) in txn.db().scan_raw(cf, &from)? {
            let mut key = to.clone();
            key.extend_from_slice(&k[from.len()..]);
            txn.put_raw(cf, &key, &v);
        }
    }
    for (k, mut entry) in txn.db().scan::<JournalEntry>(Cf::Journal, &from, None, usize::MAX)? {
        let mut key = to.clone();
        key.extend_from_slice(&k[from.len()..]);
        entry.volume_id = vol.id.clone();
        txn.put(Cf::Journal, &key, &entry);
    }
    txn.put(Cf::Volumes, vol.id.as_bytes(), &vol);
    Ok(Response { head_seq: vol.head_seq, volume: Some(vol), ..Default::default() })
}

fn upsert_replica(txn: &mut Txn, c: &UpsertReplica) -> Applied {
    let mut r = c.replica.clone().ok_or_else(|| ApplyError::bad_request("upsert_replica without a replica"))?;
    let mut vol = team_volume(txn, &r.volume_id, &r.team_id)?;
    if r.id.is_empty() || r.id.contains('\0') {
        return refuse(ApplyError::bad_request("invalid replica id"));
    }
    let key = keys::replica(&vol.id, &r.id);
    if let Some(existing) = txn.get::<ReplicaRecord>(Cf::Replicas, &key)? {
        r.last_applied_seq = existing.last_applied_seq;
        r.created_at_ms = existing.created_at_ms;
    }
    if let Some(caps) = r.capabilities {
        vol.policy = Some(vol.policy.map_or(caps, |p| p.merge(caps)));
        txn.put(Cf::Volumes, vol.id.as_bytes(), &vol);
    }
    txn.put(Cf::Replicas, &key, &r);
    Ok(Response { head_seq: vol.head_seq, replica: Some(r), ..Default::default() })
}

fn update_cursor(txn: &mut Txn, c: &UpdateCursor) -> Applied {
    let vol = team_volume(txn, &c.volume_id, &c.team_id)?;
    let key = keys::replica(&vol.id, &c.replica_id);
    let Some(mut r) = txn.get::<ReplicaRecord>(Cf::Replicas, &key)? else {
        return refuse(ApplyError::not_found("sync replica not found"));
    };
    // The order of the checks is the contract's: lease, ahead, reseed, regression.
    if c.at_ms > r.lease_expires_at_ms() {
        return refuse(ApplyError::conflict("sync replica lease expired"));
    }
    if c.last_applied_seq > vol.head_seq {
        return refuse(ApplyError::conflict("sync cursor ahead of head"));
    }
    if c.last_applied_seq < vol.floor_seq {
        return refuse(ApplyError::reseed(vol.floor_seq, vol.head_seq));
    }
    if c.last_applied_seq < r.last_applied_seq {
        return refuse(ApplyError::conflict("sync cursor regression"));
    }
    r.last_applied_seq = c.last_applied_seq;
    r.last_seen_at_ms = r.last_seen_at_ms.max(c.at_ms);
    r.updated_at_ms = r.updated_at_ms.max(c.at_ms);
    txn.put(Cf::Replicas, &key, &r);
    Ok(Response { head_seq: vol.head_seq, replica: Some(r), ..Default::default() })
}

fn compact(txn: &mut Txn, c: &Compact) -> Applied {
    let Some(mut vol) = txn.get::<VolumeRecord>(Cf::Volumes, c.volume_id.as_bytes())? else {
        return ok(0, 0); // deleted since the leader looked: nothing to do
    };
    // Only ever forward, never past the head: a stale or repeated proposal is a no-op.
    if c.through_seq <= vol.floor_seq || c.through_seq > vol.head_seq {
        return ok(0, vol.head_seq);
    }
    let from = keys::journal(&vol.id, vol.floor_seq + 1);
    let to = keys::journal(&vol.id, c.through_seq + 1);
    txn.delete_range(Cf::Journal, &from, &to);
    vol.floor_seq = c.through_seq;
    txn.put(Cf::Volumes, vol.id.as_bytes(), &vol);
    ok(0, vol.head_seq)
}

fn create_token(txn: &mut Txn, c: &CreateToken) -> Applied {
    let token = c.token.as_ref().ok_or_else(|| ApplyError::bad_request("create_token without a token"))?;
    if c.token_sha256.len() != 32 {
        return refuse(ApplyError::bad_request("token hash must be 32 bytes"));
    }
    txn.put(Cf::Tokens, &c.token_sha256, token);
    Ok(Response::default())
}

pub(crate) fn write_file(txn: &mut Txn, c: &WriteFile) -> Applied {
    let (mut vol, origin) = writable_volume(txn, c.origin.as_ref())?;
    let p = checked_path(&c.path)?;
    let content = ContentRef::parse(&c.content_ref).ok_or_else(|| ApplyError::bad_request("invalid content_ref"))?;
    if let Some(bytes) = &c.inline {
        if bytes.len() as u64 != c.size || ContentRef::of(bytes) != content {
            return refuse(ApplyError::bad_request("inline content does not match its content_ref"));
        }
    }
    if c.inline.is_none() && crate::gc::being_deleted(txn, &content.0)? {
        return refuse(ApplyError::unavailable("this content is being garbage-collected; retry the write"));
    }
    let existing = txn.node(&vol.id, &p)?;
    if existing.as_ref().is_some_and(NodeRecord::is_dir) {
        return refuse(ApplyError::conflict("path is a directory"));
    }
    let seq = vol.head_seq + 1;
    create_parents(txn, &vol.id, &p, origin, seq)?;
    let mode = existing.map(|n| n.mode).unwrap_or(if c.mode == 0 { FILE_MODE } else { c.mode });
    let node = NodeRecord {
        kind: KIND_FILE.into(),
        mode,
        size: c.size,
        content_ref: Some(content.to_string()),
        mtime_ms: origin.at_ms,
        seq,
        source: origin.source.clone(),
    };
    txn.put_node(&vol.id, &p, &node);
    if let Some(bytes) = &c.inline {
        let mut value = Vec::with_capacity(bytes.len() + 1);
        value.push(crate::codec::FORMAT_V1);
        value.extend_from_slice(bytes);
        txn.put_raw(Cf::Blobs, &content.0, &value);
    }
    txn.put_raw(Cf::VolumeBlobs, &keys::volume_blob(&vol.id, &content.0), &[crate::codec::FORMAT_V1]);
    crate::gc::unmark(txn, &content.0)?;
    let entry = JournalEntry {
        event_type: "write".into(),
        path: p,
        entry_kind: Some(KIND_FILE.into()),
        mode: Some(mode),
        content_ref: Some(content.to_string()),
        size_bytes: Some(c.size),
        ..journal_base(origin)
    };
    let seq = txn.append_journal(&mut vol, entry);
    ok(seq, vol.head_seq)
}

pub(crate) fn make_dir(txn: &mut Txn, c: &MakeDir) -> Applied {
    let (mut vol, origin) = writable_volume(txn, c.origin.as_ref())?;
    let p = checked_path(&c.path)?;
    match txn.node(&vol.id, &p)? {
        Some(n) if n.is_dir() && c.recursive => return ok(0, vol.head_seq),
        Some(n) if n.is_dir() => return refuse(ApplyError::conflict("path already exists")),
        Some(_) => return refuse(ApplyError::conflict("path is not a directory")),
        None => {}
    }
    let seq = vol.head_seq + 1;
    if c.recursive {
        create_parents(txn, &vol.id, &p, origin, seq)?;
    } else {
        let (parent, _) = path::split(&p);
        match txn.node(&vol.id, parent)? {
            None => return refuse(ApplyError::not_found("directory not found")),
            Some(n) if !n.is_dir() => return refuse(ApplyError::conflict("path is not a directory")),
            Some(_) => {}
        }
    }
    let mode = if c.mode == 0 { DIR_MODE } else { c.mode };
    txn.put_node(&vol.id, &p, &dir_node(origin, seq, mode));
    let entry = JournalEntry {
        event_type: "create".into(),
        path: p,
        entry_kind: Some(KIND_DIR.into()),
        mode: Some(mode),
        ..journal_base(origin)
    };
    let seq = txn.append_journal(&mut vol, entry);
    ok(seq, vol.head_seq)
}

pub(crate) fn remove(txn: &mut Txn, c: &RemovePath) -> Applied {
    let (mut vol, origin) = writable_volume(txn, c.origin.as_ref())?;
    let p = checked_path(&c.path)?;
    let Some(node) = txn.node(&vol.id, &p)? else {
        return ok(0, vol.head_seq); // idempotent: nothing to remove
    };
    if node.is_dir() {
        for (child, _) in txn.subtree(&vol.id, &p)? {
            txn.delete_node(&vol.id, &child);
        }
    }
    txn.delete_node(&vol.id, &p);
    let entry = JournalEntry {
        event_type: "remove".into(),
        path: p,
        tombstone: true,
        entry_kind: Some(node.kind.clone()),
        ..journal_base(origin)
    };
    let seq = txn.append_journal(&mut vol, entry);
    ok(seq, vol.head_seq)
}

pub(crate) fn move_path(txn: &mut Txn, c: &MovePath) -> Applied {
    let (mut vol, origin) = writable_volume(txn, c.origin.as_ref())?;
    let src = checked_path(&c.source)?;
    let dst = checked_path(&c.destination)?;
    let Some(node) = txn.node(&vol.id, &src)? else {
        return refuse(ApplyError::not_found("file not found"));
    };
    if src == dst {
        return ok(0, vol.head_seq);
    }
    if node.is_dir() && path::is_within(&dst, &src) {
        return refuse(ApplyError::bad_request("cannot move a directory into itself"));
    }
    match txn.node(&vol.id, &dst)? {
        None => {}
        Some(existing) if !existing.is_dir() && !node.is_dir() => {} // a file replaces a file
        Some(_) => return refuse(ApplyError::conflict("destination already exists")),
    }
    let seq = vol.head_seq + 1;
    create_parents(txn, &vol.id, &dst, origin, seq)?;
    let below = if node.is_dir() { txn.subtree(&vol.id, &src)? } else { Vec::new() };
    for (old, _) in &below {
        txn.delete_node(&vol.id, old);
    }
    txn.delete_node(&vol.id, &src);
    for (old, n) in &below {
        txn.put_node(&vol.id, &path::rebase(old, &src, &dst), n);
    }
    let moved = NodeRecord { seq, source: origin.source.clone(), ..node.clone() };
    txn.put_node(&vol.id, &dst, &moved);
    let entry = JournalEntry {
        event_type: "rename".into(),
        path: dst,
        old_path: Some(src),
        entry_kind: Some(node.kind.clone()),
        mode: Some(node.mode),
        ..journal_base(origin)
    };
    let seq = txn.append_journal(&mut vol, entry);
    ok(seq, vol.head_seq)
}

/// Creates every missing proper ancestor of `p` as a directory; a file in the way is a conflict.
pub(crate) fn create_parents(txn: &mut Txn, volume: &str, p: &str, origin: &Origin, seq: u64) -> Result<(), Halt> {
    for dir in path::ancestors(p) {
        match txn.node(volume, dir)? {
            Some(n) if n.is_dir() => {}
            Some(_) => return refuse(ApplyError::conflict("path is not a directory")),
            None => txn.put_node(volume, dir, &dir_node(origin, seq, DIR_MODE)),
        }
    }
    Ok(())
}

pub(crate) fn dir_node(origin: &Origin, seq: u64, mode: u32) -> NodeRecord {
    NodeRecord {
        kind: KIND_DIR.into(),
        mode,
        mtime_ms: origin.at_ms,
        seq,
        source: origin.source.clone(),
        ..root_node()
    }
}

pub(crate) fn journal_base(origin: &Origin) -> JournalEntry {
    JournalEntry {
        source: origin.source.clone(),
        replica_id: origin.replica_id.clone(),
        created_at_ms: origin.at_ms,
        ..Default::default()
    }
}

/// A path inside a command must already be clean and not the root.
pub(crate) fn checked_path(p: &str) -> Result<String, Halt> {
    match path::clean_non_root(p) {
        Ok(clean) if clean == p => Ok(clean),
        _ => refuse(ApplyError::bad_request("invalid path")),
    }
}

pub(crate) fn team_volume(txn: &Txn, volume_id: &str, team_id: &str) -> Result<VolumeRecord, Halt> {
    match txn.get::<VolumeRecord>(Cf::Volumes, volume_id.as_bytes())? {
        Some(v) if v.team_id == team_id => Ok(v),
        _ => refuse(ApplyError::not_found("volume not found")),
    }
}

pub(crate) fn writable_volume<'o>(txn: &Txn, origin: Option<&'o Origin>) -> Result<(VolumeRecord, &'o Origin), Halt> {
    let origin = origin.ok_or_else(|| ApplyError::bad_request("command without an origin"))?;
    let vol = team_volume(txn, &origin.volume_id, &origin.team_id)?;
    if vol.config.as_ref().is_some_and(|c| c.access_mode == "ROX") {
        return refuse(ApplyError::conflict("volume is read-only"));
    }
    Ok((vol, origin))
}
