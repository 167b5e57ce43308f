//! `bootstrap`: does freezing a large namespace stall other writes?
//!
//! ```text
//!   seed:      --files small files into volume A (replica appends of 1000 changes)
//!   baseline:  a writer loops on volume B for --seconds; latency → histogram
//!   bootstrap: the same writer, while POST …/A/sync/bootstrap runs back to back for --seconds
//!   ─▶ bootstrap files=… runs=… freeze_s=… | writes baseline p50/p99/max … during p50/p99/max …
//!      ratio_p99=… ; archive_s=… archive_bytes=…
//!   restore:   snapshot A, remove all of it, restore it while the writer goes on ─▶ seconds, latency
//! ```
//!
//! Bounded: at most 2 000 000 files; every request has a timeout.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use futures::TryStreamExt;
use hdrhistogram::Histogram;
use tideline_benches::{client, exit, ms, seed_with_appends, team_volume};
use tideline_client::types::wire::{BootstrapRequest, BootstrapResponse, SnapshotRequest, VolumeRequest};
use tideline_client::{Client, Upload};

const FILES_MAX: u64 = 2_000_000;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
const LATENCY_MAX_US: u64 = 60_000_000;

#[derive(Parser, Debug)]
#[command(name = "bootstrap", about = "Measure write latency while large namespaces are frozen for bootstrap")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:7070")]
    server: String,
    #[arg(long, env = "TIDELINE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Files in the namespace that is frozen.
    #[arg(long, default_value_t = 100_000)]
    files: u64,
    /// Length of the baseline and of the bootstrap phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// Writes small files to `volume` until `until`, recording each write's latency.
async fn writer(c: Client, volume: String, until: Instant) -> Result<Histogram<u64>> {
    let never = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    writer_until(c, volume, until, never).await
}

/// Like [`writer`], also stopping once `stop` is set.
async fn writer_until(
    c: Client,
    volume: String,
    until: Instant,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<Histogram<u64>> {
    let mut h = Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)?;
    let mut n = 0u64;
    while Instant::now() < until && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let t = Instant::now();
        c.write_file(&volume, &format!("/w/{}", n % 512), Upload::bytes(vec![1u8; 64]))
            .await
            .with_context(|| format!("write {n}"))?;
        h.saturating_record((t.elapsed().as_micros() as u64).max(1));
        n += 1;
    }
    Ok(h)
}

fn summary(h: &Histogram<u64>) -> String {
    format!(
        "n={} p50={:.2}ms p99={:.2}ms max={:.2}ms",
        h.len(),
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max())
    )
}

async fn run(args: Args) -> Result<()> {
    if args.files == 0 || args.files > FILES_MAX {
        bail!("--files must be in 1..={FILES_MAX}");
    }
    let admin = client(&args.server, &args.admin_token, REQUEST_TIMEOUT)?;
    let (c, frozen) = team_volume(&admin, "bench-bootstrap").await?;
    let other = c.create_volume(&VolumeRequest::default()).await.context("create the written volume")?.id;

    let t = Instant::now();
    seed_with_appends(&c, &frozen, args.files).await.context("seeding")?;
    println!("seed files={} seconds={:.1}", args.files, t.elapsed().as_secs_f64());

    let phase = Duration::from_secs(args.seconds);
    let baseline = writer(c.clone(), other.clone(), Instant::now() + phase).await?;

    let until = Instant::now() + phase;
    let during = tokio::spawn(writer(c.clone(), other.clone(), until));
    let mut freezes = Vec::new();
    let mut last: Option<BootstrapResponse> = None;
    while Instant::now() < until {
        let t = Instant::now();
        let data = c.bootstrap(&frozen, &BootstrapRequest::default()).await.context("bootstrap")?;
        freezes.push(t.elapsed().as_secs_f64());
        last = Some(data);
    }
    let during = during.await.context("writer panicked")??;
    let last = last.context("no bootstrap completed")?;

    let t = Instant::now();
    let archive = c.bootstrap_archive(&last.archive_download_path).await.context("download the archive")?;
    let archive: Vec<u8> =
        archive.into_stream().map_ok(|b| b.to_vec()).try_concat().await.context("read the archive")?;
    let archive_s = t.elapsed().as_secs_f64();

    let mean = freezes.iter().sum::<f64>() / freezes.len() as f64;
    println!(
        "bootstrap files={} runs={} mean_s={mean:.2} replay_after_seq={} archive_s={archive_s:.2} archive_bytes={}",
        args.files,
        freezes.len(),
        last.replay_after_seq,
        archive.len()
    );
    println!("writes baseline        {}", summary(&baseline));
    println!("writes during bootstrap {}", summary(&during));
    println!(
        "ratio during/baseline p50={:.2} p99={:.2}",
        during.value_at_quantile(0.5) as f64 / baseline.value_at_quantile(0.5).max(1) as f64,
        during.value_at_quantile(0.99) as f64 / baseline.value_at_quantile(0.99).max(1) as f64
    );

    // Restore: snapshot the namespace, remove every top-level directory, restore all files back
    // while the writer keeps going on the other volume.
    let snap = c.create_snapshot(&frozen, &SnapshotRequest { name: "bench".into(), description: None }).await?;
    for d in 0..100 {
        c.delete_path(&frozen, &format!("/d{d}")).await.with_context(|| format!("remove /d{d}"))?;
    }
    let until = Instant::now() + Duration::from_secs(3600);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let (c2, o2) = (c.clone(), other.clone());
    let during = tokio::spawn(async move { writer_until(c2, o2, until, flag).await });
    let t = Instant::now();
    c.restore_snapshot(&frozen, &snap.id).await.context("restore")?;
    let restore_s = t.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let during = during.await.context("writer panicked")??;
    println!("restore files={} seconds={restore_s:.2} files_per_s={:.0}", args.files, args.files as f64 / restore_s);
    println!("writes during restore   {}", summary(&during));
    println!(
        "ratio restore/baseline p50={:.2} p99={:.2}",
        during.value_at_quantile(0.5) as f64 / baseline.value_at_quantile(0.5).max(1) as f64,
        during.value_at_quantile(0.99) as f64 / baseline.value_at_quantile(0.99).max(1) as f64
    );
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    exit("bootstrap", run(Args::parse()).await)
}
