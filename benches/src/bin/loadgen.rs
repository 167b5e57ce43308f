//! `loadgen`: a bounded HTTP load generator for a running Tideline server or cluster.
//!
//! It owns the whole client side of one load run:
//!
//! ```text
//!   admin token ─▶ POST /api/v1/tokens (team "loadgen", "*") ─▶ team token
//!   team token  ─▶ POST /api/v1/sandboxvolumes              ─▶ volume id
//!   --clients N tokio tasks, each looping
//!       POST /api/v1/sandboxvolumes/{id}/files?path=/loadgen/c{client}/f{n}   (raw body, --size bytes)
//!   requests round-robin over every --server; latency of each measured request → HdrHistogram
//!   ─▶ one result line on stdout:
//!   loadgen clients=16 size=256 ops=… errors=… duration_s=… ops_per_s=… p50_ms=… p99_ms=… p999_ms=…
//! ```
//!
//! Everything is bounded: a fixed number of tasks, a per-request timeout, the measured phase ends
//! after `--duration` seconds or `--requests` requests (whichever comes first), and no run lasts
//! longer than `--max-duration` seconds whatever the flags say. Requests made during `--warmup`
//! are not counted. Non-2xx responses and transport failures count as errors (a client pauses
//! briefly after a transport failure rather than spin); the first error, with the response body,
//! is printed once, to stderr. Progress goes to stderr; stdout carries only the result line.
//!
//! Point it only at servers you run yourself (loopback or your own test hosts).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use tideline_benches::{exit, ms, team_volume};
use tideline_client::{Client, RetryPolicy, Timeouts, Upload};

/// The API's ceiling on a file written through the files API.
const FILE_BYTES_MAX: u64 = 100 * 1024 * 1024;
/// The server serves at most this many requests at once; more clients only queue.
const CLIENTS_MAX: usize = 1024;
/// Latencies are recorded in microseconds, up to this bound (larger ones saturate).
const LATENCY_MAX_US: u64 = 120_000_000;
/// How long a client waits after a request got no answer at all (refused, reset, timed out).
const TRANSPORT_ERROR_PAUSE: Duration = Duration::from_millis(10);

#[derive(Parser, Debug)]
#[command(name = "loadgen", about = "Drive a running Tideline server or cluster with small file writes")]
struct Args {
    /// Base URL of a node, e.g. http://127.0.0.1:7070; repeat for a cluster (requests round-robin).
    #[arg(long = "server", value_name = "URL", default_value = "http://127.0.0.1:7070")]
    servers: Vec<String>,
    /// Admin token, used once to create the team token the run writes with.
    #[arg(long, env = "TIDELINE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Concurrent clients (one tokio task each, each with at most one request in flight).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Size of each written file, in bytes.
    #[arg(long, default_value_t = 256)]
    size: u64,
    /// Length of the measured phase in seconds (default 10 unless only --requests is given).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Total measured requests (successes + errors); the run stops when they are done.
    #[arg(long, value_name = "N")]
    requests: Option<u64>,
    /// Unmeasured warm-up before the measured phase, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    warmup: f64,
    /// Hard ceiling on the measured phase, whatever --duration/--requests say, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    max_duration: f64,
    /// Per-request timeout in seconds (a timed-out request is an error).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    request_timeout: f64,
}

/// The validated shape of one run.
struct Plan {
    servers: Vec<String>,
    clients: usize,
    size: u64,
    warmup: Duration,
    measure: Duration,
    requests: Option<u64>,
    request_timeout: Duration,
}

fn secs(name: &str, v: f64) -> Result<Duration> {
    if !v.is_finite() || v < 0.0 {
        bail!("--{name} must be a finite number of seconds ≥ 0, got {v}");
    }
    Duration::try_from_secs_f64(v).map_err(|e| anyhow!("--{name} {v}: {e}"))
}

impl Plan {
    fn from_args(a: &Args) -> Result<Plan> {
        let mut servers = Vec::with_capacity(a.servers.len());
        for s in &a.servers {
            let s = s.trim().trim_end_matches('/');
            if !(s.starts_with("http://") || s.starts_with("https://")) {
                bail!("--server {s:?}: expected a base URL like http://127.0.0.1:7070");
            }
            servers.push(s.to_string());
        }
        if servers.is_empty() {
            bail!("give at least one --server");
        }
        if a.clients == 0 || a.clients > CLIENTS_MAX {
            bail!("--clients must be between 1 and {CLIENTS_MAX}, got {}", a.clients);
        }
        if a.size > FILE_BYTES_MAX {
            bail!("--size must be at most {FILE_BYTES_MAX} bytes (the API's file limit), got {}", a.size);
        }
        if a.requests == Some(0) {
            bail!("--requests must be at least 1");
        }
        let max = secs("max-duration", a.max_duration)?;
        let measure = match (a.duration, a.requests) {
            (Some(d), _) => secs("duration", d)?.min(max),
            (None, Some(_)) => max,
            (None, None) => Duration::from_secs(10).min(max),
        };
        if measure.is_zero() {
            bail!("the measured phase is empty: give --duration > 0");
        }
        let request_timeout = secs("request-timeout", a.request_timeout)?;
        if request_timeout.is_zero() {
            bail!("--request-timeout must be > 0");
        }
        Ok(Plan {
            servers,
            clients: a.clients,
            size: a.size,
            warmup: secs("warmup", a.warmup)?,
            measure,
            requests: a.requests,
            request_timeout,
        })
    }
}

/// Creates the run's team token (shown once by the server) and its volume; the team's client
/// of every server (one connection pool), in `--server` order.
async fn setup(plan: &Plan, admin_token: &str) -> Result<(Vec<Client>, String)> {
    let timeouts = Timeouts {
        connect: plan.request_timeout.min(Duration::from_secs(5)),
        request: plan.request_timeout,
        transfer: plan.request_timeout,
    };
    let admin = Client::builder(&plan.servers[0], admin_token)
        .timeouts(timeouts)
        .retry(RetryPolicy::none())
        .build()
        .context("building the HTTP client")?;
    let (team, volume) = team_volume(&admin, "loadgen").await?;
    let clients = plan.servers.iter().map(|s| team.with_server(s)).collect::<Result<Vec<_>, _>>()?;
    Ok((clients, volume))
}

/// Why one write failed.
enum Failure {
    /// The server answered, with a non-2xx status.
    Status(String),
    /// No answer: connect, send, timeout or body read failed.
    Transport(String),
}

/// State every client shares.
struct Shared {
    /// The team's client of each server, in `--server` order.
    servers: Vec<Client>,
    plan: Plan,
    volume: String,
    /// Round-robin cursor over `plan.servers`.
    next_server: AtomicU64,
    /// Measured requests claimed so far (only used with `--requests`).
    claimed: AtomicU64,
    first_error_shown: AtomicBool,
    measure_start: Instant,
    measure_end: Instant,
}

/// What one client measured.
struct ClientReport {
    ops: u64,
    errors: u64,
    latency_us: Histogram<u64>,
}

fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).context("creating the latency histogram")
}

/// The body of file `n` of client `c`: `size` bytes, unique per file (so content-addressed
/// storage cannot deduplicate it), deterministic.
fn body(c: usize, n: u64, size: u64) -> Vec<u8> {
    let tag = format!("loadgen c{c} f{n}\n");
    tag.bytes().chain(std::iter::repeat(b'.')).take(size as usize).collect()
}

impl Shared {
    fn report_first_error(&self, what: &str) {
        if !self.first_error_shown.swap(true, Ordering::Relaxed) {
            eprintln!("loadgen: first error: {what}");
        }
    }

    /// One write; `Ok(())` iff the server answered 2xx.
    async fn write(&self, client: usize, n: u64) -> Result<(), Failure> {
        let i = self.next_server.fetch_add(1, Ordering::Relaxed) as usize % self.servers.len();
        let server = &self.servers[i];
        let path = format!("/loadgen/c{client}/f{n}");
        match server.write_file(&self.volume, &path, Upload::bytes(body(client, n, self.plan.size))).await {
            Ok(_) => Ok(()),
            Err(e) => match e.status {
                Some(status) => Err(Failure::Status(format!("write {path} at {}: {status}: {e}", server.server()))),
                None => Err(Failure::Transport(format!("write {path} at {}: {e}", server.server()))),
            },
        }
    }

    async fn client(self: Arc<Self>, client: usize) -> Result<ClientReport> {
        let mut report = ClientReport { ops: 0, errors: 0, latency_us: new_histogram()? };
        for n in 0u64.. {
            let started = Instant::now();
            if started >= self.measure_end {
                break;
            }
            let measured = started >= self.measure_start;
            if measured {
                if let Some(limit) = self.plan.requests {
                    if self.claimed.fetch_add(1, Ordering::Relaxed) >= limit {
                        break;
                    }
                }
            }
            match self.write(client, n).await {
                Ok(()) if measured => {
                    report.ops += 1;
                    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    report.latency_us.saturating_record(us.max(1));
                }
                Ok(()) => {}
                Err(e) => {
                    // Warm-up errors are shown too (they usually explain measured ones) but not counted.
                    if measured {
                        report.errors += 1;
                    }
                    match e {
                        Failure::Status(e) => self.report_first_error(&e),
                        Failure::Transport(e) => {
                            self.report_first_error(&e);
                            // No server answered: pause instead of spinning on refused connections.
                            tokio::time::sleep(TRANSPORT_ERROR_PAUSE).await;
                        }
                    }
                }
            }
        }
        Ok(report)
    }
}

async fn run(args: Args) -> Result<()> {
    let plan = Plan::from_args(&args)?;
    let (servers, volume) = setup(&plan, &args.admin_token).await?;
    eprintln!(
        "loadgen: volume {volume} on {} server(s); {} clients, {} bytes per file, warmup {:.1}s, measuring {:.1}s{}",
        plan.servers.len(),
        plan.clients,
        plan.size,
        plan.warmup.as_secs_f64(),
        plan.measure.as_secs_f64(),
        plan.requests.map(|r| format!(" or {r} requests")).unwrap_or_default(),
    );

    let start = Instant::now();
    let measure_start = start + plan.warmup;
    let measure_end = measure_start + plan.measure;
    // Everything in flight at the deadline has at most one request timeout left.
    let hard_stop = plan.warmup + plan.measure + plan.request_timeout + Duration::from_secs(5);
    let (clients, size) = (plan.clients, plan.size);
    let shared = Arc::new(Shared {
        servers,
        plan,
        volume,
        next_server: AtomicU64::new(0),
        claimed: AtomicU64::new(0),
        first_error_shown: AtomicBool::new(false),
        measure_start,
        measure_end,
    });

    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        tasks.spawn(Arc::clone(&shared).client(c));
    }
    let mut total = ClientReport { ops: 0, errors: 0, latency_us: new_histogram()? };
    let joined = tokio::time::timeout(hard_stop, async {
        while let Some(joined) = tasks.join_next().await {
            let r = joined.context("a client task panicked")??;
            total.ops += r.ops;
            total.errors += r.errors;
            total.latency_us.add(&r.latency_us).context("merging latency histograms")?;
        }
        anyhow::Ok(())
    })
    .await;
    match joined {
        Ok(r) => r?,
        Err(_) => {
            tasks.abort_all();
            bail!("clients did not stop within {:.1}s of the start; aborted", hard_stop.as_secs_f64());
        }
    }
    // The measured phase ran from its start until the last client finished (or the requests
    // ran out earlier than the deadline).
    let elapsed = Instant::now().saturating_duration_since(measure_start).as_secs_f64();
    let ops_per_s = if elapsed > 0.0 { total.ops as f64 / elapsed } else { 0.0 };
    let h = &total.latency_us;
    let (p50, p99, p999) = if h.is_empty() {
        (0, 0, 0)
    } else {
        (h.value_at_quantile(0.50), h.value_at_quantile(0.99), h.value_at_quantile(0.999))
    };
    println!(
        "loadgen clients={clients} size={size} ops={} errors={} duration_s={elapsed:.2} ops_per_s={ops_per_s:.1} \
         p50_ms={:.3} p99_ms={:.3} p999_ms={:.3}",
        total.ops,
        total.errors,
        ms(p50),
        ms(p99),
        ms(p999),
    );
    if total.ops == 0 && total.errors > 0 {
        bail!("every measured request failed");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    exit("loadgen", run(Args::parse()).await)
}
