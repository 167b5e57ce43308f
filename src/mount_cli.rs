//! `tideline mount VOL MOUNTPOINT [--read-only] [--foreground]` and `tideline unmount MOUNTPOINT`.
//!
//! ```text
//!  mount ──(no --foreground)──▶ re-runs itself with --foreground in its own session, logging to
//!        │                      <cache-dir>/mount.log, and returns once that child has mounted
//!        └─(--foreground)─────▶ checks the volume and token, mounts, serves until unmounted
//!                               (SIGINT/SIGTERM unmount it)
//!  unmount MOUNTPOINT ─▶ umount2 (fusermount3 -u for a user without the right); the serving
//!                        process then exits
//! ```
//!
//! Cache: `--cache-dir` (default `$XDG_CACHE_HOME/tideline/mounts/<volume>`) holds the content
//! cache, bounded by the volume's `cache_size`, and the staging files of open writes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use tideline_client::Client;
use tideline_mount::{mount, parse_size, MountOptions};

use crate::volume_cli::ClientArgs;

/// How long `mount` waits for its background process to have mounted.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The cache bound when the volume's `cache_size` does not parse.
const CACHE_BYTES_DEFAULT: u64 = 1 << 30;

#[derive(Args, Debug)]
pub struct MountArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The volume to mount.
    volume: String,
    /// An existing empty directory.
    mountpoint: PathBuf,
    /// Mount read-only.
    #[arg(long)]
    read_only: bool,
    /// Serve from this process instead of the background.
    #[arg(long)]
    foreground: bool,
    /// Content cache and staging directory.
    #[arg(long, env = "TIDELINE_MOUNT_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// FUSE request threads.
    #[arg(long, default_value_t = 8)]
    threads: usize,
}

#[derive(Args, Debug)]
pub struct UnmountArgs {
    /// Where the volume is mounted.
    mountpoint: PathBuf,
}

fn default_cache_dir(volume: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("tideline").join("mounts").join(volume)
}

pub async fn run(args: MountArgs) -> anyhow::Result<()> {
    let Some(token) = args.client.token.clone().filter(|t| !t.is_empty()) else {
        bail!("a team token is required: --token or TIDELINE_TOKEN");
    };
    let cache_dir = args.cache_dir.clone().unwrap_or_else(|| default_cache_dir(&args.volume));
    std::fs::create_dir_all(&cache_dir).with_context(|| format!("create {}", cache_dir.display()))?;
    if !args.foreground {
        return spawn_background(&args, &cache_dir);
    }
    let client = Client::new(&args.client.server, &token)?;
    let volume = client.get_volume(&args.volume).await.with_context(|| format!("volume {}", args.volume))?;
    let opts = MountOptions {
        volume: volume.id.clone(),
        mountpoint: args.mountpoint.clone(),
        read_only: args.read_only,
        cache_bytes_max: parse_size(&volume.cache_size).unwrap_or(CACHE_BYTES_DEFAULT),
        cache_dir,
        threads: args.threads,
    };
    let mut mounted = mount(client, tokio::runtime::Handle::current(), &opts)
        .with_context(|| format!("mount {} at {}", opts.volume, opts.mountpoint.display()))?;
    let mut unmounter = mounted.unmounter();
    // The line `mount` (without --foreground) waits for.
    println!("mounted volume {} at {}", opts.volume, opts.mountpoint.display());
    tracing::info!(volume = %opts.volume, mountpoint = %opts.mountpoint.display(), "mounted");
    let mut serving = tokio::task::spawn_blocking(move || mounted.run());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        done = &mut serving => return Ok(done??),
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("unmounting on a signal");
    unmounter.unmount().context("unmount")?;
    serving.await??;
    Ok(())
}

/// Runs `tideline mount … --foreground` detached, and waits until it reports the mount.
fn spawn_background(args: &MountArgs, cache_dir: &std::path::Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locate the tideline binary")?;
    let log_path = cache_dir.join("mount.log");
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("mount").arg(&args.volume).arg(&args.mountpoint).arg("--foreground");
    cmd.arg("--server").arg(&args.client.server).arg("--cache-dir").arg(cache_dir);
    cmd.arg("--threads").arg(args.threads.to_string());
    if args.read_only {
        cmd.arg("--read-only");
    }
    // The token goes by environment, not argv (other users can read argv).
    cmd.env("TIDELINE_TOKEN", args.client.token.as_deref().unwrap_or_default());
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
    // SAFETY: setsid only detaches the child from our terminal and process group.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("start the mount process")?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(line) if line.starts_with("mounted") => {
            print!("{line}");
            println!("pid {} (log: {})", child.id(), log_path.display());
            Ok(())
        }
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
            Err(anyhow!("the mount did not start: {last} (log: {})", log_path.display()))
        }
    }
}

pub fn unmount(args: UnmountArgs) -> anyhow::Result<()> {
    tideline_mount::unmount(&args.mountpoint).with_context(|| format!("unmount {}", args.mountpoint.display()))
}
