//! `/sandboxvolumes/{id}/sync/replicas/{rid}` and its cursor: the durable state of one sync
//! client (capabilities, lease, last applied seq). The writes are [`ops::replicas`](crate::ops::replicas).

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use tideline_storage::{Capabilities, ReplicaRecord};

use super::consistency;
use crate::auth::{Permission, Principal};
use crate::envelope::ok;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, OptionalJson, Path};
use crate::openapi::{ReadQuery as ReadParams, ReplicaPath, Success};
use crate::ops::replicas::{self, Replica};
use crate::state::AppState;
use crate::wire::{CursorRequest, ErrorEnvelope, ReplicaRequest};
use crate::wire::{ReplicaResponse, ToWire};
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

#[utoipa::path(put, path = "/sandboxvolumes/{id}/sync/replicas/{replica_id}", tag = "volume-sync", summary = "Register or renew a replica",
    params(ReplicaPath),
    request_body(content = Option<ReplicaRequest>),
    responses((status = 200, description = "The replica", body = Success<ReplicaResponse>)))]
pub async fn upsert(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, rid)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<ReplicaBody>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let rid = replica_id(&rid)?;
    let caps = capabilities(body.platform.as_deref(), body.case_sensitive, body.capabilities.as_ref());
    let vol = st.ops.write_volume(caller, &id).await?;
    let replica = Replica {
        id: rid.to_string(),
        display_name: bounded("display_name", body.display_name)?,
        platform: bounded("platform", body.platform)?,
        root_path: bounded("root_path", body.root_path)?,
        capabilities: caps,
    };
    let (r, head_seq) = replicas::upsert(&st.ops, &vol, replica).await?;
    Ok(ok(envelope(&r, head_seq)?))
}

#[derive(Deserialize)]
pub struct ReadQuery {
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/sandboxvolumes/{id}/sync/replicas/{replica_id}", tag = "volume-sync", summary = "Get a replica",
    params(ReplicaPath, ReadParams),
    responses((status = 200, description = "The replica", body = Success<ReplicaResponse>)))]
pub async fn get(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, rid)): Path<(String, String)>,
    crate::extract::Query(q): crate::extract::Query<ReadQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeRead)?;
    let vol = st.ops.team_volume(caller, &id, consistency(q.consistency.as_deref())?).await?;
    let r = replicas::get(&st.ops, &vol, &rid)?;
    Ok(ok(envelope(&r, vol.head_seq)?))
}

#[derive(Deserialize)]
pub struct CursorBody {
    last_applied_seq: Option<u64>,
}

#[utoipa::path(put, path = "/sandboxvolumes/{id}/sync/replicas/{replica_id}/cursor", tag = "volume-sync", summary = "Advance a replica's cursor",
    params(ReplicaPath),
    request_body(content = CursorRequest),
    responses((status = 200, description = "The replica", body = Success<ReplicaResponse>),
        (status = 409, description = "Cursor beyond head, lease expired or reseed required", body = ErrorEnvelope)))]
pub async fn cursor(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, rid)): Path<(String, String)>,
    Json(body): Json<CursorBody>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let seq = body.last_applied_seq.ok_or_else(|| ApiError::bad_request("last_applied_seq is required"))?;
    let vol = st.ops.write_volume(caller, &id).await?;
    let (r, head_seq) = replicas::cursor(&st.ops, &vol, rid, seq).await?;
    Ok(ok(envelope(&r, head_seq)?))
}
