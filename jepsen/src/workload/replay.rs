//! `replay`: readers page through `sync/changes` following `next_after` while writers keep
//! appending and the servers compact the journal to a small retention window. A reader below
//! the floor gets the reseed 409, records it, and restarts from its `retained_after_seq`; now
//! and then a reader starts over from 0, like a new client.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Value};

use super::{file_write, unique_content, Ctx};
use crate::client::{Answer, Body};
use crate::history::Outcome;

/// The servers' `--journal-retain-entries` in this workload.
pub const RETAIN_ENTRIES: u64 = 200;
/// Page sizes readers use.
const LIMIT_MAX: u64 = 128;
/// Chance per read that a reader starts over from 0.
const RESTART_SHARE: f64 = 0.03;

pub async fn worker(ctx: Arc<Ctx>, process: i64, concurrency: usize, rng: StdRng) {
    let writers = (concurrency / 2).max(1);
    if (process as usize) < writers || concurrency == 1 {
        writer(ctx, process, rng).await
    } else {
        reader(ctx, process, rng).await
    }
}

async fn writer(ctx: Arc<Ctx>, process: i64, mut rng: StdRng) {
    let mut counter = 0u64;
    while !ctx.stopped() {
        let Some(node) = ctx.pick_node(&mut rng).await else { return };
        let volume = ctx.volumes[rng.random_range(0..ctx.volumes.len())].clone();
        counter += 1;
        let path = format!("/j/p{process}/f{}", counter % 32);
        let content = unique_content(process, counter, "replay", rng.random_range(16..256));
        file_write(&ctx, process, node, &volume, &path, content).await;
    }
}

async fn reader(ctx: Arc<Ctx>, process: i64, mut rng: StdRng) {
    let volume = ctx.volumes[process as usize % ctx.volumes.len()].clone();
    let mut after = 0u64;
    while !ctx.stopped() {
        let Some(node) = ctx.pick_node(&mut rng).await else { return };
        if rng.random_bool(RESTART_SHARE) {
            after = 0;
        }
        let limit = rng.random_range(1..=LIMIT_MAX);
        let url = ctx.volume_url(&node.1, &volume, &format!("/sync/changes?after={after}&limit={limit}"));
        let invoke = ctx.rec.now_ns();
        let answer = ctx.api.call(Method::GET, &url, &ctx.token, Body::None).await;
        let value = json!({ "volume": volume, "after": after });
        let mut caught_up = false;
        let (outcome, result) = match &answer {
            Answer::Ok(d) => {
                let changes = d["changes"].as_array().cloned().unwrap_or_default();
                let first = changes.first().map(|e| e["seq"].clone()).unwrap_or(Value::Null);
                let last = changes.last().map(|e| e["seq"].clone()).unwrap_or(Value::Null);
                let next_after = last.as_u64().unwrap_or(after);
                caught_up = changes.is_empty();
                let result = json!({
                    "count": changes.len(), "first_seq": first, "last_seq": last,
                    "next_after": next_after, "head_seq": d["head_seq"],
                });
                after = next_after;
                (Outcome::Ok, result)
            }
            a => match a.reseed() {
                Some((retained, head)) => {
                    after = retained;
                    (Outcome::Fail, json!({ "reseed": { "retained_after_seq": retained, "head_seq": head } }))
                }
                None => (a.outcome(), Value::Null),
            },
        };
        ctx.record(process, "read_changes", node.0, invoke, outcome, value, result, answer.error_text());
        if caught_up {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
