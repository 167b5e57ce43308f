//! [`Propose`]: the one door every operation's command goes through, and [`RaftProposer`], the
//! real one. Anything that must change how commands are proposed — the planted bugs of the
//! jepsen calibration, a test that refuses one step of a protocol — wraps this door instead of
//! branching inside an operation.

use futures::future::BoxFuture;
use tideline_raft::RaftNode;
use tideline_storage::{Command, Response};

use crate::error::ApiResult;

/// Proposes a command and returns what applying it produced; a refusal by the state machine is
/// its [`ApiError`](crate::ApiError), a proposal that could not commit is `unavailable`.
pub trait Propose: Send + Sync + 'static {
    fn propose(&self, cmd: Command) -> BoxFuture<'_, ApiResult<Response>>;
}

/// Proposes through this node's [`RaftNode`]: forwarded to the leader, group-committed,
/// answered once applied here.
pub struct RaftProposer {
    node: RaftNode,
}

impl RaftProposer {
    pub fn new(node: RaftNode) -> Self {
        RaftProposer { node }
    }
}

impl Propose for RaftProposer {
    fn propose(&self, cmd: Command) -> BoxFuture<'_, ApiResult<Response>> {
        Box::pin(async move { Ok(self.node.propose(cmd).await?.into_result()?) })
    }
}
