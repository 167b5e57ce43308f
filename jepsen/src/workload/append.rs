//! `append`: unique content per op written to a few volumes, mostly through the files API
//! (about 5 % of those larger than the 64 KiB inline limit, so they go through the object
//! store), the rest as replica changes with `base_seq` = the current head. Every acknowledged
//! write must appear in its volume's journal exactly once; unknown ones at most once.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;

use super::{file_write, register_replica, sync_append, unique_content, Change, Ctx};

/// Share of ops that are replica appends.
const SYNC_SHARE: f64 = 0.25;
/// Share of files-API writes above the inline limit.
const LARGE_SHARE: f64 = 0.05;
const LARGE_BYTES: usize = 70 * 1024;
/// Files per process and volume that writes cycle through (overwrites are journaled too).
const PATHS_PER_PROCESS: u64 = 16;
/// Replica-created files per directory, at most about this many times three (changes per request).
const REPLICA_FILES_PER_DIR: u64 = 1000;

pub async fn worker(ctx: Arc<Ctx>, process: i64, mut rng: StdRng) {
    let mut counter = 0u64;
    while !ctx.stopped() {
        let Some(node) = ctx.pick_node(&mut rng).await else { return };
        let volume = ctx.volumes[rng.random_range(0..ctx.volumes.len())].clone();
        counter += 1;
        if rng.random_bool(SYNC_SHARE) {
            let rid = format!("p{process}");
            let Some(head) = register_replica(&ctx, &node.1, &volume, &rid).await else {
                // No head to append on (node down or no leader): not an op, try again soon.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let n = rng.random_range(1..=3u64);
            let changes: Vec<Change> = (0..n)
                .map(|k| Change {
                    // Sharded by thousands of the counter: a directory stays far below the
                    // API's 10 000-entry listing limit the checker reads namespaces with.
                    path: format!("/r/p{process}/d{}/c{counter}-{k}", counter / REPLICA_FILES_PER_DIR),
                    content: unique_content(process, counter, &format!("sync {k}"), 64),
                })
                .collect();
            let request_id = format!("p{process}-{counter}");
            sync_append(&ctx, process, node, &volume, &rid, &request_id, head, &changes).await;
        } else {
            let len = if rng.random_bool(LARGE_SHARE) { LARGE_BYTES } else { rng.random_range(32..2048) };
            let path = format!("/w/p{process}/f{}", counter % PATHS_PER_PROCESS);
            let content = unique_content(process, counter, "file", len);
            file_write(&ctx, process, node, &volume, &path, content).await;
        }
    }
}
