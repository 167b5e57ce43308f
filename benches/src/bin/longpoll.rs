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
use tideline_benches::{client, exit, ms, team_volume};
use tideline_client::{ChangesQuery, Upload};

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

/// Polls until it has seen seq `last`; returns when each seq was first seen. Its own client
/// (its own connection pool), apart from the writer's.
async fn poll(server: String, token: String, volume: String, last: u64) -> Result<HashMap<u64, Instant>> {
    let c = client(&server, &token, REQUEST_TIMEOUT)?;
    let mut seen = HashMap::new();
    let mut after = 0u64;
    while after < last {
        let q = ChangesQuery { wait: Some(Duration::from_millis(POLL_WAIT_MS)), ..ChangesQuery::page(after, 2048) };
        let page = c.changes(&volume, &q).await.context("long poll sync/changes")?;
        let at = Instant::now();
        if page.changes.is_empty() {
            bail!("a {POLL_WAIT_MS} ms long poll returned nothing while writes were under way");
        }
        for e in page.changes {
            seen.entry(e.seq).or_insert(at);
            after = after.max(e.seq);
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
    let admin = client(&a.server, &a.admin_token, REQUEST_TIMEOUT)?;
    let (c, volume) = team_volume(&admin, "longpoll").await?;
    let poller = tokio::spawn(poll(a.server.clone(), c.token().to_string(), volume.clone(), a.writes));
    // Let the first poll park before writing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut sent = Vec::with_capacity(a.writes as usize);
    let mut acked = Vec::with_capacity(a.writes as usize);
    for n in 1..=a.writes {
        let t0 = Instant::now();
        c.write_file(&volume, &format!("/lp/{n}"), Upload::bytes(vec![b'x'; 64]))
            .await
            .with_context(|| format!("write {n}"))?;
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
