//! Sync replicas' records: registering one (and merging its capabilities into the volume's
//! policy), moving its cursor, resolving its conflicts, forgetting its old request ids. A
//! replica's batch of changes is `append.rs`.

use serde_json::{json, Map, Value};

use tideline_types::Reason;

use crate::command::{PruneRequests, ResolveConflict, UpdateCursor, UpsertReplica};
use crate::db::Cf;
use crate::keys;
use crate::records::ReplicaRecord;
use crate::response::{ApplyError, Response};
use crate::rules::{refuse, team_volume, Applied};
use crate::sync_records::{ConflictIndex, ConflictRecord, RequestRecord, CONFLICT_IGNORED, CONFLICT_RESOLVED};
use crate::txn::Txn;

pub(crate) fn upsert_replica(txn: &mut Txn, c: &UpsertReplica) -> Applied {
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

pub(crate) fn update_cursor(txn: &mut Txn, c: &UpdateCursor) -> Applied {
    let vol = team_volume(txn, &c.volume_id, &c.team_id)?;
    let key = keys::replica(&vol.id, &c.replica_id);
    let Some(mut r) = txn.get::<ReplicaRecord>(Cf::Replicas, &key)? else {
        return refuse(ApplyError::not_found("sync replica not found").because(Reason::ReplicaNotFound));
    };
    // The order of the checks is the contract's: lease, ahead, reseed, regression.
    if c.at_ms > r.lease_expires_at_ms() {
        return refuse(ApplyError::conflict("sync replica lease expired").because(Reason::LeaseExpired));
    }
    if c.last_applied_seq > vol.head_seq {
        return refuse(ApplyError::conflict("sync cursor ahead of head").because(Reason::CursorAheadOfHead));
    }
    if c.last_applied_seq < vol.floor_seq {
        return refuse(ApplyError::reseed(vol.floor_seq, vol.head_seq));
    }
    if c.last_applied_seq < r.last_applied_seq {
        return refuse(ApplyError::conflict("sync cursor regression").because(Reason::CursorRegression));
    }
    r.last_applied_seq = c.last_applied_seq;
    r.last_seen_at_ms = r.last_seen_at_ms.max(c.at_ms);
    r.updated_at_ms = r.updated_at_ms.max(c.at_ms);
    txn.put(Cf::Replicas, &key, &r);
    Ok(Response { head_seq: vol.head_seq, replica: Some(r), ..Default::default() })
}

pub(crate) fn resolve_conflict(txn: &mut Txn, c: &ResolveConflict) -> Applied {
    let vol = team_volume(txn, &c.volume_id, &c.team_id)?;
    if c.status != CONFLICT_RESOLVED && c.status != CONFLICT_IGNORED {
        return refuse(ApplyError::bad_request("invalid sync conflict status"));
    }
    let not_found = || ApplyError::not_found("sync conflict not found").because(Reason::ConflictNotFound);
    let index: ConflictIndex =
        txn.get(Cf::Conflicts, &keys::conflict_id(&vol.id, &c.conflict_id))?.ok_or_else(not_found)?;
    let key = keys::conflict(&vol.id, index.ordinal);
    let mut record: ConflictRecord = txn.get(Cf::Conflicts, &key)?.ok_or_else(not_found)?;
    let mut metadata: Map<String, Value> =
        record.metadata_json.as_deref().and_then(|m| serde_json::from_str(m).ok()).unwrap_or_default();
    metadata.insert("resolution".into(), json!(c.resolution));
    metadata.insert("note".into(), json!(c.note));
    metadata.insert("resolved_at_ms".into(), json!(c.at_ms));
    record.metadata_json = Some(Value::Object(metadata).to_string());
    record.status = c.status.clone();
    record.updated_at_ms = record.updated_at_ms.max(c.at_ms);
    txn.put(Cf::Conflicts, &key, &record);
    Ok(Response { head_seq: vol.head_seq, conflict: Some(record), ..Default::default() })
}

/// Forgets request ids stored before `c.before_ms`, oldest first, at most `c.limit`.
pub(crate) fn prune_requests(txn: &mut Txn, c: &PruneRequests) -> Applied {
    let prefix = [keys::REQUEST_EXPIRY_PREFIX];
    let end = keys::request_expiry(c.before_ms, b"");
    let rows = txn.db().scan_raw_limit(Cf::Requests, &prefix, c.limit as usize)?;
    for (index_key, _) in rows.into_iter().take_while(|(k, _)| *k < end) {
        let ms = u64::from_be_bytes(index_key[1..9].try_into().expect("expiry keys hold 8 time bytes")) as i64;
        let request_key = &index_key[9..];
        // A request id reused after it expired has a newer record: keep that one.
        if txn.get::<RequestRecord>(Cf::Requests, request_key)?.is_some_and(|r| r.created_at_ms == ms) {
            txn.delete(Cf::Requests, request_key);
        }
        txn.delete(Cf::Requests, &index_key);
    }
    Ok(Response::default())
}
