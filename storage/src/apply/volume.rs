//! Volume lifecycle: create, delete, fork (copy-on-write) and retention (`Compact` moves the
//! floor of the retained journal).

use tideline_types::Reason;

use crate::command::{Compact, CreateVolume, DeleteVolume, ForkVolume};
use crate::db::Cf;
use crate::keys;
use crate::records::{JournalEntry, ReplicaRecord, VolumeRecord};
use crate::response::{ApplyError, Response};
use crate::rules::{ok, refuse, team_volume, Applied};
use crate::txn::Txn;

pub(crate) fn create_volume(txn: &mut Txn, c: &CreateVolume) -> Applied {
    let vol = c.volume.clone().ok_or_else(|| ApplyError::bad_request("create_volume without a volume"))?;
    if vol.id.is_empty() || vol.id.contains('\0') {
        return refuse(ApplyError::bad_request("invalid volume id"));
    }
    if txn.get::<VolumeRecord>(Cf::Volumes, vol.id.as_bytes())?.is_some() {
        return refuse(ApplyError::conflict("volume already exists").because(Reason::VolumeAlreadyExists));
    }
    txn.put(Cf::Volumes, vol.id.as_bytes(), &vol);
    Ok(Response { volume: Some(vol), ..Default::default() })
}

pub(crate) fn delete_volume(txn: &mut Txn, c: &DeleteVolume) -> Applied {
    let vol = team_volume(txn, &c.volume_id, &c.team_id)?;
    let prefix = keys::volume_prefix(&vol.id);
    if !c.force {
        // Every replica of the volume, to count the live ones: few per volume.
        let live = txn
            .scan::<ReplicaRecord>(Cf::Replicas, &prefix)?
            .into_iter()
            .filter(|(_, r)| c.at_ms <= r.lease_expires_at_ms())
            .count();
        if live > 0 {
            return refuse(
                ApplyError::conflict(format!(
                    "volume has {live} active sync replica(s); detach them or delete with force=true"
                ))
                .because(Reason::VolumeHasActiveReplicas),
            );
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

/// Copies the source's namespace and retained journal under the new id. Whole-volume by
/// definition; the rows are streamed from the database into the batch, not collected first.
pub(crate) fn fork_volume(txn: &mut Txn, c: &ForkVolume) -> Applied {
    let source = team_volume(txn, &c.source_volume_id, &c.team_id)?;
    let mut vol = c.volume.clone().ok_or_else(|| ApplyError::bad_request("fork_volume without a volume"))?;
    if vol.id.is_empty() || vol.id.contains('\0') || vol.team_id != c.team_id {
        return refuse(ApplyError::bad_request("invalid fork volume"));
    }
    if txn.get::<VolumeRecord>(Cf::Volumes, vol.id.as_bytes())?.is_some() {
        return refuse(ApplyError::conflict("volume already exists").because(Reason::VolumeAlreadyExists));
    }
    vol.head_seq = source.head_seq;
    vol.floor_seq = source.floor_seq;
    source.assert_floor_within_head();
    let from = keys::volume_prefix(&source.id);
    let to = keys::volume_prefix(&vol.id);
    let db = txn.db();
    for cf in [Cf::Namespace, Cf::FoldIndex, Cf::VolumeBlobs, Cf::PathLatest] {
        for row in db.iter_raw(cf, &from) {
            let (k, v) = row?;
            let mut key = to.clone();
            key.extend_from_slice(&k[from.len()..]);
            txn.put_raw(cf, &key, &v);
        }
    }
    for row in db.iter::<JournalEntry>(Cf::Journal, &from) {
        let (k, mut entry) = row?;
        let mut key = to.clone();
        key.extend_from_slice(&k[from.len()..]);
        entry.volume_id = vol.id.clone();
        txn.put(Cf::Journal, &key, &entry);
    }
    txn.put(Cf::Volumes, vol.id.as_bytes(), &vol);
    Ok(Response { head_seq: vol.head_seq, volume: Some(vol), ..Default::default() })
}

pub(crate) fn compact(txn: &mut Txn, c: &Compact) -> Applied {
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
    vol.assert_floor_within_head();
    txn.put(Cf::Volumes, vol.id.as_bytes(), &vol);
    ok(0, vol.head_seq)
}
