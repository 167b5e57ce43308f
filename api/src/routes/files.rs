//! `/sandboxvolumes/{id}/files…`: direct file access by logical path.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use tideline_storage::command::{MakeDir, MovePath, Origin, RemovePath, WriteFile};
use tideline_storage::{CommandKind, ContentRef, VolumeRecord};
use tideline_types::limits::DIR_LIST_ENTRIES_MAX as LIST_ENTRIES_MAX;
use tideline_types::path;
use tideline_types::Reason;
use tideline_types::Source;

use super::{apply, content, flag, stage, team_volume, write_volume};
use crate::auth::{Permission, Principal};
use crate::envelope::{created, ok};
use crate::error::{ApiError, ApiResult};
use crate::extract::{read_body, Json, Query};
use crate::state::{AppState, FILE_BYTES_MAX};
use crate::wire::{file_info, now_ms, FileInfo, FileList};

#[derive(Deserialize, Default)]
pub struct PathQuery {
    path: Option<String>,
    consistency: Option<String>,
    mkdir: Option<String>,
    recursive: Option<String>,
}

fn origin(vol: &VolumeRecord) -> Option<Origin> {
    Some(Origin {
        volume_id: vol.id.clone(),
        team_id: vol.team_id.clone(),
        source: Source::Sandbox.as_str().into(),
        replica_id: None,
        at_ms: now_ms(),
    })
}

fn wants_json(headers: &HeaderMap) -> bool {
    [header::ACCEPT, header::CONTENT_TYPE]
        .iter()
        .any(|h| headers.get(h).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json")))
}

pub async fn read(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = principal.require(Permission::FileRead)?;
    let p = path::clean_non_root(q.path.as_deref().unwrap_or(""))?;
    let vol = team_volume(&st, caller, &id, q.consistency.as_deref()).await?;
    let node = st
        .node
        .state_machine()
        .node(&vol.id, &p)?
        .ok_or_else(|| ApiError::not_found("file not found").because(Reason::FileNotFound))?;
    if node.is_dir() {
        return Err(ApiError::conflict("path is a directory").because(Reason::PathIsDirectory));
    }
    let r = node
        .content_ref
        .as_deref()
        .and_then(ContentRef::parse)
        .ok_or_else(|| ApiError::internal("file has no content reference"))?;
    let bytes = content(&st, &r).await?.ok_or_else(|| {
        tracing::error!(volume = %vol.id, path = %p, content_ref = %r, "content missing for a committed file");
        ApiError::internal("file content is missing")
    })?;
    if wants_json(&headers) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        return Ok(ok(json!({ "content": b64, "encoding": "base64" })).into_response());
    }
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

pub async fn write(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
    req: Request,
) -> ApiResult<Response> {
    let caller = principal.require(Permission::FileWrite)?;
    let p = path::clean_non_root(q.path.as_deref().unwrap_or(""))?;
    let mkdir = flag("mkdir", q.mkdir.as_deref())?;
    let recursive = flag("recursive", q.recursive.as_deref())?;
    #[cfg(feature = "planted-bugs")]
    let planted = st.planted.ack_before_commit && !mkdir;
    #[cfg(not(feature = "planted-bugs"))]
    let planted = false;
    let vol = write_volume(&st, caller, &id).await?;
    if mkdir {
        apply(&st, CommandKind::MakeDir(MakeDir { origin: origin(&vol), path: p, recursive, mode: 0 })).await?;
        return Ok(created(json!({ "created": true })).into_response());
    }
    let _slot = st.upload_slots.acquire().await.map_err(|_| ApiError::unavailable("shutting down"))?;
    let body = read_body(req, FILE_BYTES_MAX, "file").await.map_err(|e| {
        if e.status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("file too large")
        } else {
            e
        }
    })?;
    let size = body.len() as u64;
    let (r, inline) = stage(&st, body, true).await?;
    let cmd = WriteFile { origin: origin(&vol), path: p, content_ref: r.to_string(), size, inline, mode: 0 };
    if planted {
        // PLANTED BUG (jepsen calibration): acknowledge before the entry is committed.
        let st = st.clone();
        tokio::spawn(async move {
            if let Err(e) = apply(&st, CommandKind::WriteFile(cmd)).await {
                tracing::warn!(error = ?e, "planted bug: an acknowledged write was not committed");
            }
        });
        return Ok(ok(json!({ "written": true })).into_response());
    }
    apply(&st, CommandKind::WriteFile(cmd)).await?;
    Ok(ok(json!({ "written": true })).into_response())
}

pub async fn remove(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::FileWrite)?;
    let p = path::clean_non_root(q.path.as_deref().unwrap_or(""))?;
    let vol = write_volume(&st, caller, &id).await?;
    apply(&st, CommandKind::Remove(RemovePath { origin: origin(&vol), path: p })).await?;
    Ok(ok(json!({ "deleted": true })))
}

pub async fn stat(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::FileRead)?;
    let p = path::clean(q.path.as_deref().unwrap_or(""))?;
    let vol = team_volume(&st, caller, &id, q.consistency.as_deref()).await?;
    let node = st
        .node
        .state_machine()
        .node(&vol.id, &p)?
        .ok_or_else(|| ApiError::not_found("file not found").because(Reason::FileNotFound))?;
    Ok(ok(file_info(&p, &node)))
}

pub async fn list(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::FileRead)?;
    let p = path::clean(q.path.as_deref().unwrap_or(""))?;
    let vol = team_volume(&st, caller, &id, q.consistency.as_deref()).await?;
    let sm = st.node.state_machine();
    let node = sm
        .node(&vol.id, &p)?
        .ok_or_else(|| ApiError::not_found("directory not found").because(Reason::DirectoryNotFound))?;
    if !node.is_dir() {
        return Err(ApiError::conflict("path is not a directory").because(Reason::PathNotDirectory));
    }
    let children = sm.children(&vol.id, &p, LIST_ENTRIES_MAX + 1)?;
    if children.len() > LIST_ENTRIES_MAX {
        return Err(ApiError::conflict(format!(
            "directory has more than {LIST_ENTRIES_MAX} entries; list its subdirectories or read sync/changes"
        )));
    }
    let entries: Vec<FileInfo> = children.iter().map(|(name, n)| file_info(&path::join(&p, name), n)).collect();
    Ok(ok(FileList { entries }))
}

#[derive(Deserialize)]
pub struct MoveBody {
    source: Option<String>,
    destination: Option<String>,
}

pub async fn move_path(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(_): Query<PathQuery>,
    Json(body): Json<MoveBody>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::FileWrite)?;
    let (Some(src), Some(dst)) =
        (body.source.filter(|s| !s.trim().is_empty()), body.destination.filter(|s| !s.trim().is_empty()))
    else {
        return Err(ApiError::bad_request("source and destination are required"));
    };
    let src = path::clean_non_root(&src)?;
    let dst = path::clean_non_root(&dst)?;
    let vol = write_volume(&st, caller, &id).await?;
    apply(&st, CommandKind::Move(MovePath { origin: origin(&vol), source: src, destination: dst })).await?;
    Ok(ok(json!({ "moved": true })))
}
