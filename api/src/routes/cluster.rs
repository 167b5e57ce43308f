//! `/api/v1/cluster…` (admin): where the cluster stands, and membership changes
//! ([`ops::cluster`](crate::ops::cluster): they run on the leader; another node answers 503
//! naming the leader).

use std::collections::BTreeSet;

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::envelope::ok;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::openapi::Success;
use crate::ops::cluster;
use crate::state::AppState;
use crate::wire::{AddNodeRequest, ClusterStatus};

/// The cluster as this node sees it.
pub fn status(st: &AppState) -> Value {
    let m = st.ops.node().metrics();
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

#[utoipa::path(get, path = "/cluster", tag = "cluster", summary = "This node's view of the cluster (admin)",
    responses((status = 200, description = "Status", body = Success<ClusterStatus>)))]
pub async fn get(State(st): State<AppState>, principal: Principal) -> ApiResult<impl IntoResponse> {
    principal.require_admin()?;
    Ok(ok(status(&st)))
}

#[derive(Deserialize)]
pub struct AddNode {
    node_id: u64,
    addr: String,
}

/// Adds a node: first as a learner (waits until it caught up), then as a voter.
#[utoipa::path(post, path = "/cluster/nodes", tag = "cluster", summary = "Add a node as a voter (admin)",
    request_body(content = AddNodeRequest),
    responses((status = 200, description = "Status after the change", body = Success<ClusterStatus>)))]
pub async fn add_node(
    State(st): State<AppState>,
    principal: Principal,
    Json(body): Json<AddNode>,
) -> ApiResult<impl IntoResponse> {
    principal.require_admin()?;
    if body.node_id == 0 || body.addr.trim().is_empty() {
        return Err(ApiError::bad_request("node_id (> 0) and addr are required"));
    }
    cluster::add_node(&st.ops, body.node_id, body.addr.trim().to_string()).await?;
    Ok(ok(status(&st)))
}

#[utoipa::path(delete, path = "/cluster/nodes/{node_id}", tag = "cluster", summary = "Remove a node (admin)",
    params(("node_id" = u64, Path, description = "The node's id")),
    responses((status = 200, description = "Status after the change", body = Success<ClusterStatus>)))]
pub async fn remove_node(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<u64>,
) -> ApiResult<impl IntoResponse> {
    principal.require_admin()?;
    cluster::remove_node(&st.ops, id).await?;
    Ok(ok(status(&st)))
}
