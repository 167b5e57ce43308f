//! [`Ops`]: the context every operation takes — the Raft node, the blob store (content by
//! address and named objects such as manifests), the injected clock, and the proposer every
//! command goes through.

use std::sync::Arc;

use tideline_raft::typ::{Node, NodeId};
use tideline_raft::{Clock, RaftNode};
use tideline_storage::{BlobStore, Command, Response};

use super::proposer::{Propose, RaftProposer};
use crate::error::ApiResult;

/// Wakes on every change of this node's Raft metrics (the applied index among them).
pub type AppliedWatch = tokio::sync::watch::Receiver<openraft::RaftMetrics<NodeId, Node>>;

/// What the operations share; cheap to clone (handles only).
#[derive(Clone)]
pub struct Ops {
    node: RaftNode,
    blobs: BlobStore,
    clock: Arc<dyn Clock>,
    proposer: Arc<dyn Propose>,
}

impl Ops {
    /// Operations on `node` and `blobs`, reading time from `clock`, proposing through Raft.
    pub fn new(node: RaftNode, blobs: BlobStore, clock: Arc<dyn Clock>) -> Self {
        let proposer = Arc::new(RaftProposer::new(node.clone()));
        Ops { node, blobs, clock, proposer }
    }

    /// Wraps the proposer every operation proposes through (a planted bug, a test's fault).
    pub fn wrap_proposer(mut self, wrap: impl FnOnce(Arc<dyn Propose>) -> Arc<dyn Propose>) -> Self {
        self.proposer = wrap(self.proposer);
        self
    }

    pub fn node(&self) -> &RaftNode {
        &self.node
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The injected clock's reading, milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A watch on this node's Raft metrics; subscribe before a read so an apply after it wakes you.
    pub fn applied_watch(&self) -> AppliedWatch {
        self.node.raft().metrics()
    }

    /// Proposes a command; a refusal by the state machine becomes its HTTP error.
    pub async fn propose(&self, cmd: impl Into<Command>) -> ApiResult<Response> {
        self.proposer.propose(cmd.into()).await
    }
}
