//! `/sandboxvolumes…`: create, list, get, delete, fork.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use tideline_storage::command::{CreateVolume, DeleteVolume, ForkVolume};
use tideline_storage::{CommandKind, VolumeConfig, VolumeRecord};
use tideline_types::limits::VOLUME_LIST_ENTRIES_MAX;
use tideline_types::AccessMode;
use tideline_types::Reason;

use super::{apply, flag, read_barrier, team_volume};
use crate::auth::{Permission, Principal, TeamCaller};
use crate::envelope::{created, ok};
use crate::error::{ApiError, ApiResult};
use crate::extract::{OptionalJson, Query};
use crate::state::AppState;
use crate::wire::{new_id, now_ms, to_wire_all, ToWire};

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

fn new_record(caller: &TeamCaller, config: VolumeConfig, source: Option<String>) -> VolumeRecord {
    let now = now_ms();
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

pub async fn create(
    State(st): State<AppState>,
    principal: Principal,
    OptionalJson(body): OptionalJson<VolumeBody>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeCreate)?;
    let defaults = VolumeConfig { cache_size: "1G".into(), buffer_size: "32M".into(), ..Default::default() };
    let record = new_record(caller, config(body, &defaults)?, None);
    let resp = apply(&st, CommandKind::CreateVolume(CreateVolume { volume: Some(record) })).await?;
    let vol = resp.volume.ok_or_else(|| ApiError::internal("create returned no volume"))?;
    Ok(created(vol.to_wire()?))
}

pub async fn list(
    State(st): State<AppState>,
    principal: Principal,
    Query(q): Query<ReadQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeRead)?;
    read_barrier(&st, q.consistency.as_deref()).await?;
    let vols = st.node.state_machine().volumes_of_team(&caller.team_id, VOLUME_LIST_ENTRIES_MAX)?;
    Ok(ok(to_wire_all(&vols)?))
}

pub async fn get(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<ReadQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeRead)?;
    let vol = team_volume(&st, caller, &id, q.consistency.as_deref()).await?;
    Ok(ok(vol.to_wire()?))
}

pub async fn delete(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<ReadQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeDelete)?;
    let force = flag("force", q.force.as_deref())?;
    read_barrier(&st, q.consistency.as_deref()).await?;
    match st.node.state_machine().volume(&id)? {
        None => return Ok(ok(json!({ "deleted": true }))), // idempotent
        Some(v) if v.team_id != caller.team_id => {
            return Err(ApiError::not_found("not found").because(Reason::VolumeNotFound))
        }
        Some(_) => {}
    }
    let cmd = DeleteVolume { volume_id: id, team_id: caller.team_id.clone(), force, at_ms: now_ms() };
    match apply(&st, CommandKind::DeleteVolume(cmd)).await {
        Ok(_) => Ok(ok(json!({ "deleted": true }))),
        // Deleted by someone else between our read and our commit: still deleted.
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => Ok(ok(json!({ "deleted": true }))),
        Err(e) => Err(e),
    }
}

pub async fn fork(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<VolumeBody>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let source = team_volume(&st, caller, &id, None).await?;
    let base = source.config.clone().unwrap_or_default();
    let record = new_record(caller, config(body, &base)?, Some(source.id.clone()));
    let cmd = ForkVolume { source_volume_id: source.id, team_id: caller.team_id.clone(), volume: Some(record) };
    let resp = apply(&st, CommandKind::ForkVolume(cmd)).await.map_err(|e| {
        if e.status == axum::http::StatusCode::NOT_FOUND {
            ApiError::not_found("volume not found").because(Reason::VolumeNotFound)
        } else {
            e
        }
    })?;
    let vol = resp.volume.ok_or_else(|| ApiError::internal("fork returned no volume"))?;
    Ok(created(vol.to_wire()?))
}
