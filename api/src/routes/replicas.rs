//! `/sandboxvolumes/{id}/sync/replicas/{rid}` and its cursor: the durable state of one sync
//! client (capabilities, lease, last applied seq).

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use tideline_storage::command::{UpdateCursor, UpsertReplica};
use tideline_storage::{Capabilities, CommandKind, ReplicaRecord};
use tideline_types::Reason;

use super::{apply, team_volume, write_volume};
use crate::auth::{Permission, Principal};
use crate::envelope::ok;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, OptionalJson};
use crate::state::AppState;
use crate::wire::{now_ms, ReplicaResponse, ToWire};
use tideline_types::limits::{REPLICA_ID_BYTES_MAX, REPLICA_TEXT_BYTES_MAX};

#[derive(Deserialize, Default)]
pub(super) struct CapabilitiesBody {
    case_sensitive: Option<bool>,
    unicode_normalization_insensitive: Option<bool>,
    windows_compatible_paths: Option<bool>,
}

#[derive(Deserialize, Default)]
pub struct ReplicaBody {
    display_name: Option<String>,
    platform: Option<String>,
    root_path: Option<String>,
    case_sensitive: Option<bool>,
    capabilities: Option<CapabilitiesBody>,
}

/// A replica's capabilities: as given, else from its platform; a case-insensitive file system is
/// always normalization-insensitive too.
pub(super) fn capabilities(
    platform: Option<&str>,
    case_sensitive: Option<bool>,
    given: Option<&CapabilitiesBody>,
) -> Capabilities {
    let mut caps = match (given, platform.map(|p| p.trim().to_ascii_lowercase())) {
        (Some(g), _) => Capabilities {
            case_sensitive: g.case_sensitive.or(case_sensitive).unwrap_or(true),
            unicode_normalization_insensitive: g.unicode_normalization_insensitive.unwrap_or(false),
            windows_compatible_paths: g.windows_compatible_paths.unwrap_or(false),
        },
        (None, Some(p)) if p == "darwin" || p == "macos" => Capabilities {
            case_sensitive: false,
            unicode_normalization_insensitive: true,
            windows_compatible_paths: false,
        },
        (None, Some(p)) if p == "windows" || p == "win32" => Capabilities {
            case_sensitive: false,
            unicode_normalization_insensitive: true,
            windows_compatible_paths: true,
        },
        (None, _) => {
            let cs = case_sensitive.unwrap_or(true);
            Capabilities { case_sensitive: cs, unicode_normalization_insensitive: !cs, windows_compatible_paths: false }
        }
    };
    if !caps.case_sensitive {
        caps.unicode_normalization_insensitive = true;
    }
    caps
}

fn bounded(name: &str, v: Option<String>) -> ApiResult<Option<String>> {
    match v {
        Some(s) if s.len() > REPLICA_TEXT_BYTES_MAX => {
            Err(ApiError::bad_request(format!("{name} longer than 1024 bytes")))
        }
        other => Ok(other.filter(|s| !s.is_empty())),
    }
}

pub(super) fn replica_id(rid: &str) -> ApiResult<&str> {
    if rid.is_empty() || rid.len() > REPLICA_ID_BYTES_MAX || rid.contains('\0') {
        return Err(ApiError::bad_request("invalid replica id"));
    }
    Ok(rid)
}

fn envelope(r: &ReplicaRecord, head_seq: u64) -> ApiResult<ReplicaResponse> {
    Ok(ReplicaResponse { head_seq, replica: r.to_wire()? })
}

pub async fn upsert(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, rid)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<ReplicaBody>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let rid = replica_id(&rid)?;
    let caps = capabilities(body.platform.as_deref(), body.case_sensitive, body.capabilities.as_ref());
    let vol = write_volume(&st, caller, &id).await?;
    let now = now_ms();
    let replica = ReplicaRecord {
        id: rid.to_string(),
        volume_id: vol.id.clone(),
        team_id: vol.team_id.clone(),
        display_name: bounded("display_name", body.display_name)?,
        platform: bounded("platform", body.platform)?,
        root_path: bounded("root_path", body.root_path)?,
        capabilities: Some(caps),
        last_applied_seq: 0,
        last_seen_at_ms: now,
        created_at_ms: now,
        updated_at_ms: now,
    };
    let resp = apply(&st, CommandKind::UpsertReplica(UpsertReplica { replica: Some(replica) })).await?;
    let r = resp.replica.ok_or_else(|| ApiError::internal("upsert returned no replica"))?;
    Ok(ok(envelope(&r, resp.head_seq)?))
}

#[derive(Deserialize)]
pub struct ReadQuery {
    consistency: Option<String>,
}

pub async fn get(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, rid)): Path<(String, String)>,
    crate::extract::Query(q): crate::extract::Query<ReadQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeRead)?;
    let vol = team_volume(&st, caller, &id, q.consistency.as_deref()).await?;
    let r = st
        .node
        .state_machine()
        .replica(&vol.id, &rid)?
        .ok_or_else(|| ApiError::not_found("not found").because(Reason::ReplicaNotFound))?;
    Ok(ok(envelope(&r, vol.head_seq)?))
}

#[derive(Deserialize)]
pub struct CursorBody {
    last_applied_seq: Option<u64>,
}

pub async fn cursor(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, rid)): Path<(String, String)>,
    Json(body): Json<CursorBody>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let seq = body.last_applied_seq.ok_or_else(|| ApiError::bad_request("last_applied_seq is required"))?;
    let vol = write_volume(&st, caller, &id).await?;
    let cmd = UpdateCursor {
        volume_id: vol.id.clone(),
        team_id: vol.team_id.clone(),
        replica_id: rid,
        last_applied_seq: seq,
        at_ms: now_ms(),
    };
    let resp = apply(&st, CommandKind::UpdateCursor(cmd)).await?;
    let r = resp.replica.ok_or_else(|| ApiError::internal("cursor update returned no replica"))?;
    Ok(ok(envelope(&r, resp.head_seq)?))
}
