//! `tideline dev-cluster`: a local cluster of child `tideline server` processes sharing one
//! local object store, for development and demos.
//!
//! ```text
//! <dir>/dev-cluster.json   ports, admin token, cluster secret (reused on the next run)
//! <dir>/node<N>/           each node's data dir        <dir>/node<N>.log  its output
//! <dir>/objects/           the shared object store
//! ```
//!
//! With `--tls`, `<dir>/certs/` holds a throwaway CA and node certificates (`dev-certs`); the
//! nodes serve HTTPS and talk mutual TLS to each other.
//!
//! Node 1 bootstraps the cluster; the others start with `--join` and are added as learners,
//! then voters. Ctrl-C stops every child.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};
use tideline_client::{Client, RetryPolicy};
use tideline_types::wire::AddNodeRequest;

#[derive(Args, Debug)]
pub struct DevClusterArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Where the nodes keep their data and logs.
    #[arg(long, default_value = "./tideline-dev")]
    dir: PathBuf,
    /// Serve HTTPS and talk mutual TLS between nodes, with a throwaway CA written to
    /// `<dir>/certs/` (clients then pass `--ca-cert <dir>/certs/ca.pem`).
    #[arg(long)]
    tls: bool,
}

#[derive(Serialize, Deserialize)]
struct DevState {
    ports: Vec<u16>,
    admin_token: String,
    cluster_secret: String,
}

/// How long a node may take to answer `/healthz` after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn load_or_create(dir: &Path, nodes: u64) -> anyhow::Result<DevState> {
    let path = dir.join("dev-cluster.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let state: DevState = serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        if state.ports.len() as u64 != nodes {
            bail!(
                "{} was made for {} nodes; use --nodes {} or another --dir",
                dir.display(),
                state.ports.len(),
                state.ports.len()
            );
        }
        return Ok(state);
    }
    // Free ports, fixed from now on so a node restarted by hand keeps its address.
    let listeners: Vec<std::net::TcpListener> = (0..nodes)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .context("find free ports")?;
    let ports = listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect::<Result<_, _>>()?;
    let state = DevState {
        ports,
        admin_token: format!("tla_{}", hex::encode(rand::random::<[u8; 16]>())),
        cluster_secret: hex::encode(rand::random::<[u8; 16]>()),
    };
    std::fs::write(&path, serde_json::to_vec_pretty(&state)?).with_context(|| format!("write {}", path.display()))?;
    Ok(state)
}

fn node_args(dir: &Path, state: &DevState, i: usize, tls: bool) -> Vec<String> {
    let mut args = vec![
        "server".to_string(),
        "--node-id".into(),
        (i + 1).to_string(),
        "--listen".into(),
        format!("127.0.0.1:{}", state.ports[i]),
        "--data-dir".into(),
        dir.join(format!("node{}", i + 1)).display().to_string(),
        "--object-store".into(),
        format!("file://{}", dir.join("objects").display()),
        "--cluster-secret".into(),
        state.cluster_secret.clone(),
        "--admin-token".into(),
        state.admin_token.clone(),
    ];
    if i > 0 {
        args.push("--join".into());
    }
    if tls {
        let certs = dir.join("certs");
        let (cert, key) = crate::dev_certs::node_files(&certs, i as u64 + 1);
        for (flag, path) in [("--tls-cert", cert), ("--tls-key", key), ("--peer-ca", certs.join("ca.pem"))] {
            args.push(flag.into());
            args.push(path.display().to_string());
        }
    }
    args
}

/// An admin client of `url`, trusting the dev CA under `dir` with `--tls`.
fn admin_client(url: &str, admin_token: &str, dir: &Path, tls: bool) -> tideline_client::ClientBuilder {
    let b = Client::builder(url, admin_token);
    if tls {
        b.ca_cert_file(dir.join("certs").join("ca.pem"))
    } else {
        b
    }
}

async fn wait_healthy(url: &str, admin_token: &str, dir: &Path, tls: bool) -> anyhow::Result<()> {
    // This loop is the retry: each probe is sent once.
    let node = admin_client(url, admin_token, dir, tls).retry(RetryPolicy::none()).build()?;
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if node.healthz().await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{url} did not become healthy within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(args: DevClusterArgs) -> anyhow::Result<()> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    std::fs::create_dir_all(args.dir.join("objects")).context("create dev-cluster dir")?;
    let dir = args.dir.canonicalize().context("resolve dev-cluster dir")?;
    let state = load_or_create(&dir, args.nodes)?;
    if args.tls {
        let hosts = ["127.0.0.1".to_string(), "localhost".to_string()];
        crate::dev_certs::ensure(&dir.join("certs"), args.nodes, &hosts)?;
    }
    let exe = std::env::current_exe().context("find the tideline binary")?;

    let mut children: Vec<Child> = Vec::new();
    let result = start_all(&exe, &dir, &state, args.tls, &mut children).await;
    if result.is_ok() {
        tokio::signal::ctrl_c().await.context("wait for Ctrl-C")?;
        eprintln!("stopping {} nodes", children.len());
    }
    stop_all(&mut children);
    result
}

async fn start_all(
    exe: &Path,
    dir: &Path,
    state: &DevState,
    tls: bool,
    children: &mut Vec<Child>,
) -> anyhow::Result<()> {
    for i in 0..state.ports.len() {
        let log = std::fs::File::create(dir.join(format!("node{}.log", i + 1))).context("create node log")?;
        let child = Command::new(exe)
            .args(node_args(dir, state, i, tls))
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("spawn node {}", i + 1))?;
        children.push(child);
    }
    let scheme = if tls { "https" } else { "http" };
    let urls: Vec<String> = state.ports.iter().map(|p| format!("{scheme}://127.0.0.1:{p}")).collect();
    for url in &urls {
        wait_healthy(url, &state.admin_token, dir, tls).await?;
    }
    let admin = admin_client(&urls[0], &state.admin_token, dir, tls).build()?;
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    let (mut status, leader) = loop {
        let s = admin.cluster_status().await.map_err(crate::cluster::refused)?;
        if let Some(leader) = s.leader_id {
            break (s, leader);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("no leader within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for i in 1..state.ports.len() {
        let id = i as u64 + 1;
        let member = status.nodes.iter().any(|n| n.node_id == id && n.voter);
        if !member {
            let req = AddNodeRequest { node_id: id, addr: format!("127.0.0.1:{}", state.ports[i]) };
            status = admin
                .add_node(&req)
                .await
                .map_err(crate::cluster::refused)
                .with_context(|| format!("add node {id}"))?;
        }
    }
    let leader = status.leader_id.unwrap_or(leader);
    println!("tideline dev-cluster: {} nodes, leader is node {leader}", urls.len());
    for (i, url) in urls.iter().enumerate() {
        println!(
            "  node {}  {url}  pid {}  log {}",
            i + 1,
            children[i].id(),
            dir.join(format!("node{}.log", i + 1)).display()
        );
    }
    println!("admin token: {}", state.admin_token);
    if tls {
        println!("CA certificate (clients: --ca-cert): {}", dir.join("certs").join("ca.pem").display());
    }
    println!("restart a node by hand with:");
    for i in 0..urls.len() {
        println!("  {} {}", exe.display(), node_args(dir, state, i, tls).join(" "));
    }
    println!("Ctrl-C stops the nodes this command started.");
    Ok(())
}

fn stop_all(children: &mut [Child]) {
    for c in children.iter_mut() {
        terminate(c);
    }
    for c in children.iter_mut() {
        let _ = c.wait();
    }
}

#[cfg(unix)]
fn terminate(c: &mut Child) {
    // SIGTERM lets each node drain requests and stop Raft cleanly.
    let pid = c.id() as libc::pid_t;
    // SAFETY: kill(2) with a pid we spawned and a valid signal number has no memory effects.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        let _ = c.kill();
    }
}

#[cfg(not(unix))]
fn terminate(c: &mut Child) {
    let _ = c.kill();
}
