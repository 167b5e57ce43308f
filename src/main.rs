//! `tideline`: the server and the command-line client.
//!
//! ```text
//! tideline server [--data-dir DIR] [--listen ADDR] [--admin-token T]
//! tideline token create --team T --permission P… [--name N] [--ttl S] | list [--team T] [--json] | revoke ID
//!                [--server URL] [--admin-token T]
//! tideline cluster status | add-node --node-id N --addr A | remove-node N
//! tideline dev-cluster [--nodes 3] [--dir DIR] [--tls]
//! tideline dev-certs --out DIR [--nodes 3] [--hosts 127.0.0.1,localhost]
//! tideline volume create|list|get|delete|fork … | files VOL ls|cat|stat|mkdir|upload|download|mv|rm …
//!                 | snapshot VOL create|list|restore|delete …   [--server URL] [--token T] [--json]
//! tideline sync attach VOL DIR [--init-from volume|local|auto] [--foreground] | status | list | logs [-f]
//!               | conflicts list|show PATH|mark PATH [--ignore] | detach
//! tideline mount VOL MOUNTPOINT [--read-only] [--foreground] [--cache-dir DIR] | unmount MOUNTPOINT
//! ```

#[cfg(feature = "server")]
mod admin_token;
mod assets;
mod cluster;
#[cfg(feature = "server")]
mod config;
#[cfg(feature = "server")]
mod dev_certs;
#[cfg(feature = "server")]
mod dev_cluster;
#[cfg(unix)]
mod mount_cli;
#[cfg(feature = "server")]
mod server;
mod sync_cli;
mod table;
mod token;
mod volume_cli;

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: a request allocates and frees many small buffers on
/// several threads, and glibc's arenas showed as ~10 % of the write path's CPU.
#[cfg(feature = "server")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `tideline --version`: the package version and the commit it was built from (`build.rs`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TIDELINE_COMMIT"), ")");

#[derive(Parser)]
#[command(name = "tideline", version = VERSION, about = "A Raft-replicated journal server for workspace volumes")]
struct Cli {
    /// How log lines on stderr look: `text` for people, `json` (one object per line) for
    /// journald, Loki or Elasticsearch. Verbosity comes from `RUST_LOG`.
    #[arg(long, global = true, env = "TIDELINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Trust this CA (PEM) for `https://` servers, besides the system's roots (a cluster's own
    /// CA). Passed on to the sync workers a command starts.
    #[arg(long, global = true, env = "TIDELINE_CA_CERT", value_name = "PEM")]
    ca_cert: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Run a Tideline node.
    #[cfg(feature = "server")]
    Server(server::ServerArgs),
    /// Manage API tokens on a running server.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Inspect and change cluster membership.
    Cluster(cluster::ClusterArgs),
    /// Run a local cluster of child processes (development and demos).
    #[cfg(feature = "server")]
    DevCluster(dev_cluster::DevClusterArgs),
    /// Write a throwaway cluster CA and node certificates (development and tests).
    #[cfg(feature = "server")]
    DevCerts(dev_certs::DevCertsArgs),
    /// Manage volumes, their files and snapshots with a team token.
    Volume(volume_cli::VolumeArgs),
    /// Keep a local directory and a volume in step (the two-way sync worker).
    Sync(sync_cli::SyncArgs),
    /// Mount a volume as a directory (FUSE).
    #[cfg(unix)]
    Mount(mount_cli::MountArgs),
    /// Unmount a mounted volume.
    #[cfg(unix)]
    Unmount(mount_cli::UnmountArgs),
    /// Write man pages and shell completions (for packagers).
    #[command(hide = true)]
    GenerateAssets(assets::AssetsArgs),
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn,notify=warn,fuser=error"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(false).init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(ca) = &cli.ca_cert {
        // Every client this process builds, and every worker it starts, reads it from here.
        // Set before the runtime starts: no other thread exists yet.
        std::env::set_var(tideline_client::CA_CERT_ENV, ca);
    }
    init_tracing(cli.log_format);
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        #[cfg(feature = "server")]
        Command::Server(args) => server::run(args).await,
        Command::Token { command } => token::run(command).await,
        Command::Cluster(args) => cluster::run(args).await,
        #[cfg(feature = "server")]
        Command::DevCluster(args) => dev_cluster::run(args).await,
        #[cfg(feature = "server")]
        Command::DevCerts(args) => dev_certs::run(args),
        Command::Volume(args) => volume_cli::run(args).await,
        Command::Sync(args) => sync_cli::run(args).await,
        #[cfg(unix)]
        Command::Mount(args) => mount_cli::run(args).await,
        #[cfg(unix)]
        Command::Unmount(args) => mount_cli::unmount(args),
        Command::GenerateAssets(args) => assets::run(args),
    }
}

/// Defaults shared by the server and the clients.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";

#[cfg(feature = "server")]
pub fn default_data_dir() -> std::path::PathBuf {
    std::path::PathBuf::from("./tideline-data")
}

pub fn default_server_url() -> String {
    format!("http://{}", DEFAULT_LISTEN.parse::<SocketAddr>().expect("valid default address"))
}
