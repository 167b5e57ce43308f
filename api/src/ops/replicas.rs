//! Sync replicas: registering one (or renewing its lease: last seen now), reading it, and
//! moving its cursor. Both writes are one command stamped with the injected clock; apply
//! decides the lease from that stamp.

use tideline_storage::command::{UpdateCursor, UpsertReplica};
use tideline_storage::{Capabilities, CommandKind, ReplicaRecord, VolumeRecord};
use tideline_types::Reason;

use super::context::Ops;
use crate::error::{ApiError, ApiResult};

/// What a replica says about itself when it registers.
pub struct Replica {
    pub id: String,
    pub display_name: Option<String>,
    pub platform: Option<String>,
    pub root_path: Option<String>,
    pub capabilities: Capabilities,
}

/// Registers the replica (or updates it, keeping its cursor); returns it and the volume's head.
pub async fn upsert(ops: &Ops, vol: &VolumeRecord, r: Replica) -> ApiResult<(ReplicaRecord, u64)> {
    let now = ops.now_ms();
    let replica = ReplicaRecord {
        id: r.id,
        volume_id: vol.id.clone(),
        team_id: vol.team_id.clone(),
        display_name: r.display_name,
        platform: r.platform,
        root_path: r.root_path,
        capabilities: Some(r.capabilities),
        last_applied_seq: 0,
        last_seen_at_ms: now,
        created_at_ms: now,
        updated_at_ms: now,
    };
    let resp = ops.propose(CommandKind::UpsertReplica(UpsertReplica { replica: Some(replica) })).await?;
    let r = resp.replica.ok_or_else(|| ApiError::internal("upsert returned no replica"))?;
    Ok((r, resp.head_seq))
}

/// The replica as this node has applied it.
pub fn get(ops: &Ops, vol: &VolumeRecord, id: &str) -> ApiResult<ReplicaRecord> {
    ops.node()
        .state_machine()
        .replica(&vol.id, id)?
        .ok_or_else(|| ApiError::not_found("not found").because(Reason::ReplicaNotFound))
}

/// Records that the replica applied the journal through `last_applied_seq`; returns it and the
/// volume's head.
pub async fn cursor(
    ops: &Ops,
    vol: &VolumeRecord,
    id: String,
    last_applied_seq: u64,
) -> ApiResult<(ReplicaRecord, u64)> {
    let cmd = UpdateCursor {
        volume_id: vol.id.clone(),
        team_id: vol.team_id.clone(),
        replica_id: id,
        last_applied_seq,
        at_ms: ops.now_ms(),
    };
    let resp = ops.propose(CommandKind::UpdateCursor(cmd)).await?;
    let r = resp.replica.ok_or_else(|| ApiError::internal("cursor update returned no replica"))?;
    Ok((r, resp.head_seq))
}
