//! `tideline token create`: asks a server (with the admin token) for a new team token.

use anyhow::Context;
use clap::Subcommand;
use tideline_client::Client;
use tideline_types::wire::TokenRequest;

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
            let req = TokenRequest { team_id: team, permissions, subject };
            let created =
                Client::new(&server, &admin_token)?.create_token(&req).await.map_err(crate::cluster::refused)?;
            let data = serde_json::to_value(&created).context("encode the token")?;
            println!("{}", serde_json::to_string_pretty(&data)?);
            Ok(())
        }
    }
}
