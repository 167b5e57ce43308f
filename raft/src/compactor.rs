//! Retention-window compaction: on a timer, the leader proposes `Compact` for every volume
//! whose journal holds more than the retained number of entries. Going through Raft makes every
//! node move the floor at the same log position.

use std::time::Duration;

use tideline_storage::command::Compact;
use tideline_storage::CommandKind;

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
    pub fn spawn_compactor(&self, cfg: CompactionConfig) -> tokio::task::JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(cfg.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let m = node.metrics();
                if m.running_state.is_err() {
                    return;
                }
                if m.current_leader != Some(node.id()) {
                    continue;
                }
                let candidates =
                    match node.state_machine().compaction_candidates(cfg.retain_entries, VOLUMES_PER_TICK_MAX) {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::error!(error = %e, "list volumes to compact");
                            continue;
                        }
                    };
                for (volume_id, through_seq) in candidates {
                    let cmd = CommandKind::Compact(Compact { volume_id: volume_id.clone(), through_seq });
                    match node.propose_local(cmd.into()).await {
                        Ok(_) => tracing::debug!(%volume_id, through_seq, "compacted journal"),
                        Err(e) => {
                            tracing::warn!(%volume_id, error = %e, "compaction not proposed");
                            break;
                        }
                    }
                }
            }
        })
    }
}
