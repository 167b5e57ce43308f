//! `tideline server`: opens the store, starts Raft, serves the API, stops cleanly on signals.
//!
//! ```text
//! data dir/
//!   db/          RocksDB: raft log + state machine
//!   snapshots/   state-machine snapshot files
//!   objects/     local object store (blobs/sha256/…)
//!   admin.token  generated admin token (0600), if none was given
//! ```

use std::sync::Arc;

use anyhow::Context;
use axum::serve::ListenerExt;
use tideline_api::{AppState, Ops};
use tideline_raft::{CompactionConfig, GcConfig, RaftNode, RaftNodeConfig, SystemClock};
use tideline_storage::{Db, StateMachine};

pub use crate::config::ServerArgs;

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let args = args.resolve()?;
    tideline_api::process::set_build(env!("CARGO_PKG_VERSION"), env!("TIDELINE_COMMIT"));
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("create data dir {}", args.data_dir.display()))?;
    let admin_token = crate::admin_token::resolve(&args.data_dir, args.admin_token.clone())?;

    let db = Db::open(&args.data_dir.join("db")).context("open database")?;
    let started = std::time::Instant::now();
    let report = StateMachine::new(db.clone()).verify().context("verify stored state")?;
    tracing::info!(?report, elapsed_ms = started.elapsed().as_millis() as u64, "verified stored state");

    // Read the TLS files before anything starts: a bad path or key stops the node here.
    let (server_tls, peer_tls) = match &args.tls {
        None => (None, None),
        Some(t) => (
            Some(tideline_api::tls::server_config(t).context("TLS")?),
            t.peer_client_config().context("peer TLS")?.map(Arc::new),
        ),
    };
    let blobs = crate::config::object_store(args.object_store.as_deref(), args.s3_endpoint.as_deref(), &args.data_dir)?;
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listen on {}", args.listen))?;
    let addr = listener.local_addr().context("read listen address")?;

    let advertise = args.advertise.clone().unwrap_or_else(|| addr.to_string());
    // A node without peers still gets a secret: its /raft endpoints must never be open.
    let secret = args.cluster_secret.clone().unwrap_or_else(|| hex::encode(rand::random::<[u8; 32]>()));
    #[allow(unused_mut)]
    let mut cfg = RaftNodeConfig {
        initial_members: args.peers.clone(),
        bootstrap: !args.join,
        cluster_secret: secret.clone(),
        snapshot_logs_since_last: args.snapshot_logs,
        logs_kept_after_snapshot: args.snapshot_keep_logs,
        proposals_in_flight: args.proposals_in_flight,
        peer_tls: peer_tls.clone(),
        ..RaftNodeConfig::single(args.node_id, advertise.clone(), args.data_dir.join("snapshots"))
    };
    #[cfg(feature = "planted-bugs")]
    {
        cfg.planted_ack_batch_before_commit = args.planted_bugs.ack_batch_before_commit;
    }
    let node = RaftNode::start(cfg, db).await.context("start raft")?;
    // Every operation, the collector and the compactor read this one clock.
    let ops = Ops::new(node.clone(), blobs, Arc::new(SystemClock));
    #[cfg(feature = "planted-bugs")]
    let ops = {
        if args.planted_bugs.ack_before_commit {
            tracing::warn!("PLANTED BUG ack-before-commit is on: file writes are acknowledged before they commit");
        }
        if args.planted_bugs.ack_batch_before_commit {
            tracing::warn!(
                "PLANTED BUG ack-batch-before-commit is on: batched proposals are acknowledged before they commit"
            );
        }
        ops.with_planted(args.planted_bugs)
    };
    ops.spawn_compactor(CompactionConfig {
        retain_entries: args.journal_retain_entries,
        interval: args.compaction_interval,
    });
    ops.spawn_collector(GcConfig { interval: args.gc_interval, grace: args.gc_grace });

    let mut state = AppState::new(ops, &admin_token, &secret);
    if peer_tls.is_some() {
        state = state.with_peer_cert_required();
    }
    let app = tideline_api::router(state);
    let scheme = if server_tls.is_some() { "https" } else { "http" };
    println!("tideline listening on {scheme}://{addr}");
    tracing::info!(%addr, %advertise, node_id = args.node_id, data_dir = %args.data_dir.display(), tls = server_tls.is_some(), mutual_tls = peer_tls.is_some(), "serving");
    let serve = async {
        match server_tls {
            Some(config) => {
                let listener = tideline_api::tls::TlsListener::new(listener, config).context("TLS listener")?;
                let app = app.into_make_service_with_connect_info::<tideline_api::tls::Remote>();
                axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await
            }
            None => {
                // Small requests and answers (Raft RPCs, 256-byte writes) must not wait for Nagle.
                let listener = listener.tap_io(|tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "set TCP_NODELAY");
                    }
                });
                axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await
            }
        }
        .context("serve http")
    };
    tokio::select! {
        served = serve => served?,
        () = raft_stopped(&node) => {
            // A node whose Raft core died (a fatal storage error) must not go on answering as
            // if it were a member: exit, so its supervisor restarts it and it catches up.
            anyhow::bail!("raft stopped on a fatal error (logged above); exiting so the node can be restarted");
        }
    }
    tracing::info!("shutting down raft");
    node.shutdown().await;
    Ok(())
}

/// Resolves when the Raft core has exited (its metrics channel closes), looking once every
/// [`RAFT_STOPPED_POLL`]. Not `changed().await` in a loop: the core publishes metrics on every
/// append, commit and apply, and that would wake this task (often on the other thread) for
/// each of them, for nothing.
async fn raft_stopped(node: &RaftNode) {
    let metrics = node.raft().metrics();
    let mut tick = tokio::time::interval(RAFT_STOPPED_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if metrics.has_changed().is_err() {
            return;
        }
    }
}

/// How often [`raft_stopped`] looks: a dead core answers nothing meanwhile, and its supervisor
/// restarts the process a moment later either way.
const RAFT_STOPPED_POLL: std::time::Duration = std::time::Duration::from_millis(200);

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
