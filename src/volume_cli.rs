//! `tideline volume …`: volumes, their files and their snapshots from the command line, with a
//! team token. Human-readable tables by default; `--json` prints the API's `data` as one JSON
//! document for scripts. Failures print `error: <message>` and exit with a code scripts can
//! rely on (see [`http::ErrorKind::exit_code`]): 0 ok, 2 usage, 3 not found, 4 conflict, 5 auth,
//! 6 unavailable or unreachable, 1 anything else.
//!
//! ```text
//! tideline volume create [--access-mode RWO|ROX|RWX] | list | get VOL | delete VOL [--force]
//! tideline volume fork VOL [--access-mode M]
//! tideline volume files VOL ls [PATH] | cat PATH | stat PATH | mkdir PATH [-p]
//!                           upload LOCAL REMOTE | download REMOTE LOCAL | mv SRC DST | rm PATH
//! tideline volume snapshot VOL create NAME [--description D] | list | restore SID | delete SID
//! ```

pub(crate) mod http;
pub(crate) mod progress;
mod watch;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::{json, Value};
use tideline_client::{ByteStream, Client, Upload};
use tideline_durable::AtomicFile;
use tideline_types::wire::{MoveRequest, SnapshotRequest, VolumeRequest};
use tokio::io::AsyncWriteExt;

use http::{CliError, CliResult};

/// Largest file the server accepts in one write; refused locally before sending anything.
const UPLOAD_BYTES_MAX: u64 = tideline_types::limits::FILE_BYTES_MAX as u64;
/// Exit code for usage errors, as clap uses.
const EXIT_USAGE: i32 = 2;

/// Where a team-token client connects, and how it prints: shared by `volume` and `sync`.
#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Server to talk to (any node of the cluster).
    #[arg(long, env = "TIDELINE_URL", default_value_t = crate::default_server_url(), global = true)]
    pub server: String,
    /// Team token.
    #[arg(long, env = "TIDELINE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print JSON (the API's `data`) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct VolumeArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: VolumeCommand,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
#[value(rename_all = "UPPER")]
enum AccessMode {
    /// One writing replica at a time.
    Rwo,
    /// Read-only.
    Rox,
    /// No restriction.
    Rwx,
}

impl From<AccessMode> for tideline_types::AccessMode {
    fn from(m: AccessMode) -> tideline_types::AccessMode {
        match m {
            AccessMode::Rwo => tideline_types::AccessMode::Rwo,
            AccessMode::Rox => tideline_types::AccessMode::Rox,
            AccessMode::Rwx => tideline_types::AccessMode::Rwx,
        }
    }
}

#[derive(Subcommand, Debug)]
enum VolumeCommand {
    /// Create a volume.
    Create {
        #[arg(long, ignore_case = true)]
        access_mode: Option<AccessMode>,
    },
    /// List the team's volumes, newest first.
    List,
    /// Show one volume.
    Get { volume: String },
    /// Delete a volume (idempotent).
    Delete {
        volume: String,
        /// Delete even while replicas or mounts are attached.
        #[arg(long)]
        force: bool,
    },
    /// Fork a volume: a new volume with the same files and config.
    Fork {
        volume: String,
        #[arg(long, ignore_case = true)]
        access_mode: Option<AccessMode>,
    },
    /// Files of a volume.
    Files {
        volume: String,
        #[command(subcommand)]
        command: FilesCommand,
    },
    /// Snapshots of a volume.
    Snapshot {
        volume: String,
        #[command(subcommand)]
        command: SnapshotCommand,
    },
}

#[derive(Subcommand, Debug)]
enum FilesCommand {
    /// List a directory's direct children.
    Ls {
        #[arg(default_value = "/")]
        path: String,
    },
    /// Write a file's bytes to stdout.
    Cat { path: String },
    /// Show a file's or directory's metadata.
    Stat { path: String },
    /// Create a directory.
    Mkdir {
        path: String,
        /// Create parents too, and succeed if it already exists.
        #[arg(short = 'p', long = "parents")]
        parents: bool,
    },
    /// Upload a local file (at most 100 MiB).
    Upload { local: PathBuf, remote: String },
    /// Download a file (written to a temporary file beside the target, then renamed).
    Download { remote: String, local: PathBuf },
    /// Move or rename a file or directory.
    Mv { source: String, destination: String },
    /// Remove a file or directory (recursive, idempotent).
    Rm { path: String },
    /// Print file events as they happen (seq, event, path).
    Watch {
        #[arg(default_value = "/")]
        path: String,
        /// Also events below subdirectories.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// Exit after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
enum SnapshotCommand {
    /// Take a snapshot.
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List snapshots, newest first.
    List,
    /// Restore the volume to a snapshot.
    Restore { snapshot: String },
    /// Delete a snapshot (idempotent).
    Delete { snapshot: String },
}

/// Runs the command; on failure prints `error: …` and exits with the error's code.
pub async fn run(args: VolumeArgs) -> anyhow::Result<()> {
    let Some(token) = args.client.token.clone().filter(|t| !t.is_empty()) else {
        eprintln!("error: --token (or TIDELINE_TOKEN) is required");
        std::process::exit(EXIT_USAGE);
    };
    let result = match http::connect(&args.client.server, &token) {
        Ok(client) => Cli { client, json: args.client.json }.execute(args.command).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        let _ = std::io::stdout().flush();
        eprintln!("error: {e}");
        std::process::exit(e.kind.exit_code());
    }
    Ok(())
}

struct Cli {
    client: Client,
    json: bool,
}

/// A volume request with the given access mode, or the server's defaults.
fn volume_request(access_mode: Option<AccessMode>) -> VolumeRequest {
    VolumeRequest { access_mode: access_mode.map(Into::into), ..VolumeRequest::default() }
}

impl Cli {
    async fn execute(&self, command: VolumeCommand) -> CliResult<()> {
        let c = &self.client;
        match command {
            VolumeCommand::Create { access_mode } => {
                let v = c.create_volume(&volume_request(access_mode)).await?;
                self.show(&v, print_volume)
            }
            VolumeCommand::List => self.show(&c.list_volumes().await?, print_volume_table),
            VolumeCommand::Get { volume } => self.show(&c.get_volume(&volume).await?, print_volume),
            VolumeCommand::Delete { volume, force } => {
                let v = c.delete_volume(&volume, force).await?;
                self.show(&v, |_| println!("deleted volume {volume}"))
            }
            VolumeCommand::Fork { volume, access_mode } => {
                let v = c.fork_volume(&volume, &volume_request(access_mode)).await?;
                self.show(&v, print_volume)
            }
            VolumeCommand::Files { volume, command } => self.files(&volume, command).await,
            VolumeCommand::Snapshot { volume, command } => self.snapshot(&volume, command).await,
        }
    }

    async fn files(&self, volume: &str, command: FilesCommand) -> CliResult<()> {
        let c = &self.client;
        match command {
            FilesCommand::Ls { path } => self.show(&c.list_dir(volume, &path).await?, print_entries),
            FilesCommand::Cat { path } => self.cat(volume, &path).await,
            FilesCommand::Stat { path } => self.show(&c.stat(volume, &path).await?, print_stat),
            FilesCommand::Mkdir { path, parents } => {
                let v = c.mkdir(volume, &path, parents).await?;
                self.show(&v, |_| println!("created directory {path}"))
            }
            FilesCommand::Upload { local, remote } => self.upload(volume, &local, &remote).await,
            FilesCommand::Download { remote, local } => self.download(volume, &remote, &local).await,
            FilesCommand::Mv { source, destination } => {
                let req = MoveRequest { source: source.clone(), destination: destination.clone() };
                let v = c.move_path(volume, &req).await?;
                self.show(&v, |_| println!("moved {source} -> {destination}"))
            }
            FilesCommand::Rm { path } => {
                let v = c.delete_path(volume, &path).await?;
                self.show(&v, |_| println!("removed {path}"))
            }
            FilesCommand::Watch { path, recursive, count } => {
                watch::watch(c, volume, &path, recursive, count, self.json).await
            }
        }
    }

    async fn snapshot(&self, volume: &str, command: SnapshotCommand) -> CliResult<()> {
        let c = &self.client;
        match command {
            SnapshotCommand::Create { name, description } => {
                let v = c.create_snapshot(volume, &SnapshotRequest { name, description }).await?;
                self.show(&v, print_fields)
            }
            SnapshotCommand::List => self.show(&c.list_snapshots(volume).await?, print_snapshot_table),
            SnapshotCommand::Restore { snapshot } => {
                let v = c.restore_snapshot(volume, &snapshot).await?;
                self.show(&v, |_| println!("restored snapshot {snapshot}"))
            }
            SnapshotCommand::Delete { snapshot } => {
                let v = c.delete_snapshot(volume, &snapshot).await?;
                self.show(&v, |_| println!("deleted snapshot {snapshot}"))
            }
        }
    }

    /// Raw bytes to stdout, streamed; with `--json`, the API's base64 document instead.
    async fn cat(&self, volume: &str, path: &str) -> CliResult<()> {
        if self.json {
            let v = self.client.read_file_json(volume, path).await?;
            return self.show(&v, |_| {});
        }
        let mut body = self.client.read_file_stream(volume, path).await?;
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = body.chunk().await.map_err(|e| CliError::reading(format_args!("read {path}"), e))? {
            out.write_all(&chunk).map_err(|e| CliError::io("write stdout", e))?;
        }
        out.flush().map_err(|e| CliError::io("write stdout", e))
    }

    /// Streams a local file as the request body, after checking its size against the limit.
    async fn upload(&self, volume: &str, local: &Path, remote: &str) -> CliResult<()> {
        let shown = local.display();
        let meta = tokio::fs::metadata(local).await.map_err(|e| CliError::io(format_args!("read {shown}"), e))?;
        if !meta.is_file() {
            return Err(CliError::other(format!("{shown} is not a regular file")));
        }
        if meta.len() > UPLOAD_BYTES_MAX {
            return Err(CliError::other(format!(
                "{shown} is {} bytes; a file may be at most 100 MiB ({UPLOAD_BYTES_MAX} bytes)",
                meta.len()
            )));
        }
        let file = tokio::fs::File::open(local).await.map_err(|e| CliError::io(format_args!("open {shown}"), e))?;
        let body = match progress::transfer(Some(meta.len()), &format!("upload {remote}"), self.json) {
            None => Upload::stream(file, meta.len()),
            Some(bar) => {
                let chunks = futures::stream::unfold((file, bar), |(mut file, bar)| async move {
                    let mut buf = vec![0u8; 256 * 1024];
                    match tokio::io::AsyncReadExt::read(&mut file, &mut buf).await {
                        Ok(0) => {
                            bar.finish_and_clear();
                            None
                        }
                        Ok(n) => {
                            buf.truncate(n);
                            bar.inc(n as u64);
                            Some((Ok::<_, std::io::Error>(buf), (file, bar)))
                        }
                        Err(e) => Some((Err(e), (file, bar))),
                    }
                });
                Upload::chunks(chunks, meta.len())
            }
        };
        let v = self.client.write_file(volume, remote, body).await?;
        self.show(&v, |_| println!("uploaded {shown} -> {remote} ({} bytes)", meta.len()))
    }

    /// Downloads into a temporary file beside the target ([`AtomicFile`]), which replaces the
    /// target only once every byte is written and synced, so the target is never seen
    /// half-written; a failed download leaves the old target and no temporary file.
    async fn download(&self, volume: &str, remote: &str, local: &Path) -> CliResult<()> {
        let target = if local.is_dir() {
            let name = remote.trim_end_matches('/').rsplit('/').next().filter(|n| !n.is_empty());
            local.join(name.ok_or_else(|| CliError::other(format!("no file name in {remote:?}")))?)
        } else {
            local.to_path_buf()
        };
        let body = self.client.read_file_stream(volume, remote).await?;
        let bar = progress::transfer(body.content_length(), &format!("download {remote}"), self.json);
        let result = write_durably(body, &target, bar.as_ref()).await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let bytes = result?;
        let shown = target.display().to_string();
        let summary = json!({ "path": shown, "size": bytes });
        self.show(&summary, |_| println!("downloaded {remote} -> {shown} ({bytes} bytes)"))
    }

    /// `--json`: the document; otherwise the human form. Answers go through a JSON value, so
    /// keys print in the server's (byte) order, as the API sent them.
    fn show<T: Serialize>(&self, data: &T, human: impl FnOnce(&Value)) -> CliResult<()> {
        let data = serde_json::to_value(data).map_err(|e| CliError::other(format!("encode JSON: {e}")))?;
        if self.json {
            let text = serde_json::to_string_pretty(&data).map_err(|e| CliError::other(format!("encode JSON: {e}")))?;
            println!("{text}");
        } else {
            human(&data);
        }
        Ok(())
    }
}

/// Streams `body` into an [`AtomicFile`] for `target`, then commits it (fsync, rename, fsync of
/// the directory); returns the byte count. Any failure drops the `AtomicFile`, which removes
/// its temporary file.
async fn write_durably(mut body: ByteStream, target: &Path, bar: Option<&indicatif::ProgressBar>) -> CliResult<u64> {
    let shown = target.display();
    // 0o666 is what `File::create` asks for: the umask decides the mode, as for any new file.
    let mut atomic = AtomicFile::create(target, 0o666)
        .map_err(|e| CliError::io(format_args!("create a temporary file beside {shown}"), e))?;
    // Chunks are written through tokio on a second handle to the same open file, so the runtime
    // is never blocked on the disk; `commit` syncs that file.
    let handle = atomic.file_mut().try_clone().map_err(|e| CliError::io(format_args!("write {shown}"), e))?;
    let mut file = tokio::fs::File::from_std(handle);
    let mut bytes = 0u64;
    while let Some(chunk) = body.chunk().await.map_err(|e| CliError::reading("read download", e))? {
        file.write_all(&chunk).await.map_err(|e| CliError::io(format_args!("write {shown}"), e))?;
        bytes += chunk.len() as u64;
        if let Some(bar) = bar {
            bar.inc(chunk.len() as u64);
        }
    }
    file.flush().await.map_err(|e| CliError::io(format_args!("write {shown}"), e))?;
    drop(file);
    tokio::task::spawn_blocking(move || atomic.commit())
        .await
        .map_err(|e| CliError::other(format!("commit {shown}: {e}")))?
        .map_err(|e| CliError::io(format_args!("commit {shown}"), e))?;
    Ok(bytes)
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `key: value` lines for an object, in the server's field order.
fn print_fields(v: &Value) {
    match v.as_object() {
        Some(map) => {
            let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
            for (k, val) in map {
                println!("{k:<width$}  {}", text(val));
            }
        }
        None => println!("{}", text(v)),
    }
}

fn print_volume(v: &Value) {
    print_fields(v)
}

fn print_stat(v: &Value) {
    print_fields(v)
}

fn print_volume_table(v: &Value) {
    let rows = rows(v, None, &["id", "access_mode", "source_volume_id", "created_at"]);
    print_table(&["ID", "ACCESS", "SOURCE", "CREATED"], rows);
}

fn print_snapshot_table(v: &Value) {
    let rows = rows(v, None, &["id", "name", "size_bytes", "created_at", "description"]);
    print_table(&["ID", "NAME", "SIZE", "CREATED", "DESCRIPTION"], rows);
}

fn print_entries(v: &Value) {
    let rows = rows(v, Some("entries"), &["type", "mode", "size", "mod_time", "name"]);
    print_table(&["TYPE", "MODE", "SIZE", "MOD_TIME", "NAME"], rows);
}

/// The given fields of each element of an array (`v`, or `v[key]`).
fn rows(v: &Value, key: Option<&str>, fields: &[&str]) -> Vec<Vec<String>> {
    let list = match key {
        Some(k) => &v[k],
        None => v,
    };
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    items.iter().map(|item| fields.iter().map(|f| text(&item[*f])).collect()).collect()
}

fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    print!("{}", crate::table::render(headers, &rows));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_pick_fields_and_show_missing_as_dash() {
        let v = json!({ "entries": [{ "name": "a", "size": 3 }] });
        assert_eq!(rows(&v, Some("entries"), &["name", "size", "mode"]), vec![vec!["a", "3", "-"]]);
    }
}
