//! `tideline token create`: asks a server (with the admin token) for a new team token.

use anyhow::Context;
use clap::Subcommand;
use serde_json::{json, Value};

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
            let url = format!("{}/api/v1/tokens", server.trim_end_matches('/'));
            let resp = reqwest::Client::new()
                .post(&url)
                .bearer_auth(admin_token)
                .json(&json!({ "team_id": team, "permissions": permissions, "subject": subject }))
                .send()
                .await
                .with_context(|| format!("reach {url}"))?;
            let status = resp.status();
            let body: Value = resp.json().await.context("read response")?;
            if !status.is_success() {
                anyhow::bail!(
                    "server refused ({status}): {}",
                    body["error"]["message"].as_str().unwrap_or("unknown error")
                );
            }
            println!("{}", serde_json::to_string_pretty(&body["data"])?);
            Ok(())
        }
    }
}
