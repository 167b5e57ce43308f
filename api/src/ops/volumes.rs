//! Volumes: create, fork (copy-on-write by address, rows copied in one command), delete. Ids and
//! times are decided here — times by the injected clock — before proposing.

use axum::http::StatusCode;
use tideline_storage::command::{CreateVolume, DeleteVolume, ForkVolume};
use tideline_storage::{CommandKind, VolumeConfig, VolumeRecord};
use tideline_types::Reason;

use super::access::Consistency;
use super::context::Ops;
use crate::auth::TeamCaller;
use crate::error::{ApiError, ApiResult};
use crate::wire::new_id;

/// A new volume's record: a fresh id, the caller's team and subject, created now.
fn new_record(ops: &Ops, caller: &TeamCaller, config: VolumeConfig, source: Option<String>) -> VolumeRecord {
    let now = ops.now_ms();
    VolumeRecord {
        id: new_id("vol-"),
        team_id: caller.team_id.clone(),
        user_id: caller.subject.clone(),
        source_volume_id: source,
        config: Some(config),
        created_at_ms: now,
        updated_at_ms: now,
        head_seq: 0,
        floor_seq: 0,
        policy: None,
        conflict_count: 0,
        writer_replica_id: None,
        writer_lease_until_ms: 0,
    }
}

/// Creates an empty volume of the caller's team.
pub async fn create(ops: &Ops, caller: &TeamCaller, config: VolumeConfig) -> ApiResult<VolumeRecord> {
    let record = new_record(ops, caller, config, None);
    let resp = ops.propose(CommandKind::CreateVolume(CreateVolume { volume: Some(record) })).await?;
    resp.volume.ok_or_else(|| ApiError::internal("create returned no volume"))
}

/// Forks `source` (the caller's) into a new volume sharing its content by address.
pub async fn fork(
    ops: &Ops,
    caller: &TeamCaller,
    source: VolumeRecord,
    config: VolumeConfig,
) -> ApiResult<VolumeRecord> {
    let record = new_record(ops, caller, config, Some(source.id.clone()));
    let cmd = ForkVolume { source_volume_id: source.id, team_id: caller.team_id.clone(), volume: Some(record) };
    let resp = ops.propose(CommandKind::ForkVolume(cmd)).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            ApiError::not_found("volume not found").because(Reason::VolumeNotFound)
        } else {
            e
        }
    })?;
    resp.volume.ok_or_else(|| ApiError::internal("fork returned no volume"))
}

/// Deletes the caller's volume; one already gone is not an error, another team's is 404.
/// Live replicas refuse it (409) unless `force`.
pub async fn delete(ops: &Ops, caller: &TeamCaller, id: &str, force: bool, consistency: Consistency) -> ApiResult<()> {
    ops.read_barrier(consistency).await?;
    match ops.node().state_machine().volume(id)? {
        None => return Ok(()), // idempotent
        Some(v) if v.team_id != caller.team_id => {
            return Err(ApiError::not_found("not found").because(Reason::VolumeNotFound))
        }
        Some(_) => {}
    }
    let cmd = DeleteVolume { volume_id: id.to_string(), team_id: caller.team_id.clone(), force, at_ms: ops.now_ms() };
    match ops.propose(CommandKind::DeleteVolume(cmd)).await {
        Ok(_) => Ok(()),
        // Deleted by someone else between our read and our commit: still deleted.
        Err(e) if e.status == StatusCode::NOT_FOUND => Ok(()),
        Err(e) => Err(e),
    }
}

/// The caller's team's volumes, at most `limit`.
pub fn list(ops: &Ops, caller: &TeamCaller, limit: usize) -> ApiResult<Vec<VolumeRecord>> {
    Ok(ops.node().state_machine().volumes_of_team(&caller.team_id, limit)?)
}
