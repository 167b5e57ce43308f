//! `jepsen`: the command line of the fault harness. Runs one test against the already built
//! `tideline` binary and prints the run dir and the verdict. Exit status: 0 valid, 1 invalid,
//! 2 the harness itself failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use jepsen::run::{run, Options};

#[derive(Parser, Debug)]
#[command(name = "jepsen", about = "Black-box fault harness for Tideline (Jepsen-style)")]
struct Cli {
    /// Number of server nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// How long the workload and the nemeses run, in seconds.
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// Comma-separated nemeses: kill, pause, partition, membership, object-store (or `none`).
    #[arg(long, default_value = "kill,pause,partition")]
    nemesis: String,
    /// append | sync | replay
    #[arg(long, default_value = "append")]
    workload: String,
    /// The `tideline` binary (default: $CARGO_TARGET_DIR/debug/tideline, else target/debug/tideline).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Where run dirs go.
    #[arg(long, default_value = "jepsen/store")]
    store: PathBuf,
    /// Seed of every random choice of the harness (default: random).
    #[arg(long)]
    seed: Option<u64>,
    /// Client workers.
    #[arg(long, default_value_t = 5)]
    concurrency: usize,
    /// proxy (userspace fault proxy) | netns (not implemented)
    #[arg(long, default_value = "proxy")]
    net: String,
    /// Seconds between faults.
    #[arg(long, default_value_t = 5.0)]
    nemesis_interval: f64,
    /// Seconds each fault stays in effect.
    #[arg(long, default_value_t = 3.0)]
    fault_duration: f64,
    /// An extra argument for every `tideline server` (repeatable; use `--server-arg=--flag`).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
}

/// The binary the harness runs when none is given.
fn default_binary() -> anyhow::Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("debug/tideline"));
    }
    // The workspace root is the parent of this crate's manifest dir.
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    candidates.push(workspace.join("target/debug/tideline"));
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        anyhow::anyhow!(
            "no tideline binary found (looked in $CARGO_TARGET_DIR/debug and target/debug): \
             run `source scripts/env.sh && cargo build --bins`, or pass --binary"
        )
    })
}

fn seconds(flag: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| anyhow::anyhow!("{flag} must be a non-negative number of seconds"))
}

async fn main_inner(cli: Cli) -> anyhow::Result<bool> {
    let binary = match cli.binary {
        Some(b) => b,
        None => default_binary()?,
    };
    let mut opts = Options::new(binary);
    opts.nodes = cli.nodes;
    opts.time_limit = Duration::from_secs(cli.time_limit);
    opts.nemeses =
        cli.nemesis.split(',').map(str::trim).filter(|s| !s.is_empty() && *s != "none").map(String::from).collect();
    opts.workload = cli.workload;
    opts.store = cli.store;
    opts.net = cli.net;
    opts.seed = cli.seed.unwrap_or_else(rand::random);
    opts.concurrency = cli.concurrency;
    opts.nemesis_interval = seconds("--nemesis-interval", cli.nemesis_interval)?;
    opts.fault_duration = seconds("--fault-duration", cli.fault_duration)?;
    opts.extra_server_args = cli.server_args;
    println!("seed {}", opts.seed);
    let summary = tokio::select! {
        r = run(opts) => r?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
        _ = sigterm() => anyhow::bail!("terminated"),
    };
    println!("run dir: {}", summary.dir.display());
    print!("{}", summary.verdict.summary());
    Ok(summary.valid)
}

/// Resolves on SIGTERM (so the run's destructors stop every node), never if it cannot listen.
async fn sigterm() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,hyper=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jepsen: start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(main_inner(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("jepsen: harness error: {e:#}");
            ExitCode::from(2)
        }
    }
}
