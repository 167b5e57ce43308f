//! The nodes of a run as real `tideline server` processes: start, SIGKILL, SIGSTOP/SIGCONT,
//! restart with the same data dir and arguments, re-join with a fresh data dir; and the
//! cluster's health as its own admin API reports it.
//!
//! Each node listens on its own loopback port (clients use it directly) and advertises the
//! address of its harness proxy ([`crate::proxy`]), so all peer traffic crosses the proxies.
//! Node `i` keeps everything under `<run dir>/n<i>/`: `server.log` (stdout and stderr of every
//! incarnation, appended) and `data-<generation>/`. Every process is killed when the
//! [`Cluster`] is dropped, on error and on panic alike.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::client::{Answer, Api, Body};
use crate::proxy::{LinkTable, NodeId, Proxy};

/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a health probe of one node may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(100);

/// What every node is started with, besides its own id, ports and data dir.
#[derive(Clone, Debug)]
pub struct NodeArgs {
    pub binary: PathBuf,
    pub cluster_secret: String,
    pub admin_token: String,
    /// `--object-store …` (and `--s3-endpoint …`) arguments.
    pub object_store_args: Vec<String>,
    /// Environment for the object store (S3 credentials).
    pub env: Vec<(String, String)>,
    /// Appended to every command line.
    pub extra: Vec<String>,
    /// The `RUST_LOG` of the servers.
    pub log_filter: String,
}

/// The nodes' client URLs and which of them run, shared with the workloads.
#[derive(Default)]
pub struct NodeView {
    inner: RwLock<Vec<(NodeId, String, bool)>>,
}

impl NodeView {
    /// `(id, url)` of every running node (paused ones included: clients must cope).
    pub fn running(&self) -> Vec<(NodeId, String)> {
        self.inner.read().expect("view lock").iter().filter(|n| n.2).map(|n| (n.0, n.1.clone())).collect()
    }

    /// `(id, url)` of every node.
    pub fn all(&self) -> Vec<(NodeId, String)> {
        self.inner.read().expect("view lock").iter().map(|n| (n.0, n.1.clone())).collect()
    }

    fn set(&self, id: NodeId, url: &str, running: bool) {
        let mut v = self.inner.write().expect("view lock");
        match v.iter_mut().find(|n| n.0 == id) {
            Some(n) => *n = (id, url.to_string(), running),
            None => v.push((id, url.to_string(), running)),
        }
    }
}

/// One node.
pub struct Node {
    pub id: NodeId,
    pub dir: PathBuf,
    /// Bumped when the node re-joins with a fresh data dir.
    generation: u32,
    /// The real listener's port, once known (kept across restarts).
    port: Option<u16>,
    pub proxy: Proxy,
    child: Option<Child>,
    pub paused: bool,
    /// Started with `--join` (a node that re-joined keeps joining on restarts).
    joins: bool,
}

impl Node {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join(format!("data-{}", self.generation))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port.unwrap_or(0))
    }

    /// The address peers reach this node at (its proxy).
    pub fn peer_addr(&self) -> String {
        self.proxy.listen.to_string()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }
}

/// The cluster's health as the nodes report it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Health {
    pub healthy: bool,
    pub leader: Option<NodeId>,
    /// Nodes whose `/readyz` did not answer 200.
    pub not_ready: Vec<NodeId>,
    /// Each running node's applied index.
    pub applied: Vec<(NodeId, u64)>,
    /// Voters according to the leader.
    pub voters: Vec<NodeId>,
    pub detail: String,
}

pub struct Cluster {
    pub args: NodeArgs,
    pub nodes: Vec<Node>,
    pub links: Arc<LinkTable>,
    pub view: Arc<NodeView>,
    api: Api,
}

impl Cluster {
    /// Starts proxies and `n` nodes (ids 1..=n) under `dir`, and waits until each printed its
    /// address. It does not wait for a leader (see [`Cluster::wait_healthy`]).
    pub async fn start(dir: &Path, n: usize, args: NodeArgs, links: Arc<LinkTable>) -> anyhow::Result<Cluster> {
        if n == 0 {
            bail!("a cluster needs at least one node");
        }
        let mut nodes = Vec::with_capacity(n);
        for i in 1..=n as NodeId {
            let proxy = Proxy::start(i, true, links.clone()).await.context("start a peer proxy")?;
            let node_dir = dir.join(format!("n{i}"));
            std::fs::create_dir_all(&node_dir).with_context(|| format!("create {}", node_dir.display()))?;
            nodes.push(Node {
                id: i,
                dir: node_dir,
                generation: 0,
                port: None,
                proxy,
                child: None,
                paused: false,
                joins: false,
            });
        }
        let mut cluster =
            Cluster { args, nodes, links, view: Arc::new(NodeView::default()), api: Api::new(PROBE_TIMEOUT) };
        // Start them concurrently-ish: each spawn is quick; waiting for the address is bounded.
        for i in 0..n {
            cluster.spawn(i).await?;
        }
        Ok(cluster)
    }

    /// `--peers` for the initial members: every node at its proxy.
    fn peers_arg(&self) -> String {
        self.nodes.iter().map(|n| format!("{}={}", n.id, n.peer_addr())).collect::<Vec<_>>().join(",")
    }

    pub fn index(&self, id: NodeId) -> anyhow::Result<usize> {
        self.nodes.iter().position(|n| n.id == id).ok_or_else(|| anyhow!("no node {id}"))
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[self.index(id).expect("known node")]
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The command line of node `i` (index into `nodes`).
    fn command_line(&self, i: usize, port: u16) -> Vec<String> {
        let node = &self.nodes[i];
        let mut a: Vec<String> = vec![
            "server".into(),
            "--node-id".into(),
            node.id.to_string(),
            "--data-dir".into(),
            node.data_dir().display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--advertise".into(),
            node.peer_addr(),
            "--cluster-secret".into(),
            self.args.cluster_secret.clone(),
            "--admin-token".into(),
            self.args.admin_token.clone(),
        ];
        if node.joins {
            a.push("--join".into());
        } else {
            a.push("--peers".into());
            a.push(self.peers_arg());
        }
        a.extend(self.args.object_store_args.iter().cloned());
        a.extend(self.args.extra.iter().cloned());
        a
    }

    /// Spawns node `i` and waits for its address. Reuses the node's port; if that cannot be
    /// bound any more, tries once more on a fresh one.
    async fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        if self.nodes[i].child.is_some() {
            bail!("node {} is already running", self.nodes[i].id);
        }
        let port = self.nodes[i].port.unwrap_or(0);
        let addr = match self.spawn_on(i, port).await {
            Ok(addr) => addr,
            Err(e) if port != 0 => {
                tracing::warn!(node = self.nodes[i].id, error = %format!("{e:#}"), "restart on the old port failed; trying a new one");
                self.spawn_on(i, 0).await?
            }
            Err(e) => return Err(e),
        };
        let node = &mut self.nodes[i];
        node.port = Some(addr.port());
        node.proxy.set_upstream(addr);
        node.paused = false;
        self.view.set(node.id, &node.url(), true);
        Ok(())
    }

    async fn spawn_on(&mut self, i: usize, port: u16) -> anyhow::Result<SocketAddr> {
        let argv = self.command_line(i, port);
        let node = &self.nodes[i];
        std::fs::create_dir_all(node.data_dir())?;
        let log_path = node.dir.join("server.log");
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("open {}", log_path.display()))?;
        {
            use std::io::Write;
            writeln!(log, "=== harness: starting node {}: {} {}", node.id, self.args.binary.display(), argv.join(" "))?;
        }
        let stderr = log.try_clone()?;
        let mut cmd = Command::new(&self.args.binary);
        die_with_parent(&mut cmd);
        let mut child = cmd
            .args(&argv)
            .envs(self.args.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", &self.args.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {}", self.args.binary.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let mut log_out = tokio::fs::File::from_std(log);
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("tideline listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url.trim().to_string());
                    }
                }
                let _ = log_out.write_all(format!("{line}\n").as_bytes()).await;
            }
        });
        let url = tokio::select! {
            url = rx => url.ok(),
            _ = tokio::time::sleep(START_TIMEOUT) => None,
        };
        let Some(url) = url else {
            let _ = child.start_kill();
            let _ = child.wait().await;
            bail!("node {} did not print its address within {START_TIMEOUT:?} (see {})", node.id, log_path.display());
        };
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .parse()
            .with_context(|| format!("node {} printed an unparsable address {url:?}", node.id))?;
        self.nodes[i].child = Some(child);
        Ok(addr)
    }

    /// SIGKILL and reap. A paused node is killed as it is.
    pub async fn kill(&mut self, id: NodeId) -> anyhow::Result<()> {
        let i = self.index(id)?;
        let node = &mut self.nodes[i];
        let Some(mut child) = node.child.take() else { bail!("node {id} is not running") };
        child.start_kill().with_context(|| format!("SIGKILL node {id}"))?;
        tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .map_err(|_| anyhow!("node {id} did not exit after SIGKILL"))??;
        node.paused = false;
        let url = node.url();
        self.view.set(id, &url, false);
        Ok(())
    }

    /// Restarts a stopped node with its data dir and arguments.
    pub async fn restart(&mut self, id: NodeId) -> anyhow::Result<()> {
        let i = self.index(id)?;
        self.spawn(i).await
    }

    /// SIGSTOP (`pause = true`) or SIGCONT.
    pub fn signal_pause(&mut self, id: NodeId, pause: bool) -> anyhow::Result<()> {
        let i = self.index(id)?;
        let node = &mut self.nodes[i];
        let pid = node.pid().ok_or_else(|| anyhow!("node {id} is not running"))?;
        let sig = if pause { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) with a pid of our own live child and a valid signal number.
        let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
        if rc != 0 {
            bail!("signal {sig} to node {id} (pid {pid}): {}", std::io::Error::last_os_error());
        }
        node.paused = pause;
        Ok(())
    }

    /// Kills node `id`, deletes its data dir, and starts it again with a fresh, empty one and
    /// `--join`, so it can be added back as a new member.
    pub async fn rejoin_fresh(&mut self, id: NodeId) -> anyhow::Result<()> {
        let i = self.index(id)?;
        if self.nodes[i].is_running() {
            self.kill(id).await?;
        }
        let node = &mut self.nodes[i];
        // The removed member's state is of no further interest and runs are disk-bound.
        let old = node.data_dir();
        if let Err(e) = std::fs::remove_dir_all(&old) {
            tracing::warn!(node = id, dir = %old.display(), error = %e, "remove the old data dir");
        }
        node.generation += 1;
        node.joins = true;
        self.spawn(i).await
    }

    /// Resumes paused nodes and restarts stopped ones.
    pub async fn ensure_all_running(&mut self) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            let id = self.nodes[i].id;
            if self.nodes[i].paused {
                self.signal_pause(id, false)?;
            }
            if !self.nodes[i].is_running() {
                self.restart(id).await?;
            }
        }
        Ok(())
    }

    /// Notices nodes that exited on their own (a crash is a finding; the harness restarts them
    /// only when asked). Returns the ids and exit statuses of the dead.
    pub fn reap_exited(&mut self) -> Vec<(NodeId, String)> {
        let mut dead = Vec::new();
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    dead.push((node.id, status.to_string()));
                    node.child = None;
                    node.paused = false;
                    self.view.set(node.id, &node.url(), false);
                }
            }
        }
        dead
    }

    /// A node's `GET /api/v1/cluster`, if it answers.
    pub async fn status_of(&self, id: NodeId) -> Option<Value> {
        let node = self.node(id);
        if !node.is_running() || node.paused {
            return None;
        }
        let url = format!("{}/api/v1/cluster", node.url());
        self.api.call(Method::GET, &url, &self.args.admin_token, Body::None).await.data().cloned()
    }

    /// The leader a majority of all nodes names (running, unpaused nodes are asked; a node
    /// that just re-joined and knows no leader yet does not veto it).
    pub async fn leader(&self) -> Option<NodeId> {
        let mut votes: std::collections::BTreeMap<NodeId, usize> = Default::default();
        for n in self.nodes.iter().filter(|n| n.is_running() && !n.paused) {
            if let Some(l) = self.status_of(n.id).await.and_then(|s| s["leader_id"].as_u64()) {
                *votes.entry(l).or_default() += 1;
            }
        }
        votes.into_iter().find(|(_, n)| *n > self.nodes.len() / 2).map(|(l, _)| l)
    }

    /// One look at the cluster: healthy when every expected node runs, answers `/readyz` with
    /// 200, all agree on one leader, the leader counts every node as a voter, and (with
    /// `converged`) every node has applied the same index.
    pub async fn health(&self, converged: bool) -> Health {
        let mut h = Health::default();
        let mut leaders = Vec::new();
        for n in &self.nodes {
            if !n.is_running() || n.paused {
                h.not_ready.push(n.id);
                continue;
            }
            let ready = self.api.probe(&format!("{}/readyz", n.url())).await;
            if ready != Some(reqwest::StatusCode::OK) {
                h.not_ready.push(n.id);
            }
            if let Some(s) = self.status_of(n.id).await {
                leaders.push(s["leader_id"].as_u64());
                h.applied.push((n.id, s["applied_index"].as_u64().unwrap_or(0)));
                if s["leader_id"].as_u64() == Some(n.id) {
                    h.voters = s["nodes"]
                        .as_array()
                        .map(|a| {
                            a.iter().filter(|x| x["voter"] == true).filter_map(|x| x["node_id"].as_u64()).collect()
                        })
                        .unwrap_or_default();
                }
            } else {
                leaders.push(None);
            }
        }
        h.leader = leaders.first().copied().flatten().filter(|l| leaders.iter().all(|x| *x == Some(*l)));
        let all_voters = self.nodes.iter().all(|n| h.voters.contains(&n.id));
        let same_applied = h.applied.len() == self.nodes.len() && h.applied.iter().all(|a| a.1 == h.applied[0].1);
        h.healthy = h.not_ready.is_empty() && h.leader.is_some() && all_voters && (!converged || same_applied);
        h.detail = if h.healthy {
            "ok".into()
        } else {
            format!(
                "not ready {:?}, leader {:?}, voters {:?}, applied {:?}",
                h.not_ready, h.leader, h.voters, h.applied
            )
        };
        h
    }

    /// Polls [`Cluster::health`] until healthy or `timeout`; returns the last look and how long
    /// it took.
    pub async fn wait_healthy(&self, converged: bool, timeout: Duration) -> (Health, Duration) {
        let started = tokio::time::Instant::now();
        loop {
            let h = self.health(converged).await;
            if h.healthy || started.elapsed() >= timeout {
                return (h, started.elapsed());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// An admin call to the current leader (or, without one, to the first running node).
    pub async fn admin_call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let target = match self.leader().await {
            Some(l) => self.node(l),
            None => match self.nodes.iter().find(|n| n.is_running() && !n.paused) {
                Some(n) => n,
                None => return Answer::NoAnswer { sent: false, error: "no running node".into() },
            },
        };
        let url = format!("{}{path}", target.url());
        // Membership changes wait for a learner to catch up: give them longer than a probe.
        let api = Api::new(Duration::from_secs(30));
        api.call(method, &url, &self.args.admin_token, body.map(Body::Json).unwrap_or(Body::None)).await
    }

    /// `{id: pid}` of the running nodes, for the record.
    pub fn describe(&self) -> Value {
        json!(self
            .nodes
            .iter()
            .map(|n| json!({"id": n.id, "url": n.url(), "peer_addr": n.peer_addr(), "pid": n.pid(),
                "paused": n.paused, "data_dir": n.data_dir()}))
            .collect::<Vec<_>>())
    }
}

/// Makes the child get SIGKILL when the harness dies, even by a signal that skips destructors
/// (SIGTERM from `timeout`, SIGKILL), so no server outlives its run.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                if let Some(pid) = child.id() {
                    // SAFETY: kill(2) on our own child; SIGCONT first is harmless if not stopped.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
                }
                let _ = child.start_kill();
            }
        }
    }
}
