//! Blob garbage collection, the state-machine half: marks and sweeps through Raft.
//!
//! ```text
//!  leader, every interval:  referenced = namespace rows + retained journal entries + every
//!                           sealed snapshot's manifest (all volumes)
//!    MarkGarbage(unreferenced, at)     ─▶ gc_marks[sha] = at        (only if not marked yet)
//!    any write that references sha     ─▶ deletes gc_marks[sha] in its own batch
//!    SweepGarbage(refs, marked_before) ─▶ for refs still marked at or before `marked_before`:
//!                                         drop the mark and the inline copy; answer them
//!    leader: delete each answered object from the store if it is still older than the grace
//! ```
//!
//! A blob is therefore deleted only after it has been unreferenced for a whole grace period
//! with no write touching it in between; a write racing the sweep either un-marks it first or
//! finds it gone before it proposes (blob puts re-upload objects older than
//! [`crate::blob::REFRESH_AGE`]).

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
            swept.push(r.clone());
        }
    }
    Ok(Response { swept, ..Default::default() })
}

/// Called by every write that makes a volume reference `sha`: it is not garbage.
pub(crate) fn unmark(txn: &mut Txn, sha: &[u8; 32]) {
    txn.delete(Cf::GcMarks, sha);
}
