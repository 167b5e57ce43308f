//! `tideline token create|list|revoke`: manages team tokens on a server with the admin token.

use anyhow::Context;
use clap::{Args, Subcommand};
use tideline_client::Client;
use tideline_types::wire::{TokenInfo, TokenRequest};

/// Where to ask and with what.
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Server to ask.
    #[arg(long, env = "TIDELINE_SERVER", default_value_t = crate::default_server_url())]
    server: String,
    /// Admin token of that server.
    #[arg(long, env = "TIDELINE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
}

impl AdminArgs {
    fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(&self.server, &self.admin_token)?)
    }
}

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
        /// A label for people, shown by `token list`.
        #[arg(long)]
        name: Option<String>,
        /// The token stops working this many seconds after creation.
        #[arg(long = "ttl", value_name = "SECONDS")]
        ttl_seconds: Option<u64>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List tokens (never their secrets), every page.
    List {
        /// Only the tokens of this team.
        #[arg(long)]
        team: Option<String>,
        /// Print JSON rows instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Revoke a token by id: every node refuses it from then on.
    Revoke {
        /// The token's id (`tok-…`, from `token list`).
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Tokens `token list` fetches at most, over all pages.
const LIST_TOKENS_MAX: usize = 100_000;

pub async fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create { team, permissions, subject, name, ttl_seconds, admin } => {
            let req = TokenRequest { team_id: team, permissions, subject, name, ttl_seconds };
            let created = admin.client()?.create_token(&req).await.map_err(crate::cluster::refused)?;
            let data = serde_json::to_value(&created).context("encode the token")?;
            println!("{}", serde_json::to_string_pretty(&data)?);
        }
        TokenCommand::List { team, json, admin } => {
            let client = admin.client()?;
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page =
                    client.list_tokens(team.as_deref(), after.as_deref(), 0).await.map_err(crate::cluster::refused)?;
                all.extend(page.tokens);
                match page.next_cursor {
                    Some(next) if all.len() < LIST_TOKENS_MAX => after = Some(next),
                    _ => break,
                }
            }
            if json {
                for t in &all {
                    println!("{}", serde_json::to_string(t)?);
                }
            } else {
                print!("{}", table(&all));
            }
        }
        TokenCommand::Revoke { id, admin } => {
            let revoked = admin.client()?.revoke_token(&id).await.map_err(crate::cluster::refused)?;
            println!("revoked {} (team {}, {})", revoked.id, revoked.team_id, revoked.permissions.join(","));
        }
    }
    Ok(())
}

fn table(tokens: &[TokenInfo]) -> String {
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            let expires = match (&t.expires_at, t.expired) {
                (None, _) => "never".to_string(),
                (Some(at), true) => format!("{at} (expired)"),
                (Some(at), false) => at.clone(),
            };
            vec![
                t.id.clone(),
                t.team_id.clone(),
                t.name.clone(),
                t.permissions.join(","),
                t.created_at.clone(),
                expires,
            ]
        })
        .collect();
    crate::table::render(&["ID", "TEAM", "NAME", "PERMISSIONS", "CREATED", "EXPIRES"], &rows)
}
