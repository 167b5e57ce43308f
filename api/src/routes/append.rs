//! `POST /sandboxvolumes/{id}/sync/replicas/{rid}/changes`: a replica's batch of changes.
//!
//! Everything about the request is checked here, before anything is proposed: one malformed
//! change refuses the whole batch (400) and nothing is applied. Content is decoded and its
//! hash checked here; [`ops::append`](crate::ops::append) then stages it (large content durable
//! in the object store first) and proposes the batch, and the state machine decides each change
//! against the journal: applied, a no-op, or a conflict.

use axum::extract::{Request, State};
use axum::response::IntoResponse;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tideline_types::limits::{
    APPEND_BODY_BYTES_MAX, CHANGES_PER_REQUEST_MAX, CHANGE_METADATA_BYTES_MAX as METADATA_BYTES_MAX,
    REQUEST_ID_BYTES_MAX,
};
use tideline_types::path;
use tideline_types::{EntryKind, EventType};

use super::replicas::replica_id;
use crate::auth::{Permission, Principal};
use crate::envelope::ok;
use crate::error::{ApiError, ApiResult};
use crate::extract::{read_body, Path};
use crate::openapi::{ReplicaPath, Success};
use crate::ops::append::{append as append_changes, Append, Change};
use crate::state::{AppState, FILE_BYTES_MAX};
use crate::wire::{to_wire_all, AppendResponse};
use crate::wire::{AppendRequest, ErrorEnvelope};

#[derive(Deserialize, Serialize)]
struct AppendBody {
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    base_seq: i64,
    #[serde(default)]
    changes: Vec<ChangeBody>,
}

#[derive(Deserialize, Serialize)]
struct ChangeBody {
    #[serde(default)]
    event_type: String,
    path: Option<String>,
    old_path: Option<String>,
    entry_kind: Option<String>,
    content_base64: Option<String>,
    mode: Option<u32>,
    content_sha256: Option<String>,
    size_bytes: Option<u64>,
    metadata: Option<serde_json::Value>,
}

fn invalid(index: usize, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid sync change: changes[{index}]: {why}"))
}

/// Checks and normalizes one change, decoding its content (if any).
fn check(index: usize, c: ChangeBody) -> ApiResult<Change> {
    let event: EventType = c
        .event_type
        .trim()
        .to_ascii_lowercase()
        .parse()
        .map_err(|_| invalid(index, format!("unknown event_type {:?}", c.event_type)))?;
    let clean = |what: &str, p: Option<&str>| -> ApiResult<String> {
        match p.map(str::trim).filter(|p| !p.is_empty()) {
            None => Err(invalid(index, format!("{what} is required"))),
            Some(p) => path::clean_non_root(p).map_err(|e| invalid(index, format!("{what}: {e}"))),
        }
    };
    let p = if event == EventType::Invalidate {
        match c.path.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            None => "/".to_string(),
            Some(p) => path::clean(p).map_err(|e| invalid(index, format!("path: {e}")))?,
        }
    } else {
        clean("path", c.path.as_deref())?
    };
    let old_path = if event == EventType::Rename {
        let old = clean("old_path", c.old_path.as_deref())?;
        if old == p {
            return Err(invalid(index, "old_path and path are the same"));
        }
        if path::is_within(&p, &old) {
            return Err(invalid(index, "cannot move a directory into itself"));
        }
        Some(old)
    } else {
        None
    };
    if c.mode.is_some_and(|m| m > 0o7777) {
        return Err(invalid(index, "mode must be at most 0o7777"));
    }
    let kind = match c.entry_kind.as_deref().map(|k| k.trim().to_ascii_lowercase()) {
        None => None,
        Some(k) if k.is_empty() => None,
        // `dir` too, as the files API spells it.
        Some(k) if k == "dir" => Some(EntryKind::Directory),
        Some(k) => match k.parse::<EntryKind>() {
            Ok(k) => Some(k),
            Err(_) => return Err(invalid(index, format!("unknown entry_kind {k:?}"))),
        },
    };
    let kind = match event {
        EventType::Create => match (kind, c.content_base64.is_some()) {
            (Some(EntryKind::Directory), true) => return Err(invalid(index, "a directory has no content")),
            (Some(k), _) => Some(k),
            (None, true) => Some(EntryKind::File),
            (None, false) => return Err(invalid(index, "create needs entry_kind")),
        },
        EventType::Write if kind == Some(EntryKind::Directory) => return Err(invalid(index, "write of a directory")),
        EventType::Write if c.content_base64.is_none() => return Err(invalid(index, "write needs content_base64")),
        EventType::Write => Some(EntryKind::File),
        EventType::Chmod if c.mode.is_none() => return Err(invalid(index, "chmod needs mode")),
        _ => kind,
    };
    // Only a create or write of a file carries content; a remove, rename or chmod that names a
    // file (and its sha256 or size, as sync clients describe it) carries none.
    let carries_content = event.may_carry_content() && kind == Some(EntryKind::File);
    let content = match (&c.content_base64, carries_content) {
        (Some(b64), true) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| invalid(index, format!("content_base64: {e}")))?;
            if bytes.len() > FILE_BYTES_MAX {
                return Err(ApiError::too_large(format!("changes[{index}]: file too large")));
            }
            Some(axum::body::Bytes::from(bytes))
        }
        (Some(_), false) => return Err(invalid(index, format!("{event} carries no content"))),
        (None, true) => Some(axum::body::Bytes::new()),
        (None, false) => None,
    };
    if let Some(bytes) = &content {
        if let Some(want) = c.content_sha256.as_deref() {
            let want = want.trim().trim_start_matches("sha256:").to_ascii_lowercase();
            if want != hex::encode(Sha256::digest(bytes)) {
                return Err(invalid(index, "content_sha256 does not match the content"));
            }
        }
        if c.size_bytes.is_some_and(|n| n != bytes.len() as u64) {
            return Err(invalid(index, "size_bytes does not match the content"));
        }
    }
    let metadata_json = match c.metadata {
        None | Some(serde_json::Value::Null) => None,
        Some(m) => {
            let text = m.to_string();
            if text.len() > METADATA_BYTES_MAX {
                return Err(invalid(index, "metadata larger than 16 KiB"));
            }
            Some(text)
        }
    };
    Ok(Change { event, path: p, old_path, entry_kind: kind, mode: c.mode, content, metadata_json })
}

#[utoipa::path(post, path = "/sandboxvolumes/{id}/sync/replicas/{replica_id}/changes", tag = "volume-sync", summary = "Append a replica's changes",
    description = "One batch, applied in one journal entry per change; conflicting changes become conflicts. A repeated `request_id` gets the first answer.",
    params(ReplicaPath),
    request_body(content = AppendRequest),
    responses((status = 200, description = "What was accepted and what conflicted", body = Success<AppendResponse>),
        (status = 409, description = "Lease expired, reseed required or request id reused with another body", body = ErrorEnvelope)))]
pub async fn append(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, rid)): Path<(String, String)>,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let rid = replica_id(&rid)?.to_string();
    let _slot = st.upload_slots.acquire().await.map_err(|_| ApiError::unavailable("shutting down"))?;
    let bytes = read_body(req, APPEND_BODY_BYTES_MAX, "request body").await?;
    let body: AppendBody =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    drop(bytes);
    let request_id = body.request_id.trim().to_string();
    if request_id.is_empty() || request_id.len() > REQUEST_ID_BYTES_MAX || request_id.contains('\0') {
        return Err(ApiError::bad_request("invalid sync request id"));
    }
    let base_seq = u64::try_from(body.base_seq).map_err(|_| ApiError::bad_request("base_seq must not be negative"))?;
    if body.changes.len() > CHANGES_PER_REQUEST_MAX {
        return Err(ApiError::bad_request(format!("at most {CHANGES_PER_REQUEST_MAX} changes per request")));
    }
    // A retry sends the same payload; the fingerprint tells it from a reused request id.
    let fingerprint = Sha256::digest(
        serde_json::to_vec(&(&body.base_seq, &body.changes)).map_err(|e| ApiError::internal(e.to_string()))?,
    )
    .to_vec();
    let changes = body.changes.into_iter().enumerate().map(|(i, c)| check(i, c)).collect::<ApiResult<Vec<_>>>()?;
    let vol = st.ops.write_volume(caller, &id).await?;
    let batch = Append { replica_id: rid, request_id, fingerprint, base_seq, changes };
    let result = append_changes(&st.ops, &vol, batch).await?;
    Ok(ok(AppendResponse {
        accepted: to_wire_all(&result.accepted)?,
        conflicts: to_wire_all(&result.conflicts)?,
        head_seq: result.head_seq,
    }))
}
