//! The rules every command handler shares: how a handler stops ([`Halt`], [`refuse`]), which
//! volume a command may touch ([`team_volume`], [`writable_volume`]), what a path inside a
//! command must look like ([`checked_path`]), the rows a namespace change writes beside its own
//! ([`create_parents`], [`dir_node`], [`journal_base`]) and the GC marks a write must respect.
//!
//! Handlers (`apply/*`) build on these; nothing here names a command.

use tideline_types::Reason;

use crate::command::Origin;
use crate::db::Cf;
use crate::error::StorageError;
use crate::keys;
use crate::records::{JournalEntry, NodeRecord, VolumeRecord, KIND_DIR};
use crate::response::{ApplyError, Response};
use crate::txn::{root_node, Txn, DIR_MODE};
use tideline_types::path;

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

/// What a handler returns: the command's response, or why it stopped.
pub(crate) type Applied = Result<Response, Halt>;

pub(crate) fn refuse<T>(e: ApplyError) -> Result<T, Halt> {
    Err(Halt::Refuse(e))
}

/// A response carrying only the seq appended (0: none) and the volume's head.
pub(crate) fn ok(seq: u64, head_seq: u64) -> Applied {
    Ok(Response { seq, head_seq, ..Default::default() })
}

/// A path inside a command must already be clean and not the root.
pub(crate) fn checked_path(p: &str) -> Result<String, Halt> {
    match path::clean_non_root(p) {
        Ok(clean) if clean == p => Ok(clean),
        _ => refuse(ApplyError::bad_request("invalid path")),
    }
}

/// The volume, if it exists and belongs to the team; any other volume is "not found".
pub(crate) fn team_volume(txn: &Txn, volume_id: &str, team_id: &str) -> Result<VolumeRecord, Halt> {
    match txn.get::<VolumeRecord>(Cf::Volumes, volume_id.as_bytes())? {
        Some(v) if v.team_id == team_id => Ok(v),
        _ => refuse(ApplyError::not_found("volume not found").because(Reason::VolumeNotFound)),
    }
}

/// The volume a namespace change names in its origin, if the team's and not read-only.
pub(crate) fn writable_volume<'o>(txn: &Txn, origin: Option<&'o Origin>) -> Result<(VolumeRecord, &'o Origin), Halt> {
    let origin = origin.ok_or_else(|| ApplyError::bad_request("command without an origin"))?;
    let vol = team_volume(txn, &origin.volume_id, &origin.team_id)?;
    if vol.config.as_ref().is_some_and(|c| c.access_mode == "ROX") {
        return refuse(ApplyError::conflict("volume is read-only").because(Reason::VolumeReadOnly));
    }
    Ok((vol, origin))
}

/// Creates every missing proper ancestor of `p` as a directory; a file in the way is a conflict.
pub(crate) fn create_parents(txn: &mut Txn, volume: &str, p: &str, origin: &Origin, seq: u64) -> Result<(), Halt> {
    for dir in path::ancestors(p) {
        match txn.node(volume, dir)? {
            Some(n) if n.is_dir() => {}
            Some(_) => {
                return refuse(ApplyError::conflict("path is not a directory").because(Reason::PathNotDirectory))
            }
            None => txn.put_node(volume, dir, &dir_node(origin, seq, DIR_MODE)),
        }
    }
    Ok(())
}

/// A directory node made by `origin` at `seq`.
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

/// The fields of a journal entry that say where it came from; [`Txn::append_journal`] fills in
/// the volume and the seq.
pub(crate) fn journal_base(origin: &Origin) -> JournalEntry {
    JournalEntry {
        source: origin.source.clone(),
        replica_id: origin.replica_id.clone(),
        created_at_ms: origin.at_ms,
        ..Default::default()
    }
}

/// Whether `sha` was swept and its object may be being deleted right now (see `apply/gc.rs`).
pub(crate) fn being_deleted(txn: &Txn, sha: &[u8; 32]) -> Result<bool, StorageError> {
    Ok(txn.get_raw(Cf::GcMarks, &keys::gc_tombstone(sha))?.is_some())
}

/// Called by every write that makes a volume reference `sha`: it is not garbage. Marks are
/// rare, so the point read (a bloom-filter miss, usually) saves a delete tombstone per write.
pub(crate) fn unmark_garbage(txn: &mut Txn, sha: &[u8; 32]) -> Result<(), StorageError> {
    if txn.get_raw(Cf::GcMarks, sha)?.is_some() {
        txn.delete(Cf::GcMarks, sha);
    }
    Ok(())
}
