//! Volume snapshots: taking one (a protocol of several steps, undone as a whole when a step
//! fails), reading, deleting, and loading a sealed snapshot's manifest.
//!
//! ```text
//!  take: CreateSnapshot (pending) ─▶ this node's Freezer: the namespace at exactly its seq
//!        (collected off the apply loop) ─▶ [portability check] ─▶ manifest to the object store
//!        ─▶ SealSnapshot (ready)
//!        any step fails ─▶ discard: DeleteSnapshot + the manifest object, then the error
//! ```
//!
//! Nothing is left half-done: a snapshot is either sealed with its manifest in the store, or
//! gone (one the discard itself could not delete stays pending and the collector deletes it
//! after an hour).

use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use tideline_storage::command::{CreateSnapshot, DeleteSnapshot, SealSnapshot};
use tideline_storage::manifest::{self, ManifestHeader};
use tideline_storage::{Capabilities, CommandKind, SnapshotRecord, VolumeRecord, SNAPSHOT_READY};
use tideline_types::limits::{
    SNAPSHOT_DESCRIPTION_BYTES_MAX as DESCRIPTION_BYTES_MAX, SNAPSHOT_NAME_BYTES_MAX as NAME_BYTES_MAX,
};
use tideline_types::{portability, Reason};

use super::context::Ops;
use crate::error::{ApiError, ApiResult};
use crate::wire::new_id;

/// How long a snapshot waits for this node to apply and freeze it.
const FREEZE_WAIT: Duration = Duration::from_secs(60);
/// Portability issues one 409 lists, at most.
const ISSUES_MAX: usize = 1000;
/// At most this many snapshots are listed (newest first).
pub const SNAPSHOT_LIST_ENTRIES_MAX: usize = 10_000;

/// Who a snapshot is for: a user keeps it until deleted; a bootstrap one expires after a day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    User,
    Bootstrap,
}

impl Kind {
    /// As stored in the snapshot record.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Bootstrap => "bootstrap",
        }
    }
}

/// A snapshot to take.
pub struct Take {
    pub name: String,
    pub description: Option<String>,
    pub kind: Kind,
    /// Refuse (409 `namespace_incompatible`, snapshot discarded) a namespace these
    /// capabilities cannot hold.
    pub portable_to: Option<Capabilities>,
}

/// Freezes `vol` into a sealed snapshot; returns it and the seq it is frozen at.
pub async fn take(ops: &Ops, vol: &VolumeRecord, t: Take) -> ApiResult<(SnapshotRecord, u64)> {
    if t.name.len() > NAME_BYTES_MAX || t.description.as_ref().is_some_and(|d| d.len() > DESCRIPTION_BYTES_MAX) {
        return Err(ApiError::bad_request("name is at most 256 bytes, description 4096"));
    }
    let now = ops.now_ms();
    let record = SnapshotRecord {
        id: new_id("snap-"),
        volume_id: vol.id.clone(),
        team_id: vol.team_id.clone(),
        name: t.name,
        description: t.description,
        created_at_ms: now,
        kind: t.kind.as_str().into(),
        expires_at_ms: (t.kind == Kind::Bootstrap).then_some(now + tideline_storage::BOOTSTRAP_SNAPSHOT_TTL_MS),
        ..Default::default()
    };
    let sid = record.id.clone();
    let sm = ops.node().state_machine();
    let frozen = sm.freezer().expect(&sid);
    if let Err(e) = ops.propose(CommandKind::CreateSnapshot(CreateSnapshot { snapshot: Some(record) })).await {
        sm.freezer().forget(&sid);
        return Err(e);
    }
    let (seq, entries) = match tokio::time::timeout(FREEZE_WAIT, frozen).await {
        Ok(Ok(Ok(frozen))) => frozen,
        Ok(Ok(Err(e))) => {
            discard(ops, vol, &sid).await;
            return Err(e.into());
        }
        Ok(Err(_)) | Err(_) => {
            sm.freezer().forget(&sid);
            discard(ops, vol, &sid).await;
            return Err(ApiError::unavailable("the namespace could not be frozen in time; retry"));
        }
    };
    if let Some(caps) = &t.portable_to {
        let issues = portability::namespace_issues(entries.iter().map(|e| e.path.as_str()), caps);
        if !issues.is_empty() {
            discard(ops, vol, &sid).await;
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
    match write_and_seal(ops, vol, &sid, seq, now, entries).await {
        Ok(snap) => Ok((snap, seq)),
        Err(e) => {
            // Nothing half-done: an unsealed snapshot would stay pending for ever.
            discard(ops, vol, &sid).await;
            let _ = ops.blobs().delete_object(&manifest::location(&vol.id, &sid)).await;
            Err(e)
        }
    }
}

/// Writes the manifest to the object store and seals the snapshot.
async fn write_and_seal(
    ops: &Ops,
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
    ops.blobs().put_object(&manifest::location(&vol.id, sid), bytes.into()).await?;
    let seal = SealSnapshot {
        volume_id: vol.id.clone(),
        snapshot_id: sid.to_string(),
        size_bytes: trailer.total_size_bytes,
        files: trailer.files,
        directories: trailer.directories,
        manifest_sha256: sha,
    };
    let sealed = ops.propose(CommandKind::SealSnapshot(seal)).await?;
    sealed.snapshot.ok_or_else(|| ApiError::internal("seal returned no snapshot"))
}

/// Drops a snapshot that will never be sealed.
async fn discard(ops: &Ops, vol: &VolumeRecord, sid: &str) {
    let cmd = DeleteSnapshot { volume_id: vol.id.clone(), team_id: vol.team_id.clone(), snapshot_id: sid.into() };
    if let Err(e) = ops.propose(CommandKind::DeleteSnapshot(cmd)).await {
        tracing::warn!(snapshot = sid, error = %e.message, "could not discard an unsealed snapshot");
    }
}

/// The volume's snapshots, newest first.
pub fn list(ops: &Ops, vol: &VolumeRecord) -> ApiResult<Vec<SnapshotRecord>> {
    Ok(ops.node().state_machine().snapshots(&vol.id, SNAPSHOT_LIST_ENTRIES_MAX)?)
}

/// One snapshot of the volume (404 `snapshot_not_found`).
pub fn get(ops: &Ops, vol: &VolumeRecord, sid: &str) -> ApiResult<SnapshotRecord> {
    ops.node()
        .state_machine()
        .snapshot(&vol.id, sid)?
        .ok_or_else(|| ApiError::not_found("snapshot not found").because(Reason::SnapshotNotFound))
}

/// Deletes a snapshot (one already gone is not an error), then its manifest.
pub async fn delete(ops: &Ops, vol: &VolumeRecord, sid: &str) -> ApiResult<()> {
    let cmd = DeleteSnapshot { volume_id: vol.id.clone(), team_id: vol.team_id.clone(), snapshot_id: sid.into() };
    match ops.propose(CommandKind::DeleteSnapshot(cmd)).await {
        Ok(_) => {}
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {} // idempotent
        Err(e) => return Err(e),
    }
    // The record is gone, so nothing can read the manifest any more; a failure here only
    // leaves an unreferenced object behind.
    if let Err(e) = ops.blobs().delete_object(&manifest::location(&vol.id, sid)).await {
        tracing::warn!(snapshot = %sid, error = %e, "could not delete a snapshot manifest");
    }
    Ok(())
}

/// A sealed snapshot's manifest, checksum verified.
pub async fn load_manifest(ops: &Ops, snap: &SnapshotRecord) -> ApiResult<manifest::Manifest> {
    if snap.state != SNAPSHOT_READY {
        return Err(ApiError::conflict("snapshot is not ready"));
    }
    let bytes = ops.blobs().get_object(&manifest::location(&snap.volume_id, &snap.id)).await?.ok_or_else(|| {
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

#[cfg(test)]
mod tests {
    use axum::body::Bytes;
    use axum::http::StatusCode;
    use tideline_raft::Clock;

    use super::*;
    use crate::ops::files;
    use crate::ops::testing::Fixture;

    fn user(name: &str) -> Take {
        Take { name: name.into(), description: None, kind: Kind::User, portable_to: None }
    }

    /// Nothing of snapshot `sid` is left: no record, no manifest object.
    async fn gone(f: &Fixture, vol: &VolumeRecord) {
        assert_eq!(list(&f.ops, vol).unwrap(), vec![], "no snapshot record is left");
        let dir = f.objects().join(format!("snapshots/{}", vol.id));
        let left: Vec<_> = std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        let manifests: Vec<_> = left.iter().filter(|p| p.join("manifest").exists()).collect();
        assert!(manifests.is_empty(), "no manifest is left: {manifests:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_seal_discards_the_snapshot_and_its_manifest() {
        let f = Fixture::new().await;
        let vol = f.volume().await;
        files::write(&f.ops, &vol, "/a".into(), Bytes::from_static(b"a"), Default::default()).await.unwrap();
        let ops = f.refusing(|k| matches!(k, CommandKind::SealSnapshot(_)));
        let e = take(&ops, &vol, user("doomed")).await.unwrap_err();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE, "{}", e.message);
        gone(&f, &vol).await;

        tracing::info!("--- let through, the same take seals, stamped by the injected clock");
        let (snap, seq) = take(&f.ops, &vol, user("fine")).await.unwrap();
        assert_eq!((snap.state.as_str(), seq, snap.created_at_ms), (SNAPSHOT_READY, 1, f.clock.now_ms()));
        assert_eq!(load_manifest(&f.ops, &snap).await.unwrap().entries.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_manifest_that_cannot_be_stored_discards_the_snapshot() {
        let f = Fixture::new().await;
        let vol = f.volume().await;
        std::fs::write(f.objects().join("snapshots"), "in the way").unwrap();
        let e = take(&f.ops, &vol, user("doomed")).await.unwrap_err();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE, "{}", e.message);
        assert_eq!(list(&f.ops, &vol).unwrap(), vec![], "no snapshot stuck pending");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unportable_namespace_discards_the_snapshot_before_any_manifest() {
        let f = Fixture::new().await;
        let vol = f.volume().await;
        files::write(&f.ops, &vol, "/README".into(), Bytes::from_static(b"1"), Default::default()).await.unwrap();
        files::write(&f.ops, &vol, "/readme".into(), Bytes::from_static(b"2"), Default::default()).await.unwrap();
        let caps =
            Capabilities { case_sensitive: false, unicode_normalization_insensitive: true, ..Default::default() };
        let t = Take { name: "boot".into(), description: None, kind: Kind::Bootstrap, portable_to: Some(caps) };
        let e = take(&f.ops, &vol, t).await.unwrap_err();
        assert_eq!(e.reason(), Some(Reason::NamespaceIncompatible), "{}", e.message);
        gone(&f, &vol).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bootstrap_snapshot_expires_a_day_after_the_injected_clock() {
        let f = Fixture::new().await;
        let vol = f.volume().await;
        let t = Take { name: "boot".into(), description: None, kind: Kind::Bootstrap, portable_to: None };
        let (snap, _) = take(&f.ops, &vol, t).await.unwrap();
        assert_eq!(snap.expires_at_ms, Some(f.clock.now_ms() + tideline_storage::BOOTSTRAP_SNAPSHOT_TTL_MS));
    }
}
