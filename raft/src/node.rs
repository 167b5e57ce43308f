//! [`RaftNode`]: a running Raft member, the one door every mutation goes through.
//!
//! ```text
//!  propose(cmd) ──▶ leader? ──yes──▶ client_write ──▶ Response
//!                      │no
//!                      └──▶ POST /raft/propose to the leader (retried across an election)
//!  read_barrier ──▶ leader? ──yes──▶ ensure_linearizable
//!                      │no
//!                      └──▶ POST /raft/read-index to the leader, then wait until applied
//! ```
//!
//! Every wait is bounded by [`PROPOSE_TIMEOUT`]: without a quorum the caller gets
//! `Unavailable`, never a hang and never a false success.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, ForwardToLeader, InitializeError, RaftError};
use openraft::{Config, RaftMetrics, SnapshotPolicy};
use tideline_storage::{Command, Db, Response, StateMachine};
use tokio::time::Instant;

use crate::http_network::HttpNetwork;
use crate::log_store::LogStore;
use crate::peer_client::{CallError, FaultFilter, PeerClient};
use crate::rpc::{ProposeResponse, ReadIndexResponse, RemoteRefusal};
use crate::state_machine::StateMachineStore;
use crate::typ::*;

/// How long a proposal or read barrier may wait for a leader and a commit.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between attempts while a leader is being elected.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct RaftNodeConfig {
    pub node_id: NodeId,
    /// The address peers and clients reach this node at.
    pub advertise_addr: String,
    /// Where snapshot files are kept.
    pub snapshot_dir: PathBuf,
    /// The cluster's initial voters (this node included). Empty or only this node: a one-node
    /// cluster. The lowest id initializes the cluster, once, if it never was.
    pub initial_members: BTreeMap<NodeId, String>,
    /// Initialize the cluster if this node has the lowest id among its members and never was.
    /// `false` for a node that joins an existing cluster (added by a membership change).
    pub bootstrap: bool,
    /// Shared secret every node-to-node request carries.
    pub cluster_secret: String,
    /// Build a snapshot (and purge the log before it) after this many applied entries.
    pub snapshot_logs_since_last: u64,
    /// Log entries kept before the latest snapshot when purging (for lagging followers).
    pub logs_kept_after_snapshot: u64,
    pub heartbeat_ms: u64,
    pub election_timeout_ms: (u64, u64),
}

impl RaftNodeConfig {
    /// A one-node cluster with default timing.
    pub fn single(node_id: NodeId, advertise_addr: String, snapshot_dir: PathBuf) -> Self {
        RaftNodeConfig {
            node_id,
            advertise_addr,
            snapshot_dir,
            initial_members: BTreeMap::new(),
            bootstrap: true,
            cluster_secret: String::new(),
            snapshot_logs_since_last: 10_000,
            logs_kept_after_snapshot: 1000,
            heartbeat_ms: 50,
            election_timeout_ms: (250, 500),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// No leader could take the request in time, or the node is shutting down: retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Another node leads; the request must go there.
    #[error("not the leader; leader is node {leader_id:?} at {leader_addr:?}")]
    NotLeader { leader_id: Option<NodeId>, leader_addr: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Storage(#[from] tideline_storage::StorageError),
    #[error("raft: {0}")]
    Raft(String),
}

#[derive(Clone)]
pub struct RaftNode {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    raft: Raft,
    sm: StateMachine,
    peers: PeerClient,
    committed: Arc<std::sync::atomic::AtomicU64>,
}

impl RaftNode {
    pub async fn start(cfg: RaftNodeConfig, db: Db) -> Result<RaftNode, StartError> {
        Self::start_with_faults(cfg, db, FaultFilter::default()).await
    }

    /// Like [`RaftNode::start`], with a fault filter tests can use to cut this node off.
    pub async fn start_with_faults(cfg: RaftNodeConfig, db: Db, faults: FaultFilter) -> Result<RaftNode, StartError> {
        let config = Config {
            cluster_name: "tideline".into(),
            heartbeat_interval: cfg.heartbeat_ms,
            election_timeout_min: cfg.election_timeout_ms.0,
            election_timeout_max: cfg.election_timeout_ms.1,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: cfg.logs_kept_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Raft(e.to_string()))?;
        let log = LogStore::new(db.clone());
        let committed = log.committed_index();
        let sm_store = StateMachineStore::open(db, &cfg.snapshot_dir)?;
        let sm = sm_store.state_machine();
        let peers = PeerClient::new(cfg.node_id, &cfg.cluster_secret, faults);
        let network = HttpNetwork { peers: peers.clone(), self_id: cfg.node_id };
        let raft = Raft::new(cfg.node_id, Arc::new(config), network, log, sm_store)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;

        let mut members: BTreeMap<NodeId, Node> =
            cfg.initial_members.iter().map(|(id, addr)| (*id, Node { addr: addr.clone() })).collect();
        members.entry(cfg.node_id).or_insert_with(|| Node { addr: cfg.advertise_addr.clone() });
        let lowest = *members.keys().next().expect("members has this node");
        if cfg.bootstrap
            && lowest == cfg.node_id
            && !raft.is_initialized().await.map_err(|e| StartError::Raft(e.to_string()))?
        {
            match raft.initialize(members.clone()).await {
                Ok(()) => {
                    tracing::info!(node_id = cfg.node_id, voters = ?members.keys().collect::<Vec<_>>(), "initialized the cluster")
                }
                // Another start (or a vote from a peer) got there first: initialized exactly once.
                Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                    tracing::info!(%e, "cluster already initialized")
                }
                Err(e) => return Err(StartError::Raft(e.to_string())),
            }
        }
        Ok(RaftNode { inner: Arc::new(Inner { id: cfg.node_id, raft, sm, peers, committed }) })
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    pub fn peers(&self) -> &PeerClient {
        &self.inner.peers
    }

    /// The state machine's read side.
    pub fn state_machine(&self) -> &StateMachine {
        &self.inner.sm
    }

    /// The committed log index this node knows of.
    pub fn committed_index(&self) -> u64 {
        self.inner.committed.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn metrics(&self) -> RaftMetrics<NodeId, Node> {
        self.inner.raft.metrics().borrow().clone()
    }

    /// Proposes a command wherever the leader is and returns what applying it produced.
    pub async fn propose(&self, cmd: Command) -> Result<Response, ProposeError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        loop {
            let err = match self.propose_local_until(cmd.clone(), deadline).await {
                Ok(r) => return Ok(r),
                Err(ProposeError::NotLeader { leader_id: Some(id), leader_addr: Some(addr) }) => {
                    match self.forward::<_, ProposeResponse>(id, &addr, "/raft/propose", &cmd, deadline).await {
                        Ok(ProposeResponse { response: Some(r), .. }) => return Ok(r),
                        Ok(ProposeResponse { refusal: Some(r), .. }) => refused(r),
                        Ok(_) => ProposeError::Unavailable("empty forward response".into()),
                        // Unreachable or timed out: the command may or may not have been
                        // committed there; only an unreachable (never sent) one is retried.
                        Err(CallError::Unreachable(m)) => ProposeError::Unavailable(m),
                        Err(e) => return Err(ProposeError::Unavailable(format!("forwarding to the leader: {e}"))),
                    }
                }
                Err(e) => e,
            };
            retry_pause(err, deadline).await?;
        }
    }

    /// Proposes on this node only (it must lead); used for forwarded proposals.
    pub async fn propose_local(&self, cmd: Command) -> Result<Response, ProposeError> {
        self.propose_local_until(cmd, Instant::now() + PROPOSE_TIMEOUT).await
    }

    async fn propose_local_until(&self, cmd: Command, deadline: Instant) -> Result<Response, ProposeError> {
        loop {
            let attempt = tokio::time::timeout_at(deadline, self.inner.raft.client_write(cmd.clone())).await;
            match attempt {
                Err(_) => return Err(ProposeError::Unavailable("timed out waiting for the commit".into())),
                Ok(Ok(resp)) => return Ok(resp.data),
                Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                    self.await_leader(f, deadline).await?
                }
                Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                    return Err(ProposeError::Unavailable(e.to_string()))
                }
                Ok(Err(RaftError::Fatal(e))) => return Err(ProposeError::Unavailable(e.to_string())),
            }
        }
    }

    /// Returns once this node's state machine reflects every write committed before the call.
    pub async fn read_barrier(&self) -> Result<(), ProposeError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        loop {
            let err = match self.read_index_until(deadline).await {
                Ok(index) => return self.await_applied(index, deadline).await,
                Err(ProposeError::NotLeader { leader_id: Some(id), leader_addr: Some(addr) }) => {
                    match self
                        .forward::<_, ReadIndexResponse>(
                            id,
                            &addr,
                            "/raft/read-index",
                            &ReadIndexResponse::default(),
                            deadline,
                        )
                        .await
                    {
                        Ok(ReadIndexResponse { refusal: None, read_index }) => {
                            return self.await_applied(read_index, deadline).await
                        }
                        Ok(ReadIndexResponse { refusal: Some(r), .. }) => refused(r),
                        Err(e) => ProposeError::Unavailable(e.to_string()),
                    }
                }
                Err(e) => e,
            };
            retry_pause(err, deadline).await?;
        }
    }

    /// On the leader: the log index a linearizable read must see (leadership confirmed).
    pub async fn read_index_local(&self) -> Result<u64, ProposeError> {
        self.read_index_until(Instant::now() + PROPOSE_TIMEOUT).await
    }

    async fn read_index_until(&self, deadline: Instant) -> Result<u64, ProposeError> {
        loop {
            let attempt = tokio::time::timeout_at(deadline, self.inner.raft.get_read_log_id()).await;
            match attempt {
                Err(_) => return Err(ProposeError::Unavailable("timed out confirming leadership".into())),
                Ok(Ok((read, _applied))) => return Ok(read.map(|l| l.index).unwrap_or(0)),
                Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                    self.await_leader(f, deadline).await?
                }
                Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e)))) => {
                    return Err(ProposeError::Unavailable(e.to_string()))
                }
                Ok(Err(RaftError::Fatal(e))) => return Err(ProposeError::Unavailable(e.to_string())),
            }
        }
    }

    async fn await_applied(&self, index: u64, deadline: Instant) -> Result<(), ProposeError> {
        let mut rx = self.inner.raft.metrics();
        let waited =
            tokio::time::timeout_at(deadline, rx.wait_for(|m| m.last_applied.map(|l| l.index).unwrap_or(0) >= index))
                .await
                .map(|r| r.map(|_| ()));
        match waited {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ProposeError::Unavailable("raft is shutting down".into())),
            Err(_) => Err(ProposeError::Unavailable(format!("not caught up to index {index} in time"))),
        }
    }

    async fn forward<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        target: NodeId,
        addr: &str,
        path: &str,
        req: &Req,
        deadline: Instant,
    ) -> Result<Resp, CallError> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.inner.peers.call(target, addr, path, req, left).await
    }

    /// After a `ForwardToLeader`: if another node leads, say so; if nobody does yet (an
    /// election is under way), wait until someone does or the deadline passes.
    async fn await_leader(&self, f: ForwardToLeader<NodeId, Node>, deadline: Instant) -> Result<(), ProposeError> {
        if let Some(leader) = f.leader_id.filter(|l| *l != self.inner.id) {
            return Err(ProposeError::NotLeader {
                leader_id: Some(leader),
                leader_addr: f.leader_node.map(|n| n.addr),
            });
        }
        // Back off a little: a leader that just stepped down reports itself for a moment.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut rx = self.inner.raft.metrics();
        let waited =
            tokio::time::timeout_at(deadline, rx.wait_for(|m| m.current_leader.is_some())).await.map(|r| r.map(|_| ()));
        match waited {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ProposeError::Unavailable("raft is shutting down".into())),
            Err(_) => Err(ProposeError::Unavailable("no leader elected in time".into())),
        }
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

/// Pauses before another attempt, or gives `err` up if the deadline would pass first.
async fn retry_pause(err: ProposeError, deadline: Instant) -> Result<(), ProposeError> {
    if Instant::now() + RETRY_PAUSE >= deadline {
        return Err(match err {
            ProposeError::NotLeader { .. } => ProposeError::Unavailable("no reachable leader in time".into()),
            e => e,
        });
    }
    tokio::time::sleep(RETRY_PAUSE).await;
    Ok(())
}

fn refused(r: RemoteRefusal) -> ProposeError {
    match (r.leader_id, r.leader_addr) {
        (Some(id), Some(addr)) => ProposeError::NotLeader { leader_id: Some(id), leader_addr: Some(addr) },
        _ => ProposeError::Unavailable(r.message),
    }
}
