//! `replay`: how fast a sync client replays a volume's journal through `sync/changes`, in JSON
//! and in the compact framing (`Accept: application/vnd.tideline.journal+protobuf`), alternating.
//!
//! ```text
//!   seed:   --entries small files (one journal entry each), or reuse a volume (--seed-file)
//!   replay: GET …/sync/changes?after=<last>&limit=<page>  until --entries  (one client, in order)
//!           each page parsed into typed entries (serde struct / prost message), not a Value
//!   ─▶ replay format=json entries=… page=… seconds=… entries_per_s=… parse_s=… parse_entries_per_s=…
//! ```
//!
//! `parse_s` is the client's own cost: time spent decoding pages already in memory. Seeding a
//! million entries takes minutes, so `--seed-file F` seeds once and writes `token volume` to F;
//! later runs read F and replay the same volume (start the server on the same data dir, with
//! `--journal-retain-entries` above --entries).
//!
//! Setup and seeding go through the typed client (`tideline_client`); the replay loop reads
//! `sync/changes` pages with raw HTTP on purpose: it measures both wire framings byte for byte
//! and times its own typed parse of each, which the client (JSON only, parse included) cannot.
//!
//! Bounded: at most 5 000 000 entries, 256 writers, 20 rounds; every request has a timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use prost::Message;
use serde::Deserialize;
use tideline_benches::{chain, client, excerpt, exit, seed_with_appends, team_volume};
use tideline_client::{Client, Upload};

const ENTRIES_MAX: u64 = 5_000_000;
const WRITERS_MAX: usize = 256;
const ROUNDS_MAX: usize = 20;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The compact media type (see README, "The journal in the compact framing").
const COMPACT: &str = "application/vnd.tideline.journal+protobuf";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Json,
    Compact,
    Both,
}

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
    /// Seed once: if this file exists, replay the volume it names (`token volume`) without
    /// seeding; else seed a new volume and write its token and id here.
    #[arg(long)]
    seed_file: Option<std::path::PathBuf>,
    /// `limit` of each changes page (the API's maximum is 2048).
    #[arg(long, default_value_t = 2048)]
    page: u64,
    /// Which framing to replay; `both` alternates JSON and compact in every round.
    #[arg(long, value_enum, default_value_t = Format::Both)]
    format: Format,
    /// Replays of the whole journal per format.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
}

/// A JSON page as a typed client reads it.
#[derive(Deserialize)]
struct Envelope {
    success: bool,
    data: JsonPage,
}

#[derive(Deserialize)]
struct JsonPage {
    head_seq: u64,
    #[allow(dead_code)]
    retained_after_seq: u64,
    changes: Vec<JsonEntry>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct JsonEntry {
    seq: u64,
    volume_id: String,
    team_id: String,
    source: String,
    replica_id: Option<String>,
    event_type: String,
    path: String,
    normalized_path: String,
    old_path: Option<String>,
    normalized_old_path: Option<String>,
    tombstone: bool,
    entry_kind: Option<String>,
    mode: Option<u32>,
    content_ref: Option<String>,
    content_sha256: Option<String>,
    size_bytes: Option<u64>,
    metadata: Option<serde_json::Value>,
    created_at: String,
}

/// The compact page's first record.
#[derive(Clone, PartialEq, Message)]
#[allow(dead_code)]
struct PageHeader {
    #[prost(uint64, tag = "1")]
    head_seq: u64,
    #[prost(uint64, tag = "2")]
    retained_after_seq: u64,
    #[prost(uint32, tag = "3")]
    entries: u32,
}

/// One compact entry, as a client declares it (the journal's tags 1–17).
#[derive(Clone, PartialEq, Message)]
#[allow(dead_code)]
struct ProtoEntry {
    #[prost(uint64, tag = "1")]
    seq: u64,
    #[prost(string, tag = "2")]
    volume_id: String,
    #[prost(string, tag = "3")]
    team_id: String,
    #[prost(string, tag = "4")]
    source: String,
    #[prost(string, optional, tag = "5")]
    replica_id: Option<String>,
    #[prost(string, tag = "6")]
    event_type: String,
    #[prost(string, tag = "7")]
    path: String,
    #[prost(string, tag = "8")]
    normalized_path: String,
    #[prost(string, optional, tag = "9")]
    old_path: Option<String>,
    #[prost(string, optional, tag = "10")]
    normalized_old_path: Option<String>,
    #[prost(bool, tag = "11")]
    tombstone: bool,
    #[prost(string, optional, tag = "12")]
    entry_kind: Option<String>,
    #[prost(uint32, optional, tag = "13")]
    mode: Option<u32>,
    #[prost(string, optional, tag = "14")]
    content_ref: Option<String>,
    #[prost(uint64, optional, tag = "15")]
    size_bytes: Option<u64>,
    #[prost(string, optional, tag = "16")]
    metadata_json: Option<String>,
    #[prost(int64, tag = "17")]
    created_at_ms: i64,
}

/// A parsed page, reduced to what the replay loop checks: its seqs.
struct Parsed {
    first: Option<u64>,
    last: Option<u64>,
    entries: u64,
    path_bytes: u64,
}

fn parse_json(body: &[u8]) -> Result<Parsed> {
    let env: Envelope = serde_json::from_slice(body).context("a JSON changes page")?;
    if !env.success {
        bail!("changes answered success=false");
    }
    let c = &env.data.changes;
    if c.last().is_some_and(|l| l.seq > env.data.head_seq) {
        bail!("an entry past head_seq {}", env.data.head_seq);
    }
    Ok(Parsed {
        first: c.first().map(|e| e.seq),
        last: c.last().map(|e| e.seq),
        entries: c.len() as u64,
        path_bytes: c.iter().map(|e| e.path.len() as u64).sum(),
    })
}

fn parse_compact(mut body: &[u8]) -> Result<Parsed> {
    let header = PageHeader::decode_length_delimited(&mut body).context("a compact page header")?;
    let mut entries = Vec::with_capacity(header.entries as usize);
    for _ in 0..header.entries {
        entries.push(ProtoEntry::decode_length_delimited(&mut body).context("a compact entry")?);
    }
    if !body.is_empty() {
        bail!("{} bytes after the last compact entry", body.len());
    }
    Ok(Parsed {
        first: entries.first().map(|e| e.seq),
        last: entries.last().map(|e| e.seq),
        entries: entries.len() as u64,
        path_bytes: entries.iter().map(|e| e.path.len() as u64).sum(),
    })
}

async fn seed(c: &Client, volume: &str, entries: u64, writers: usize) -> Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (c, next, volume) = (c.clone(), next.clone(), volume.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= entries {
                    return Ok::<(), anyhow::Error>(());
                }
                let path = format!("/seed/{}/{n}", n % 1000);
                c.write_file(&volume, &path, Upload::bytes(n.to_le_bytes().to_vec()))
                    .await
                    .with_context(|| format!("seed write {n}"))?;
            }
        }));
    }
    for t in tasks {
        t.await.context("seed writer panicked")??;
    }
    Ok(())
}

/// The volume to replay: read from --seed-file, or created and seeded now.
async fn volume(a: &Args, server: &str) -> Result<(String, String)> {
    if let Some(f) = a.seed_file.as_deref().filter(|f| f.exists()) {
        let text = std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))?;
        let mut words = text.split_whitespace();
        let (Some(token), Some(volume)) = (words.next(), words.next()) else {
            bail!("{}: want `token volume`", f.display());
        };
        eprintln!("replay: reusing {volume} from {}", f.display());
        return Ok((token.to_string(), volume.to_string()));
    }
    let (c, volume) = team_volume(&client(server, &a.admin_token, REQUEST_TIMEOUT)?, "replay").await?;
    let token = c.token().to_string();
    eprintln!("replay: seeding {} entries into {volume}", a.entries);
    let seeded = Instant::now();
    if a.seed_with_appends {
        seed_with_appends(&c, &volume, a.entries).await?;
    } else {
        seed(&c, &volume, a.entries, a.writers).await?;
    }
    let secs = seeded.elapsed().as_secs_f64();
    eprintln!("replay: seeded in {secs:.1} s ({:.0} entries/s)", a.entries as f64 / secs);
    if let Some(f) = a.seed_file.as_deref() {
        std::fs::write(f, format!("{token} {volume}\n")).with_context(|| format!("write {}", f.display()))?;
    }
    Ok((token, volume))
}

/// One replay of the first `entries` entries in one format.
async fn replay(a: &Args, http: &reqwest::Client, url: &str, token: &str, compact: bool) -> Result<()> {
    let started = Instant::now();
    let (mut after, mut pages, mut bytes, mut path_bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut parse = Duration::ZERO;
    while after < a.entries {
        let limit = a.page.min(a.entries - after);
        let q = [("after", after.to_string()), ("limit", limit.to_string())];
        let mut req = http.get(url).query(&q).bearer_auth(token);
        if compact {
            req = req.header(reqwest::header::ACCEPT, COMPACT);
        }
        let resp = req.send().await.map_err(|e| anyhow::anyhow!(chain(&e)))?;
        let status = resp.status();
        let body = resp.bytes().await.context("read a changes page")?;
        if !status.is_success() {
            bail!("GET {url}: {status}: {}", excerpt(&String::from_utf8_lossy(&body)));
        }
        bytes += body.len() as u64;
        let t = Instant::now();
        let p = if compact { parse_compact(&body)? } else { parse_json(&body)? };
        parse += t.elapsed();
        let Some(last) = p.last else { bail!("the journal ended at {after} before {} entries", a.entries) };
        if p.first != Some(after + 1) || last != after + p.entries {
            bail!("a gap in the journal: page after {after} held {:?}..={last} in {} entries", p.first, p.entries);
        }
        path_bytes += p.path_bytes;
        after = last;
        pages += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let parse_s = parse.as_secs_f64();
    println!(
        "replay format={} entries={} page={} seconds={secs:.3} entries_per_s={:.0} pages={pages} mib={:.1} \
         mib_per_s={:.1} parse_s={parse_s:.3} parse_entries_per_s={:.0} without_parse_entries_per_s={:.0} path_bytes={path_bytes}",
        if compact { "compact" } else { "json" },
        a.entries,
        a.page,
        a.entries as f64 / secs,
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / secs / (1024.0 * 1024.0),
        a.entries as f64 / parse_s,
        a.entries as f64 / (secs - parse_s),
    );
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
    if a.rounds == 0 || a.rounds > ROUNDS_MAX {
        bail!("--rounds must be between 1 and {ROUNDS_MAX}");
    }
    let server = a.server.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).pool_max_idle_per_host(a.writers).build()?;
    let (token, volume) = volume(&a, &server).await?;
    let url = format!("{server}/api/v1/sandboxvolumes/{volume}/sync/changes");
    for _ in 0..a.rounds {
        if a.format != Format::Compact {
            replay(&a, &http, &url, &token, false).await?;
        }
        if a.format != Format::Json {
            replay(&a, &http, &url, &token, true).await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    exit("replay", run(Args::parse()).await)
}
