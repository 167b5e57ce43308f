//! `/sandboxvolumes/{id}/files…`: direct file access by logical path.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use tideline_types::path;

use super::{consistency, flag};
use crate::auth::{Permission, Principal};
use crate::envelope::{created, ok};
use crate::error::{ApiError, ApiResult};
use crate::extract::{read_body, Json, Path, Query};
use crate::openapi::{Binary, FilePath, Success, VolumeId};
use crate::ops::files;
use crate::state::{AppState, FILE_BYTES_MAX};
use crate::wire::{file_info, FileInfo, FileList};
use crate::wire::{ChmodRequest, Created, Deleted, FileContent, ModeChanged, MoveRequest, Moved, Written};

#[derive(Deserialize, Default)]
pub struct PathQuery {
    path: Option<String>,
    consistency: Option<String>,
    mkdir: Option<String>,
    recursive: Option<String>,
    exclusive: Option<String>,
    mode: Option<String>,
}

/// `mode=0755`: permission bits in octal, at most `7777`.
fn mode_param(v: Option<&str>) -> ApiResult<u32> {
    match v.map(str::trim) {
        None | Some("") => Ok(0),
        Some(s) => u32::from_str_radix(s, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| ApiError::bad_request(format!("invalid mode {s:?}: use octal permission bits, e.g. 0644"))),
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    [header::ACCEPT, header::CONTENT_TYPE]
        .iter()
        .any(|h| headers.get(h).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json")))
}

#[utoipa::path(get, path = "/sandboxvolumes/{id}/files", tag = "files", summary = "Read a file",
    description = "Raw bytes; with `Accept: application/json` the content base64-encoded in the envelope.",
    params(VolumeId, FilePath),
    responses((status = 200, description = "The file's content",
        content((Binary = "application/octet-stream"), (Success<FileContent> = "application/json")))))]
pub async fn read(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = principal.require(Permission::FileRead)?;
    let p = path::clean_non_root(q.path.as_deref().unwrap_or(""))?;
    let vol = st.ops.team_volume(caller, &id, consistency(q.consistency.as_deref())?).await?;
    let bytes = files::read(&st.ops, &vol, &p).await?;
    if wants_json(&headers) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        return Ok(ok(json!({ "content": b64, "encoding": "base64" })).into_response());
    }
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

#[utoipa::path(post, path = "/sandboxvolumes/{id}/files", tag = "files", summary = "Write a file or create a directory",
    description = "The body is the whole new content. With `mkdir=true` creates a directory instead (`recursive=true`: with its parents).",
    params(VolumeId, FilePath, ("mkdir" = Option<bool>, Query, description = "Create a directory"),
        ("recursive" = Option<bool>, Query, description = "With mkdir: create missing parents"),
        ("exclusive" = Option<bool>, Query, description = "[ext] Refuse with 409 `path_already_exists` if the path exists (O_CREAT|O_EXCL)"),
        ("mode" = Option<String>, Query, description = "[ext] Permission bits in octal for a new file or directory (default 0644 / 0755); an existing file keeps its own")),
    request_body(content = Option<Binary>, content_type = "application/octet-stream", description = "The file's content (none with mkdir)"),
    responses((status = 200, description = "Written", body = Success<Written>),
        (status = 201, description = "Directory created", body = Success<Created>)))]
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
    let exclusive = flag("exclusive", q.exclusive.as_deref())?;
    let mode = mode_param(q.mode.as_deref())?;
    let vol = st.ops.write_volume(caller, &id).await?;
    if mkdir {
        files::mkdir(&st.ops, &vol, p, recursive, mode).await?;
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
    files::write(&st.ops, &vol, p, body, files::WriteMode { exclusive, mode }).await?;
    Ok(ok(json!({ "written": true })).into_response())
}

#[utoipa::path(delete, path = "/sandboxvolumes/{id}/files", tag = "files", summary = "Delete a file or directory (recursively)",
    params(VolumeId, FilePath),
    responses((status = 200, description = "Deleted", body = Success<Deleted>)))]
pub async fn remove(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::FileWrite)?;
    let p = path::clean_non_root(q.path.as_deref().unwrap_or(""))?;
    let vol = st.ops.write_volume(caller, &id).await?;
    files::remove(&st.ops, &vol, p).await?;
    Ok(ok(json!({ "deleted": true })))
}

#[utoipa::path(get, path = "/sandboxvolumes/{id}/files/stat", tag = "files", summary = "Stat a path",
    params(VolumeId, FilePath),
    responses((status = 200, description = "The path's metadata", body = Success<FileInfo>)))]
pub async fn stat(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::FileRead)?;
    let p = path::clean(q.path.as_deref().unwrap_or(""))?;
    let vol = st.ops.team_volume(caller, &id, consistency(q.consistency.as_deref())?).await?;
    let node = files::stat(&st.ops, &vol, &p)?;
    Ok(ok(file_info(&p, &node)))
}

#[utoipa::path(get, path = "/sandboxvolumes/{id}/files/list", tag = "files", summary = "List a directory",
    params(VolumeId, FilePath),
    responses((status = 200, description = "Its entries", body = Success<FileList>)))]
pub async fn list(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::FileRead)?;
    let p = path::clean(q.path.as_deref().unwrap_or(""))?;
    let vol = st.ops.team_volume(caller, &id, consistency(q.consistency.as_deref())?).await?;
    let entries: Vec<FileInfo> = files::list(&st.ops, &vol, &p)?.iter().map(|(p, n)| file_info(p, n)).collect();
    Ok(ok(FileList { entries }))
}

#[derive(Deserialize)]
pub struct MoveBody {
    source: Option<String>,
    destination: Option<String>,
}

#[utoipa::path(post, path = "/sandboxvolumes/{id}/files/move", tag = "files", summary = "Move or rename a path",
    params(VolumeId),
    request_body(content = MoveRequest),
    responses((status = 200, description = "Moved", body = Success<Moved>)))]
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
    let vol = st.ops.write_volume(caller, &id).await?;
    files::move_path(&st.ops, &vol, src, dst).await?;
    Ok(ok(json!({ "moved": true })))
}

#[derive(Deserialize)]
pub struct ChmodBody {
    path: Option<String>,
    mode: Option<String>,
}

#[utoipa::path(post, path = "/sandboxvolumes/{id}/files/chmod", tag = "files", summary = "[ext] Set a path's permission bits",
    description = "One `chmod` journal entry. `mode` is octal permission bits (`\"0755\"`, at most `7777`).",
    params(VolumeId),
    request_body(content = ChmodRequest),
    responses((status = 200, description = "Changed", body = Success<ModeChanged>)))]
pub async fn chmod(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(body): Json<ChmodBody>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::FileWrite)?;
    let Some(p) = body.path.filter(|s| !s.trim().is_empty()) else {
        return Err(ApiError::bad_request("path is required"));
    };
    let p = path::clean_non_root(&p)?;
    let mode = match body.mode.as_deref() {
        Some(m) if !m.trim().is_empty() => mode_param(Some(m))?,
        _ => return Err(ApiError::bad_request("mode is required")),
    };
    let vol = st.ops.write_volume(caller, &id).await?;
    files::chmod(&st.ops, &vol, p, mode).await?;
    Ok(ok(json!({ "changed": true })))
}
