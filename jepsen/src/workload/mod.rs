//! Workloads: `concurrency` client workers, each its own `process`, issuing operations against
//! a random running node (followers forward to the leader) and recording each completed one in
//! the history exactly per [`crate::history`]'s schema.
//!
//! The setup (a team token, the volumes, RWX so several replicas may write) runs before the
//! history starts and retries until the cluster has a leader.

pub mod append;
pub mod replay;
pub mod sync;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::client::{Answer, Api, Body};
use crate::cluster::NodeView;
use crate::history::{Op, Outcome, Recorder};
use crate::proxy::NodeId;

/// Every workload name the CLI accepts.
pub const NAMES: [&str; 3] = ["append", "sync", "replay"];
/// The team every workload writes as.
pub const TEAM: &str = "jepsen";
/// Attempts of one replica append (the first and its same-request-id retries).
pub const SYNC_APPEND_ATTEMPTS: usize = 2;
/// How long the setup may retry before the run is abandoned.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How many volumes a workload uses.
pub fn volume_count(workload: &str) -> usize {
    match workload {
        "append" => 3,
        "sync" => 2,
        _ => 2,
    }
}

/// Server arguments a workload needs (replay: a small retention window, compacted often).
pub fn server_args(workload: &str) -> Vec<String> {
    match workload {
        "replay" => vec![
            "--journal-retain-entries".into(),
            replay::RETAIN_ENTRIES.to_string(),
            "--compaction-interval".into(),
            "1s".into(),
        ],
        _ => Vec::new(),
    }
}

/// What every worker shares.
pub struct Ctx {
    pub api: Api,
    pub view: Arc<NodeView>,
    pub rec: Arc<Recorder>,
    pub token: String,
    pub volumes: Vec<String>,
    pub stop: watch::Receiver<bool>,
}

impl Ctx {
    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// A random running node, waiting (bounded by `stop`) while none runs.
    pub async fn pick_node(&self, rng: &mut StdRng) -> Option<(NodeId, String)> {
        loop {
            if self.stopped() {
                return None;
            }
            if let Some(n) = self.view.running().choose(rng) {
                return Some(n.clone());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn volume_url(&self, node_url: &str, volume: &str, rest: &str) -> String {
        format!("{node_url}/api/v1/sandboxvolumes/{volume}{rest}")
    }

    /// Records one client op.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        process: i64,
        f: &str,
        node: NodeId,
        invoke_ns: u64,
        outcome: Outcome,
        value: Value,
        result: Value,
        error: Option<String>,
    ) {
        let op = Op {
            id: 0,
            process,
            f: f.into(),
            node: Some(node),
            invoke_ns,
            complete_ns: self.rec.now_ns(),
            outcome,
            value,
            result,
            error,
        };
        if let Err(e) = self.rec.record(op) {
            tracing::error!(error = %e, "record an op");
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Content unique to (process, counter, salt), `len` bytes or a little more.
pub fn unique_content(process: i64, counter: u64, salt: &str, len: usize) -> Vec<u8> {
    let mut v = format!("jepsen p{process} n{counter} {salt}\n").into_bytes();
    let mut i = 0u64;
    while v.len() < len {
        v.extend_from_slice(format!("{:016x}", (counter.wrapping_mul(0x9e37_79b9_7f4a_7c15)) ^ i).as_bytes());
        i += 1;
    }
    v
}

/// Retries `f` until it succeeds or the setup timeout passes.
async fn retry<T, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() >= deadline => bail!("{what}: gave up after {SETUP_TIMEOUT:?}: {e}"),
            Err(e) => {
                tracing::debug!(what, error = %e, "setup step failed; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

fn data_or_err(a: Answer) -> Result<Value, String> {
    match a {
        Answer::Ok(v) => Ok(v),
        other => Err(other.error_text().unwrap_or_default()),
    }
}

/// The team token and the volumes, created through the nodes in turn until one answers.
pub struct Setup {
    pub team_token: String,
    pub volumes: Vec<String>,
}

pub async fn setup(api: &Api, view: &NodeView, admin_token: &str, volumes: usize) -> anyhow::Result<Setup> {
    let nodes = view.all();
    if nodes.is_empty() {
        return Err(anyhow!("no nodes"));
    }
    let mut turn = 0usize;
    let mut next_url = || {
        turn += 1;
        nodes[turn % nodes.len()].1.clone()
    };
    let team_token = retry("create the team token", || {
        let url = format!("{}/api/v1/tokens", next_url());
        async move {
            let body = json!({ "team_id": TEAM, "permissions": ["*"] });
            let data = data_or_err(api.call(Method::POST, &url, admin_token, Body::Json(body)).await)?;
            data["token"].as_str().map(str::to_string).ok_or_else(|| format!("no token in {data}"))
        }
    })
    .await?;
    let mut ids = Vec::with_capacity(volumes);
    for _ in 0..volumes {
        let id = retry("create a volume", || {
            let url = format!("{}/api/v1/sandboxvolumes", next_url());
            let token = team_token.clone();
            async move {
                let body = json!({ "access_mode": "RWX" });
                let data = data_or_err(api.call(Method::POST, &url, &token, Body::Json(body)).await)?;
                data["id"].as_str().map(str::to_string).ok_or_else(|| format!("no id in {data}"))
            }
        })
        .await?;
        ids.push(id);
    }
    Ok(Setup { team_token, volumes: ids })
}

/// Spawns the workers of `workload`; each returns when `ctx.stop` turns true (after finishing
/// the op in flight, which is bounded by the client timeout).
pub fn spawn(workload: &str, ctx: Arc<Ctx>, concurrency: usize, seed: u64) -> Vec<tokio::task::JoinHandle<()>> {
    (0..concurrency.max(1))
        .map(|p| {
            let ctx = ctx.clone();
            let rng = StdRng::seed_from_u64(seed.wrapping_add(0x1000 * (p as u64 + 1)));
            let process = p as i64;
            match workload {
                "sync" => tokio::spawn(sync::worker(ctx, process, concurrency, rng)),
                "replay" => tokio::spawn(replay::worker(ctx, process, concurrency, rng)),
                _ => tokio::spawn(append::worker(ctx, process, rng)),
            }
        })
        .collect()
}

/// One change of a replica batch.
pub struct Change {
    pub path: String,
    pub content: Vec<u8>,
}

/// Registers (renews) replica `rid` on `volume` through `node_url`; the volume's head seq.
pub async fn register_replica(ctx: &Ctx, node_url: &str, volume: &str, rid: &str) -> Option<u64> {
    let url = ctx.volume_url(node_url, volume, &format!("/sync/replicas/{rid}"));
    let body = json!({ "platform": "linux", "display_name": format!("jepsen {rid}") });
    ctx.api.call(Method::PUT, &url, &ctx.token, Body::Json(body)).await.data()?["head_seq"].as_u64()
}

/// Appends `changes` as replica `rid` with `base_seq`, recording one `sync_append` op; an
/// attempt without an answer is retried with the same `request_id` and payload (up to
/// [`SYNC_APPEND_ATTEMPTS`] in all). The last answer.
#[allow(clippy::too_many_arguments)]
pub async fn sync_append(
    ctx: &Ctx,
    process: i64,
    node: (NodeId, String),
    volume: &str,
    rid: &str,
    request_id: &str,
    base_seq: u64,
    changes: &[Change],
) -> Answer {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = json!({
        "request_id": request_id,
        "base_seq": base_seq,
        "changes": changes.iter().map(|c| json!({
            "event_type": "write",
            "path": c.path,
            "content_base64": b64.encode(&c.content),
        })).collect::<Vec<_>>(),
    });
    let value = json!({
        "volume": volume,
        "replica_id": rid,
        "request_id": request_id,
        "base_seq": base_seq,
        "changes": changes.iter().map(|c| json!({"path": c.path, "sha256": sha256_hex(&c.content)})).collect::<Vec<_>>(),
    });
    // One logical op: invoked with the first attempt, completed with the last. A retry with the
    // same request id continues the same operation (the server answers a retry of an applied
    // request with the stored response, whose seqs predate the retry), so recording it as a
    // new op would break the real-time order the checker relies on.
    let mut node = node;
    let invoke = ctx.rec.now_ns();
    let mut attempt_errors: Vec<String> = Vec::new();
    let mut maybe_applied = false;
    let answer = loop {
        let url = ctx.volume_url(&node.1, volume, &format!("/sync/replicas/{rid}/changes"));
        let answer = ctx.api.call(Method::POST, &url, &ctx.token, Body::Json(body.clone())).await;
        if answer.outcome() != Outcome::Info || attempt_errors.len() + 1 >= SYNC_APPEND_ATTEMPTS || ctx.stopped() {
            break answer;
        }
        maybe_applied = true;
        attempt_errors.push(answer.error_text().unwrap_or_default());
        // Same request id, same payload, maybe another node: applied at most once.
        let mut rng = StdRng::seed_from_u64(invoke ^ attempt_errors.len() as u64);
        match ctx.pick_node(&mut rng).await {
            Some(n) => node = n,
            None => break answer,
        }
    };
    let result = match &answer {
        Answer::Ok(d) => json!({
            "accepted": d["accepted"].as_array().map(|a| a.iter().map(|e| json!({
                "seq": e["seq"], "path": e["path"],
                "sha256": e["content_sha256"],
            })).collect::<Vec<_>>()).unwrap_or_default(),
            "conflicts": d["conflicts"].as_array().map(|a| a.iter().map(|c| json!({
                "path": c["path"], "reason": c["reason"], "artifact_path": c["artifact_path"],
            })).collect::<Vec<_>>()).unwrap_or_default(),
        }),
        _ => Value::Null,
    };
    // A refusal after an attempt without an answer does not undo that attempt.
    let outcome = match answer.outcome() {
        Outcome::Fail if maybe_applied => Outcome::Info,
        o => o,
    };
    let mut value = value;
    value["attempts"] = json!(attempt_errors.len() + 1);
    if !attempt_errors.is_empty() {
        value["attempt_errors"] = json!(attempt_errors);
    }
    ctx.record(process, "sync_append", node.0, invoke, outcome, value, result, answer.error_text());
    answer
}

/// Writes `content` at `path` through the files API, recording a `write` op.
pub async fn file_write(
    ctx: &Ctx,
    process: i64,
    node: (NodeId, String),
    volume: &str,
    path: &str,
    content: Vec<u8>,
) -> Answer {
    let value = json!({ "volume": volume, "path": path, "sha256": sha256_hex(&content), "bytes": content.len() });
    let url = ctx.volume_url(&node.1, volume, "/files");
    let url = format!("{url}?path={}", urlencode(path));
    let invoke = ctx.rec.now_ns();
    let answer = ctx.api.call(Method::POST, &url, &ctx.token, Body::Raw(content)).await;
    let result = if answer.data().is_some() { json!({}) } else { Value::Null };
    ctx.record(process, "write", node.0, invoke, answer.outcome(), value, result, answer.error_text());
    answer
}

/// Percent-encodes a path for a query string (the harness's paths are ASCII).
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_unique_per_process_and_counter() {
        let a = unique_content(1, 2, "x", 100);
        let b = unique_content(2, 1, "x", 100);
        let c = unique_content(1, 2, "y", 100);
        assert!(a.len() >= 100);
        assert_ne!(sha256_hex(&a), sha256_hex(&b));
        assert_ne!(sha256_hex(&a), sha256_hex(&c));
        assert!(unique_content(0, 0, "", 70 * 1024).len() >= 70 * 1024);
    }

    #[test]
    fn paths_are_encoded_for_the_query() {
        assert_eq!(urlencode("/a b/c&d"), "/a%20b/c%26d");
    }
}
