//! `tideline`: the server and the command-line client.
//!
//! ```text
//! tideline server [--data-dir DIR] [--listen ADDR] [--admin-token T]
//! tideline token create --team T --permission P… [--server URL] [--admin-token T]
//! ```

mod admin_token;
mod config;
mod server;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tideline", version, about = "A Raft-replicated journal server for workspace volumes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Tideline node.
    Server(server::ServerArgs),
    /// Manage API tokens on a running server.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    match Cli::parse().command {
        Command::Server(args) => server::run(args).await,
        Command::Token { command } => token::run(command).await,
    }
}

/// Defaults shared by the server and the clients.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";

pub fn default_data_dir() -> PathBuf {
    PathBuf::from("./tideline-data")
}

pub fn default_server_url() -> String {
    format!("http://{}", DEFAULT_LISTEN.parse::<SocketAddr>().expect("valid default address"))
}
