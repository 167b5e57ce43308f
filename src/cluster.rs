//! `tideline cluster status | add-node | remove-node`: membership from the command line.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use crate::client::AdminClient;

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
    /// Nodes, leader, term, commit and applied index, lag.
    Status,
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
    let client = AdminClient::new(&args.server, &token);
    let data = match args.command {
        ClusterCommand::Status => client.call(Method::GET, "/api/v1/cluster", None).await?,
        ClusterCommand::AddNode { node_id, addr } => {
            let body = json!({ "node_id": node_id, "addr": addr });
            client.call(Method::POST, "/api/v1/cluster/nodes", Some(&body)).await?
        }
        ClusterCommand::RemoveNode { node_id } => {
            client.call(Method::DELETE, &format!("/api/v1/cluster/nodes/{node_id}"), None).await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&data)?);
    Ok(())
}
