//! The jepsen harness in CI: a short run against the real binary under crashes, pauses and
//! partitions must be valid, and (with the `planted-bugs` feature) a run against a server that
//! acknowledges writes before they commit must be caught losing them.
//!
//! The two runs take turns (each starts a three-node cluster; CI has two cores). Each run's
//! directory (history, server logs, results.json, plots) is printed and kept on failure.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use jepsen::checker::checks;
use jepsen::run::{run, Options, RunSummary};

/// One cluster at a time.
static RUNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn options(store: &std::path::Path, seed: u64) -> Options {
    let mut o = Options::new(PathBuf::from(env!("CARGO_BIN_EXE_tideline")));
    o.store = store.to_path_buf();
    o.seed = seed;
    o.nodes = 3;
    o
}

fn seed() -> u64 {
    std::env::var("JEPSEN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand_seed)
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64 % 1_000_000)
}

fn describe(s: &RunSummary, elapsed: Duration) -> String {
    format!(
        "run dir: {} ({:.1} s)\n{}\nfull verdict: {}",
        s.dir.display(),
        elapsed.as_secs_f64(),
        s.verdict.summary(),
        serde_json::to_string_pretty(&s.verdict).unwrap_or_default()
    )
}

/// Keeps the run's store (history, logs, results, plots) for a look, then fails.
fn keep_and_fail(store: tempfile::TempDir, why: &str, seed: u64, report: &str) -> ! {
    let kept = store.keep();
    panic!("{why} (seed {seed}; run kept in {}; rerun with JEPSEN_SEED={seed}):\n{report}", kept.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn append_under_kill_pause_and_partition_is_valid() {
    let _turn = RUNS.lock().await;
    let store = tempfile::tempdir().unwrap();
    let seed = seed();
    let mut o = options(store.path(), seed);
    o.workload = "append".into();
    o.nemeses = vec!["kill".into(), "pause".into(), "partition".into()];
    o.time_limit = Duration::from_secs(60);
    o.concurrency = 8;
    o.nemesis_interval = Duration::from_secs(4);
    o.fault_duration = Duration::from_secs(3);
    let started = Instant::now();
    let s = match run(o).await {
        Ok(s) => s,
        Err(e) => keep_and_fail(store, "the harness failed", seed, &format!("{e:#}")),
    };
    let report = describe(&s, started.elapsed());
    println!("seed {seed}\n{report}");
    if !s.valid {
        keep_and_fail(store, "append run INVALID", seed, &report);
    }
    let writes = s.verdict.check(checks::ACKNOWLEDGED_WRITES).expect("the writes check ran");
    assert!(writes.skipped.is_none() && writes.counts.get("found_once").copied().unwrap_or(0) > 100, "{report}");
    assert!(s.dir.join("latency.png").is_file() && s.dir.join("throughput.png").is_file(), "{report}");
    assert!(s.dir.join("results.json").is_file(), "{report}");
}

/// A partition run with a planted bug switched on: it must be INVALID with lost writes.
/// Returns the writes check's lost count and the verdict's summary.
#[cfg(feature = "planted-bugs")]
async fn planted_run_loses_writes(bug: &str, concurrency: usize) -> (u64, jepsen::checker::Check, String) {
    let _turn = RUNS.lock().await;
    let store = tempfile::tempdir().unwrap();
    let seed = seed();
    let mut o = options(store.path(), seed);
    o.workload = "append".into();
    o.nemeses = vec!["partition".into()];
    o.time_limit = Duration::from_secs(35);
    o.concurrency = concurrency;
    o.nemesis_interval = Duration::from_secs(2);
    o.fault_duration = Duration::from_secs(20);
    o.extra_server_args = vec!["--planted-bug".into(), bug.into()];
    let started = Instant::now();
    let s = match run(o).await {
        Ok(s) => s,
        Err(e) => keep_and_fail(store, "the harness failed", seed, &format!("{e:#}")),
    };
    let report = describe(&s, started.elapsed());
    println!("{bug}: seed {seed}\n{}", s.verdict.summary());
    if s.valid {
        keep_and_fail(store, &format!("the planted bug {bug} went unnoticed: the run is valid"), seed, &report);
    }
    let writes = s.verdict.check(checks::ACKNOWLEDGED_WRITES).expect("the writes check ran").clone();
    let lost = writes.counts.get("lost").copied().unwrap_or(0);
    if writes.valid || lost == 0 {
        keep_and_fail(store, "the writes check did not report lost writes", seed, &report);
    }
    println!("{bug}: lost writes: {lost}");
    (lost, writes, report)
}

/// The calibration: `--planted-bug ack-before-commit` answers a files-API write before its entry
/// commits. Partitions longer than the servers' 10 s proposal deadline make a cut-off node's
/// acknowledged writes fail to commit: lost writes.
#[cfg(feature = "planted-bugs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_planted_ack_before_commit_bug_is_caught_losing_writes() {
    let (_, writes, report) = planted_run_loses_writes("ack-before-commit", 10).await;
    let lost = writes.counterexamples.iter().find(|c| c["kind"] == "lost").expect("a lost-write counterexample");
    assert!(lost["path"].as_str().is_some_and(|p| p.starts_with('/')), "{lost}\n{report}");
    assert_eq!(lost["sha256"].as_str().map(str::len), Some(64), "{lost}");
    assert!(lost["ops"][0]["op"].is_u64(), "{lost}");
}

/// The batcher's calibration: `--planted-bug ack-batch-before-commit` has the proposer answer
/// every caller of a batched Raft entry before the entry commits. A leader cut off by a
/// partition keeps batching and acknowledging writes it never commits: lost writes.
#[cfg(feature = "planted-bugs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_planted_ack_batch_before_commit_bug_is_caught_losing_writes() {
    planted_run_loses_writes("ack-batch-before-commit", 16).await;
}
