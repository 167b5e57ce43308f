//! `/api/v1/cluster…` (admin): where the cluster stands, and membership changes.
//! Membership changes run on the leader; another node answers 503 naming the leader.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use openraft::ChangeMembers;
use serde::Deserialize;
use serde_json::{json, Value};
use tideline_raft::typ::Node;

use crate::auth::Principal;
use crate::envelope::ok;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;

/// The cluster as this node sees it.
pub fn status(st: &AppState) -> Value {
    let m = st.node.metrics();
    let leader = m.current_leader;
    let membership = m.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
    let last_log = m.last_log_index.unwrap_or(0);
    let nodes: Vec<Value> = membership
        .nodes()
        .map(|(id, n)| {
            let matched = m.replication.as_ref().and_then(|r| r.get(id)).and_then(|l| l.map(|l| l.index));
            json!({
                "node_id": id,
                "addr": n.addr,
                "voter": voters.contains(id),
                "leader": leader == Some(*id),
                "matched_index": matched,
                "lag": matched.map(|x| last_log.saturating_sub(x)),
            })
        })
        .collect();
    json!({
        "node_id": m.id,
        "state": format!("{:?}", m.state),
        "leader_id": leader,
        "term": m.current_term,
        "last_log_index": last_log,
        "committed_index": m.replication.as_ref().map(|_| applied),
        "applied_index": applied,
        "apply_lag": last_log.saturating_sub(applied),
        "snapshot_index": m.snapshot.map(|l| l.index),
        "purged_index": m.purged.map(|l| l.index),
        "nodes": nodes,
    })
}

pub async fn get(State(st): State<AppState>, principal: Principal) -> ApiResult<impl IntoResponse> {
    principal.require_admin()?;
    Ok(ok(status(&st)))
}

fn not_leader(st: &AppState) -> ApiError {
    let m = st.node.metrics();
    let leader = m.current_leader;
    let addr = leader.and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone()));
    ApiError::unavailable("membership changes run on the leader")
        .with_details(json!({ "leader_id": leader, "leader_addr": addr }))
}

fn change_error(
    st: &AppState,
    e: openraft::error::RaftError<u64, openraft::error::ClientWriteError<u64, Node>>,
) -> ApiError {
    use openraft::error::{ClientWriteError, RaftError};
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => not_leader(st),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => ApiError::conflict(e.to_string()),
        RaftError::Fatal(e) => ApiError::unavailable(e.to_string()),
    }
}

#[derive(Deserialize)]
pub struct AddNode {
    node_id: u64,
    addr: String,
}

/// Adds a node: first as a learner (waits until it caught up), then as a voter.
pub async fn add_node(
    State(st): State<AppState>,
    principal: Principal,
    Json(body): Json<AddNode>,
) -> ApiResult<impl IntoResponse> {
    principal.require_admin()?;
    if body.node_id == 0 || body.addr.trim().is_empty() {
        return Err(ApiError::bad_request("node_id (> 0) and addr are required"));
    }
    let raft = st.node.raft();
    raft.add_learner(body.node_id, Node { addr: body.addr.trim().to_string() }, true)
        .await
        .map_err(|e| change_error(&st, e))?;
    raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([body.node_id])), false)
        .await
        .map_err(|e| change_error(&st, e))?;
    Ok(ok(status(&st)))
}

pub async fn remove_node(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<u64>,
) -> ApiResult<impl IntoResponse> {
    principal.require_admin()?;
    st.node
        .raft()
        .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
        .await
        .map_err(|e| change_error(&st, e))?;
    Ok(ok(status(&st)))
}
