//! What a run ran against, as the checker needs it: the nodes' direct client URLs, the tokens,
//! and the volumes the workloads used.

use serde::{Deserialize, Serialize};

/// One node as a client reaches it directly (never through a fault proxy).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeEndpoint {
    pub id: u64,
    /// `http://127.0.0.1:PORT` — the node's own listener.
    pub url: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    pub nodes: Vec<NodeEndpoint>,
    pub admin_token: String,
    /// A team token with every permission, for the workloads' team.
    pub team_token: String,
    /// Every volume a workload wrote to or read from.
    pub volumes: Vec<String>,
    /// The servers' `--journal-retain-entries` (the compaction window), if set.
    pub retain_entries: Option<u64>,
}
