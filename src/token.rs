//! `tideline token create`: asks a server (with the admin token) for a new team token.

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use crate::client::AdminClient;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a team token; it is printed once.
    Create {
        /// Team the token belongs to.
        #[arg(long)]
        team: String,
        /// Permission to grant (repeat; `*` grants all).
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        /// Subject the token acts as (recorded as volumes' user_id).
        #[arg(long)]
        subject: Option<String>,
        /// Server to ask.
        #[arg(long, env = "TIDELINE_SERVER", default_value_t = crate::default_server_url())]
        server: String,
        /// Admin token of that server.
        #[arg(long, env = "TIDELINE_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
    },
}

pub async fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create { team, permissions, subject, server, admin_token } => {
            let body = json!({ "team_id": team, "permissions": permissions, "subject": subject });
            let data =
                AdminClient::new(&server, &admin_token).call(Method::POST, "/api/v1/tokens", Some(&body)).await?;
            println!("{}", serde_json::to_string_pretty(&data)?);
            Ok(())
        }
    }
}
