//! Retention-window compaction: on a timer, the leader proposes `Compact` for every volume
//! whose journal holds more than the retained number of entries, and `PruneRequests` for replica
//! request ids past their 24 h idempotency window. Going through Raft makes every node move the
//! floor (and forget the ids) at the same log position. The ids' age is judged by the injected
//! [`Clock`], read once per tick; the cut-off travels inside the command.

use std::sync::Arc;
use std::time::Duration;

use tideline_storage::command::{Compact, PruneRequests};
use tideline_storage::{CommandKind, REQUEST_TTL_MS};

use crate::clock::Clock;
use crate::node::RaftNode;

/// Volumes compacted per tick, at most.
const VOLUMES_PER_TICK_MAX: usize = 1000;

#[derive(Debug, Clone, Copy)]
pub struct CompactionConfig {
    /// Keep at least this many newest entries per volume.
    pub retain_entries: u64,
    pub interval: Duration,
}

impl RaftNode {
    /// Starts the compaction timer; it does work only while this node leads, and stops when
    /// Raft stops.
    pub fn spawn_compactor(&self, cfg: CompactionConfig, clock: Arc<dyn Clock>) -> tokio::task::JoinHandle<()> {
        self.spawn_leader_task(cfg.interval, move |node| {
            let now = clock.now_ms();
            async move { node.compact_at(cfg.retain_entries, now).await }
        })
    }

    /// One compaction pass at `now` (milliseconds since the epoch): the journals over
    /// `retain_entries` move their floor, request ids older than 24 h before `now` are
    /// forgotten. The timer calls it; tests and operators may too. This node must lead.
    pub async fn compact_at(&self, retain_entries: u64, now: i64) {
        let candidates = match self.state_machine().compaction_candidates(retain_entries, VOLUMES_PER_TICK_MAX) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "list volumes to compact");
                return;
            }
        };
        prune_requests(self, now).await;
        for (volume_id, through_seq) in candidates {
            let cmd = CommandKind::Compact(Compact { volume_id: volume_id.clone(), through_seq });
            match self.propose_local(cmd.into()).await {
                Ok(_) => tracing::debug!(%volume_id, through_seq, "compacted journal"),
                Err(e) => {
                    tracing::warn!(%volume_id, error = %e, "compaction not proposed");
                    break;
                }
            }
        }
    }

    /// Runs `work` every `interval` while this node leads; stops when Raft stops.
    pub(crate) fn spawn_leader_task<F, Fut>(
        &self,
        interval: std::time::Duration,
        mut work: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: FnMut(RaftNode) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let node = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let m = node.metrics();
                if m.running_state.is_err() {
                    return;
                }
                if m.current_leader == Some(node.id()) {
                    work(node.clone()).await;
                }
            }
        })
    }
}

/// Replica request ids forgotten per tick, at most.
const REQUESTS_PRUNED_PER_TICK_MAX: u32 = 10_000;

/// Forgets replica request ids older than their 24 h idempotency window at `now`.
async fn prune_requests(node: &RaftNode, now: i64) {
    let before_ms = now - REQUEST_TTL_MS;
    match node.state_machine().requests_stored_before(before_ms) {
        Ok(false) => {}
        Ok(true) => {
            let cmd = CommandKind::PruneRequests(PruneRequests { before_ms, limit: REQUESTS_PRUNED_PER_TICK_MAX });
            if let Err(e) = node.propose_local(cmd.into()).await {
                tracing::warn!(error = %e, "request pruning not proposed");
            }
        }
        Err(e) => tracing::error!(error = %e, "look for expired request ids"),
    }
}
