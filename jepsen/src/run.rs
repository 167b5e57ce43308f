//! One run, start to verdict: a run dir, the object store, the cluster behind its proxies, the
//! workload's setup, then workers and the nemesis for `time_limit`; then every fault healed,
//! every node running and the cluster converged (bounded), and the checker and report.
//!
//! ```text
//! <store>/<UTC timestamp>-<workload>/
//!   options.json  target.json  history.jsonl  final-health.json
//!   n<i>/server.log  n<i>/data-<generation>/     s3/ + s3s-fs.log (object-store nemesis)
//! ```
//!
//! The servers log at `info,openraft=warn` unless `JEPSEN_SERVER_LOG` gives another filter.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;
use tokio::sync::{watch, Mutex};

use crate::client::{Api, OP_TIMEOUT};
use crate::cluster::{Cluster, NodeArgs};
use crate::history::Recorder;
use crate::nemesis::object_store::S3Store;
use crate::nemesis::{self, NemesisConfig};
use crate::proxy::LinkTable;
use crate::target::{NodeEndpoint, Target};
use crate::workload::{self, Ctx};

use crate::{checker, report};

/// How long the cluster may take to elect its first leader.
const FIRST_LEADER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the cluster may take to be healthy and converged after the last fault.
const FINAL_HEALTH_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Clone, Debug)]
pub struct Options {
    /// The real `tideline` binary.
    pub binary: PathBuf,
    pub nodes: usize,
    pub time_limit: Duration,
    /// Any of `kill`, `pause`, `partition`, `membership`, `object-store`.
    pub nemeses: Vec<String>,
    /// `append` | `sync` | `replay`.
    pub workload: String,
    /// Runs go to `<store>/<run name>/`.
    pub store: PathBuf,
    /// `proxy` (the only one implemented) | `netns`.
    pub net: String,
    pub seed: u64,
    /// Client workers.
    pub concurrency: usize,
    /// Time between faults.
    pub nemesis_interval: Duration,
    /// How long each fault stays in effect.
    pub fault_duration: Duration,
    /// Appended to every `tideline server` command line.
    pub extra_server_args: Vec<String>,
}

impl Options {
    pub fn new(binary: PathBuf) -> Options {
        Options {
            binary,
            nodes: 3,
            time_limit: Duration::from_secs(60),
            nemeses: vec!["kill".into(), "pause".into(), "partition".into()],
            workload: "append".into(),
            store: PathBuf::from("jepsen/store"),
            net: "proxy".into(),
            seed: 0,
            concurrency: 5,
            nemesis_interval: Duration::from_secs(5),
            fault_duration: Duration::from_secs(3),
            extra_server_args: Vec::new(),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.net == "netns" {
            bail!("--net netns is not implemented; use --net proxy");
        }
        if self.net != "proxy" {
            bail!("unknown --net {:?}: use proxy", self.net);
        }
        for n in &self.nemeses {
            if !nemesis::NAMES.contains(&n.as_str()) {
                bail!("unknown nemesis {n:?}: use any of {}", nemesis::NAMES.join(", "));
            }
        }
        if !workload::NAMES.contains(&self.workload.as_str()) {
            bail!("unknown workload {:?}: use one of {}", self.workload, workload::NAMES.join(", "));
        }
        if self.nodes == 0 {
            bail!("--nodes must be at least 1");
        }
        if self.nemeses.iter().any(|n| n == "membership") && self.nodes < 3 {
            bail!("the membership nemesis needs at least 3 nodes");
        }
        if !self.binary.is_file() {
            bail!("no tideline binary at {} (build it with `cargo build --bins`)", self.binary.display());
        }
        Ok(())
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "binary": self.binary, "nodes": self.nodes, "time_limit_s": self.time_limit.as_secs_f64(),
            "nemeses": self.nemeses, "workload": self.workload, "store": self.store, "net": self.net,
            "seed": self.seed, "concurrency": self.concurrency,
            "nemesis_interval_s": self.nemesis_interval.as_secs_f64(),
            "fault_duration_s": self.fault_duration.as_secs_f64(),
            "extra_server_args": self.extra_server_args,
        })
    }
}

pub struct RunSummary {
    pub dir: PathBuf,
    pub valid: bool,
    pub verdict: checker::Verdict,
}

/// `<store>/<UTC timestamp>-<workload>`, made unique if two runs start in the same second.
fn run_dir(opts: &Options) -> anyhow::Result<PathBuf> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let stamp = time::OffsetDateTime::now_utc().format(&fmt).context("format the run timestamp")?;
    std::fs::create_dir_all(&opts.store).with_context(|| format!("create {}", opts.store.display()))?;
    for n in 0..1000 {
        let name = if n == 0 { format!("{stamp}-{}", opts.workload) } else { format!("{stamp}-{}-{n}", opts.workload) };
        let dir = opts.store.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
        }
    }
    bail!("could not find a free run dir name under {}", opts.store.display())
}

fn write_json(path: &Path, v: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v)?;
    std::fs::write(path, text + "\n").with_context(|| format!("write {}", path.display()))
}

/// The value of `--flag` in `args`, if present.
fn flag_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| args.iter().find_map(|a| a.strip_prefix(&format!("{flag}=")).map(str::to_string)))
}

/// The workload's server flags, minus any the caller set explicitly, then the caller's.
fn server_extra_args(opts: &Options) -> Vec<String> {
    let defaults = workload::server_args(&opts.workload);
    let mut out = Vec::new();
    for pair in defaults.chunks(2) {
        if flag_value(&opts.extra_server_args, &pair[0]).is_none() {
            out.extend(pair.iter().cloned());
        }
    }
    // Snapshot often, so restarted and re-joined nodes catch up through snapshots.
    for (flag, value) in [("--snapshot-logs", "300"), ("--snapshot-keep-logs", "50")] {
        if flag_value(&opts.extra_server_args, flag).is_none() {
            out.extend([flag.to_string(), value.to_string()]);
        }
    }
    out.extend(opts.extra_server_args.iter().cloned());
    out
}

pub async fn run(opts: Options) -> anyhow::Result<RunSummary> {
    opts.validate()?;
    let dir = run_dir(&opts)?;
    tracing::info!(dir = %dir.display(), "run dir");
    write_json(&dir.join("options.json"), &opts.to_json())?;

    let links = LinkTable::new();
    let s3 = if opts.nemeses.iter().any(|n| n == "object-store") {
        Some(S3Store::start(&dir, links.clone()).await?)
    } else {
        None
    };
    let (object_store_args, env) = match &s3 {
        Some(s) => (s.node_args(), s.node_env()),
        None => {
            let shared = dir.join("objects");
            std::fs::create_dir_all(&shared)?;
            (vec!["--object-store".into(), format!("file://{}", shared.display())], Vec::new())
        }
    };
    let server_args = server_extra_args(&opts);
    let retain_entries = flag_value(&server_args, "--journal-retain-entries")
        .map(|v| v.parse::<u64>())
        .transpose()
        .context("--journal-retain-entries in the server arguments is not a number")?;
    let args = NodeArgs {
        binary: opts.binary.clone(),
        cluster_secret: format!("jepsen-secret-{:016x}", rand::random::<u64>()),
        admin_token: format!("jepsen-admin-{:016x}", rand::random::<u64>()),
        object_store_args,
        env,
        extra: server_args,
        log_filter: std::env::var("JEPSEN_SERVER_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
    };
    let admin_token = args.admin_token.clone();

    let cluster = Cluster::start(&dir, opts.nodes, args, links.clone()).await?;
    let (first, waited) = cluster.wait_healthy(false, FIRST_LEADER_TIMEOUT).await;
    if !first.healthy {
        bail!("the cluster did not become healthy within {FIRST_LEADER_TIMEOUT:?}: {}", first.detail);
    }
    tracing::info!(leader = ?first.leader, waited_ms = waited.as_millis() as u64, "cluster healthy");
    let view = cluster.view.clone();
    let api = Api::default();
    let setup = workload::setup(&api, &view, &admin_token, workload::volume_count(&opts.workload)).await?;
    let target = |c: &Cluster| Target {
        nodes: c.nodes.iter().map(|n| NodeEndpoint { id: n.id, url: n.url() }).collect(),
        admin_token: admin_token.clone(),
        team_token: setup.team_token.clone(),
        volumes: setup.volumes.clone(),
        retain_entries,
    };
    write_json(&dir.join("target.json"), &target(&cluster))?;

    let cluster = Arc::new(Mutex::new(cluster));
    let rec = Arc::new(Recorder::create(&dir.join("history.jsonl")).context("create history.jsonl")?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        view: view.clone(),
        rec: rec.clone(),
        token: setup.team_token.clone(),
        volumes: setup.volumes.clone(),
        stop: stop_rx.clone(),
    });
    let workers = workload::spawn(&opts.workload, ctx, opts.concurrency, opts.seed);
    // If this future is dropped (Ctrl-C, a test's timeout), the tasks go too, and with them the
    // last reference to the cluster, whose drop kills every node.
    let mut guard = AbortOnDrop(workers.iter().map(|w| w.abort_handle()).collect());
    let nemesis_task = tokio::spawn(nemesis::run(
        cluster.clone(),
        rec.clone(),
        NemesisConfig {
            names: opts.nemeses.clone(),
            interval: opts.nemesis_interval,
            hold: opts.fault_duration,
            seed: opts.seed,
        },
        stop_rx,
    ));
    guard.0.push(nemesis_task.abort_handle());

    tokio::time::sleep(opts.time_limit).await;
    tracing::info!("time limit reached; stopping workers and healing");
    let _ = stop_tx.send(true);
    // The nemesis heals its fault and waits (bounded) for recovery.
    if let Err(e) = nemesis_task.await {
        tracing::error!(error = %e, "nemesis task failed");
    }
    let worker_deadline = OP_TIMEOUT * 3;
    for w in workers {
        if tokio::time::timeout(worker_deadline, w).await.is_err() {
            tracing::error!("a worker did not stop within {worker_deadline:?}");
        }
    }
    rec.flush().context("flush history.jsonl")?;

    let mut c = cluster.lock().await;
    let final_health = heal_everything(&mut c).await;
    write_json(&dir.join("final-health.json"), &final_health)?;
    let target = target(&c);
    write_json(&dir.join("target.json"), &target)?;

    let verdict = checker::check(&dir, &target).await.context("check the history")?;
    let ops = crate::history::load(&dir.join("history.jsonl"))?;
    report::write(&dir, &ops, &verdict).context("write the report")?;
    drop(c);
    drop(s3);
    Ok(RunSummary { dir, valid: verdict.valid, verdict })
}

/// Aborts the run's tasks when dropped.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Heals links, resumes and restarts every node, restores the membership, and waits (bounded)
/// for one leader, every node ready and every applied index equal. Returns what it saw.
async fn heal_everything(c: &mut Cluster) -> serde_json::Value {
    c.links.heal_all();
    let mut problems: Vec<String> = Vec::new();
    for (id, status) in c.reap_exited() {
        problems.push(format!("node {id} had exited on its own: {status}"));
    }
    if let Err(e) = c.ensure_all_running().await {
        problems.push(format!("restart: {e:#}"));
    }
    // A majority leader is enough to repair the membership (a removed node knows none).
    let deadline = tokio::time::Instant::now() + FINAL_HEALTH_TIMEOUT / 2;
    while c.leader().await.is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    {
        match nemesis::membership::restore(c).await {
            Ok(readded) if !readded.is_empty() => problems.push(format!("re-added nodes {readded:?} at the end")),
            Ok(_) => {}
            Err(e) => problems.push(format!("membership: {e:#}")),
        }
    }
    let (health, waited) = c.wait_healthy(true, FINAL_HEALTH_TIMEOUT).await;
    if !health.healthy {
        tracing::error!(detail = %health.detail, "the cluster did not converge after healing");
        problems.push(format!("not converged after {FINAL_HEALTH_TIMEOUT:?}: {}", health.detail));
    }
    json!({ "health": health, "waited_ms": waited.as_millis() as u64, "problems": problems, "nodes": c.describe() })
}
