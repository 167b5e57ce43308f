//! `/sandboxvolumes/{id}/snapshots…`: volume snapshots (create, list, get, delete, restore).
//! The protocols — take (create → freeze → manifest → seal, or discard) and restore — are
//! [`ops::snapshots`] and [`ops::restore`].

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use tideline_storage::{SnapshotRecord, VolumeRecord};

use super::consistency;
use crate::auth::{Permission, Principal};
use crate::envelope::{created, ok};
use crate::error::{ApiError, ApiResult};
use crate::extract::{OptionalJson, Path, Query};
use crate::openapi::{ReadQuery as ReadParams, SnapshotPath, Success, VolumeId};
use crate::ops::snapshots::{self, Kind, Take};
use crate::ops::{restore as restore_op, Consistency};
use crate::state::AppState;
use crate::wire::{to_wire_all, ToWire};
use crate::wire::{Deleted, Restored, Snapshot, SnapshotRequest};

#[derive(Deserialize, Default)]
pub struct CreateBody {
    name: Option<String>,
    description: Option<String>,
}

#[utoipa::path(post, path = "/sandboxvolumes/{id}/snapshots", tag = "snapshots", summary = "Create a snapshot",
    params(VolumeId),
    request_body(content = SnapshotRequest),
    responses((status = 201, description = "Created", body = Success<Snapshot>)))]
pub async fn create(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<CreateBody>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let name = body.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    let name = name.ok_or_else(|| ApiError::bad_request("name is required"))?;
    let vol = st.ops.team_volume(caller, &id, Consistency::Linearizable).await?;
    let take =
        Take { name, description: body.description.filter(|d| !d.is_empty()), kind: Kind::User, portable_to: None };
    let (snap, _) = snapshots::take(&st.ops, &vol, take).await?;
    Ok(created(snap.to_wire()?))
}

#[derive(Deserialize)]
pub struct ReadQuery {
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/sandboxvolumes/{id}/snapshots", tag = "snapshots", summary = "List a volume's snapshots",
    params(VolumeId, ReadParams),
    responses((status = 200, description = "Snapshots", body = Success<Vec<Snapshot>>)))]
pub async fn list(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<ReadQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeRead)?;
    let vol = st.ops.team_volume(caller, &id, consistency(q.consistency.as_deref())?).await?;
    Ok(ok(to_wire_all(&snapshots::list(&st.ops, &vol)?)?))
}

/// The caller's volume (after a read barrier) and its snapshot `sid`.
async fn owned_snapshot(
    st: &AppState,
    principal: &Principal,
    perm: Permission,
    id: &str,
    sid: &str,
) -> ApiResult<(VolumeRecord, SnapshotRecord)> {
    let caller = principal.require(perm)?;
    let vol = st.ops.team_volume(caller, id, Consistency::Linearizable).await?;
    let snap = snapshots::get(&st.ops, &vol, sid)?;
    Ok((vol, snap))
}

#[utoipa::path(get, path = "/sandboxvolumes/{id}/snapshots/{snapshot_id}", tag = "snapshots", summary = "Get a snapshot",
    params(SnapshotPath),
    responses((status = 200, description = "The snapshot", body = Success<Snapshot>)))]
pub async fn get(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let (_, snap) = owned_snapshot(&st, &principal, Permission::VolumeRead, &id, &sid).await?;
    Ok(ok(snap.to_wire()?))
}

#[utoipa::path(delete, path = "/sandboxvolumes/{id}/snapshots/{snapshot_id}", tag = "snapshots", summary = "Delete a snapshot",
    params(SnapshotPath),
    responses((status = 200, description = "Deleted", body = Success<Deleted>)))]
pub async fn delete(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let vol = st.ops.team_volume(caller, &id, Consistency::Linearizable).await?;
    snapshots::delete(&st.ops, &vol, &sid).await?;
    Ok(ok(json!({ "deleted": true })))
}

#[utoipa::path(post, path = "/sandboxvolumes/{id}/snapshots/{snapshot_id}/restore", tag = "snapshots", summary = "Restore a volume to a snapshot",
    params(SnapshotPath),
    responses((status = 200, description = "Restored", body = Success<Restored>)))]
pub async fn restore(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let (vol, snap) = owned_snapshot(&st, &principal, Permission::VolumeWrite, &id, &sid).await?;
    restore_op::restore(&st.ops, &vol, &snap).await?;
    Ok(ok(json!({ "status": "restored" })))
}
