//! Blob garbage collection and journal compaction, on the injected clock: the timers the
//! server starts, and single runs a test (or an operator's tool) triggers by hand. The
//! protocols themselves are the leader's (`tideline_raft::collector` and `compactor`); what
//! this adds is that every run reads *this* clock — so a test that advances a
//! [`ManualClock`](tideline_raft::ManualClock) past the grace period runs the collector as if
//! that time had passed, object ages included.
//!
//! ```text
//!  clock ─▶ now ─▶ collect_garbage_at(grace, now): expire snapshots, mark, sweep, delete
//!          now ─▶ compact_at(retain, now): floors, request ids older than now − 24 h
//! ```

use std::time::Duration;

use tideline_raft::{CompactionConfig, GcConfig, GcReport};
use tokio::task::JoinHandle;

use super::context::Ops;

impl Ops {
    /// Starts the collection timer (work only while this node leads).
    pub fn spawn_collector(&self, cfg: GcConfig) -> JoinHandle<()> {
        self.node().spawn_collector(self.blobs().clone(), cfg, self.clock().clone())
    }

    /// Starts the compaction timer (work only while this node leads).
    pub fn spawn_compactor(&self, cfg: CompactionConfig) -> JoinHandle<()> {
        self.node().spawn_compactor(cfg, self.clock().clone())
    }

    /// One collection run now, by the clock; this node must lead.
    pub async fn collect_garbage(&self, grace: Duration) -> Result<GcReport, String> {
        self.node().collect_garbage_at(self.blobs(), grace, self.now_ms()).await
    }

    /// One compaction pass now, by the clock; this node must lead.
    pub async fn compact(&self, retain_entries: u64) {
        self.node().compact_at(retain_entries, self.now_ms()).await
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;

    use crate::ops::testing::Fixture;
    use crate::ops::{files, volumes};

    const GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreferenced_object_goes_only_after_the_clock_passes_two_grace_periods() {
        let f = Fixture::new().await;
        let vol = f.volume().await;
        let big = Bytes::from(vec![9; tideline_storage::INLINE_BYTES_MAX + 1]);
        files::write(&f.ops, &vol, "/big".into(), big, Default::default()).await.unwrap();
        volumes::delete(&f.ops, &f.caller, &vol.id, true, Default::default()).await.unwrap();
        let objects = || f.ops.blobs().list_blobs(10, f.ops.now_ms());

        let r = f.ops.collect_garbage(GRACE).await.unwrap();
        assert_eq!((r.marked, r.swept), (0, 0), "young by the clock: {r:?}");
        f.clock.advance(GRACE * 2);
        let r = f.ops.collect_garbage(GRACE).await.unwrap();
        assert_eq!((r.marked, r.swept), (1, 0), "old: marked, not yet swept: {r:?}");
        assert_eq!(objects().await.unwrap().len(), 1);
        f.clock.advance(GRACE * 2);
        let r = f.ops.collect_garbage(GRACE).await.unwrap();
        assert_eq!((r.swept, r.deleted_objects), (1, 1), "{r:?}");
        assert_eq!(objects().await.unwrap().len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compaction_forgets_request_ids_a_day_old_by_the_clock() {
        use crate::ops::append::{self, Append};
        let f = Fixture::new().await;
        let vol = f.volume().await;
        f.replica(&vol, "r1").await;
        let batch = Append {
            replica_id: "r1".into(),
            request_id: "q".into(),
            fingerprint: vec![1],
            base_seq: 0,
            changes: vec![],
        };
        append::append(&f.ops, &vol, batch).await.unwrap();
        let sm = f.ops.node().state_machine();
        let day = tideline_storage::REQUEST_TTL_MS;

        f.ops.compact(10_000).await;
        assert!(sm.requests_stored_before(f.ops.now_ms() + 1).unwrap(), "kept within the day");
        f.clock.advance(std::time::Duration::from_millis(day as u64 + 1));
        f.ops.compact(10_000).await;
        assert!(!sm.requests_stored_before(f.ops.now_ms()).unwrap(), "forgotten after it");
    }
}
