//! `tideline cluster status | add-node | remove-node`: membership from the command line.
//!
//! `status` asks every member for its own view (like `etcdctl endpoint status -w table`): the
//! node named by `--server` gives the membership, then each member is asked directly, so a
//! row shows what that node itself knows — its role, term, log and applied index — and a node
//! that does not answer shows its error instead of stale numbers.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;
use tideline_client::{Client, ClientError, RetryPolicy};
use tideline_types::wire::{AddNodeRequest, ClusterStatus};

#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// Any node of the cluster (membership changes are sent on to the leader).
    #[arg(long, env = "TIDELINE_SERVER", default_value_t = crate::default_server_url(), global = true)]
    server: String,
    /// Admin token.
    #[arg(long, env = "TIDELINE_ADMIN_TOKEN", hide_env_values = true, global = true)]
    admin_token: Option<String>,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Every member's own view: role, term, last log and applied index, replication lag.
    Status {
        /// The statuses as JSON (one object per member, with `error` for one that did not answer).
        #[arg(long)]
        json: bool,
    },
    /// Add a node (started with `--join`): it joins as a learner, catches up, becomes a voter.
    AddNode {
        #[arg(long)]
        node_id: u64,
        /// The address the new node advertises (host:port).
        #[arg(long)]
        addr: String,
    },
    /// Remove a node from the cluster.
    RemoveNode { node_id: u64 },
}

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let token =
        args.admin_token.ok_or_else(|| anyhow::anyhow!("--admin-token (or TIDELINE_ADMIN_TOKEN) is required"))?;
    let client = Client::new(&args.server, &token)?;
    // Membership changes run on the leader: the client follows the node's leader hint.
    let status = match args.command {
        ClusterCommand::Status { json } => {
            // Members are asked the way the given node was: over TLS if it was.
            let scheme = if args.server.trim_start().starts_with("https://") { "https" } else { "http" };
            return status(&client, &token, scheme, json).await;
        }
        ClusterCommand::AddNode { node_id, addr } => client.add_node(&AddNodeRequest { node_id, addr }).await,
        ClusterCommand::RemoveNode { node_id } => client.remove_node(node_id).await,
    }
    .map_err(refused)?;
    let data = serde_json::to_value(&status).context("encode the cluster status")?;
    println!("{}", serde_json::to_string_pretty(&data)?);
    Ok(())
}

/// How long one member may take to answer `status`: a partitioned node must not hold up the rest.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(3);

/// One row of `cluster status`: a member as the membership names it, and what it said itself.
#[derive(Serialize)]
struct MemberStatus {
    node_id: u64,
    addr: String,
    voter: bool,
    /// The leader's replication lag for this member (entries), if the leader was asked.
    lag: Option<u64>,
    #[serde(flatten)]
    status: Option<ClusterStatus>,
    error: Option<String>,
}

async fn status(client: &Client, token: &str, scheme: &str, json: bool) -> anyhow::Result<()> {
    let first = client.cluster_status().await.map_err(refused)?;
    // The leader knows every member's lag; ask it when the first node is not the leader.
    let leader_view = match first.nodes.iter().find(|n| n.leader) {
        Some(l) if l.node_id != first.node_id => member(token, scheme, &l.addr).await.ok(),
        _ => Some(first.clone()),
    };
    let mut rows = Vec::new();
    for node in &first.nodes {
        let asked =
            if node.node_id == first.node_id { Ok(first.clone()) } else { member(token, scheme, &node.addr).await };
        let lag = leader_view.as_ref().and_then(|l| l.nodes.iter().find(|n| n.node_id == node.node_id)?.lag);
        let (status, error) = match asked {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        rows.push(MemberStatus {
            node_id: node.node_id,
            addr: node.addr.clone(),
            voter: node.voter,
            lag,
            status,
            error,
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", table(&rows));
    }
    Ok(())
}

/// One member's own status, asked of it directly, once, within [`MEMBER_TIMEOUT`].
async fn member(token: &str, scheme: &str, addr: &str) -> Result<ClusterStatus, ClientError> {
    let url = if addr.contains("://") { addr.to_string() } else { format!("{scheme}://{addr}") };
    let one = Client::builder(&url, token)
        .connect_timeout(MEMBER_TIMEOUT)
        .request_timeout(MEMBER_TIMEOUT)
        .retry(RetryPolicy::none())
        .leader_hops_max(0)
        .build()?;
    one.cluster_status().await
}

/// The rows as an aligned text table with a header.
fn table(rows: &[MemberStatus]) -> String {
    let header = ["NODE", "ADDRESS", "ROLE", "VOTER", "TERM", "LAST LOG", "APPLIED", "LAG", "ERROR"];
    let dash = || "-".to_string();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let s = r.status.as_ref();
            vec![
                r.node_id.to_string(),
                r.addr.clone(),
                s.map(|s| s.state.to_lowercase()).unwrap_or_else(dash),
                if r.voter { "yes" } else { "no" }.to_string(),
                s.map(|s| s.term.to_string()).unwrap_or_else(dash),
                s.map(|s| s.last_log_index.to_string()).unwrap_or_else(dash),
                s.map(|s| s.applied_index.to_string()).unwrap_or_else(dash),
                r.lag.map(|l| l.to_string()).unwrap_or_else(dash),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    crate::table::render(&header, &cells)
}

/// A failed admin call for the terminal: a refusal names the status the server answered.
pub fn refused(e: ClientError) -> anyhow::Error {
    match e.status {
        Some(status) => anyhow::anyhow!("server refused: {status}: {}", e.message),
        None => anyhow::Error::new(e),
    }
}
