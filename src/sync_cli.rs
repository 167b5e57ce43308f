//! `tideline sync …`: attach a local directory to a volume and keep them in step.
//!
//! ```text
//! tideline sync attach VOL DIR [--init-from volume|local|auto] [--foreground] [--no-gitignore]
//! tideline sync status [--dir DIR] [--json]     (DIR: the attachment containing the current directory)
//! tideline sync list [--json]
//! tideline sync logs [--dir DIR] [-f]
//! tideline sync conflicts list|show PATH|mark PATH [--ignore]   [--dir DIR] [--json]
//! tideline sync detach [--dir DIR]
//! ```
//! `attach` does the initial sync in the foreground (with progress bars on a terminal) and then
//! leaves a background worker running (`--foreground` keeps it in this process). Exit codes as
//! for `tideline volume`: 3 not found, 4 conflict (including a refused start), 5 auth,
//! 6 unavailable, 2 usage, 1 other.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;
use tideline_types::{AccessMode, ConflictStatus};

use tideline_sync::home::{AttachDir, Attachment, Home};
use tideline_sync::init::InitFrom;
use tideline_sync::remote::Remote;
use tideline_sync::status::{self, Status};
use tideline_sync::worker::Worker;
use tideline_sync::SyncError;

use crate::volume_cli::http::{CliError, CliResult, ErrorKind};
use crate::volume_cli::progress::Bars;
use crate::volume_cli::ClientArgs;

/// How long `detach` waits for a worker to stop after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a new worker may take to take its lock.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// `attach` needs the token; the other commands use the attachment's.
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: SyncCommand,
}

/// `--init-from`: the engine's [`InitFrom`] as a command-line value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum InitFromArg {
    /// DIR becomes the volume's tree (local differences are overwritten or removed).
    Volume,
    /// The volume becomes DIR's tree (volume paths absent locally are removed).
    Local,
    /// Whichever side is empty takes the other; if both have files, they merge only when no
    /// path differs.
    Auto,
}

impl From<InitFromArg> for InitFrom {
    fn from(a: InitFromArg) -> InitFrom {
        match a {
            InitFromArg::Volume => InitFrom::Volume,
            InitFromArg::Local => InitFrom::Local,
            InitFromArg::Auto => InitFrom::Auto,
        }
    }
}

#[derive(Subcommand, Debug)]
enum SyncCommand {
    /// Attach DIR to volume VOL and start syncing.
    Attach {
        volume: String,
        dir: PathBuf,
        /// Which side wins on the first sync, or on re-initializing an attachment.
        #[arg(long, value_enum)]
        init_from: Option<InitFromArg>,
        /// Keep the worker in this terminal instead of the background.
        #[arg(long)]
        foreground: bool,
        /// Sync files that `.gitignore` excludes too.
        #[arg(long)]
        no_gitignore: bool,
    },
    /// Show one attachment's state.
    Status {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Show every attachment of this machine.
    List,
    /// Print the background worker's log.
    Logs {
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep printing as the log grows.
        #[arg(short, long)]
        follow: bool,
    },
    /// The volume's open conflicts.
    Conflicts {
        #[arg(long, global = true)]
        dir: Option<PathBuf>,
        #[command(subcommand)]
        command: ConflictsCommand,
    },
    /// Stop the worker and forget the attachment (local files stay).
    Detach {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The background worker itself (started by `attach`).
    #[command(hide = true)]
    Run {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum ConflictsCommand {
    /// Open conflicts, newest first.
    List,
    /// Every conflict (any status) on PATH.
    Show { path: String },
    /// Mark the open conflicts on PATH resolved (or ignored); the worker resumes uploads.
    Mark {
        path: String,
        #[arg(long)]
        ignore: bool,
    },
}

pub async fn run(args: SyncArgs) -> anyhow::Result<()> {
    let code = match dispatch(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.kind.exit_code()
        }
    };
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

fn other(e: impl std::fmt::Display) -> CliError {
    CliError::other(e.to_string())
}

fn sync_err(e: SyncError) -> CliError {
    CliError::from(e)
}

/// Typed answers as JSON values, for printing (keys in the server's byte order).
fn to_values<T: serde::Serialize>(items: &[T]) -> Vec<Value> {
    items.iter().map(|i| serde_json::to_value(i).unwrap_or(Value::Null)).collect()
}

async fn dispatch(args: SyncArgs) -> CliResult<()> {
    let home = Home::locate().map_err(other)?;
    match args.command {
        SyncCommand::Attach { volume, dir, init_from, foreground, no_gitignore } => {
            let token = args
                .client
                .token
                .ok_or_else(|| CliError::other("a team token is required: --token or TIDELINE_TOKEN"))?;
            let init_from = init_from.map(InitFrom::from);
            attach(&home, &args.client.server, &token, &volume, &dir, init_from, foreground, !no_gitignore).await
        }
        SyncCommand::Status { dir } => {
            let (ad, att) = home.find(dir.as_deref()).map_err(|e| CliError::new(ErrorKind::NotFound, e.to_string()))?;
            print_status(&status::report(&ad, &att), args.client.json);
            Ok(())
        }
        SyncCommand::List => {
            let all: Vec<Value> = home.list().map_err(other)?.iter().map(|(ad, att)| status::report(ad, att)).collect();
            if args.client.json {
                println!("{}", Value::Array(all));
            } else if all.is_empty() {
                println!("no attachments");
            } else {
                for s in &all {
                    println!(
                        "{:<10} {}  {}",
                        s["state"].as_str().unwrap_or(""),
                        s["volume_id"].as_str().unwrap_or(""),
                        s["dir"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        SyncCommand::Logs { dir, follow } => {
            let (ad, _) = home.find(dir.as_deref()).map_err(|e| CliError::new(ErrorKind::NotFound, e.to_string()))?;
            logs(&ad, follow).await
        }
        SyncCommand::Conflicts { dir, command } => {
            let (ad, att) = home.find(dir.as_deref()).map_err(|e| CliError::new(ErrorKind::NotFound, e.to_string()))?;
            conflicts(&ad, &att, command, args.client.json).await
        }
        SyncCommand::Detach { dir } => {
            let (ad, att) = home.find(dir.as_deref()).map_err(|e| CliError::new(ErrorKind::NotFound, e.to_string()))?;
            stop_worker(&ad)?;
            fs::remove_dir_all(&ad.path).map_err(|e| CliError::io(format!("remove {}", ad.path.display()), e))?;
            println!("detached {} from {}", att.dir.display(), att.volume_id);
            Ok(())
        }
        SyncCommand::Run { dir } => {
            let ad = home.dir_for(&dir);
            let att = ad.load().map_err(other)?;
            run_worker(ad, att).await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn attach(
    home: &Home,
    server: &str,
    token: &str,
    volume: &str,
    dir: &Path,
    init_from: Option<InitFrom>,
    foreground: bool,
    gitignore: bool,
) -> CliResult<()> {
    fs::create_dir_all(dir).map_err(|e| CliError::io(format!("create {}", dir.display()), e))?;
    let dir = fs::canonicalize(dir).map_err(|e| CliError::io(format!("resolve {}", dir.display()), e))?;
    let ad = home.dir_for(&dir);
    let existing = ad.load().ok();
    if let Some(att) = &existing {
        if att.volume_id != volume {
            return Err(CliError::new(
                ErrorKind::Conflict,
                format!("{} is attached to volume {}; detach it first", dir.display(), att.volume_id),
            ));
        }
    }
    let mut worker = match (existing, init_from) {
        (Some(att), None) => {
            if let Some(pid) = ad.worker_pid() {
                println!("{} is already attached to {} (worker pid {pid})", dir.display(), att.volume_id);
                return Ok(());
            }
            // Resume: refuse to start over a directory that was emptied or replaced.
            let mut w = Worker::open(ad.clone(), att).map_err(other)?.with_progress(Arc::new(Bars));
            if let Err(why) = w.guard() {
                w.refuse(why.clone());
                return Err(CliError::new(ErrorKind::Conflict, why));
            }
            w
        }
        (existing, init_from) => {
            if existing.is_some() {
                stop_worker(&ad)?;
                for f in ["index.snap", "index.log", "status.json"] {
                    let _ = fs::remove_file(ad.path.join(f));
                }
            }
            let vol = Remote::new(server, token, volume, "probe")?.volume().await?;
            match vol.access_mode {
                AccessMode::Rwo => eprintln!(
                    "warning: volume {volume} is RWO: one replica at a time may write (another one's uploads wait \
                     until its write lease lapses); use an RWX volume for several writers"
                ),
                AccessMode::Rox => {
                    eprintln!("warning: volume {volume} is read-only (ROX): local changes will not upload")
                }
                AccessMode::Rwx => {}
            }
            let att = Attachment {
                volume_id: volume.to_string(),
                dir: dir.clone(),
                server: server.to_string(),
                token: token.to_string(),
                replica_id: format!("tl-{:016x}", rand::random::<u64>()),
                root_inode: 0,
                gitignore,
                attached_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            };
            ad.save(&att).map_err(other)?;
            let _lock = ad.try_lock().map_err(|e| CliError::io("lock the attachment", e))?;
            let mut w = Worker::open(ad.clone(), att).map_err(other)?.with_progress(Arc::new(Bars));
            w.register().await.map_err(sync_err)?;
            match w.initialize(init_from.unwrap_or(InitFrom::Auto)).await {
                Ok(o) => eprintln!(
                    "initial sync: {} files from the volume, {} local edits kept, {} removed",
                    o.written, o.kept_local, o.removed
                ),
                Err(e) => {
                    let _ = fs::remove_dir_all(&ad.path);
                    return Err(sync_err(e));
                }
            }
            ad.save(w.attachment()).map_err(other)?;
            w
        }
    };
    let att = worker.attachment().clone();
    if foreground {
        let _lock = hold_lock(&ad)?;
        println!(
            "attached {} at {} (replica {}, worker in the foreground)",
            att.volume_id,
            dir.display(),
            att.replica_id
        );
        worker.register().await.map_err(sync_err)?;
        return worker.run().await.map_err(other);
    }
    drop(worker);
    let pid = spawn_worker(&ad, &dir)?;
    println!("attached {} at {} (replica {}, worker pid {pid})", att.volume_id, dir.display(), att.replica_id);
    Ok(())
}

/// Takes the worker lock and writes this process's pid into it.
fn hold_lock(ad: &AttachDir) -> CliResult<fs::File> {
    let mut lock = ad
        .try_lock()
        .map_err(|e| CliError::io("lock the attachment", e))?
        .ok_or_else(|| CliError::new(ErrorKind::Conflict, "another worker is running for this directory"))?;
    lock.set_len(0)
        .and_then(|_| write!(lock, "{}", std::process::id()))
        .map_err(|e| CliError::io("write the pid", e))?;
    Ok(lock)
}

async fn run_worker(ad: AttachDir, att: Attachment) -> CliResult<()> {
    let _lock = hold_lock(&ad)?;
    // Whatever an earlier (perhaps killed) worker reported is stale from here on.
    let starting = Status { state: "starting".into(), ..Status::load(&ad).unwrap_or_default() };
    starting.save(&ad).map_err(|e| CliError::io("write the status", e))?;
    let mut worker = Worker::open(ad, att).map_err(other)?.with_progress(Arc::new(Bars));
    if let Err(why) = worker.guard() {
        worker.refuse(why.clone());
        return Err(CliError::new(ErrorKind::Conflict, why));
    }
    worker.run().await.map_err(other)
}

/// Starts `tideline sync run --dir DIR` in its own session, logging to the attachment's log.
fn spawn_worker(ad: &AttachDir, dir: &Path) -> CliResult<u32> {
    let exe = std::env::current_exe().map_err(|e| CliError::io("locate the tideline binary", e))?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ad.log())
        .map_err(|e| CliError::io(format!("open {}", ad.log().display()), e))?;
    let err = log.try_clone().map_err(|e| CliError::io("open the log", e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["sync", "run", "--dir"]).arg(dir).stdin(Stdio::null()).stdout(log).stderr(err);
    // SAFETY: setsid only detaches the child from our terminal and process group.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| CliError::io("start the worker", e))?;
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Some(pid) = ad.worker_pid() {
            return Ok(pid);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = fs::read_to_string(ad.log()).unwrap_or_default();
            let last = tail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
            return Err(CliError::new(
                ErrorKind::from_exit(status.code()),
                format!("the worker exited ({status}): {last}"),
            ));
        }
        if std::time::Instant::now() > deadline {
            return Err(CliError::other(format!("the worker did not start within {START_TIMEOUT:?}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the attachment's worker: SIGTERM, then SIGKILL after a grace period.
fn stop_worker(ad: &AttachDir) -> CliResult<()> {
    let Some(pid) = ad.worker_pid() else { return Ok(()) };
    // SAFETY: plain kill(2) of the pid the live worker wrote into its lock file.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + STOP_GRACE;
    while ad.worker_pid().is_some() {
        if std::time::Instant::now() > deadline {
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        if std::time::Instant::now() > deadline + STOP_GRACE {
            return Err(CliError::other(format!("worker {pid} does not stop")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn print_status(s: &Value, json: bool) {
    if json {
        println!("{s}");
        return;
    }
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    println!("{}  →  volume {}", s["dir"].as_str().unwrap_or(""), s["volume_id"].as_str().unwrap_or(""));
    println!("  state      {}", s["state"].as_str().unwrap_or(""));
    println!("  cursor     {} of {}", n("cursor"), n("head_seq"));
    println!("  pending    {} local changes", n("pending_local"));
    println!("  conflicts  {} open", n("open_conflicts"));
    if let Some(pid) = s["worker_pid"].as_u64() {
        println!("  worker     pid {pid}");
    }
    for e in s["errors"].as_array().into_iter().flatten() {
        println!("  ! {}", e.as_str().unwrap_or(""));
    }
}

async fn logs(ad: &AttachDir, follow: bool) -> CliResult<()> {
    let path = ad.log();
    let mut f = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !follow => return Ok(()),
        Err(e) => return Err(CliError::io(format!("open {}", path.display()), e)),
    };
    let mut out = std::io::stdout();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        f.read_to_end(&mut buf).map_err(|e| CliError::io("read the log", e))?;
        out.write_all(&buf).and_then(|_| out.flush()).map_err(|e| CliError::io("write", e))?;
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A log truncated under us starts over.
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let pos = f.stream_position().unwrap_or(0);
        if len < pos {
            f.seek(SeekFrom::Start(0)).map_err(|e| CliError::io("read the log", e))?;
        }
    }
}

/// The volume path a `conflicts` argument names: `/a/b` as is; a relative path, or an absolute
/// one inside the attached directory, through the local directory.
fn volume_path_arg(att: &Attachment, arg: &str) -> CliResult<String> {
    let local = Path::new(arg);
    let absolute = if local.is_absolute() {
        if !local.starts_with(&att.dir) {
            return Ok(format!("/{}", arg.trim_start_matches('/')));
        }
        local.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| CliError::io("current directory", e))?.join(local)
    };
    let rel = absolute.strip_prefix(&att.dir).map_err(|_| {
        CliError::other(format!("{arg} is outside {}: give the volume path (starting with /)", att.dir.display()))
    })?;
    let mut out = String::new();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(n) => {
                out.push('/');
                out.push_str(&n.to_string_lossy());
            }
            std::path::Component::ParentDir => {
                out.truncate(out.rfind('/').unwrap_or(0));
            }
            _ => {}
        }
    }
    Ok(if out.is_empty() { "/".into() } else { out })
}

async fn conflicts(ad: &AttachDir, att: &Attachment, command: ConflictsCommand, json: bool) -> CliResult<()> {
    let remote = Remote::new(&att.server, &att.token, &att.volume_id, &att.replica_id)?;
    let on = |c: &Value, path: &str| {
        [&c["path"], &c["artifact_path"], &c["incoming_path"]].iter().any(|p| p.as_str() == Some(path))
    };
    match command {
        ConflictsCommand::List => {
            let mut open = to_values(&remote.conflicts(ConflictStatus::Open).await?);
            // Entries this directory cannot hold, as the worker reported them.
            let local = Status::load(ad).map(|s| s.local_conflicts).unwrap_or_default();
            open.extend(local.iter().map(|c| {
                serde_json::json!({
                    "scope": "local", "status": ConflictStatus::Open, "path": c.path, "reason": c.reason,
                    "existing_path": c.existing_path, "seq": c.seq, "artifact_path": "",
                })
            }));
            if json {
                println!("{}", Value::Array(open));
            } else if open.is_empty() {
                println!("no open conflicts");
            } else {
                for c in open.iter().filter(|c| c["scope"] == "local") {
                    println!(
                        "{}  {}  not written here: collides with {} on this file system (seq {})",
                        c["path"].as_str().unwrap_or(""),
                        c["reason"].as_str().unwrap_or(""),
                        c["existing_path"].as_str().unwrap_or(""),
                        c["seq"]
                    );
                }
                for c in open.iter().filter(|c| c["scope"] != "local") {
                    println!(
                        "{}  {}  kept as {}  ({})",
                        c["path"].as_str().unwrap_or(""),
                        c["reason"].as_str().unwrap_or(""),
                        c["artifact_path"].as_str().unwrap_or(""),
                        c["id"].as_str().unwrap_or("")
                    );
                }
            }
        }
        ConflictsCommand::Show { path } => {
            let path = volume_path_arg(att, &path)?;
            let mut all = Vec::new();
            for &status in ConflictStatus::ALL {
                all.extend(to_values(&remote.conflicts(status).await?).into_iter().filter(|c| on(c, &path)));
            }
            if all.is_empty() {
                return Err(CliError::new(ErrorKind::NotFound, format!("no conflict on {path}")));
            }
            if json {
                println!("{}", Value::Array(all));
            } else {
                for c in &all {
                    println!("{}", serde_json::to_string_pretty(c).unwrap_or_default());
                }
            }
        }
        ConflictsCommand::Mark { path, ignore } => {
            let path = volume_path_arg(att, &path)?;
            let status = if ignore { ConflictStatus::Ignored } else { ConflictStatus::Resolved };
            let open: Vec<Value> = to_values(&remote.conflicts(ConflictStatus::Open).await?)
                .into_iter()
                .filter(|c| on(c, &path))
                .collect();
            if open.is_empty() {
                return Err(CliError::new(ErrorKind::NotFound, format!("no open conflict on {path}")));
            }
            let mut marked = Vec::new();
            for c in &open {
                let updated = remote.mark(c["id"].as_str().unwrap_or(""), status).await?;
                marked.extend(to_values(&[updated]));
            }
            if json {
                println!("{}", Value::Array(marked));
            } else {
                println!("marked {} conflict(s) on {path} {status}", marked.len());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_paths_may_be_volume_paths_or_local_ones() {
        let att = Attachment {
            volume_id: "v".into(),
            dir: PathBuf::from("/home/me/work"),
            server: String::new(),
            token: String::new(),
            replica_id: String::new(),
            root_inode: 0,
            gitignore: true,
            attached_at: String::new(),
        };
        assert_eq!(volume_path_arg(&att, "/notes/plan.md").unwrap(), "/notes/plan.md");
        assert_eq!(volume_path_arg(&att, "/home/me/work/notes/plan.md").unwrap(), "/notes/plan.md");
        let cwd = std::env::current_dir().unwrap();
        if cwd.starts_with(&att.dir) {
            return; // (never on a test machine) relative arguments resolve against the cwd
        }
        assert!(volume_path_arg(&att, "notes/plan.md").unwrap_err().message.contains("outside"));
    }
}
