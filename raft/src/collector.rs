//! Blob garbage collection, the leader's half (see `storage/src/apply/gc.rs` for the protocol).
//!
//! ```text
//!  every interval, on the leader:
//!    list objects (blobs/sha256/*) + inline copies ─▶ referenced = namespace + retained journal
//!    + every sealed snapshot manifest ─▶ candidates = unreferenced (objects: older than grace)
//!    ─▶ MarkGarbage(new candidates) ─▶ SweepGarbage(candidates marked ≥ grace ago)
//!    ─▶ delete each swept object still older than grace ─▶ SweepDone (writes may resume)
//! ```
//!
//! Expired snapshots (bootstrap snapshots live a day) are deleted at the start of a run.
//! A run is skipped while a snapshot is being frozen (its manifest is not readable yet), and
//! aborted if any sealed manifest cannot be read: never delete on a partial view.
//!
//! Every time a run needs — snapshot expiry, the marks' `at_ms`, the sweep's cut-off, object
//! ages — comes from one reading of the injected [`Clock`], so a test moves a run past the grace
//! period by advancing a [`ManualClock`](crate::clock::ManualClock), not by sleeping.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tideline_storage::command::{DeleteSnapshot, MarkGarbage, SweepDone, SweepGarbage};
use tideline_storage::{manifest, BlobStore, CommandKind, ContentRef, SNAPSHOT_READY};

use crate::clock::Clock;
use crate::node::RaftNode;

/// Objects listed per run, and digests marked or swept per command, at most.
const OBJECTS_PER_RUN_MAX: usize = 1_000_000;
const REFS_PER_COMMAND_MAX: usize = 10_000;
/// A snapshot still pending after this long was abandoned by its builder and is deleted.
const PENDING_SNAPSHOT_WAIT_MS: i64 = 60 * 60 * 1000;

#[derive(Debug, Clone, Copy)]
pub struct GcConfig {
    pub interval: Duration,
    /// How long a blob must be unreferenced (and untouched) before it is deleted.
    pub grace: Duration,
}

/// What one collection run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub objects: usize,
    pub inline: usize,
    pub referenced: usize,
    pub marked: usize,
    /// Marks dropped because their blob is no longer a candidate.
    pub cleared: usize,
    pub swept: usize,
    pub deleted_objects: usize,
    /// Snapshots deleted: expired, or abandoned while pending.
    pub expired_snapshots: usize,
    /// Set when the run did nothing on purpose (a snapshot being frozen, …).
    pub skipped: Option<String>,
}

impl RaftNode {
    /// Starts the collection timer; it works only while this node leads, and reads `clock` once
    /// per run.
    pub fn spawn_collector(
        &self,
        blobs: BlobStore,
        cfg: GcConfig,
        clock: Arc<dyn Clock>,
    ) -> tokio::task::JoinHandle<()> {
        self.spawn_leader_task(cfg.interval, move |node| {
            let blobs = blobs.clone();
            let now = clock.now_ms();
            async move {
                match node.collect_garbage_at(&blobs, cfg.grace, now).await {
                    Ok(r) => tracing::info!(?r, "blob garbage collection"),
                    Err(e) => tracing::warn!(error = %e, "blob garbage collection failed"),
                }
            }
        })
    }

    /// One collection run at `now` (the clock's reading, milliseconds since the epoch): snapshot
    /// expiry, marks, the sweep's cut-off and the age of every object (its store timestamp
    /// against `now`) all use it. The timer calls it; tests call it with a hand-moved clock.
    pub async fn collect_garbage_at(&self, blobs: &BlobStore, grace: Duration, now: i64) -> Result<GcReport, String> {
        let sm = self.state_machine();
        let mut report = GcReport::default();
        // What exists, listed before the references are read: anything written later is young.
        let objects = blobs.list_blobs(OBJECTS_PER_RUN_MAX, now).await.map_err(|e| e.to_string())?;
        let inline = sm.inline_content().map_err(|e| e.to_string())?;
        // A sweep whose leader stopped before reporting its deletions: finish it first.
        let unfinished = sm.swept_tombstones().map_err(|e| e.to_string())?;
        if !unfinished.is_empty() {
            let all: HashSet<[u8; 32]> = unfinished.iter().copied().collect();
            report.deleted_objects += self.finish_sweep(blobs, &unfinished, &all, grace, now).await?;
        }
        report.objects = objects.len();
        report.inline = inline.len();

        let mut snapshots = sm.all_snapshots().map_err(|e| e.to_string())?;
        // Expired snapshots (bootstrap snapshots after a day) and snapshots abandoned while
        // pending (their builder stopped) go first; their content may then become garbage.
        let gone = |s: &tideline_storage::SnapshotRecord| {
            s.expires_at_ms.is_some_and(|at| at <= now)
                || (s.state != SNAPSHOT_READY && now - s.created_at_ms >= PENDING_SNAPSHOT_WAIT_MS)
        };
        for s in snapshots.iter().filter(|s| gone(s)) {
            let cmd = CommandKind::DeleteSnapshot(DeleteSnapshot {
                volume_id: s.volume_id.clone(),
                team_id: s.team_id.clone(),
                snapshot_id: s.id.clone(),
            });
            self.propose_local(cmd.into()).await.map_err(|e| e.to_string())?;
            if let Err(e) = blobs.delete_object(&manifest::location(&s.volume_id, &s.id)).await {
                tracing::warn!(snapshot = %s.id, error = %e, "could not delete an expired snapshot's manifest");
            }
            report.expired_snapshots += 1;
        }
        snapshots.retain(|s| !gone(s));
        if snapshots.iter().any(|s| s.state != SNAPSHOT_READY) {
            report.skipped = Some("a snapshot is being frozen".into());
            return Ok(report);
        }
        let mut referenced: HashSet<[u8; 32]> = sm.referenced_content().map_err(|e| e.to_string())?;
        for s in snapshots.iter().filter(|s| s.state == SNAPSHOT_READY) {
            let bytes = blobs
                .get_object(&manifest::location(&s.volume_id, &s.id))
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("manifest of snapshot {} is missing: not collecting", s.id))?;
            let m = manifest::decode(&bytes).map_err(|e| format!("manifest of snapshot {}: {e}", s.id))?;
            referenced.extend(
                m.entries.iter().filter_map(|e| e.content_ref.as_deref().and_then(ContentRef::parse)).map(|c| c.0),
            );
        }
        report.referenced = referenced.len();

        let mut candidates: Vec<[u8; 32]> = objects.iter().filter(|(_, age)| *age >= grace).map(|(r, _)| r.0).collect();
        candidates.extend(inline);
        candidates.retain(|c| !referenced.contains(c));
        candidates.sort();
        candidates.dedup();

        let marks: std::collections::HashMap<[u8; 32], i64> =
            sm.garbage_marks().map_err(|e| e.to_string())?.into_iter().collect();
        let grace_ms = grace.as_millis() as i64;
        let to_mark: Vec<Vec<u8>> = candidates.iter().filter(|c| !marks.contains_key(*c)).map(|c| c.to_vec()).collect();
        // A mark on something that is no longer a candidate (referenced again, or re-uploaded
        // and young) is dropped, so a later sweep always waits a whole grace period again.
        let candidate_set: HashSet<[u8; 32]> = candidates.iter().copied().collect();
        let mut clear: Vec<Vec<u8>> =
            marks.keys().filter(|m| !candidate_set.contains(*m)).map(|m| m.to_vec()).collect();
        let ripe: Vec<Vec<u8>> = candidates
            .iter()
            .filter(|c| marks.get(*c).is_some_and(|at| *at <= now - grace_ms))
            .map(|c| c.to_vec())
            .collect();
        for chunk in to_mark.chunks(REFS_PER_COMMAND_MAX) {
            let clear_now: Vec<Vec<u8>> = clear.drain(..clear.len().min(REFS_PER_COMMAND_MAX)).collect();
            report.cleared += clear_now.len();
            let cmd = CommandKind::MarkGarbage(MarkGarbage { refs: chunk.to_vec(), at_ms: now, clear: clear_now });
            self.propose_local(cmd.into()).await.map_err(|e| e.to_string())?;
            report.marked += chunk.len();
        }
        for chunk in clear.chunks(REFS_PER_COMMAND_MAX) {
            report.cleared += chunk.len();
            let cmd = CommandKind::MarkGarbage(MarkGarbage { refs: Vec::new(), at_ms: now, clear: chunk.to_vec() });
            self.propose_local(cmd.into()).await.map_err(|e| e.to_string())?;
        }
        let object_set: HashSet<[u8; 32]> = objects.iter().map(|(r, _)| r.0).collect();
        for chunk in ripe.chunks(REFS_PER_COMMAND_MAX) {
            let cmd =
                CommandKind::SweepGarbage(SweepGarbage { refs: chunk.to_vec(), marked_before_ms: now - grace_ms });
            let resp = self.propose_local(cmd.into()).await.map_err(|e| e.to_string())?;
            report.swept += resp.swept.len();
            metrics::counter!("tideline_gc_swept_blobs_total").increment(resp.swept.len() as u64);
            let swept: Vec<[u8; 32]> =
                resp.swept.iter().filter_map(|s| <[u8; 32]>::try_from(s.as_slice()).ok()).collect();
            report.deleted_objects += self.finish_sweep(blobs, &swept, &object_set, grace, now).await?;
        }
        Ok(report)
    }

    /// Deletes swept objects that are still older than `grace`, then lifts their tombstones
    /// (writes of that content may resume; a retry re-uploads it). An object a writer
    /// re-uploaded since it was listed is young again and stays: the writer's entry may commit
    /// right after the tombstone is lifted.
    async fn finish_sweep(
        &self,
        blobs: &BlobStore,
        swept: &[[u8; 32]],
        objects: &HashSet<[u8; 32]>,
        grace: Duration,
        now: i64,
    ) -> Result<usize, String> {
        let mut deleted = 0;
        for sha in swept.iter().filter(|s| objects.contains(*s)) {
            if blobs.delete_if_older(&ContentRef(*sha), grace, now).await.map_err(|e| e.to_string())? {
                deleted += 1;
            }
        }
        for chunk in swept.chunks(REFS_PER_COMMAND_MAX) {
            let cmd = CommandKind::SweepDone(SweepDone { refs: chunk.iter().map(|s| s.to_vec()).collect() });
            self.propose_local(cmd.into()).await.map_err(|e| e.to_string())?;
        }
        Ok(deleted)
    }
}
