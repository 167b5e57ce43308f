//! `syncbench`: how fast the sync worker (`tideline sync …`) moves an edit from one machine to
//! another, and how an initial attach compares with `rsync -a` of the same tree.
//!
//! ```text
//!   (a) latency: homes A and B, dirs A and B attached to one volume (real `tideline sync attach`)
//!       --edits times: write a unique token into A/edits/e<i % 20>.txt (creates, then overwrites)
//!       ─▶ poll B's copy every 1 ms until it holds the same bytes (≤ 30 s each)   → p50/p99/max ms
//!   (b) attach:  SRC = --files files, --total-mib MiB in all (sizes vary, incompressible)
//!       `sync attach VOL SRC --init-from local`    (the upload; timed until it returns)
//!       `sync attach VOL FRESH --init-from volume` (timed until it returns) vs `rsync -a SRC/ DST/`
//!       ─▶ seconds and ratio
//! ```
//!
//! The binary under test is `--tideline` (default `$CARGO_TARGET_DIR/debug/tideline`); the server
//! is `--url` with `--admin-token` (a team token and the volumes are created with it). Everything
//! lives under one temp directory that is removed at the end; every worker this run started is
//! detached (and killed by pid if that fails). Bounded: at most 1 000 000 files, 64 GiB,
//! 100 000 edits; each CLI call and each wait has a deadline.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::Value;
use tideline_benches::{client, exit, ms, team};
use tideline_client::types::wire::VolumeRequest;
use tideline_client::types::AccessMode;

const FILES_MAX: u64 = 1_000_000;
const TOTAL_MIB_MAX: u64 = 64 * 1024;
const EDITS_MAX: u64 = 100_000;
/// The files API's ceiling; no generated file is larger.
const FILE_BYTES_MAX: u64 = 100 * 1024 * 1024;
/// How long one edit may take to show up on the other side before it counts as lost.
const EDIT_TIMEOUT: Duration = Duration::from_secs(30);
/// An `attach` of the whole tree, or an rsync of it.
const BULK_TIMEOUT: Duration = Duration::from_secs(3600);
/// Any other CLI call.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a new attachment may take to report `idle`.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const LATENCY_MAX_US: u64 = 120_000_000;
/// Edits cycle over this many files: the first ones create, the rest overwrite.
const EDIT_FILES: u64 = 20;

#[derive(Parser, Debug)]
#[command(name = "syncbench", about = "Measure sync-worker propagation latency and initial attach against rsync")]
struct Args {
    /// Base URL of a node.
    #[arg(long, alias = "server", default_value = "http://127.0.0.1:7070")]
    url: String,
    #[arg(long, env = "TIDELINE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// The tideline binary to drive (default: $CARGO_TARGET_DIR/debug/tideline).
    #[arg(long)]
    tideline: Option<PathBuf>,
    /// Edits timed in phase (a).
    #[arg(long, default_value_t = 200)]
    edits: u64,
    /// Files in the tree of phase (b).
    #[arg(long, default_value_t = 10_000)]
    files: u64,
    /// Total size of that tree, in MiB.
    #[arg(long, default_value_t = 200)]
    total_mib: u64,
    /// Skip phase (a) or (b).
    #[arg(long)]
    skip_latency: bool,
    #[arg(long)]
    skip_attach: bool,
    /// Keep the temp directory (for inspection) instead of removing it.
    #[arg(long)]
    keep: bool,
}

/// The temp root and every worker started under it; cleaned up on drop, even after an error.
struct Run {
    tideline: PathBuf,
    url: String,
    token: String,
    root: PathBuf,
    keep: bool,
    /// (home, dir) of every attachment made.
    attached: Vec<(PathBuf, PathBuf)>,
}

impl Run {
    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn mkdir(&self, name: &str) -> Result<PathBuf> {
        let p = self.path(name);
        std::fs::create_dir_all(&p).with_context(|| format!("create {}", p.display()))?;
        Ok(p)
    }

    /// `tideline sync ARGS` with `home`; (exit ok, stdout, stderr). Output goes to files, so a
    /// worker that inherits them cannot hold the call open.
    fn sync(&self, home: &Path, args: &[&str], timeout: Duration) -> Result<(bool, String, String)> {
        let out = self.root.join(".cli.out");
        let err = self.root.join(".cli.err");
        let mut child = Command::new(&self.tideline)
            .arg("sync")
            .args(args)
            .env("TIDELINE_HOME", home)
            .env("TIDELINE_URL", &self.url)
            .env("TIDELINE_TOKEN", &self.token)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(&err)?)
            .spawn()
            .with_context(|| format!("run {}", self.tideline.display()))?;
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("`tideline sync {}` did not finish within {timeout:?}", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Ok((status.success(), std::fs::read_to_string(&out)?, std::fs::read_to_string(&err)?))
    }

    fn attach(&self, home: &Path, vol: &str, dir: &Path, extra: &[&str]) -> Result<Duration> {
        let mut args = vec!["attach", vol, dir.to_str().context("non-UTF-8 temp path")?];
        args.extend_from_slice(extra);
        let t = Instant::now();
        let (ok, stdout, stderr) = self.sync(home, &args, BULK_TIMEOUT)?;
        let took = t.elapsed();
        if !ok {
            bail!("`tideline sync {}` failed:\n{stdout}{stderr}", args.join(" "));
        }
        Ok(took)
    }

    fn status(&self, home: &Path, dir: &Path) -> Result<Value> {
        let (ok, stdout, stderr) =
            self.sync(home, &["status", "--dir", dir.to_str().context("path")?, "--json"], CLI_TIMEOUT)?;
        if !ok {
            bail!("sync status: {stdout}{stderr}");
        }
        serde_json::from_str(&stdout).with_context(|| format!("sync status is not JSON: {stdout}"))
    }

    fn wait_idle(&self, home: &Path, dir: &Path) -> Result<()> {
        let deadline = Instant::now() + IDLE_TIMEOUT;
        loop {
            let s = self.status(home, dir)?;
            if s["state"] == "idle" {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} not idle within {IDLE_TIMEOUT:?}: {s}", dir.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn detach(&mut self, home: &Path, dir: &Path) -> Result<()> {
        let (ok, stdout, stderr) = self.sync(home, &["detach", "--dir", dir.to_str().context("path")?], CLI_TIMEOUT)?;
        if !ok {
            bail!("sync detach {}: {stdout}{stderr}", dir.display());
        }
        self.attached.retain(|(h, d)| !(h == home && d == dir));
        Ok(())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        for (home, dir) in std::mem::take(&mut self.attached) {
            let pid = self.status(&home, &dir).ok().and_then(|s| s["worker_pid"].as_i64());
            let detached = self.detach(&home, &dir).is_ok();
            if let (false, Some(pid)) = (detached, pid) {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if pid > 1 && String::from_utf8_lossy(&cmdline).contains("tideline") {
                    // A worker this run started, identified by its status and command line.
                    kill_pid(pid as i32);
                }
            }
        }
        if self.keep {
            eprintln!("syncbench: kept {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// SIGKILL through the `kill` command (this crate does not depend on libc).
fn kill_pid(pid: i32) {
    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
}

/// xorshift64*: fast, deterministic, incompressible enough that gzip does not flatter anyone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// File sizes summing to exactly `total`: mostly small, some medium, a few large.
fn sizes(files: u64, total: u64, rng: &mut Rng) -> Vec<u64> {
    let raw: Vec<u64> = (0..files)
        .map(|_| {
            let r = rng.next();
            match r % 100 {
                0..=69 => 512 + r / 100 % (8 * 1024),
                70..=94 => 8 * 1024 + r / 100 % (120 * 1024),
                _ => 128 * 1024 + r / 100 % (4 * 1024 * 1024),
            }
        })
        .collect();
    let sum: u64 = raw.iter().sum::<u64>().max(1);
    let mut out: Vec<u64> =
        raw.iter().map(|&s| ((s as u128 * total as u128 / sum as u128) as u64).min(FILE_BYTES_MAX)).collect();
    // Spread the rounding remainder over the files that have room.
    let mut missing = total.saturating_sub(out.iter().sum());
    for s in out.iter_mut() {
        if missing == 0 {
            break;
        }
        let add = missing.min(FILE_BYTES_MAX - *s);
        *s += add;
        missing -= add;
    }
    out
}

/// Writes the tree; returns (files, bytes).
fn generate(dir: &Path, files: u64, total: u64) -> Result<(u64, u64)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let sizes = sizes(files, total, &mut rng);
    let mut buf = Vec::new();
    let mut bytes = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let p = dir.join(format!("d{:03}/s{}/f{i:06}.bin", i % 100, i % 7));
        std::fs::create_dir_all(p.parent().unwrap())?;
        buf.resize(size as usize, 0);
        rng.fill(&mut buf);
        std::fs::write(&p, &buf).with_context(|| format!("write {}", p.display()))?;
        bytes += size;
    }
    Ok((sizes.len() as u64, bytes))
}

/// (files, bytes) under `dir`, and the sorted (relative path, size) list.
fn inventory(dir: &Path) -> Result<Vec<(String, u64)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) -> Result<()> {
        for e in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
            let e = e?;
            let md = std::fs::symlink_metadata(e.path())?;
            if md.is_dir() {
                walk(root, &e.path(), out)?;
            } else {
                let rel = e.path().strip_prefix(root)?.to_string_lossy().into_owned();
                out.push((rel, md.len()));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

struct Latency {
    hist: Histogram<u64>,
    lost: u64,
}

fn latency(run: &mut Run, vol: &str, edits: u64) -> Result<Latency> {
    let (home_a, home_b) = (run.mkdir("home-a")?, run.mkdir("home-b")?);
    let (dir_a, dir_b) = (run.mkdir("dir-a")?, run.mkdir("dir-b")?);
    run.attach(&home_a, vol, &dir_a, &[])?;
    run.attached.push((home_a.clone(), dir_a.clone()));
    run.attach(&home_b, vol, &dir_b, &[])?;
    run.attached.push((home_b.clone(), dir_b.clone()));
    run.wait_idle(&home_a, &dir_a)?;
    run.wait_idle(&home_b, &dir_b)?;

    let mut hist = Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)?;
    let mut lost = 0;
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    std::fs::create_dir_all(dir_a.join("edits"))?;
    // One unmeasured edit first: the first write also creates edits/ on the other side.
    for i in 0..=edits {
        let rel = format!("edits/e{:02}.txt", i % EDIT_FILES);
        let token = format!("edit {i} of run {nonce}\n");
        let t = Instant::now();
        std::fs::write(dir_a.join(&rel), &token)?;
        let target = dir_b.join(&rel);
        let arrived = loop {
            if std::fs::read(&target).map(|d| d == token.as_bytes()).unwrap_or(false) {
                break true;
            }
            if t.elapsed() > EDIT_TIMEOUT {
                break false;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if i == 0 {
            if !arrived {
                bail!("the warm-up edit did not reach B within {EDIT_TIMEOUT:?}");
            }
            continue;
        }
        if arrived {
            hist.saturating_record((t.elapsed().as_micros() as u64).max(1));
        } else {
            lost += 1;
            eprintln!("syncbench: edit {i} did not reach B within {EDIT_TIMEOUT:?}");
        }
        if i % 50 == 0 {
            eprintln!("syncbench: {i}/{edits} edits");
        }
    }
    run.detach(&home_a, &dir_a)?;
    run.detach(&home_b, &dir_b)?;
    Ok(Latency { hist, lost })
}

struct Attach {
    files: u64,
    bytes: u64,
    generate_s: f64,
    upload_s: f64,
    download_s: f64,
    rsync_s: f64,
}

fn attach(run: &mut Run, vol: &str, files: u64, total: u64) -> Result<Attach> {
    let rsync = Command::new("rsync").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !rsync.map(|s| s.success()).unwrap_or(false) {
        bail!("rsync is not installed (Debian/Ubuntu: apt-get install rsync); skip this phase with --skip-attach");
    }
    let src = run.mkdir("src")?;
    eprintln!("syncbench: writing {files} files, {} MiB", total / (1024 * 1024));
    let t = Instant::now();
    let (files, bytes) = generate(&src, files, total)?;
    let generate_s = t.elapsed().as_secs_f64();
    let want = inventory(&src)?;

    eprintln!("syncbench: attach --init-from local (upload)");
    let home_up = run.mkdir("home-up")?;
    let upload = run.attach(&home_up, vol, &src, &["--init-from", "local"])?;
    run.attached.push((home_up.clone(), src.clone()));
    run.wait_idle(&home_up, &src)?;
    run.detach(&home_up, &src)?;

    eprintln!("syncbench: attach --init-from volume (download) into a fresh directory");
    let home_down = run.mkdir("home-down")?;
    let fresh = run.mkdir("fresh")?;
    let download = run.attach(&home_down, vol, &fresh, &["--init-from", "volume"])?;
    run.attached.push((home_down.clone(), fresh.clone()));
    let got = inventory(&fresh)?;
    run.detach(&home_down, &fresh)?;
    if got != want {
        let missing = want.iter().filter(|w| !got.contains(w)).count();
        bail!(
            "the attached tree differs from the source: {} vs {} files, {missing} missing or resized",
            got.len(),
            want.len()
        );
    }

    eprintln!("syncbench: rsync -a");
    let dst = run.path("rsync-dst");
    let t = Instant::now();
    let mut child = Command::new("rsync")
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", dst.display()))
        .spawn()
        .context("run rsync")?;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if t.elapsed() > BULK_TIMEOUT {
            let _ = child.kill();
            bail!("rsync did not finish within {BULK_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let rsync_s = t.elapsed().as_secs_f64();
    if !status.success() {
        bail!("rsync failed: {status}");
    }
    Ok(Attach { files, bytes, generate_s, upload_s: upload.as_secs_f64(), download_s: download.as_secs_f64(), rsync_s })
}

async fn run(args: Args) -> Result<()> {
    if args.files == 0 || args.files > FILES_MAX {
        bail!("--files must be in 1..={FILES_MAX}");
    }
    if args.total_mib == 0 || args.total_mib > TOTAL_MIB_MAX {
        bail!("--total-mib must be in 1..={TOTAL_MIB_MAX}");
    }
    if args.edits == 0 || args.edits > EDITS_MAX {
        bail!("--edits must be in 1..={EDITS_MAX}");
    }
    let total = args.total_mib * 1024 * 1024;
    if total.div_ceil(args.files) > FILE_BYTES_MAX {
        bail!("--total-mib / --files exceeds the 100 MiB file limit");
    }
    let tideline = match args.tideline {
        Some(p) => p,
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .ok_or_else(|| anyhow!("give --tideline PATH or set CARGO_TARGET_DIR"))?;
            PathBuf::from(target).join("debug/tideline")
        }
    };
    if !tideline.is_file() {
        bail!("{} is not a file", tideline.display());
    }
    let url = args.url.trim_end_matches('/').to_string();
    let c = team(&client(&url, &args.admin_token, Duration::from_secs(60))?, "bench-sync").await?;
    let token = c.token().to_string();
    // RWX: with RWO the write lease would tie every upload to whichever replica registered first.
    let rwx = VolumeRequest::with_access_mode(AccessMode::Rwx);
    let vol_latency = c.create_volume(&rwx).await.context("creating the latency volume")?.id;
    let vol_attach = c.create_volume(&rwx).await.context("creating the attach volume")?.id;

    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let root = std::env::temp_dir().join(format!("syncbench-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let mut run = Run { tideline, url, token, root, keep: args.keep, attached: Vec::new() };

    let lat = if args.skip_latency { None } else { Some(latency(&mut run, &vol_latency, args.edits)?) };
    let att = if args.skip_attach { None } else { Some(attach(&mut run, &vol_attach, args.files, total)?) };

    println!();
    println!("{:<52} {:>12}", "syncbench", "value");
    if let Some(l) = &lat {
        let name = format!("propagation/edits={}", l.hist.len() + l.lost);
        println!("{:<52} {:>10.1}ms", format!("{name} p50"), ms(l.hist.value_at_quantile(0.5)));
        println!("{:<52} {:>10.1}ms", format!("{name} p99"), ms(l.hist.value_at_quantile(0.99)));
        println!("{:<52} {:>10.1}ms", format!("{name} max"), ms(l.hist.max()));
        println!("{:<52} {:>12}", format!("{name} lost (>{}s)", EDIT_TIMEOUT.as_secs()), l.lost);
    }
    if let Some(a) = &att {
        let name = format!("attach/files={}/mib={}", a.files, a.bytes / (1024 * 1024));
        println!("{:<52} {:>11.2}s", format!("{name} generate local tree"), a.generate_s);
        println!("{:<52} {:>11.2}s", format!("{name} attach --init-from local"), a.upload_s);
        println!("{:<52} {:>11.2}s", format!("{name} attach --init-from volume"), a.download_s);
        println!("{:<52} {:>11.2}s", format!("{name} rsync -a"), a.rsync_s);
        println!("{:<52} {:>11.2}x", format!("{name} ratio attach/rsync"), a.download_s / a.rsync_s.max(1e-9));
        println!(
            "{:<52} {:>7.1}MiB/s",
            format!("{name} attach --init-from volume rate"),
            a.bytes as f64 / (1024.0 * 1024.0) / a.download_s.max(1e-9)
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    exit("syncbench", run(Args::parse()).await)
}
