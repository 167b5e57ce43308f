//! `tideline server`: opens the store, starts Raft, serves the API, stops cleanly on signals.
//!
//! ```text
//! data dir/
//!   db/          RocksDB: raft log + state machine
//!   snapshots/   state-machine snapshot files
//!   objects/     local object store (blobs/sha256/…)
//!   admin.token  generated admin token (0600), if none was given
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tideline_api::AppState;
use tideline_raft::{RaftNode, RaftNodeConfig};
use tideline_storage::{BlobStore, Db, StateMachine};

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Where this node keeps its database, snapshots and local object store.
    #[arg(long, env = "TIDELINE_DATA_DIR", default_value_os_t = crate::default_data_dir())]
    pub data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "TIDELINE_LISTEN", default_value = crate::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Admin token; if absent, read from or generated into <data-dir>/admin.token.
    #[arg(long, env = "TIDELINE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Build a Raft snapshot (and purge the log before it) after this many entries.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_logs: u64,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("create data dir {}", args.data_dir.display()))?;
    let admin_token = crate::admin_token::resolve(&args.data_dir, args.admin_token.clone())?;

    let db = Db::open(&args.data_dir.join("db")).context("open database")?;
    let started = std::time::Instant::now();
    let report = StateMachine::new(db.clone())
        .verify()
        .context("verify stored state")?;
    tracing::info!(
        ?report,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "verified stored state"
    );

    let blobs =
        BlobStore::local(&args.data_dir.join("objects")).context("open local object store")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let addr = listener.local_addr().context("read listen address")?;

    let node = RaftNode::start(
        RaftNodeConfig {
            node_id: 1,
            advertise_addr: addr.to_string(),
            snapshot_dir: args.data_dir.join("snapshots"),
            bootstrap_single: true,
            snapshot_logs_since_last: args.snapshot_logs,
            logs_kept_after_snapshot: 1000,
        },
        db,
    )
    .await
    .context("start raft")?;

    let app = tideline_api::router(AppState::new(node.clone(), blobs, &admin_token));
    println!("tideline listening on http://{addr}");
    tracing::info!(%addr, data_dir = %args.data_dir.display(), "serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serve http")?;
    tracing::info!("shutting down raft");
    node.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("signal received; draining requests");
}
