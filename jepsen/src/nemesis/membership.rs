//! Membership changes through the admin API: remove a voter that is not the leader (and stop
//! it), later start it again with a fresh data dir and `--join` and add it back (learner, then
//! voter), the way an operator replaces a node.

use reqwest::Method;
use serde_json::json;

use crate::client::Answer;
use crate::cluster::Cluster;
use crate::proxy::NodeId;

/// The voters according to the leader, if there is one that answers.
pub async fn voters(c: &Cluster) -> Option<Vec<NodeId>> {
    let leader = c.leader().await?;
    let s = c.status_of(leader).await?;
    Some(s["nodes"].as_array()?.iter().filter(|n| n["voter"] == true).filter_map(|n| n["node_id"].as_u64()).collect())
}

/// `DELETE /api/v1/cluster/nodes/{id}` on the leader.
pub async fn remove(c: &Cluster, id: NodeId) -> Answer {
    c.admin_call(Method::DELETE, &format!("/api/v1/cluster/nodes/{id}"), None).await
}

/// Brings every node the harness owns back into the membership: a node the leader does not
/// count as a voter is restarted with a fresh data dir and `--join`, then added. Returns the
/// ids it re-added.
pub async fn restore(c: &mut Cluster) -> anyhow::Result<Vec<NodeId>> {
    let current = voters(c).await.ok_or_else(|| anyhow::anyhow!("no leader to ask for the membership"))?;
    let missing: Vec<NodeId> = c.ids().into_iter().filter(|id| !current.contains(id)).collect();
    for id in &missing {
        c.rejoin_fresh(*id).await?;
        let addr = c.node(*id).peer_addr();
        // The leader may change under us; a few bounded attempts.
        let mut last = String::new();
        let mut added = false;
        for _ in 0..5 {
            let a =
                c.admin_call(Method::POST, "/api/v1/cluster/nodes", Some(json!({ "node_id": id, "addr": addr }))).await;
            match a {
                Answer::Ok(_) => {
                    added = true;
                    break;
                }
                other => {
                    last = other.error_text().unwrap_or_default();
                    if voters(c).await.is_some_and(|v| v.contains(id)) {
                        added = true;
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
        if !added {
            anyhow::bail!("could not add node {id} back: {last}");
        }
    }
    Ok(missing)
}
