//! Volume snapshots (user and bootstrap): creating, sealing and deleting their records (the
//! record is [`SnapshotRecord`], the commands are in `command.rs`).
//!
//! ```text
//!  CreateSnapshot ─▶ record (state pending, seq = head) ─▶ the requesting node freezes the
//!                    namespace at exactly that point (Freezer), writes the manifest to the
//!                    object store ─▶ SealSnapshot (state ready, size, checksum)
//! ```
//!
//! The record is part of Raft state; the manifest lives in the object store under
//! `snapshots/<volume>/<snapshot>/manifest`. A snapshot whose builder died stays `pending`.

use tideline_types::Reason;

use crate::command::{CreateSnapshot, DeleteSnapshot, SealSnapshot};
use crate::db::Cf;
use crate::keys;
use crate::records::{SnapshotRecord, SNAPSHOT_PENDING, SNAPSHOT_READY};
use crate::response::{ApplyError, Response};
use crate::rules::{refuse, team_volume, Applied};
use crate::txn::Txn;

pub(crate) fn create_snapshot(txn: &mut Txn, c: &CreateSnapshot) -> Applied {
    let mut s = c.snapshot.clone().ok_or_else(|| ApplyError::bad_request("create_snapshot without a snapshot"))?;
    let vol = team_volume(txn, &s.volume_id, &s.team_id)?;
    if s.id.is_empty() || s.id.contains('\0') {
        return refuse(ApplyError::bad_request("invalid snapshot id"));
    }
    let key = keys::snapshot(&vol.id, &s.id);
    if txn.get::<SnapshotRecord>(Cf::Snapshots, &key)?.is_some() {
        return refuse(ApplyError::conflict("snapshot already exists").because(Reason::SnapshotAlreadyExists));
    }
    s.seq = vol.head_seq;
    // The namespace is frozen inside the retained journal: floor <= snapshot <= head.
    assert!(vol.floor_seq <= s.seq && s.seq <= vol.head_seq, "snapshot of {} outside its journal", vol.id);
    s.state = SNAPSHOT_PENDING.into();
    s.size_bytes = 0;
    s.files = 0;
    s.directories = 0;
    s.manifest_sha256.clear();
    txn.put(Cf::Snapshots, &key, &s);
    Ok(Response { head_seq: vol.head_seq, snapshot: Some(s), ..Default::default() })
}

pub(crate) fn seal_snapshot(txn: &mut Txn, c: &SealSnapshot) -> Applied {
    let key = keys::snapshot(&c.volume_id, &c.snapshot_id);
    let Some(mut s) = txn.get::<SnapshotRecord>(Cf::Snapshots, &key)? else {
        return refuse(ApplyError::not_found("snapshot not found").because(Reason::SnapshotNotFound));
    };
    if s.state == SNAPSHOT_READY {
        // Idempotent: a retried seal of the same manifest changes nothing.
        if s.manifest_sha256 == c.manifest_sha256 {
            return Ok(Response { snapshot: Some(s), ..Default::default() });
        }
        return refuse(
            ApplyError::conflict("snapshot already sealed with another manifest").because(Reason::SnapshotSealed),
        );
    }
    s.state = SNAPSHOT_READY.into();
    s.size_bytes = c.size_bytes;
    s.files = c.files;
    s.directories = c.directories;
    s.manifest_sha256 = c.manifest_sha256.clone();
    txn.put(Cf::Snapshots, &key, &s);
    Ok(Response { snapshot: Some(s), ..Default::default() })
}

pub(crate) fn delete_snapshot(txn: &mut Txn, c: &DeleteSnapshot) -> Applied {
    let vol = team_volume(txn, &c.volume_id, &c.team_id)?;
    let key = keys::snapshot(&vol.id, &c.snapshot_id);
    let Some(s) = txn.get::<SnapshotRecord>(Cf::Snapshots, &key)? else {
        return refuse(ApplyError::not_found("snapshot not found").because(Reason::SnapshotNotFound));
    };
    txn.delete(Cf::Snapshots, &key);
    Ok(Response { snapshot: Some(s), ..Default::default() })
}
