//! `tideline cluster status | add-node | remove-node`: membership from the command line.

use anyhow::Context;
use clap::{Args, Subcommand};
use tideline_client::{Client, ClientError};
use tideline_types::wire::AddNodeRequest;

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
    let client = Client::new(&args.server, &token)?;
    // Membership changes run on the leader: the client follows the node's leader hint.
    let status = match args.command {
        ClusterCommand::Status => client.cluster_status().await,
        ClusterCommand::AddNode { node_id, addr } => client.add_node(&AddNodeRequest { node_id, addr }).await,
        ClusterCommand::RemoveNode { node_id } => client.remove_node(node_id).await,
    }
    .map_err(refused)?;
    let data = serde_json::to_value(&status).context("encode the cluster status")?;
    println!("{}", serde_json::to_string_pretty(&data)?);
    Ok(())
}

/// A failed admin call for the terminal: a refusal names the status the server answered.
pub fn refused(e: ClientError) -> anyhow::Error {
    match e.status {
        Some(status) => anyhow::anyhow!("server refused: {status}: {}", e.message),
        None => anyhow::Error::new(e),
    }
}
