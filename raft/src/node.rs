//! [`RaftNode`]: a running Raft member, the one door every mutation goes through.
//!
//! `propose` waits a bounded time for a leader and for the commit; it never hangs and never
//! reports success for a command that was not applied. `read_barrier` makes the next read
//! linearizable (read-index on the leader).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, ForwardToLeader, RaftError};
use openraft::{Config, RaftMetrics, SnapshotPolicy};
use tideline_storage::{Command, Db, Response, StateMachine};
use tokio::time::Instant;

use crate::log_store::LogStore;
use crate::network::NoPeers;
use crate::state_machine::StateMachineStore;
use crate::typ::*;

/// How long a proposal or read barrier may wait for a leader and a commit.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct RaftNodeConfig {
    pub node_id: NodeId,
    /// The address peers and clients reach this node at.
    pub advertise_addr: String,
    /// Where snapshot files are kept.
    pub snapshot_dir: PathBuf,
    /// Initialize a one-node cluster if this node has never been initialized.
    pub bootstrap_single: bool,
    /// Build a snapshot (and purge the log before it) after this many applied entries.
    pub snapshot_logs_since_last: u64,
    /// Log entries kept before the latest snapshot when purging (for lagging followers).
    pub logs_kept_after_snapshot: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// No leader could take the request in time, or the node is shutting down: retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Another node leads; the request must go there.
    #[error("not the leader; leader is node {leader_id:?} at {leader_addr:?}")]
    NotLeader {
        leader_id: Option<NodeId>,
        leader_addr: Option<String>,
    },
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
}

impl RaftNode {
    pub async fn start(cfg: RaftNodeConfig, db: Db) -> Result<RaftNode, StartError> {
        let config = Config {
            cluster_name: "tideline".into(),
            heartbeat_interval: 100,
            election_timeout_min: 400,
            election_timeout_max: 800,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: cfg.logs_kept_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Raft(e.to_string()))?;
        let log = LogStore::new(db.clone());
        let sm_store = StateMachineStore::open(db, &cfg.snapshot_dir)?;
        let sm = sm_store.state_machine();
        let raft = Raft::new(cfg.node_id, Arc::new(config), NoPeers, log, sm_store)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        if cfg.bootstrap_single
            && !raft
                .is_initialized()
                .await
                .map_err(|e| StartError::Raft(e.to_string()))?
        {
            let members = BTreeMap::from([(
                cfg.node_id,
                Node {
                    addr: cfg.advertise_addr.clone(),
                },
            )]);
            raft.initialize(members)
                .await
                .map_err(|e| StartError::Raft(e.to_string()))?;
            tracing::info!(node_id = cfg.node_id, "initialized a one-node cluster");
        }
        Ok(RaftNode {
            inner: Arc::new(Inner {
                id: cfg.node_id,
                raft,
                sm,
            }),
        })
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The state machine's read side.
    pub fn state_machine(&self) -> &StateMachine {
        &self.inner.sm
    }

    pub fn metrics(&self) -> RaftMetrics<NodeId, Node> {
        self.inner.raft.metrics().borrow().clone()
    }

    /// Proposes a command and returns what applying it produced.
    pub async fn propose(&self, cmd: Command) -> Result<Response, ProposeError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        loop {
            let attempt =
                tokio::time::timeout_at(deadline, self.inner.raft.client_write(cmd.clone())).await;
            match attempt {
                Err(_) => {
                    return Err(ProposeError::Unavailable(
                        "timed out waiting for the commit".into(),
                    ))
                }
                Ok(Ok(resp)) => return Ok(resp.data),
                Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                    self.await_leader(f, deadline).await?
                }
                Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                    return Err(ProposeError::Unavailable(e.to_string()))
                }
                Ok(Err(RaftError::Fatal(e))) => {
                    return Err(ProposeError::Unavailable(e.to_string()))
                }
            }
        }
    }

    /// Returns once this node's state machine reflects every write committed before the call.
    pub async fn read_barrier(&self) -> Result<(), ProposeError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        loop {
            let attempt =
                tokio::time::timeout_at(deadline, self.inner.raft.ensure_linearizable()).await;
            match attempt {
                Err(_) => {
                    return Err(ProposeError::Unavailable(
                        "timed out confirming leadership".into(),
                    ))
                }
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                    self.await_leader(f, deadline).await?
                }
                Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e)))) => {
                    return Err(ProposeError::Unavailable(e.to_string()))
                }
                Ok(Err(RaftError::Fatal(e))) => {
                    return Err(ProposeError::Unavailable(e.to_string()))
                }
            }
        }
    }

    /// After a `ForwardToLeader`: if another node leads, say so; if nobody does yet (an
    /// election is under way), wait until someone does or the deadline passes.
    async fn await_leader(
        &self,
        f: ForwardToLeader<NodeId, Node>,
        deadline: Instant,
    ) -> Result<(), ProposeError> {
        if let Some(leader) = f.leader_id.filter(|l| *l != self.inner.id) {
            return Err(ProposeError::NotLeader {
                leader_id: Some(leader),
                leader_addr: f.leader_node.map(|n| n.addr),
            });
        }
        // Back off a little: a leader that just stepped down reports itself for a moment.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut rx = self.inner.raft.metrics();
        let waited = tokio::time::timeout_at(deadline, rx.wait_for(|m| m.current_leader.is_some()))
            .await
            .map(|r| r.map(|_| ()));
        match waited {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ProposeError::Unavailable("raft is shutting down".into())),
            Err(_) => Err(ProposeError::Unavailable(
                "no leader elected in time".into(),
            )),
        }
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}
