//! Blob garbage collection, the state-machine half: marks and sweeps through Raft (the
//! leader's half is `raft/src/collector.rs`; what a write checks is in `rules.rs`).
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

use crate::command::{MarkGarbage, SweepDone, SweepGarbage};
use crate::db::Cf;
use crate::keys;
use crate::response::Response;
use crate::rules::Applied;
use crate::txn::Txn;

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
            txn.put_raw(Cf::GcMarks, &keys::gc_tombstone(r), &at.to_be_bytes());
            swept.push(r.clone());
        }
    }
    Ok(Response { swept, ..Default::default() })
}

pub(crate) fn sweep_done(txn: &mut Txn, c: &SweepDone) -> Applied {
    for r in c.refs.iter().filter(|r| r.len() == 32) {
        txn.delete(Cf::GcMarks, &keys::gc_tombstone(r));
    }
    Ok(Response::default())
}
