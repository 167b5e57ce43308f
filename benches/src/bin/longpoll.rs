//! `longpoll`: how soon a `sync/changes?wait_ms=` long poll wakes after a write made on
//! another connection.
//!
//! ```text
//!   poller (own connection pool):  GET …/sync/changes?after=<seen>&wait_ms=30000   (loops)
//!   writer (own connection pool):  POST …/files?path=/lp/<n>   every --interval-ms, --writes times
//!   per seq: wake_after_ack = poll returned − write acknowledged   (0 if the poll came first)
//!            wake_after_send = poll returned − write sent
//!   ─▶ longpoll writes=… wake_after_ack_ms p50=… p99=… max=… wake_after_send_ms p50=… p99=… max=…
//! ```
//!
//! Bounded: `--writes` at most 100 000, every request has a timeout, and the poller stops once it
//! has seen every write (or after the last write plus one poll period).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::Value;
use tideline_benches::{chain, excerpt, exit, ms, team_volume};

const WRITES_MAX: u64 = 100_000;
const POLL_WAIT_MS: u64 = 30_000;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);

#[derive(Parser, Debug)]
#[command(name = "longpoll", about = "Measure how soon a long poll on sync/changes wakes after a write")]
struct Args {
    /// Base URL of the node to poll and write through.
    #[arg(long, default_value = "http://127.0.0.1:7070")]
    server: String,
    /// Admin token (creates a team token and a volume for the run).
    #[arg(long, env = "TIDELINE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Number of writes.
    #[arg(long, default_value_t = 500)]
    writes: u64,
    /// Pause between writes.
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
}

fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().context("build http client")
}

/// Polls until it has seen seq `last`; returns when each seq was first seen.
async fn poll(server: String, token: String, volume: String, last: u64) -> Result<HashMap<u64, Instant>> {
    let http = client()?;
    let mut seen = HashMap::new();
    let mut after = 0u64;
    let url = format!("{server}/api/v1/sandboxvolumes/{volume}/sync/changes");
    while after < last {
        let q = [("after", after.to_string()), ("limit", "2048".into()), ("wait_ms", POLL_WAIT_MS.to_string())];
        let resp = http.get(&url).query(&q).bearer_auth(&token).send().await.map_err(|e| anyhow::anyhow!(chain(&e)))?;
        let at = Instant::now();
        let status = resp.status();
        let text = resp.text().await.context("read changes")?;
        if !status.is_success() {
            bail!("GET {url}: {status}: {}", excerpt(&text));
        }
        let v: Value = serde_json::from_str(&text).context("changes is not JSON")?;
        let changes = v["data"]["changes"].as_array().context("changes without data.changes")?;
        if changes.is_empty() {
            bail!("a {POLL_WAIT_MS} ms long poll returned nothing while writes were under way");
        }
        for e in changes {
            let seq = e["seq"].as_u64().context("entry without seq")?;
            seen.entry(seq).or_insert(at);
            after = after.max(seq);
        }
    }
    Ok(seen)
}

fn summary(h: &Histogram<u64>) -> String {
    format!("p50={:.3} p99={:.3} max={:.3}", ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99)), ms(h.max()))
}

async fn run(a: Args) -> Result<()> {
    if a.writes == 0 || a.writes > WRITES_MAX {
        bail!("--writes must be between 1 and {WRITES_MAX}");
    }
    let server = a.server.trim_end_matches('/').to_string();
    let http = client()?;
    let (token, volume) = team_volume(&http, &server, &a.admin_token, "longpoll").await?;
    let poller = tokio::spawn(poll(server.clone(), token.clone(), volume.clone(), a.writes));
    // Let the first poll park before writing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut sent = Vec::with_capacity(a.writes as usize);
    let mut acked = Vec::with_capacity(a.writes as usize);
    for n in 1..=a.writes {
        let url = format!("{server}/api/v1/sandboxvolumes/{volume}/files");
        let t0 = Instant::now();
        let resp = http
            .post(&url)
            .query(&[("path", format!("/lp/{n}"))])
            .bearer_auth(&token)
            .body(vec![b'x'; 64])
            .send()
            .await;
        let resp = resp.map_err(|e| anyhow::anyhow!(chain(&e)))?;
        if !resp.status().is_success() {
            bail!("write {n}: {}", resp.status());
        }
        acked.push(Instant::now());
        sent.push(t0);
        tokio::time::sleep(Duration::from_millis(a.interval_ms)).await;
    }
    let seen = tokio::time::timeout(Duration::from_secs(60), poller).await.context("poller did not finish")???;
    let mut after_ack = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut after_send = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for n in 1..=a.writes {
        let at = *seen.get(&n).with_context(|| format!("seq {n} was never seen by the poller"))?;
        let i = (n - 1) as usize;
        after_ack.saturating_record(at.saturating_duration_since(acked[i]).as_micros().max(1) as u64);
        after_send.saturating_record(at.saturating_duration_since(sent[i]).as_micros().max(1) as u64);
    }
    println!(
        "longpoll writes={} wake_after_ack_ms {} wake_after_send_ms {}",
        a.writes,
        summary(&after_ack),
        summary(&after_send)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    exit("longpoll", run(Args::parse()).await)
}
