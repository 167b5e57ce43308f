//! Blob garbage collection, the state-machine half: marks and sweeps through Raft.
//!
//! ```text
//!  leader, every interval:  referenced = namespace rows + retained journal entries + every
//!                           sealed snapshot's manifest (all volumes)
//!    MarkGarbage(unreferenced, at)     ─▶ gc_marks[sha] = at        (only if not marked yet)
//!    any write that references sha     ─▶ deletes gc_marks[sha] in its own batch
//!    SweepGarbage(refs, marked_before) ─▶ for refs still marked at or before `marked_before`:
//!                                         drop the mark and the inline copy; answer them
//!                                         and leave a tombstone for each
//!    leader: delete each answered object ─▶ SweepDone(refs) drops the tombstones
//!    a write of object content under a tombstone ─▶ 503, retry (the retry re-uploads)
//! ```
//!
//! A blob is therefore deleted only after it has been unreferenced for a whole grace period
//! with no write touching it in between. A write racing the sweep either applies first (and
//! un-marks it, so it is not swept) or applies after it and is refused while the tombstone
//! stands, so no committed entry can point at an object the leader is deleting.

use serde::{Deserialize, Serialize};

use crate::command::Response;
use crate::db::Cf;
use crate::state_machine::Applied;
use crate::txn::Txn;

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct MarkGarbage {
    /// sha256 digests (32 bytes each) found unreferenced.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub refs: Vec<Vec<u8>>,
    #[prost(int64, tag = "2")]
    pub at_ms: i64,
    /// Marks to drop: digests that are no longer candidates (referenced again, or re-uploaded).
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub clear: Vec<Vec<u8>>,
}

/// The leader has deleted these swept objects: writes may reference the digests again.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct SweepDone {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub refs: Vec<Vec<u8>>,
}

/// `gc_marks` key of a swept digest whose object may still be being deleted.
pub(crate) fn tombstone_key(sha: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(b'T');
    k.extend_from_slice(sha);
    k
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct SweepGarbage {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub refs: Vec<Vec<u8>>,
    /// Only marks made at or before this are swept.
    #[prost(int64, tag = "2")]
    pub marked_before_ms: i64,
}

pub(crate) fn mark(txn: &mut Txn, c: &MarkGarbage) -> Applied {
    for r in c.clear.iter().filter(|r| r.len() == 32) {
        txn.delete(Cf::GcMarks, r);
    }
    for r in c.refs.iter().filter(|r| r.len() == 32) {
        if txn.get_raw(Cf::GcMarks, r)?.is_none() {
            txn.put_raw(Cf::GcMarks, r, &c.at_ms.to_be_bytes());
        }
    }
    Ok(Response::default())
}

pub(crate) fn sweep(txn: &mut Txn, c: &SweepGarbage) -> Applied {
    let mut swept = Vec::new();
    for r in c.refs.iter().filter(|r| r.len() == 32) {
        let Some(at) = txn.get_raw(Cf::GcMarks, r)? else { continue };
        let at = at.as_slice().try_into().map(i64::from_be_bytes).unwrap_or(i64::MAX);
        if at <= c.marked_before_ms {
            txn.delete(Cf::GcMarks, r);
            txn.delete(Cf::Blobs, r);
            // Until the leader reports the object deleted, no write may reference it: a
            // writer's upload could otherwise land just before the delete.
            txn.put_raw(Cf::GcMarks, &tombstone_key(r), &at.to_be_bytes());
            swept.push(r.clone());
        }
    }
    Ok(Response { swept, ..Default::default() })
}

pub(crate) fn sweep_done(txn: &mut Txn, c: &SweepDone) -> Applied {
    for r in c.refs.iter().filter(|r| r.len() == 32) {
        txn.delete(Cf::GcMarks, &tombstone_key(r));
    }
    Ok(Response::default())
}

/// Whether `sha` was swept and its object may be being deleted right now.
pub(crate) fn being_deleted(txn: &Txn, sha: &[u8; 32]) -> Result<bool, crate::StorageError> {
    Ok(txn.get_raw(Cf::GcMarks, &tombstone_key(sha))?.is_some())
}

/// Called by every write that makes a volume reference `sha`: it is not garbage. Marks are
/// rare, so the point read (a bloom-filter miss, usually) saves a delete tombstone per write.
pub(crate) fn unmark(txn: &mut Txn, sha: &[u8; 32]) -> Result<(), crate::StorageError> {
    if txn.get_raw(Cf::GcMarks, sha)?.is_some() {
        txn.delete(Cf::GcMarks, sha);
    }
    Ok(())
}
