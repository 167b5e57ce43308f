//! `tideline sync …` as a user on two laptops sees the binary itself: a real server (port 0,
//! stopped by pid) and the real client-only binary (`common::client_bin`: what a laptop
//! installs, no RocksDB) run as subprocesses, each "machine" with its own `TIDELINE_HOME` and
//! directory. Only what needs processes is here — the CLI's arguments, output and exit codes,
//! the attach / status / list / logs / detach flow of a background worker, `conflicts`
//! commands, and workers stopped or killed by signals; the engine's behaviour runs in process
//! against an in-process node in `sync/tests/`. Every wait is a bounded poll of an observable condition
//! (`sync status --json`, whole-tree comparisons of both directories and the volume), never a
//! sleep before an assertion.
//!
//! ```text
//!   machine A: TIDELINE_HOME=homeA, DIR=dirA ─┐                 ┌─ files API / replica appends
//!                                             ├─▶ server (vol) ◀┤
//!   machine B: TIDELINE_HOME=homeB, DIR=dirB ─┘                 └─ tree walk (files/list + read)
//! ```
//!
//! Workers are stopped by pid: `sync detach`, and on drop every worker pid a machine has seen
//! (only if `/proc/PID/cmdline` still names `tideline`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{show, ChangesQuery, Client, Server};
use serde_json::{json, Value};
use tideline_client::types::wire::{AppendRequest, ReplicaChange, ReplicaRequest, VolumeRequest};
use tideline_client::types::{AccessMode, ConflictStatus};
use tideline_test_support::tree::{converged, local_tree, remote_tree, sha256, Entry, Tree};
use tideline_test_support::wait_until;

/// `sync attach` does the initial sync in the foreground; a big one may take a while in debug.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(180);
/// Any other CLI call.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// Edits reach the other side "within ~1 s"; this is the bound a debug build gets.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

fn phase(what: &str) {
    tracing::info!("--- {what}");
    eprintln!("--- {what}");
}

/// Runs `tideline ARGS` to completion within `timeout`. Output goes to files rather than pipes,
/// so a background worker that inherits them cannot keep the call from returning.
fn run_tideline(envs: &[(&str, &str)], cwd: &Path, args: &[&str], timeout: Duration) -> Output {
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let err_file = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(common::client_bin())
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("RUST_LOG")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_file.reopen().unwrap()))
        .stderr(Stdio::from(err_file.reopen().unwrap()))
        .spawn()
        .expect("spawn tideline");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`tideline {}` did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                args.join(" "),
                std::fs::read_to_string(out_file.path()).unwrap_or_default(),
                std::fs::read_to_string(err_file.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: std::fs::read(out_file.path()).unwrap(), stderr: std::fs::read(err_file.path()).unwrap() }
}

fn parse_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(out)))
}

// ---------------------------------------------------------------------------------------------
// Processes

/// Alive and not a zombie (a killed worker whose parent has exited may linger as one).
fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // `pid (comm) S …`: the state follows the last ')'.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start().chars().next();
            state.is_some() && state != Some('Z') && state != Some('X')
        }
        Err(_) => false,
    }
}

fn is_tideline(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("tideline"))
        .unwrap_or(false)
}

fn signal(pid: i32, sig: i32) {
    assert!(pid > 1, "refusing to signal pid {pid}");
    assert!(is_tideline(pid), "pid {pid} is not a tideline process");
    // SAFETY: kill(2) with a pid we got from our own worker's status and just checked.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
}

async fn wait_dead(pid: i32) {
    wait_until(&format!("worker {pid} to exit"), SYNC_TIMEOUT, || async move {
        if pid_alive(pid) {
            Err("still alive".to_string())
        } else {
            Ok(())
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Trees: relative path → kind, content hash, mode bits

// ---------------------------------------------------------------------------------------------
// The server side

struct Remote {
    _server: Server,
    _data: tempfile::TempDir,
    c: Client,
    vol: String,
}

impl Remote {
    async fn start(team: &str) -> Remote {
        let data = tempfile::tempdir().unwrap();
        let server = Server::start(data.path());
        let c = Client::for_team(&server.url, team).await;
        // Two laptops write to it: RWX (an RWO volume gives the write lease to one replica).
        let vol = c.api.create_volume(&VolumeRequest::with_access_mode(AccessMode::Rwx)).await.unwrap();
        assert_eq!(vol.access_mode, AccessMode::Rwx, "{vol:?}");
        Remote { _server: server, _data: data, c, vol: vol.id }
    }

    /// The whole namespace, walked through the files API.
    async fn tree(&self) -> Result<Tree, String> {
        remote_tree(&self.c.api, &self.vol).await
    }

    async fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.c.read(&self.vol, path).await.ok()
    }

    async fn write(&self, path: &str, data: &[u8]) {
        let written = self.c.write(&self.vol, path, data.to_vec()).await;
        assert!(written.is_ok(), "files API write {path}: {written:?}");
    }

    /// Conflicts through the API (`status` may be empty for all), as JSON values.
    async fn conflicts(&self, status: &str) -> Vec<Value> {
        let status = (!status.is_empty()).then(|| status.parse::<ConflictStatus>().unwrap());
        let list = self.c.api.conflicts(&self.vol, status, None).await.unwrap();
        list.conflicts.iter().map(|c| serde_json::to_value(c).unwrap()).collect()
    }

    /// The whole journal, as JSON values.
    async fn journal(&self) -> Vec<Value> {
        self.c.journal(&self.vol).await.iter().map(|e| serde_json::to_value(e).unwrap()).collect()
    }

    async fn head(&self) -> u64 {
        self.c.api.changes(&self.vol, &ChangesQuery::page(0, 1)).await.unwrap().head_seq
    }

    /// Registers a replica of our own (not a worker) and returns the head.
    async fn register(&self, rid: &str) -> u64 {
        let r = self.c.api.put_replica(&self.vol, rid, &ReplicaRequest::default()).await;
        r.unwrap_or_else(|e| panic!("register {rid}: {e}")).head_seq
    }

    /// One replica append that must not conflict; the new head.
    async fn append(&self, rid: &str, request_id: &str, base_seq: u64, changes: Vec<ReplicaChange>) -> u64 {
        let req = AppendRequest { request_id: request_id.into(), base_seq, changes };
        let answer = self.c.api.append(&self.vol, rid, &req).await;
        let answer = answer.unwrap_or_else(|e| panic!("append {request_id}: {e}"));
        assert!(answer.conflicts.is_empty(), "append {request_id}: {:?}", answer.conflicts);
        answer.head_seq
    }

    /// Every local directory in `dirs` holds exactly the volume's tree; that tree.
    async fn converged(&self, dirs: &[&Path]) -> Result<Tree, String> {
        converged(&self.c.api, &self.vol, dirs).await
    }

    async fn wait_converged(&self, what: &str, dirs: &[&Path]) -> Tree {
        wait_until(what, SYNC_TIMEOUT, || self.converged(dirs)).await
    }
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n =
            (chunk[0] as u32) << 16 | (*chunk.get(1).unwrap_or(&0) as u32) << 8 | *chunk.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 { T[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if chunk.len() > 2 { T[n as usize & 63] as char } else { '=' });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// A machine: one TIDELINE_HOME and one directory

struct Machine {
    name: &'static str,
    home: tempfile::TempDir,
    _root: tempfile::TempDir,
    dir: PathBuf,
    url: String,
    token: String,
    /// Every worker pid seen; killed on drop.
    pids: Mutex<Vec<i32>>,
}

impl Machine {
    fn new(name: &'static str, remote: &Remote) -> Machine {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(format!("dir-{name}"));
        std::fs::create_dir(&dir).unwrap();
        Machine {
            name,
            home: tempfile::tempdir().unwrap(),
            _root: root,
            dir,
            url: remote.c.url.clone(),
            token: remote.c.token.clone(),
            pids: Mutex::new(Vec::new()),
        }
    }

    fn cli_in(&self, cwd: &Path, args: &[&str], timeout: Duration) -> Output {
        let home = self.home.path().to_str().unwrap();
        let envs =
            [("TIDELINE_HOME", home), ("TIDELINE_URL", self.url.as_str()), ("TIDELINE_TOKEN", self.token.as_str())];
        let cwd = if cwd.is_dir() { cwd } else { self.home.path() };
        let mut all = vec!["sync"];
        all.extend_from_slice(args);
        run_tideline(&envs, cwd, &all, timeout)
    }

    /// `tideline sync ARGS`, run from this machine's directory.
    fn cli(&self, args: &[&str]) -> Output {
        self.cli_in(&self.dir, args, CLI_TIMEOUT)
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn d(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn remember_pid(&self, pid: i32) {
        let mut pids = self.pids.lock().unwrap();
        if !pids.contains(&pid) {
            pids.push(pid);
        }
    }

    /// `sync attach VOL DIR EXTRA…`; remembers the printed worker pid.
    fn attach_in(&self, vol: &str, dir: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["attach", vol, dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = self.cli_in(self.home.path(), &args, ATTACH_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if let Some(rest) = stdout.split("worker pid ").nth(1) {
            if let Ok(pid) = rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<i32>() {
                self.remember_pid(pid);
            }
        }
        out
    }

    fn attach(&self, vol: &str, extra: &[&str]) -> Output {
        self.attach_in(vol, &self.dir, extra)
    }

    /// Attaches and checks the printed line: `(replica id, worker pid)`.
    fn attach_ok_in(&self, vol: &str, dir: &Path, extra: &[&str]) -> (String, i32) {
        let out = self.attach_in(vol, dir, extra);
        assert!(out.status.success(), "machine {}: attach {extra:?}: {}", self.name, show(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = stdout
            .lines()
            .find(|l| l.starts_with("attached "))
            .unwrap_or_else(|| panic!("no `attached …` line: {}", show(&out)));
        assert!(line.contains(vol) && line.contains(dir.to_str().unwrap()), "{line}");
        let rid = line.split("(replica ").nth(1).and_then(|r| r.split(',').next()).unwrap_or_else(|| panic!("{line}"));
        let pid = line
            .split("worker pid ")
            .nth(1)
            .map(|r| r.chars().take_while(char::is_ascii_digit).collect::<String>())
            .and_then(|p| p.parse::<i32>().ok())
            .unwrap_or_else(|| panic!("no worker pid in {line}"));
        assert!(pid_alive(pid), "worker {pid} is not running right after attach");
        (rid.trim().to_string(), pid)
    }

    fn attach_ok(&self, vol: &str, extra: &[&str]) -> (String, i32) {
        self.attach_ok_in(vol, &self.dir, extra)
    }

    fn status_of(&self, dir: &Path) -> Result<Value, String> {
        let out = self.cli(&["status", "--dir", dir.to_str().unwrap(), "--json"]);
        if !out.status.success() {
            return Err(show(&out));
        }
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("not JSON ({e}): {}", show(&out)))?;
        if let Some(pid) = v["worker_pid"].as_i64() {
            self.remember_pid(pid as i32);
        }
        Ok(v)
    }

    fn status(&self) -> Value {
        self.status_of(&self.dir).unwrap_or_else(|e| panic!("machine {}: sync status: {e}", self.name))
    }

    fn worker_pid(&self) -> i32 {
        let s = self.status();
        s["worker_pid"].as_i64().unwrap_or_else(|| panic!("no worker_pid: {s}")) as i32
    }

    /// Waits until `sync status --json` satisfies `ok` (which explains itself when it does not).
    async fn wait_status(&self, what: &str, ok: impl Fn(&Value) -> Result<(), String>) -> Value {
        let what = format!("machine {}: {what}", self.name);
        let ok = &ok;
        wait_until(&what, SYNC_TIMEOUT, || async move {
            let s = self.status_of(&self.dir)?;
            ok(&s).map_err(|e| format!("{e}\nstatus: {s}"))?;
            Ok(s)
        })
        .await
    }

    async fn wait_idle(&self) -> Value {
        self.wait_status("state idle", |s| {
            let idle = s["state"] == "idle" && s["cursor"] == s["head_seq"] && s["pending_local"] == 0;
            if idle {
                Ok(())
            } else {
                Err("not idle".into())
            }
        })
        .await
    }

    fn detach(&self) {
        let pid = self.status()["worker_pid"].as_i64();
        let out = self.cli(&["detach", "--dir", self.d()]);
        assert!(out.status.success(), "machine {}: detach: {}", self.name, show(&out));
        if let Some(pid) = pid {
            let deadline = Instant::now() + SYNC_TIMEOUT;
            while pid_alive(pid as i32) {
                assert!(Instant::now() < deadline, "worker {pid} still running after detach");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // Also the pids the machine knows of now (a restart may have made new ones).
        let out = self.cli_in(self.home.path(), &["list", "--json"], Duration::from_secs(20));
        if std::thread::panicking() {
            // What the worker thought, for the failure report.
            eprintln!("=== machine {}: sync list --json\n{}", self.name, show(&out));
            let logs = self.cli_in(self.home.path(), &["logs", "--dir", self.d()], Duration::from_secs(20));
            let text = String::from_utf8_lossy(&logs.stdout);
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            eprintln!(
                "=== machine {}: sync logs (last 60 lines)\n{tail}\n{}",
                self.name,
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        if let Ok(Value::Array(all)) = serde_json::from_slice::<Value>(&out.stdout) {
            for a in all {
                if let Some(pid) = a["worker_pid"].as_i64() {
                    self.remember_pid(pid as i32);
                }
            }
        }
        for &pid in self.pids.lock().unwrap().iter() {
            if pid > 1 && pid_alive(pid) && is_tideline(pid) {
                // SAFETY: our own worker, identified by its status and its command line.
                unsafe {
                    libc::kill(pid, libc::SIGCONT);
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

fn write(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

/// Journal entries a replica made.
fn by_replica<'a>(journal: &'a [Value], rid: &str) -> Vec<&'a Value> {
    journal.iter().filter(|e| e["source"] == "replica" && e["replica_id"] == rid).collect()
}

// ---------------------------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_status_list_logs_and_detach() {
    let remote = &Remote::start("team-sync-1").await;
    let a = &Machine::new("A", remote);
    let b = &Machine::new("B", remote);

    phase("attach two empty directories to an empty volume");
    let (rid_a, _) = a.attach_ok(&remote.vol, &[]);
    let (rid_b, _) = b.attach_ok(&remote.vol, &[]);
    assert_ne!(rid_a, rid_b, "two attachments are two replicas");
    a.wait_idle().await;
    b.wait_idle().await;
    let s = a.status();
    for field in ["volume_id", "dir", "replica_id", "state", "cursor", "head_seq", "pending_local", "open_conflicts"] {
        assert!(s.get(field).is_some(), "status has no {field}: {s}");
    }
    assert_eq!(s["volume_id"], remote.vol.as_str());
    assert!(s["errors"].is_array(), "{s}");
    let list = a.cli(&["list", "--json"]);
    assert!(list.status.success(), "{}", show(&list));
    let list = parse_json(&list);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["replica_id"], rid_a.as_str());

    phase("a files-API write appears in both directories, a local one in the volume");
    let dirs = [a.dir.as_path(), b.dir.as_path()];
    remote.write("/api/nested/from-api.txt", b"written through the files API\n").await;
    write(&b.p("from-b.txt"), b"written in B\n");
    let t = remote.wait_converged("a files-API write in both dirs", &dirs).await;
    assert!(t.contains_key("/api/nested/from-api.txt") && t.contains_key("/from-b.txt"), "{t:?}");
    assert_eq!(std::fs::read(a.p("api/nested/from-api.txt")).unwrap(), b"written through the files API\n");

    phase("status without --dir finds the attachment from the current directory; logs print");
    let out = a.cli_in(&a.p("api/nested"), &["status", "--json"], CLI_TIMEOUT);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(parse_json(&out)["replica_id"], rid_a.as_str());
    let out = b.cli(&["logs", "--dir", b.d()]);
    assert!(out.status.success() && !out.stdout.is_empty(), "{}", show(&out));

    phase("detach A: its worker stops and it is no longer listed");
    let pid_a = a.worker_pid();
    a.detach();
    assert!(!pid_alive(pid_a));
    let list = parse_json(&a.cli(&["list", "--json"]));
    assert_eq!(list, json!([]), "{list}");
    assert!(a.p("api/nested/from-api.txt").exists(), "detach keeps the local files");
    b.detach();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edit_gives_one_conflict() {
    let remote = &Remote::start("team-sync-2").await;
    let a = &Machine::new("A", remote);
    let b = &Machine::new("B", remote);
    a.attach_ok(&remote.vol, &[]);
    let (rid_b, _) = b.attach_ok(&remote.vol, &[]);
    let dirs = [a.dir.as_path(), b.dir.as_path()];

    phase("a shared file, synced to both");
    write(&a.p("notes/plan.md"), b"v1\n");
    remote.wait_converged("plan.md everywhere", &dirs).await;
    a.wait_idle().await;
    b.wait_idle().await;

    phase("B's worker is stopped; A edits and the volume has A's version");
    let pid_b = b.worker_pid();
    signal(pid_b, libc::SIGSTOP);
    write(&a.p("notes/plan.md"), b"edited on A\n");
    wait_until("A's edit in the volume", SYNC_TIMEOUT, || async move {
        match remote.read("/notes/plan.md").await {
            Some(d) if d == b"edited on A\n" => Ok(()),
            other => Err(format!("{:?}", other.map(|d| String::from_utf8_lossy(&d).into_owned()))),
        }
    })
    .await;

    phase("B edits the same file, then its worker continues");
    write(&b.p("notes/plan.md"), b"edited on B\n");
    signal(pid_b, libc::SIGCONT);

    phase("exactly one open conflict, concurrent_update, B's version at the artifact path");
    let open = wait_until("one open conflict", SYNC_TIMEOUT, || async move {
        let open = remote.conflicts("open").await;
        if open.is_empty() {
            Err("none yet".into())
        } else {
            Ok(open)
        }
    })
    .await;
    assert_eq!(open.len(), 1, "{open:#?}");
    let c = &open[0];
    assert_eq!(c["reason"], "concurrent_update", "{c}");
    assert_eq!(c["path"], "/notes/plan.md", "{c}");
    assert_eq!(c["replica_id"], rid_b.as_str(), "{c}");
    let artifact = c["artifact_path"].as_str().unwrap().to_string();
    assert!(artifact.starts_with(&format!("/notes/plan.conflict-{rid_b}-seq-")) && artifact.ends_with(".md"), "{c}");
    let shown = b.cli(&["conflicts", "show", "/notes/plan.md"]);
    assert!(shown.status.success(), "{}", show(&shown));
    assert!(String::from_utf8_lossy(&shown.stdout).contains(&artifact), "{}", show(&shown));
    let listed = b.cli(&["conflicts", "list", "--dir", b.d(), "--json"]);
    assert!(listed.status.success(), "{}", show(&listed));
    let listed = parse_json(&listed);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["id"], c["id"], "{listed}");
    assert_eq!(listed[0]["artifact_path"], artifact.as_str(), "{listed}");

    phase("both versions on disk on both sides");
    let t = remote.wait_converged("both versions in both dirs", &dirs).await;
    for d in dirs {
        assert_eq!(std::fs::read(d.join("notes/plan.md")).unwrap(), b"edited on A\n", "{}", d.display());
        assert_eq!(
            std::fs::read(d.join(artifact.trim_start_matches('/'))).unwrap(),
            b"edited on B\n",
            "{}",
            d.display()
        );
    }
    assert_eq!(t.keys().filter(|p| p.contains(".conflict-")).count(), 1, "{t:?}");
    let s = b
        .wait_status("paused with one open conflict", |s| {
            if s["state"] == "paused" && s["open_conflicts"] == 1 {
                Ok(())
            } else {
                Err("not paused".into())
            }
        })
        .await;
    assert_eq!(s["open_conflicts"], 1, "{s}");
    let s = a.status();
    assert_ne!(s["state"], "paused", "the winner does not pause: {s}");

    phase("while paused, B's new local edit is noticed but not uploaded");
    write(&b.p("held.txt"), b"made while paused\n");
    b.wait_status("the held edit pending", |s| {
        if s["pending_local"].as_u64().unwrap_or(0) >= 1 && s["state"] == "paused" {
            Ok(())
        } else {
            Err("not pending".into())
        }
    })
    .await;
    // B still applies remote changes meanwhile: once A's later edit has reached B, B has had
    // every chance to upload.
    write(&a.p("ping.txt"), b"ping\n");
    wait_until("A's ping in B", SYNC_TIMEOUT, || async move {
        match std::fs::read(b.p("ping.txt")) {
            Ok(d) if d == b"ping\n" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(remote.read("/held.txt").await, None, "B uploaded while paused");
    assert_eq!(b.status()["state"], "paused");

    phase("conflicts mark resolves it; B resumes and the held edit uploads");
    // A path relative to the current directory inside the attachment names the volume path.
    let marked = b.cli_in(&b.p("notes"), &["conflicts", "mark", "plan.md"], CLI_TIMEOUT);
    assert!(marked.status.success(), "{}", show(&marked));
    assert!(remote.conflicts("open").await.is_empty(), "{:#?}", remote.conflicts("open").await);
    let resolved = remote.conflicts("resolved").await;
    assert_eq!(resolved.len(), 1, "{resolved:#?}");
    assert_eq!(resolved[0]["id"], c["id"]);
    wait_until("the held edit in the volume", SYNC_TIMEOUT, || async move {
        match remote.read("/held.txt").await {
            Some(d) if d == b"made while paused\n" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let t = remote.wait_converged("all converged after the resolution", &dirs).await;
    assert!(t.contains_key("/held.txt") && t.contains_key(&artifact) && t.contains_key("/ping.txt"), "{t:?}");
    b.wait_idle().await;
    a.wait_idle().await;
    assert_eq!(remote.conflicts("").await.len(), 1, "still exactly one conflict ever");
    let listed = parse_json(&b.cli(&["conflicts", "list", "--dir", b.d(), "--json"]));
    assert_eq!(listed, json!([]), "no open conflicts left");

    a.detach();
    b.detach();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_apply_converges() {
    let remote = &Remote::start("team-sync-3").await;
    let b = &Machine::new("B", remote);
    let (rid_b, _) = b.attach_ok(&remote.vol, &[]);
    b.wait_idle().await;

    phase("B's worker stopped; 1000 changes land in the volume through a third replica");
    let pid = b.worker_pid();
    signal(pid, libc::SIGSTOP);
    let mut head = remote.register("loader").await;
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut changes = Vec::new();
    for i in 0..1000usize {
        let change = if i % 40 == 39 && model.contains_key(&order[i - 20]) {
            let p = order[i - 20].clone();
            model.remove(&p);
            ReplicaChange::remove(p)
        } else if i % 40 == 19 && model.contains_key(&order[i - 10]) {
            let from = order[i - 10].clone();
            let to = format!("/bulk/renamed/r{i}.bin");
            let data = model.remove(&from).unwrap();
            model.insert(to.clone(), data);
            order[i - 10] = to.clone();
            ReplicaChange::rename(from, to)
        } else if i % 10 == 5 && model.contains_key(&order[i - 5]) {
            let p = order[i - 5].clone();
            let data = common::content(i + 7919);
            model.insert(p.clone(), data.clone());
            ReplicaChange::write(p, b64(&data))
        } else {
            let p = format!("/bulk/d{:02}/f{i:04}.bin", i % 20);
            // Every 50th is large enough for the object store; a few more larger ones so
            // applying takes long enough to be interrupted.
            let data = if i % 7 == 0 { vec![(i % 251) as u8; 40 * 1024 + i] } else { common::content(i) };
            model.insert(p.clone(), data.clone());
            ReplicaChange::write(p, b64(&data))
        };
        order.push(change.path.clone().unwrap());
        changes.push(change);
    }
    for (n, batch) in changes.chunks(200).enumerate() {
        head = remote.append("loader", &format!("bulk-{n}"), head, batch.to_vec()).await;
    }
    let expected_files = model.len();
    assert_eq!(remote.head().await, head);

    phase("continue B's worker and SIGKILL it as soon as a few files have appeared");
    signal(pid, libc::SIGCONT);
    let count = |dir: &Path| local_tree(dir).map(|t| t.values().filter(|n| matches!(n, Entry::File { .. })).count());
    let mut pid = pid;
    // Two crash points: right after the first files, and halfway through the resumed apply.
    for (round, threshold) in [(1, 3), (2, expected_files / 2)] {
        if round == 2 {
            phase("restart, and SIGKILL the resumed worker halfway");
            let (rid_again, new_pid) = b.attach_ok(&remote.vol, &[]);
            assert_eq!(rid_again, rid_b, "restarting keeps the replica");
            pid = new_pid;
        }
        let deadline = Instant::now() + SYNC_TIMEOUT;
        let seen = loop {
            let n = count(&b.dir).unwrap_or(0);
            if n >= threshold {
                break n;
            }
            assert!(Instant::now() < deadline, "B did not reach {threshold} files within {SYNC_TIMEOUT:?}: {n}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        signal(pid, libc::SIGKILL);
        wait_dead(pid).await;
        let at_kill = count(&b.dir).unwrap_or(0);
        let interrupted = at_kill < expected_files;
        eprintln!(
            "kill {round}: after {seen} files seen, {at_kill} on disk of {expected_files} (mid-apply: {interrupted})"
        );
        if !interrupted {
            eprintln!("WARNING: the worker had applied everything before kill {round}; that restart is not mid-apply");
        }
        b.wait_status("stopped after the kill", |s| {
            if s["state"] == "stopped" {
                Ok(())
            } else {
                Err("not stopped".into())
            }
        })
        .await;
    }

    phase("restart the attachment: it resumes and converges");
    let (rid_again, _) = b.attach_ok(&remote.vol, &[]);
    assert_eq!(rid_again, rid_b, "restarting keeps the replica");
    let s = wait_until("B idle and caught up", Duration::from_secs(120), || async move {
        let s = b.status_of(&b.dir)?;
        // The head it reports must be the volume's: a restarted worker says `idle` with
        // head_seq 0 until its first poll.
        let caught_up = s["head_seq"].as_u64() >= Some(head);
        if s["state"] == "idle" && s["cursor"] == s["head_seq"] && s["pending_local"] == 0 && caught_up {
            Ok(s)
        } else {
            Err(format!("{s}"))
        }
    })
    .await;
    let j = remote.journal().await;
    assert!(by_replica(&j, &rid_b).is_empty(), "B uploaded after the restart: {:#?}", by_replica(&j, &rid_b));
    assert_eq!(s["cursor"].as_u64(), Some(head), "{s}");
    assert_eq!(s["errors"], json!([]), "{s}");
    let t = remote.wait_converged("B equal to the volume", &[b.dir.as_path()]).await;
    let files: BTreeMap<&String, &Entry> = t.iter().filter(|(_, n)| matches!(n, Entry::File { .. })).collect();
    assert_eq!(files.len(), expected_files, "files in the volume");
    for (p, data) in &model {
        match files.get(p) {
            Some(Entry::File { sha256: s, .. }) => assert_eq!(s, &sha256(data), "{p}"),
            other => panic!("{p}: {other:?}"),
        }
    }
    let strays: Vec<String> = local_tree(&b.dir).unwrap().into_keys().filter(|p| p.contains(".tideline-tmp")).collect();
    assert!(strays.is_empty(), "temp files left behind: {strays:?}");

    phase("nothing was uploaded back from B");
    let j = remote.journal().await;
    assert_eq!(j.len() as u64, head, "no new journal entries at all");
    assert!(by_replica(&j, &rid_b).is_empty(), "{:#?}", by_replica(&j, &rid_b));

    b.detach();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_exit_nonzero_and_name_the_way_out() {
    let remote = &Remote::start("team-sync-5").await;
    let a = &Machine::new("A", remote);
    let b = &Machine::new("B", remote);
    write(&a.p("f/00.txt"), b"file 0\n");
    a.attach_ok(&remote.vol, &[]);
    let synced = remote.wait_converged("the file in the volume", &[a.dir.as_path()]).await;
    a.wait_idle().await;

    phase("the worker is killed and the directory emptied");
    let pid = a.worker_pid();
    signal(pid, libc::SIGKILL);
    wait_dead(pid).await;
    a.wait_status("stopped", |s| if s["state"] == "stopped" { Ok(()) } else { Err("not stopped".into()) }).await;
    std::fs::remove_dir_all(a.p("f")).unwrap();

    phase("attach without --init-from refuses to propagate the deletion");
    let out = a.attach(&remote.vol, &[]);
    assert!(!out.status.success(), "attach of an emptied dir succeeded: {}", show(&out));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("--init-from"), "the refusal does not mention --init-from: {}", show(&out));
    let s = a.status();
    assert_eq!(s["state"], "error", "{s}");
    let errors = s["errors"].as_array().unwrap_or_else(|| panic!("{s}"));
    assert!(errors.iter().any(|e| e.as_str().unwrap_or("").contains("--init-from")), "{s}");
    assert_eq!(remote.tree().await.unwrap(), synced, "the volume lost files");

    phase("a common path differs: auto refuses with exit 4 naming it, nothing changes");
    write(&b.p("f/00.txt"), b"different on B\n");
    write(&b.p("b-only.txt"), b"only in B\n");
    let before_vol = remote.tree().await.unwrap();
    let before_b = local_tree(&b.dir).unwrap();
    let out = b.attach(&remote.vol, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("f/00.txt"),
        "the differing path is not named: {}",
        show(&out)
    );
    assert_eq!(remote.tree().await.unwrap(), before_vol, "the volume changed");
    assert_eq!(local_tree(&b.dir).unwrap(), before_b, "B's directory changed");
}
