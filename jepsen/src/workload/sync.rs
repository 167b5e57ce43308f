//! `sync`: several replicas append to a small set of shared paths with stale `base_seq`s (the
//! head minus a random lag) while files-API writes go on to the same paths, so the server must
//! sort each change into accepted or conflict (`concurrent_update`, with an artifact). Both
//! kinds of results are recorded.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;

use super::{file_write, register_replica, sync_append, unique_content, Change, Ctx};

/// The shared paths every worker writes to.
const SHARED_PATHS: u64 = 8;
/// A replica's `base_seq` lags the head by up to this many entries.
const LAG_MAX: u64 = 6;

pub async fn worker(ctx: Arc<Ctx>, process: i64, _concurrency: usize, mut rng: StdRng) {
    // Even processes lean to files-API writes, odd ones to replica appends.
    let replica_share = if process % 2 == 0 { 0.3 } else { 0.8 };
    let mut counter = 0u64;
    while !ctx.stopped() {
        let Some(node) = ctx.pick_node(&mut rng).await else { return };
        let volume = ctx.volumes[rng.random_range(0..ctx.volumes.len())].clone();
        counter += 1;
        if rng.random_bool(replica_share) {
            let rid = format!("p{process}");
            let Some(head) = register_replica(&ctx, &node.1, &volume, &rid).await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let base_seq = head.saturating_sub(rng.random_range(0..=LAG_MAX));
            let n = rng.random_range(1..=3u64);
            let mut paths: Vec<u64> = Vec::new();
            while (paths.len() as u64) < n {
                let p = rng.random_range(0..SHARED_PATHS);
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
            let changes: Vec<Change> = paths
                .iter()
                .enumerate()
                .map(|(k, p)| Change {
                    path: format!("/s/f{p}.txt"),
                    content: unique_content(process, counter, &format!("sync {k}"), 48),
                })
                .collect();
            let request_id = format!("p{process}-{counter}");
            sync_append(&ctx, process, node, &volume, &rid, &request_id, base_seq, &changes).await;
        } else {
            let path = format!("/s/f{}.txt", rng.random_range(0..SHARED_PATHS));
            let content = unique_content(process, counter, "file", rng.random_range(32..512));
            file_write(&ctx, process, node, &volume, &path, content).await;
        }
    }
}
