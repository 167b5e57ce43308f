//! `replay`: how fast a sync client can replay a volume's journal through `sync/changes`.
//!
//! ```text
//!   seed:   --writers tasks write --entries small files (one journal entry each)
//!   replay: GET …/sync/changes?after=<last>&limit=<page>  until the head   (one client, in order)
//!   ─▶ replay entries=… page=… seconds=… entries_per_s=… pages=… seed_entries_per_s=…
//! ```
//!
//! Bounded: at most 5 000 000 entries and 256 writers; every request has a timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::Value;
use tideline_benches::{chain, excerpt, exit, seed_with_appends, team_volume};

const ENTRIES_MAX: u64 = 5_000_000;
const WRITERS_MAX: usize = 256;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Parser, Debug)]
#[command(name = "replay", about = "Seed a volume's journal, then replay it through sync/changes")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:7070")]
    server: String,
    #[arg(long, env = "TIDELINE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Journal entries to seed and replay.
    #[arg(long, default_value_t = 100_000)]
    entries: u64,
    /// Concurrent writers while seeding.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Seed through replica appends of 1 000 changes (fast) instead of one files-API write per
    /// entry from --writers tasks.
    #[arg(long)]
    seed_with_appends: bool,
    /// `limit` of each changes page (the API's maximum is 2048).
    #[arg(long, default_value_t = 2048)]
    page: u64,
}

async fn seed(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    volume: &str,
    entries: u64,
    writers: usize,
) -> Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (http, next) = (http.clone(), next.clone());
        let url = format!("{server}/api/v1/sandboxvolumes/{volume}/files");
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= entries {
                    return Ok::<(), anyhow::Error>(());
                }
                let path = format!("/seed/{}/{n}", n % 1000);
                let resp = http
                    .post(&url)
                    .query(&[("path", path)])
                    .bearer_auth(&token)
                    .body(n.to_le_bytes().to_vec())
                    .send()
                    .await;
                let resp = resp.map_err(|e| anyhow::anyhow!("seed write {n}: {}", chain(&e)))?;
                if !resp.status().is_success() {
                    bail!("seed write {n}: {}: {}", resp.status(), excerpt(&resp.text().await.unwrap_or_default()));
                }
            }
        }));
    }
    for t in tasks {
        t.await.context("seed writer panicked")??;
    }
    Ok(())
}

async fn run(a: Args) -> Result<()> {
    if a.entries == 0 || a.entries > ENTRIES_MAX {
        bail!("--entries must be between 1 and {ENTRIES_MAX}");
    }
    if a.writers == 0 || a.writers > WRITERS_MAX {
        bail!("--writers must be between 1 and {WRITERS_MAX}");
    }
    if a.page == 0 || a.page > 2048 {
        bail!("--page must be between 1 and 2048");
    }
    let server = a.server.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).pool_max_idle_per_host(a.writers).build()?;
    let (token, volume) = team_volume(&http, &server, &a.admin_token, "replay").await?;

    eprintln!("replay: seeding {} entries into {volume} with {} writers", a.entries, a.writers);
    let seeded = Instant::now();
    if a.seed_with_appends {
        seed_with_appends(&http, &server, &token, &volume, a.entries).await?;
    } else {
        seed(&http, &server, &token, &volume, a.entries, a.writers).await?;
    }
    let seed_secs = seeded.elapsed().as_secs_f64();

    let url = format!("{server}/api/v1/sandboxvolumes/{volume}/sync/changes");
    let started = Instant::now();
    let (mut after, mut pages, mut bytes) = (0u64, 0u64, 0u64);
    while after < a.entries {
        let q = [("after", after.to_string()), ("limit", a.page.to_string())];
        let resp = http.get(&url).query(&q).bearer_auth(&token).send().await.map_err(|e| anyhow::anyhow!(chain(&e)))?;
        let status = resp.status();
        let body = resp.bytes().await.context("read a changes page")?;
        if !status.is_success() {
            bail!("GET {url}: {status}: {}", excerpt(&String::from_utf8_lossy(&body)));
        }
        bytes += body.len() as u64;
        let v: Value = serde_json::from_slice(&body).context("changes is not JSON")?;
        let changes = v["data"]["changes"].as_array().context("changes without data.changes")?;
        let Some(last) = changes.last() else { bail!("the journal ended at {after} before {} entries", a.entries) };
        let last = last["seq"].as_u64().context("entry without seq")?;
        if last != after + changes.len() as u64 {
            bail!("a gap in the journal: page after {after} ended at {last} with {} entries", changes.len());
        }
        after = last;
        pages += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "replay entries={} page={} seconds={secs:.2} entries_per_s={:.0} pages={pages} mib_per_s={:.1} seed_entries_per_s={:.0}",
        a.entries,
        a.page,
        a.entries as f64 / secs,
        bytes as f64 / secs / (1024.0 * 1024.0),
        a.entries as f64 / seed_secs,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    exit("replay", run(Args::parse()).await)
}
