//! Conflicts replica changes ran into: listing them, and marking one resolved or ignored (one
//! command, stamped with the injected clock).

use tideline_storage::command::ResolveConflict;
use tideline_storage::{CommandKind, ConflictRecord, VolumeRecord};
use tideline_types::ConflictStatus;

use super::context::Ops;
use crate::error::{ApiError, ApiResult};

/// A conflict's final status and the caller's words on it.
pub struct Resolve {
    pub conflict_id: String,
    pub status: ConflictStatus,
    pub resolution: Option<String>,
    pub note: Option<String>,
}

/// The volume's conflicts (of one status, if given), at most `limit`.
pub fn list(
    ops: &Ops,
    vol: &VolumeRecord,
    status: Option<ConflictStatus>,
    limit: usize,
) -> ApiResult<Vec<ConflictRecord>> {
    Ok(ops.node().state_machine().conflicts(&vol.id, status.map(ConflictStatus::as_str), limit)?)
}

pub async fn resolve(ops: &Ops, vol: &VolumeRecord, r: Resolve) -> ApiResult<ConflictRecord> {
    let cmd = ResolveConflict {
        volume_id: vol.id.clone(),
        team_id: vol.team_id.clone(),
        conflict_id: r.conflict_id,
        status: r.status.as_str().to_string(),
        resolution: r.resolution,
        note: r.note,
        at_ms: ops.now_ms(),
    };
    let resp = ops.propose(CommandKind::ResolveConflict(cmd)).await?;
    resp.conflict.ok_or_else(|| ApiError::internal("resolve returned no conflict"))
}
