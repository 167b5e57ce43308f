//! Membership changes, which run on the leader: adding a node (first a learner that catches up,
//! then a voter) and removing one. Another node answers 503 naming the leader.
//!
//! ```text
//!  add:    add_learner(id, addr, wait until caught up) ─▶ change_membership(+voter id)
//!  remove: change_membership(−voter id)
//! ```
//!
//! An add stopped after its first step leaves a learner, which receives the log and never
//! votes; adding it again goes straight on to the second step.

use std::collections::BTreeSet;

use openraft::error::{ClientWriteError, RaftError};
use openraft::ChangeMembers;
use serde_json::json;
use tideline_raft::typ::{Node, NodeId};

use super::context::Ops;
use crate::error::{ApiError, ApiResult};

/// Adds node `id` at `addr` as a voter.
pub async fn add_node(ops: &Ops, id: NodeId, addr: String) -> ApiResult<()> {
    let raft = ops.node().raft();
    raft.add_learner(id, Node { addr }, true).await.map_err(|e| change_error(ops, e))?;
    raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
        .await
        .map_err(|e| change_error(ops, e))?;
    Ok(())
}

/// Removes voter `id`.
pub async fn remove_node(ops: &Ops, id: NodeId) -> ApiResult<()> {
    ops.node()
        .raft()
        .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
        .await
        .map_err(|e| change_error(ops, e))?;
    Ok(())
}

fn not_leader(ops: &Ops) -> ApiError {
    let m = ops.node().metrics();
    let leader = m.current_leader;
    let addr = leader.and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()));
    ApiError::unavailable("membership changes run on the leader")
        .with_details(json!({ "leader_id": leader, "leader_addr": addr }))
}

fn change_error(ops: &Ops, e: RaftError<NodeId, ClientWriteError<NodeId, Node>>) -> ApiError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => not_leader(ops),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => ApiError::conflict(e.to_string()),
        RaftError::Fatal(e) => ApiError::unavailable(e.to_string()),
    }
}
