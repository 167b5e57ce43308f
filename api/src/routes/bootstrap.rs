//! `POST /sandboxvolumes/{id}/sync/bootstrap` and `GET …/sync/bootstrap/archive`: a replica's
//! starting point — the namespace frozen at a seq, as a `tar.gz`, plus the journal after it.
//! The protocols are [`ops::bootstrap`] (a bootstrap snapshot portable to the caller's
//! capabilities) and [`ops::archive`] (the archive streamed in bounded chunks).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::consistency;
use super::replicas::{capabilities, CapabilitiesBody};
use crate::auth::{Permission, Principal};
use crate::envelope::created;
use crate::error::{ApiError, ApiResult};
use crate::extract::{OptionalJson, Path, Query};
use crate::openapi::{Binary, ReadQuery as ReadParams, Success, VolumeId};
use crate::ops::bootstrap::{bootstrap, Bootstrap};
use crate::ops::{archive as archive_op, snapshots, Consistency};
use crate::state::AppState;
use crate::wire::ToWire;
use crate::wire::{BootstrapRequest, BootstrapResponse, ErrorEnvelope};

#[derive(Deserialize, Default)]
pub struct BootstrapBody {
    snapshot_name: Option<String>,
    snapshot_description: Option<String>,
    case_sensitive: Option<bool>,
    capabilities: Option<CapabilitiesBody>,
}

#[utoipa::path(post, path = "/sandboxvolumes/{id}/sync/bootstrap", tag = "volume-sync", summary = "Create a bootstrap snapshot and its journal anchor",
    params(VolumeId),
    request_body(content = Option<BootstrapRequest>),
    responses((status = 201, description = "The snapshot and where replay starts", body = Success<BootstrapResponse>),
        (status = 409, description = "Paths the caller's file system cannot represent", body = ErrorEnvelope)))]
pub async fn create(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<BootstrapBody>,
) -> ApiResult<Response> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let caps = capabilities(None, body.case_sensitive, body.capabilities.as_ref());
    let name = body.snapshot_name.filter(|n| !n.trim().is_empty());
    let vol = st.ops.team_volume(caller, &id, Consistency::Linearizable).await?;
    let b = Bootstrap { name, description: body.snapshot_description.filter(|d| !d.is_empty()), capabilities: caps };
    let done = bootstrap(&st.ops, &vol, b).await?;
    let sid = done.snapshot.id.clone();
    Ok(created(json!({
        "snapshot": done.snapshot.to_wire()?,
        "replay_after_seq": done.replay_after_seq,
        "archive_download_path": format!("/api/v1/sandboxvolumes/{}/sync/bootstrap/archive?snapshot_id={sid}", vol.id),
    }))
    .into_response())
}

#[derive(Deserialize)]
pub struct ArchiveQuery {
    snapshot_id: Option<String>,
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/sandboxvolumes/{id}/sync/bootstrap/archive", tag = "volume-sync", summary = "Download a bootstrap snapshot as tar.gz",
    params(VolumeId, ("snapshot_id" = String, Query, description = "The bootstrap's snapshot"), ReadParams),
    responses((status = 200, description = "The archive", body = Binary, content_type = "application/gzip")))]
pub async fn archive(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
) -> ApiResult<Response> {
    let caller = principal.require(Permission::VolumeRead)?;
    let sid =
        q.snapshot_id.filter(|s| !s.trim().is_empty()).ok_or_else(|| ApiError::bad_request("missing snapshot_id"))?;
    let vol = st.ops.team_volume(caller, &id, consistency(q.consistency.as_deref())?).await?;
    let snap = snapshots::get(&st.ops, &vol, &sid)?;
    let stream = archive_op::archive(&st.ops, &snap).await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"sync-bootstrap-{sid}.tar.gz\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
