//! `/sandboxvolumes/{id}/snapshots…`: volume snapshots (create, list, get, delete, restore),
//! and [`take_snapshot`], which bootstrap shares.
//!
//! ```text
//!  take:    CreateSnapshot ─▶ this node's Freezer: the namespace at exactly its seq (collected
//!           off the apply loop) ─▶ [portability check] ─▶ manifest to the object store ─▶ SealSnapshot
//!  restore: manifest vs live namespace ─▶ RestoreChunk commands of ≤ 1 000 operations, the last
//!           ending in an `invalidate` ─▶ {"status":"restored"}
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tideline_types::Reason;

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tideline_storage::command::{CreateSnapshot, DeleteSnapshot, Origin, RestoreChunk, RestoreOp, SealSnapshot};
use tideline_storage::manifest::{self, ManifestHeader};
use tideline_storage::{Capabilities, CommandKind, SnapshotRecord, VolumeRecord, KIND_DIR, SNAPSHOT_READY};
use tideline_types::{path, portability};

use super::{apply, team_volume};
use crate::auth::{Permission, Principal};
use crate::envelope::{created, ok};
use crate::error::{ApiError, ApiResult};
use crate::extract::{OptionalJson, Query};
use crate::state::AppState;
use crate::wire::{new_id, now_ms, to_wire_all, ToWire};

/// How long a snapshot waits for this node to apply and freeze it.
const FREEZE_WAIT: Duration = Duration::from_secs(60);
/// Portability issues one 409 lists, at most.
const ISSUES_MAX: usize = 1000;
/// Operations per restore command, at most.
const RESTORE_OPS_PER_CHUNK: usize = 1000;
use tideline_types::limits::{
    SNAPSHOT_DESCRIPTION_BYTES_MAX as DESCRIPTION_BYTES_MAX, SNAPSHOT_NAME_BYTES_MAX as NAME_BYTES_MAX,
};

/// Freezes `vol` into a sealed snapshot; with `portable_to`, refuses (409
/// `namespace_incompatible`, snapshot discarded) a namespace those capabilities cannot hold.
pub(super) async fn take_snapshot(
    st: &AppState,
    vol: &VolumeRecord,
    name: String,
    description: Option<String>,
    kind: &str,
    portable_to: Option<&Capabilities>,
) -> ApiResult<(SnapshotRecord, u64)> {
    if name.len() > NAME_BYTES_MAX || description.as_ref().is_some_and(|d| d.len() > DESCRIPTION_BYTES_MAX) {
        return Err(ApiError::bad_request("name is at most 256 bytes, description 4096"));
    }
    let now = now_ms();
    let record = SnapshotRecord {
        id: new_id("snap-"),
        volume_id: vol.id.clone(),
        team_id: vol.team_id.clone(),
        name,
        description,
        created_at_ms: now,
        kind: kind.into(),
        expires_at_ms: (kind == "bootstrap").then_some(now + tideline_storage::BOOTSTRAP_SNAPSHOT_TTL_MS),
        ..Default::default()
    };
    let sid = record.id.clone();
    let sm = st.node.state_machine();
    let frozen = sm.freezer().expect(&sid);
    if let Err(e) = apply(st, CommandKind::CreateSnapshot(CreateSnapshot { snapshot: Some(record) })).await {
        sm.freezer().forget(&sid);
        return Err(e);
    }
    let (seq, entries) = match tokio::time::timeout(FREEZE_WAIT, frozen).await {
        Ok(Ok(Ok(frozen))) => frozen,
        Ok(Ok(Err(e))) => {
            discard(st, vol, &sid).await;
            return Err(e.into());
        }
        Ok(Err(_)) | Err(_) => {
            sm.freezer().forget(&sid);
            discard(st, vol, &sid).await;
            return Err(ApiError::unavailable("the namespace could not be frozen in time; retry"));
        }
    };
    if let Some(caps) = portable_to {
        let issues = portability::namespace_issues(entries.iter().map(|e| e.path.as_str()), caps);
        if !issues.is_empty() {
            discard(st, vol, &sid).await;
            let total = issues.len();
            let shown: Vec<_> = issues.into_iter().take(ISSUES_MAX).collect();
            return Err(ApiError::conflict(
                "bootstrap snapshot contains namespace entries incompatible with the requested replica capabilities",
            )
            .with_details(json!({
                "reason": Reason::NamespaceIncompatible,
                "snapshot_id": sid,
                "capabilities": caps,
                "issues": shown,
                "issues_total": total,
            })));
        }
    }
    match write_and_seal(st, vol, &sid, seq, now, entries).await {
        Ok(snap) => Ok((snap, seq)),
        Err(e) => {
            // Nothing half-done: an unsealed snapshot would stay pending for ever.
            discard(st, vol, &sid).await;
            let _ = st.blobs.delete_object(&manifest::location(&vol.id, &sid)).await;
            Err(e)
        }
    }
}

/// Writes the manifest to the object store and seals the snapshot.
async fn write_and_seal(
    st: &AppState,
    vol: &VolumeRecord,
    sid: &str,
    seq: u64,
    now: i64,
    entries: Vec<manifest::ManifestEntry>,
) -> ApiResult<SnapshotRecord> {
    let header = ManifestHeader::new(&vol.id, sid, seq, now);
    let (bytes, trailer) = tokio::task::spawn_blocking(move || manifest::encode(&header, &entries))
        .await
        .map_err(|e| ApiError::internal(format!("manifest encoding failed: {e}")))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    st.blobs.put_object(&manifest::location(&vol.id, sid), bytes.into()).await?;
    let seal = SealSnapshot {
        volume_id: vol.id.clone(),
        snapshot_id: sid.to_string(),
        size_bytes: trailer.total_size_bytes,
        files: trailer.files,
        directories: trailer.directories,
        manifest_sha256: sha,
    };
    let sealed = apply(st, CommandKind::SealSnapshot(seal)).await?;
    sealed.snapshot.ok_or_else(|| ApiError::internal("seal returned no snapshot"))
}

/// Drops a snapshot that will never be sealed.
async fn discard(st: &AppState, vol: &VolumeRecord, sid: &str) {
    let cmd = DeleteSnapshot { volume_id: vol.id.clone(), team_id: vol.team_id.clone(), snapshot_id: sid.into() };
    if let Err(e) = apply(st, CommandKind::DeleteSnapshot(cmd)).await {
        tracing::warn!(snapshot = sid, error = %e.message, "could not discard an unsealed snapshot");
    }
}

/// A sealed snapshot's manifest, checksum verified.
pub(super) async fn load_manifest(st: &AppState, snap: &SnapshotRecord) -> ApiResult<manifest::Manifest> {
    if snap.state != SNAPSHOT_READY {
        return Err(ApiError::conflict("snapshot is not ready"));
    }
    let bytes = st.blobs.get_object(&manifest::location(&snap.volume_id, &snap.id)).await?.ok_or_else(|| {
        tracing::error!(volume = %snap.volume_id, snapshot = %snap.id, "the manifest of a ready snapshot is missing");
        ApiError::internal("snapshot manifest is missing")
    })?;
    if hex::encode(Sha256::digest(&bytes)) != snap.manifest_sha256 {
        return Err(ApiError::internal("snapshot manifest does not match its checksum"));
    }
    tokio::task::spawn_blocking(move || manifest::decode(&bytes))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("snapshot manifest: {e}")))
}

#[derive(Deserialize, Default)]
pub struct CreateBody {
    name: Option<String>,
    description: Option<String>,
}

pub async fn create(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<CreateBody>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let name = body.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    let name = name.ok_or_else(|| ApiError::bad_request("name is required"))?;
    let vol = team_volume(&st, caller, &id, None).await?;
    let (snap, _) = take_snapshot(&st, &vol, name, body.description.filter(|d| !d.is_empty()), "user", None).await?;
    Ok(created(snap.to_wire()?))
}

#[derive(Deserialize)]
pub struct ReadQuery {
    consistency: Option<String>,
}

/// At most this many snapshots are listed (newest first).
pub const SNAPSHOT_LIST_ENTRIES_MAX: usize = 10_000;

pub async fn list(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<ReadQuery>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeRead)?;
    let vol = team_volume(&st, caller, &id, q.consistency.as_deref()).await?;
    let snaps = st.node.state_machine().snapshots(&vol.id, SNAPSHOT_LIST_ENTRIES_MAX)?;
    Ok(ok(to_wire_all(&snaps)?))
}

async fn owned_snapshot(
    st: &AppState,
    principal: &Principal,
    perm: Permission,
    id: &str,
    sid: &str,
) -> ApiResult<(VolumeRecord, SnapshotRecord)> {
    let caller = principal.require(perm)?;
    let vol = team_volume(st, caller, id, None).await?;
    let snap = st
        .node
        .state_machine()
        .snapshot(&vol.id, sid)?
        .ok_or_else(|| ApiError::not_found("snapshot not found").because(Reason::SnapshotNotFound))?;
    Ok((vol, snap))
}

pub async fn get(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let (_, snap) = owned_snapshot(&st, &principal, Permission::VolumeRead, &id, &sid).await?;
    Ok(ok(snap.to_wire()?))
}

pub async fn delete(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let caller = principal.require(Permission::VolumeWrite)?;
    let vol = team_volume(&st, caller, &id, None).await?;
    let cmd = DeleteSnapshot { volume_id: vol.id.clone(), team_id: vol.team_id.clone(), snapshot_id: sid.clone() };
    match apply(&st, CommandKind::DeleteSnapshot(cmd)).await {
        Ok(_) => {}
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {} // idempotent
        Err(e) => return Err(e),
    }
    // The record is gone, so nothing can read the manifest any more; a failure here only
    // leaves an unreferenced object behind.
    if let Err(e) = st.blobs.delete_object(&manifest::location(&vol.id, &sid)).await {
        tracing::warn!(snapshot = %sid, error = %e, "could not delete a snapshot manifest");
    }
    Ok(ok(json!({ "deleted": true })))
}

pub async fn restore(
    State(st): State<AppState>,
    principal: Principal,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let (vol, snap) = owned_snapshot(&st, &principal, Permission::VolumeWrite, &id, &sid).await?;
    let m = load_manifest(&st, &snap).await?;
    let sm = st.node.state_machine().clone();
    let vol_id = vol.id.clone();
    let ops = tokio::task::spawn_blocking(move || -> ApiResult<Vec<RestoreOp>> {
        let live = sm.namespace(&vol_id)?;
        Ok(diff(&live, &m.entries))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let mut chunks: Vec<Vec<RestoreOp>> = ops.chunks(RESTORE_OPS_PER_CHUNK).map(<[RestoreOp]>::to_vec).collect();
    if chunks.is_empty() {
        chunks.push(Vec::new());
    }
    let last = chunks.len() - 1;
    for (i, ops) in chunks.into_iter().enumerate() {
        let origin = Origin {
            volume_id: vol.id.clone(),
            team_id: vol.team_id.clone(),
            source: tideline_types::Source::Sandbox.as_str().into(),
            replica_id: None,
            at_ms: now_ms(),
        };
        let finished_snapshot_id = (i == last).then(|| sid.clone());
        apply(&st, CommandKind::RestoreChunk(RestoreChunk { origin: Some(origin), ops, finished_snapshot_id })).await?;
    }
    Ok(ok(json!({ "status": "restored" })))
}

/// What turns `live` into the manifest's namespace: removals (topmost paths only) first, then
/// puts in manifest order (parents before children).
fn diff(live: &BTreeMap<String, tideline_storage::NodeRecord>, target: &[manifest::ManifestEntry]) -> Vec<RestoreOp> {
    let wanted: BTreeMap<&str, &manifest::ManifestEntry> = target.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut removed: BTreeSet<&str> = BTreeSet::new();
    let mut ops = Vec::new();
    for (p, node) in live {
        let keep = wanted.get(p.as_str()).is_some_and(|e| (e.kind == KIND_DIR) == node.is_dir());
        if keep {
            continue;
        }
        if !path::ancestors(p).into_iter().any(|a| removed.contains(a)) {
            ops.push(RestoreOp { remove: true, path: p.clone(), ..Default::default() });
        }
        removed.insert(p.as_str());
    }
    for e in target {
        let same = live.get(&e.path).is_some_and(|n| {
            !removed.contains(e.path.as_str())
                && n.kind == e.kind
                && n.mode == e.mode
                && (n.is_dir() || (n.size == e.size && n.content_ref == e.content_ref))
        });
        if !same {
            ops.push(RestoreOp {
                remove: false,
                path: e.path.clone(),
                kind: e.kind.clone(),
                mode: e.mode,
                size: e.size,
                content_ref: e.content_ref.clone(),
            });
        }
    }
    ops
}
