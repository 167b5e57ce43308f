//! When this node builds a Raft snapshot. A snapshot copies the whole state machine, so
//! building one every fixed number of entries costs a large store its whole size again and
//! again. The policy scales with the store instead: once at least `logs_since_last` entries
//! were applied since the last snapshot, a small store (under [`SMALL_STATE_BYTES`]) snapshots
//! at once; a large one waits until the log since its last snapshot holds at least half as
//! many bytes as the state, so the copying costs a bounded share of what was written. A log
//! of [`LOG_ENTRIES_CAP_FACTOR`] × `logs_since_last` entries is snapshotted whatever its size.
//!
//! ```text
//!  every second: applied − snapshot ≥ min?  ─no─▶ wait
//!                      │yes
//!                state small, or log bytes × 2 ≥ state bytes, or entries ≥ cap ─▶ trigger().snapshot()
//! ```

use std::time::Duration;

use tideline_storage::{Cf, Db};

use crate::typ::Raft;

/// Below this many bytes of state, a snapshot is cheap: build one every `logs_since_last`.
pub const SMALL_STATE_BYTES: u64 = 64 * 1024 * 1024;
/// A log this many times `logs_since_last` entries long is snapshotted whatever the sizes.
pub const LOG_ENTRIES_CAP_FACTOR: u64 = 50;
/// How often the policy looks.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Whether a snapshot is due.
pub fn due(entries_since: u64, logs_since_last: u64, log_bytes: u64, state_bytes: u64) -> bool {
    if entries_since < logs_since_last.max(1) {
        return false;
    }
    state_bytes < SMALL_STATE_BYTES
        || log_bytes.saturating_mul(2) >= state_bytes
        || entries_since >= logs_since_last.saturating_mul(LOG_ENTRIES_CAP_FACTOR)
}

/// The bytes a column family holds: on disk (estimated) and in its memtables.
fn cf_bytes(db: &Db, cf: Cf) -> u64 {
    let prop = |name: &str| db.raw().property_int_value_cf(db.cf(cf), name).ok().flatten().unwrap_or(0);
    prop("rocksdb.estimate-live-data-size") + prop("rocksdb.cur-size-all-mem-tables")
}

/// Runs the policy until Raft stops.
pub async fn run(raft: Raft, db: Db, logs_since_last: u64) {
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let metrics = raft.metrics();
    loop {
        tick.tick().await;
        if metrics.has_changed().is_err() {
            return; // Raft stopped
        }
        let (applied, snapshot) = {
            let m = metrics.borrow();
            (m.last_applied.map_or(0, |l| l.index), m.snapshot.map_or(0, |l| l.index))
        };
        let entries_since = applied.saturating_sub(snapshot);
        if entries_since < logs_since_last.max(1) {
            continue;
        }
        let sizes = {
            let db = db.clone();
            tokio::task::spawn_blocking(move || {
                let log = cf_bytes(&db, Cf::RaftLog);
                let state: u64 = Cf::ALL
                    .iter()
                    .filter(|c| !matches!(c, Cf::RaftLog | Cf::RaftMeta))
                    .map(|c| cf_bytes(&db, *c))
                    .sum();
                (log, state)
            })
            .await
        };
        let Ok((log_bytes, state_bytes)) = sizes else { continue };
        if due(entries_since, logs_since_last, log_bytes, state_bytes) {
            tracing::info!(entries_since, log_bytes, state_bytes, "building a raft snapshot");
            if raft.trigger().snapshot().await.is_err() {
                return;
            }
            // Give the build a chance to finish before looking again.
            let mut m = raft.metrics();
            let _ = tokio::time::timeout(
                Duration::from_secs(600),
                m.wait_for(|m| m.snapshot.map_or(0, |s| s.index) > snapshot),
            )
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_stores_snapshot_by_count_large_ones_by_log_size() {
        let mib = 1024 * 1024;
        assert!(!due(9_999, 10_000, 0, 0), "not before the minimum");
        assert!(due(10_000, 10_000, 0, mib), "a small store: by count");
        assert!(!due(10_000, 10_000, 100 * mib, 1024 * mib), "a large store waits for its log");
        assert!(due(10_000, 10_000, 512 * mib, 1024 * mib), "half the state written: due");
        assert!(due(500_000, 10_000, mib, 1024 * mib), "the entry cap bounds the log");
    }
}
