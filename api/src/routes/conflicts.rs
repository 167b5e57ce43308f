//! `/sandboxvolumes/{id}/sync/conflicts`: the conflicts replica changes ran into, and marking
//! them resolved or ignored.

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use tideline_types::limits::{CONFLICTS_PAGE_DEFAULT, CONFLICTS_PAGE_MAX, CONFLICT_NOTE_BYTES_MAX as NOTE_BYTES_MAX};
use tideline_types::ConflictStatus;

use super::{consistency, page_limit};
use crate::auth::{Permission, Principal};
use crate::envelope::ok;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::openapi::{ConflictPath, ReadQuery as ReadParams, Success, VolumeId};
use crate::ops::conflicts::{self, Resolve};
use crate::ops::Consistency;
use crate::state::AppState;
use crate::wire::{to_wire_all, ConflictList, ToWire};
use crate::wire::{ConflictUpdate, SyncConflict};

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/sandboxvolumes/{id}/sync/conflicts", tag = "volume-sync", summary = "List conflicts",
    params(VolumeId,
        ("status" = Option<ConflictStatus>, Query, description = "Only this status (default: open)"),
        ("limit" = Option<u32>, Query, description = "At most this many"),
        ReadParams),
    responses((status = 200, description = "Conflicts", body = Success<ConflictList>)))]
pub async fn list(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeRead)?;
    let status = match q.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => match s.parse::<ConflictStatus>() {
            Ok(status) => Some(status),
            Err(_) => {
                return Err(ApiError::bad_request(format!("invalid status {s:?}: use open, resolved or ignored")))
            }
        },
    };
    let limit = page_limit(q.limit.as_deref(), CONFLICTS_PAGE_DEFAULT, CONFLICTS_PAGE_MAX)?;
    let vol = st.ops.team_volume(caller, &id, consistency(q.consistency.as_deref())?).await?;
    let found = conflicts::list(&st.ops, &vol, status, limit)?;
    Ok(ok(ConflictList { conflicts: to_wire_all(&found)? }))
}

#[derive(Deserialize)]
pub struct ResolveBody {
    #[serde(default)]
    status: String,
    resolution: Option<String>,
    note: Option<String>,
}

#[utoipa::path(put, path = "/sandboxvolumes/{id}/sync/conflicts/{conflict_id}", tag = "volume-sync", summary = "Resolve or ignore a conflict",
    params(ConflictPath),
    request_body(content = ConflictUpdate),
    responses((status = 200, description = "The conflict", body = Success<SyncConflict>)))]
pub async fn resolve(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, cid)): Path<(String, String)>,
    Json(body): Json<ResolveBody>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let status = match body.status.trim().parse::<ConflictStatus>() {
        Ok(s) if s.is_final() => s,
        _ => return Err(ApiError::bad_request("invalid sync conflict status")),
    };
    for text in [&body.resolution, &body.note].into_iter().flatten() {
        if text.len() > NOTE_BYTES_MAX {
            return Err(ApiError::bad_request("resolution and note are at most 4096 bytes"));
        }
    }
    let vol = st.ops.team_volume(caller, &id, Consistency::Linearizable).await?;
    let r = Resolve { conflict_id: cid, status, resolution: body.resolution, note: body.note };
    let conflict = conflicts::resolve(&st.ops, &vol, r).await?;
    Ok(ok(conflict.to_wire()?))
}
