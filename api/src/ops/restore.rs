//! Restoring a snapshot: the difference between the live namespace and the snapshot's manifest
//! becomes ordinary journal entries, so every replica and watcher sees a restore as changes.
//!
//! ```text
//!  manifest (checksum verified) vs live namespace ─▶ ops: removals (topmost only), then puts
//!  in manifest order ─▶ RestoreChunk commands of ≤ 1 000 ops, the last ending in `invalidate`
//! ```
//!
//! Each chunk commits on its own. A restore stopped after some chunks leaves a namespace part
//! way between the two, never a broken one (each op is whole), and running it again goes on
//! from there: the difference is computed afresh, so what already matches is not repeated.

use std::collections::{BTreeMap, BTreeSet};

use tideline_storage::command::{RestoreChunk, RestoreOp};
use tideline_storage::{manifest, CommandKind, NodeRecord, SnapshotRecord, VolumeRecord, KIND_DIR};
use tideline_types::path;

use super::context::Ops;
use super::files::sandbox_origin;
use super::snapshots::load_manifest;
use crate::error::{ApiError, ApiResult};

/// Operations per restore command, at most.
pub const RESTORE_OPS_PER_CHUNK: usize = 1000;

/// Makes the volume's namespace the snapshot's.
pub async fn restore(ops: &Ops, vol: &VolumeRecord, snap: &SnapshotRecord) -> ApiResult<()> {
    let m = load_manifest(ops, snap).await?;
    let sm = ops.node().state_machine().clone();
    let vol_id = vol.id.clone();
    let diffs = tokio::task::spawn_blocking(move || -> ApiResult<Vec<RestoreOp>> {
        let live = sm.namespace(&vol_id)?;
        Ok(diff(&live, &m.entries))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let mut chunks: Vec<Vec<RestoreOp>> = diffs.chunks(RESTORE_OPS_PER_CHUNK).map(<[RestoreOp]>::to_vec).collect();
    if chunks.is_empty() {
        chunks.push(Vec::new());
    }
    let last = chunks.len() - 1;
    for (i, ops_chunk) in chunks.into_iter().enumerate() {
        let finished_snapshot_id = (i == last).then(|| snap.id.clone());
        let cmd = RestoreChunk { origin: Some(sandbox_origin(ops, vol)), ops: ops_chunk, finished_snapshot_id };
        ops.propose(CommandKind::RestoreChunk(cmd)).await?;
    }
    Ok(())
}

/// What turns `live` into the manifest's namespace: removals (topmost paths only) first, then
/// puts in manifest order (parents before children).
fn diff(live: &BTreeMap<String, NodeRecord>, target: &[manifest::ManifestEntry]) -> Vec<RestoreOp> {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::Bytes;

    use super::*;
    use crate::ops::snapshots::{self, Kind, Take};
    use crate::ops::testing::Fixture;
    use crate::ops::{files, Ops};

    /// Every path of the volume with its content ref (`None` for a directory).
    fn tree(ops: &Ops, vol: &VolumeRecord) -> BTreeMap<String, Option<String>> {
        let ns = ops.node().state_machine().namespace(&vol.id).unwrap();
        ns.into_iter().map(|(p, n)| (p, n.content_ref)).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restore_stopped_between_chunks_finishes_when_run_again() {
        let f = Fixture::new().await;
        let vol = f.volume().await;
        files::write(&f.ops, &vol, "/keep".into(), Bytes::from_static(b"kept"), Default::default()).await.unwrap();
        let t = Take { name: "before".into(), description: None, kind: Kind::User, portable_to: None };
        let (snap, _) = snapshots::take(&f.ops, &vol, t).await.unwrap();
        let wanted = tree(&f.ops, &vol);
        // More than one chunk of removals.
        for i in 0..RESTORE_OPS_PER_CHUNK + 5 {
            files::write(&f.ops, &vol, format!("/f{i}"), Bytes::from(format!("{i}")), Default::default())
                .await
                .unwrap();
        }
        files::remove(&f.ops, &vol, "/keep".into()).await.unwrap();

        tracing::info!("--- the second chunk is refused: the first is applied, the finish is not");
        let chunks = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = chunks.clone();
        let ops =
            f.refusing(move |k| matches!(k, CommandKind::RestoreChunk(_)) && seen.fetch_add(1, Ordering::SeqCst) == 1);
        restore(&ops, &vol, &snap).await.unwrap_err();
        assert_eq!(chunks.load(Ordering::SeqCst), 2);
        let between = tree(&f.ops, &vol);
        assert_ne!(between, wanted);
        assert_eq!(between.len(), 5, "the first chunk removed 1 000 of the 1 005 files: {between:?}");

        tracing::info!("--- run again: the rest, then the invalidate");
        restore(&f.ops, &vol, &snap).await.unwrap();
        assert_eq!(tree(&f.ops, &vol), wanted);
        let head = f.head(&vol);
        let last = f.ops.node().state_machine().changes(&vol.id, head - 1, 1).unwrap();
        assert_eq!(last[0].event_type, "invalidate", "a finished restore ends in an invalidate");
    }
}
