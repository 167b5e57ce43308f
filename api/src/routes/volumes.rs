//! `/sandboxvolumes…`: create, list, get, delete, fork. A request's config is parsed here (a
//! fork's unset fields come from its source); [`ops::volumes`](crate::ops::volumes) decides ids
//! and times and proposes.

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use tideline_storage::VolumeConfig;
use tideline_types::limits::VOLUME_LIST_ENTRIES_MAX;
use tideline_types::AccessMode;

use super::{consistency, flag};
use crate::auth::{Permission, Principal};
use crate::envelope::{created, ok};
use crate::error::{ApiError, ApiResult};
use crate::extract::{OptionalJson, Path, Query};
use crate::openapi::{ReadQuery as ReadParams, Success, VolumeId};
use crate::ops::{volumes, Consistency};
use crate::state::AppState;
use crate::wire::{to_wire_all, Deleted, SandboxVolume, ToWire, VolumeRequest};
use tideline_types::wire::ErrorEnvelope;

/// Body of create and fork: every field optional.
#[derive(Deserialize, Default)]
pub struct VolumeBody {
    cache_size: Option<String>,
    buffer_size: Option<String>,
    prefetch: Option<i64>,
    writeback: Option<bool>,
    access_mode: Option<String>,
    default_posix_uid: Option<i64>,
    default_posix_gid: Option<i64>,
}

#[derive(Deserialize)]
pub struct ReadQuery {
    consistency: Option<String>,
    force: Option<String>,
}

/// `access_mode` trimmed and uppercased; absent or empty is RWO.
fn access_mode(raw: Option<&str>) -> ApiResult<AccessMode> {
    let mode = raw.map(|m| m.trim().to_ascii_uppercase()).unwrap_or_default();
    if mode.is_empty() {
        return Ok(AccessMode::default());
    }
    mode.parse().map_err(|_| ApiError::bad_request("invalid access_mode"))
}

/// uid/gid come together and are non-negative; `None` when both are absent.
fn posix_ids(b: &VolumeBody) -> ApiResult<Option<(i64, i64)>> {
    match (b.default_posix_uid, b.default_posix_gid) {
        (None, None) => Ok(None),
        (Some(u), Some(g)) if u >= 0 && g >= 0 => Ok(Some((u, g))),
        (Some(_), Some(_)) => {
            Err(ApiError::bad_request("default_posix_uid and default_posix_gid must be non-negative"))
        }
        _ => Err(ApiError::bad_request("default_posix_uid and default_posix_gid must be set together")),
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The config a body asks for, with unset fields taken from `base`.
fn config(b: VolumeBody, base: &VolumeConfig) -> ApiResult<VolumeConfig> {
    let access_mode = access_mode(b.access_mode.as_deref())?;
    let ids = posix_ids(&b)?;
    let prefetch = b.prefetch.unwrap_or(base.prefetch);
    if prefetch < 0 {
        return Err(ApiError::bad_request("prefetch must be non-negative"));
    }
    let (uid, gid) = ids.unwrap_or((base.default_posix_uid.unwrap_or(0), base.default_posix_gid.unwrap_or(0)));
    Ok(VolumeConfig {
        cache_size: non_empty(b.cache_size).unwrap_or_else(|| base.cache_size.clone()),
        buffer_size: non_empty(b.buffer_size).unwrap_or_else(|| base.buffer_size.clone()),
        prefetch,
        writeback: b.writeback.unwrap_or(base.writeback),
        access_mode: access_mode.as_str().to_string(),
        default_posix_uid: Some(uid),
        default_posix_gid: Some(gid),
    })
}

#[utoipa::path(post, path = "/sandboxvolumes", tag = "sandbox-volumes", summary = "Create a volume",
    request_body(content = Option<VolumeRequest>, description = "Every field optional"),
    responses((status = 201, description = "Created", body = Success<SandboxVolume>)))]
pub async fn create(
    State(st): State<AppState>,
    principal: Principal,
    OptionalJson(body): OptionalJson<VolumeBody>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeCreate)?;
    let defaults = VolumeConfig { cache_size: "1G".into(), buffer_size: "32M".into(), ..Default::default() };
    let vol = volumes::create(&st.ops, caller, config(body, &defaults)?).await?;
    Ok(created(vol.to_wire()?))
}

#[utoipa::path(get, path = "/sandboxvolumes", tag = "sandbox-volumes", summary = "List the team's volumes",
    params(ReadParams),
    responses((status = 200, description = "Volumes", body = Success<Vec<SandboxVolume>>)))]
pub async fn list(
    State(st): State<AppState>,
    principal: Principal,
    Query(q): Query<ReadQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeRead)?;
    st.ops.read_barrier(consistency(q.consistency.as_deref())?).await?;
    let vols = volumes::list(&st.ops, caller, VOLUME_LIST_ENTRIES_MAX)?;
    Ok(ok(to_wire_all(&vols)?))
}

#[utoipa::path(get, path = "/sandboxvolumes/{id}", tag = "sandbox-volumes", summary = "Get a volume",
    params(VolumeId, ReadParams),
    responses((status = 200, description = "The volume", body = Success<SandboxVolume>)))]
pub async fn get(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<ReadQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeRead)?;
    let vol = st.ops.team_volume(caller, &id, consistency(q.consistency.as_deref())?).await?;
    Ok(ok(vol.to_wire()?))
}

#[utoipa::path(delete, path = "/sandboxvolumes/{id}", tag = "sandbox-volumes", summary = "Delete a volume",
    params(VolumeId, ("force" = Option<bool>, Query, description = "Delete even with active mounts"), ReadParams),
    responses((status = 200, description = "Deleted", body = Success<Deleted>),
        (status = 409, description = "The volume has active mounts", body = ErrorEnvelope)))]
pub async fn delete(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<ReadQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeDelete)?;
    let force = flag("force", q.force.as_deref())?;
    volumes::delete(&st.ops, caller, &id, force, consistency(q.consistency.as_deref())?).await?;
    Ok(ok(json!({ "deleted": true })))
}

#[utoipa::path(post, path = "/sandboxvolumes/{id}/fork", tag = "sandbox-volumes", summary = "Fork a volume (copy-on-write)",
    params(VolumeId),
    request_body(content = Option<VolumeRequest>, description = "Unset fields come from the source"),
    responses((status = 201, description = "The fork", body = Success<SandboxVolume>)))]
pub async fn fork(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<VolumeBody>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let source = st.ops.team_volume(caller, &id, Consistency::Linearizable).await?;
    let base = source.config.clone().unwrap_or_default();
    let vol = volumes::fork(&st.ops, caller, source, config(body, &base)?).await?;
    Ok(created(vol.to_wire()?))
}
