//! [`RaftNode`]: a running Raft member, the one door every mutation goes through.
//!
//! ```text
//!  propose(cmd) ──▶ Proposer (group commit) ──leader here──▶ client_write(one entry) ──▶ Response
//!                                   │leader elsewhere
//!                                   └──▶ POST /raft/propose, the whole batch (retried across an election)
//!  read_barrier ──▶ ReadIndex (one round for every read waiting) ──leader──▶ heartbeat quorum
//!                                   │follower
//!                                   └──▶ POST /raft/read-index to the leader; then wait until applied
//! ```
//!
//! Every wait is bounded by [`PROPOSE_TIMEOUT`]: without a quorum the caller gets
//! `Unavailable`, never a hang and never a false success.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, InitializeError, RaftError};
use openraft::{Config, RaftMetrics, SnapshotPolicy};
use tideline_storage::{Command, Db, Response, StateMachine};
use tokio::time::Instant;

use crate::http_network::HttpNetwork;
use crate::log_store::LogStore;
use crate::peer_client::{FaultFilter, PeerClient};
use crate::proposer::{known_leader, refused, Failed, Proposer};
use crate::read_index::ReadIndex;
use crate::rpc::ReadIndexResponse;
use crate::state_machine::StateMachineStore;
use crate::typ::*;

/// How long a proposal or read barrier may wait for a leader and a commit.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Entries in one AppendEntries, at most: each may be a batch of up to
/// [`BATCH_BYTES_MAX`](crate::proposer::BATCH_BYTES_MAX) bytes.
const MAX_PAYLOAD_ENTRIES: u64 = 48;
const _: () = assert!(
    MAX_PAYLOAD_ENTRIES as usize * (crate::proposer::BATCH_BYTES_MAX + 64 * 1024)
        < crate::peer_client::PEER_BODY_BYTES_MAX
);
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
    /// Build a snapshot (and purge the log before it) after at least this many applied entries;
    /// a large store waits longer (see `snapshot_policy`).
    pub snapshot_logs_since_last: u64,
    /// Log entries kept before the latest snapshot when purging (for lagging followers).
    pub logs_kept_after_snapshot: u64,
    pub heartbeat_ms: u64,
    pub election_timeout_ms: (u64, u64),
    /// Batched entries the proposer commits at once.
    pub proposals_in_flight: usize,
    /// Node-to-node calls over TLS with this configuration (the node certificate as client
    /// certificate, the cluster CA as the only trust); `None`: plain HTTP.
    pub peer_tls: Option<Arc<rustls::ClientConfig>>,
    /// Planted bug (jepsen calibration, feature `planted-bugs`): the proposer answers the
    /// callers of a batch before its entry is committed.
    #[cfg(feature = "planted-bugs")]
    pub planted_ack_batch_before_commit: bool,
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
            proposals_in_flight: crate::proposer::IN_FLIGHT_DEFAULT,
            peer_tls: None,
            #[cfg(feature = "planted-bugs")]
            planted_ack_batch_before_commit: false,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
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
    proposer: Proposer,
    /// Reads on this node: confirmed here if it leads, else asked of the leader.
    read_index: ReadIndex,
    /// Followers' read-index calls: confirmed here, never forwarded again (two nodes with stale
    /// views of the leader must not wait on each other).
    leader_read_index: ReadIndex,
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
            // Decided by `snapshot_policy`, which weighs the log against the state's size.
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: cfg.logs_kept_after_snapshot,
            // Entries are batches of up to BATCH_BYTES_MAX: keep one AppendEntries body well
            // inside the peer body limit.
            max_payload_entries: MAX_PAYLOAD_ENTRIES,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Raft(e.to_string()))?;
        let policy_db = db.clone();
        let log = LogStore::new(db.clone());
        let committed = log.committed_index();
        let sm_store = StateMachineStore::open(db, &cfg.snapshot_dir)?;
        let sm = sm_store.state_machine();
        let peers = PeerClient::new(cfg.node_id, &cfg.cluster_secret, faults, cfg.peer_tls.clone());
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
        #[cfg(feature = "planted-bugs")]
        let planted = cfg.planted_ack_batch_before_commit;
        #[cfg(not(feature = "planted-bugs"))]
        let planted = false;
        tokio::spawn(crate::snapshot_policy::run(raft.clone(), policy_db, cfg.snapshot_logs_since_last));
        let proposer = Proposer::start(cfg.node_id, raft.clone(), peers.clone(), cfg.proposals_in_flight, planted);
        let read_index = ReadIndex::new({
            let (id, raft, peers) = (cfg.node_id, raft.clone(), peers.clone());
            move || confirm_read_index(id, raft.clone(), Some(peers.clone()))
        });
        let leader_read_index = ReadIndex::new({
            let (id, raft) = (cfg.node_id, raft.clone());
            move || confirm_read_index(id, raft.clone(), None)
        });
        let inner = Inner { id: cfg.node_id, raft, sm, peers, committed, proposer, read_index, leader_read_index };
        Ok(RaftNode { inner: Arc::new(inner) })
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
    /// Retried across an election while it certainly was not committed; an outcome that may
    /// have been committed (a timeout) is the caller's `Unavailable`.
    pub async fn propose(&self, cmd: Command) -> Result<Response, ProposeError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        loop {
            match self.inner.proposer.submit(vec![cmd.clone()], false, deadline).await {
                Ok(mut responses) => return one(responses.pop()),
                Err(Failed { error, retry_safe: true }) => retry_pause(error, deadline).await?,
                Err(Failed { error, .. }) => return Err(error),
            }
        }
    }

    /// Proposes on this node only (it must lead): forwarded proposals and the leader's own
    /// background work. One attempt.
    pub async fn propose_local(&self, cmd: Command) -> Result<Response, ProposeError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        let responses = self.inner.proposer.submit(vec![cmd], true, deadline).await.map_err(|f| f.error)?;
        one(responses.into_iter().next())
    }

    /// Proposes a batch forwarded by another node's proposer on this node only (it must lead);
    /// it joins this node's own group commit. `Err` says whether the sender may try again.
    pub async fn propose_forwarded(&self, commands: Vec<Command>) -> Result<Vec<Response>, Failed> {
        self.inner.proposer.submit(commands, true, Instant::now() + PROPOSE_TIMEOUT).await
    }

    /// Returns once this node's state machine reflects every write committed before the call.
    /// Concurrent callers share one leadership confirmation ([`ReadIndex`]).
    pub async fn read_barrier(&self) -> Result<(), ProposeError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.inner.read_index.get()).await {
                Err(_) => return Err(ProposeError::Unavailable("timed out confirming leadership".into())),
                Ok(Ok(index)) => return self.await_applied(index, deadline).await,
                Ok(Err(Failed { error, .. })) => retry_pause(error, deadline).await?,
            }
        }
    }

    /// On the leader: the log index a linearizable read must see (leadership confirmed).
    /// Concurrent callers (followers' reads) share one confirmation; a node that does not
    /// lead says so instead of asking further.
    pub async fn read_index_local(&self) -> Result<u64, ProposeError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        match tokio::time::timeout_at(deadline, self.inner.leader_read_index.get()).await {
            Err(_) => Err(ProposeError::Unavailable("timed out confirming leadership".into())),
            Ok(Ok(index)) => Ok(index),
            Ok(Err(f)) => Err(f.error),
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

fn one(response: Option<Response>) -> Result<Response, ProposeError> {
    response.ok_or_else(|| ProposeError::Unavailable("a proposal got no response".into()))
}

/// One read-index round: on the leader a heartbeat to a quorum, on a follower (given `peers`)
/// one call to the leader, which shares its own round among the followers asking. Without
/// `peers`, a node that does not lead answers `NotLeader`.
async fn confirm_read_index(id: NodeId, raft: Raft, peers: Option<PeerClient>) -> Result<u64, Failed> {
    let definite = |m: String| Failed { error: ProposeError::Unavailable(m), retry_safe: true };
    let (leader, addr) = known_leader(&raft);
    match (leader, addr, peers) {
        (Some(l), _, _) if l == id => match raft.get_read_log_id().await {
            Ok((read, _applied)) => Ok(read.map(|l| l.index).unwrap_or(0)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => {
                Err(definite("leadership is changing".into()))
            }
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => Err(definite(e.to_string())),
            Err(RaftError::Fatal(e)) => Err(definite(e.to_string())),
        },
        (Some(l), addr, None) => {
            Err(Failed { error: ProposeError::NotLeader { leader_id: Some(l), leader_addr: addr }, retry_safe: true })
        }
        (Some(l), Some(addr), Some(peers)) => {
            match peers
                .call::<_, ReadIndexResponse>(
                    l,
                    &addr,
                    "/raft/read-index",
                    &ReadIndexResponse::default(),
                    PROPOSE_TIMEOUT,
                )
                .await
            {
                Ok(ReadIndexResponse { refusal: None, read_index }) => Ok(read_index),
                Ok(ReadIndexResponse { refusal: Some(r), .. }) => Err(Failed { error: refused(r), retry_safe: true }),
                Err(e) => Err(definite(e.to_string())),
            }
        }
        _ => Err(definite("no leader is known yet".into())),
    }
}
