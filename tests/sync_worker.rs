//! `tideline sync …`, the two-way sync worker, as a user on two laptops sees it: a real server
//! (port 0, stopped by pid) and the real client-only binary (`common::client_bin`: what a laptop
//! installs, no RocksDB) run as subprocesses, each "machine" with its own
//! `TIDELINE_HOME` and directory. Every wait is a bounded poll of an observable condition
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
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{show, ChangesQuery, Client, Server};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tideline_client::types::wire::{AppendRequest, FileInfo, ReplicaChange, ReplicaRequest, VolumeRequest};
use tideline_client::types::{AccessMode, ConflictStatus, FileType, Reason};
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir { mode: u32 },
    File { sha256: String, size: u64, mode: u32 },
    Other(String),
}

/// `/a/b` → node; the root itself is not listed.
type Tree = BTreeMap<String, Node>;

fn sha256(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn local_tree(root: &Path) -> Result<Tree, String> {
    fn walk(root: &Path, rel: &str, out: &mut Tree) -> Result<(), String> {
        let dir = root.join(rel.trim_start_matches('/'));
        let rd = std::fs::read_dir(&dir).map_err(|e| format!("read_dir {}: {e}", dir.display()))?;
        for entry in rd {
            let entry = entry.map_err(|e| e.to_string())?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{rel}/{name}");
            // Entries may vanish while a worker is applying; the caller polls again.
            let md = std::fs::symlink_metadata(entry.path()).map_err(|e| format!("{path}: {e}"))?;
            let mode = md.permissions().mode() & 0o777;
            if md.is_dir() {
                out.insert(path.clone(), Node::Dir { mode });
                walk(root, &path, out)?;
            } else if md.is_file() {
                let data = std::fs::read(entry.path()).map_err(|e| format!("{path}: {e}"))?;
                out.insert(path, Node::File { sha256: sha256(&data), size: data.len() as u64, mode });
            } else {
                out.insert(path, Node::Other(format!("{:?}", md.file_type())));
            }
        }
        Ok(())
    }
    let mut out = Tree::new();
    walk(root, "", &mut out)?;
    Ok(out)
}

/// The tree without `.git` (anywhere) and without the paths `skip` names.
fn without(tree: &Tree, skip: impl Fn(&str) -> bool) -> Tree {
    tree.iter()
        .filter(|(p, _)| !p.split('/').any(|c| c == ".git") && !skip(p))
        .map(|(p, n)| (p.clone(), n.clone()))
        .collect()
}

fn tree_diff(left_name: &str, left: &Tree, right_name: &str, right: &Tree) -> String {
    let mut lines = Vec::new();
    for (p, n) in left {
        match right.get(p) {
            None => lines.push(format!("  {p}: only in {left_name} ({n:?})")),
            Some(m) if m != n => lines.push(format!("  {p}: {left_name} {n:?} != {right_name} {m:?}")),
            _ => {}
        }
    }
    for (p, m) in right {
        if !left.contains_key(p) {
            lines.push(format!("  {p}: only in {right_name} ({m:?})"));
        }
    }
    let total = lines.len();
    lines.truncate(20);
    if total > 20 {
        lines.push(format!("  … {} more", total - 20));
    }
    format!("{left_name} vs {right_name}: {total} differences\n{}", lines.join("\n"))
}

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
        Remote::start_with(team, &[]).await
    }

    /// A server started with extra flags (besides `--listen 127.0.0.1:0`).
    async fn start_with(team: &str, flags: &[&str]) -> Remote {
        let data = tempfile::tempdir().unwrap();
        let mut args = vec!["--listen".to_string(), "127.0.0.1:0".to_string()];
        args.extend(flags.iter().map(|f| f.to_string()));
        let server = Server::start_with(data.path(), &args);
        let c = Client::for_team(&server.url, team).await;
        // Two laptops write to it: RWX (an RWO volume gives the write lease to one replica).
        let vol = c.api.create_volume(&VolumeRequest::with_access_mode(AccessMode::Rwx)).await.unwrap();
        assert_eq!(vol.access_mode, AccessMode::Rwx, "{vol:?}");
        Remote { _server: server, _data: data, c, vol: vol.id }
    }

    async fn list(&self, dir: &str) -> Result<Vec<FileInfo>, String> {
        let list = self.c.api.list_dir(&self.vol, dir).await.map_err(|e| format!("list {dir}: {e}"))?;
        Ok(list.entries)
    }

    /// The whole namespace, walked through the files API.
    async fn tree(&self) -> Result<Tree, String> {
        let mut out = Tree::new();
        let mut dirs = vec!["/".to_string()];
        while let Some(dir) = dirs.pop() {
            for e in self.list(&dir).await? {
                let path = e.path.clone();
                let mode = u32::from_str_radix(&e.mode, 8).map_err(|_| format!("{path}: mode {}", e.mode))? & 0o777;
                match e.kind {
                    FileType::Dir => {
                        out.insert(path.clone(), Node::Dir { mode });
                        dirs.push(path);
                    }
                    FileType::File => {
                        let data = self.c.read(&self.vol, &path).await.map_err(|e| format!("read {path}: {e}"))?;
                        out.insert(path, Node::File { sha256: sha256(&data), size: data.len() as u64, mode });
                    }
                    other => {
                        out.insert(path, Node::Other(format!("{other:?}")));
                    }
                }
            }
        }
        Ok(out)
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
        let vol = self.tree().await?;
        for d in dirs {
            let local = local_tree(d)?;
            if local != vol {
                return Err(tree_diff(&d.display().to_string(), &local, "volume", &vol));
            }
        }
        Ok(vol)
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

    /// A second directory under this machine's root (same home), for a fresh attachment.
    fn fresh_dir(&self, name: &str) -> PathBuf {
        let d = self._root.path().join(name);
        std::fs::create_dir(&d).unwrap();
        d
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

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Journal entries a replica made.
fn by_replica<'a>(journal: &'a [Value], rid: &str) -> Vec<&'a Value> {
    journal.iter().filter(|e| e["source"] == "replica" && e["replica_id"] == rid).collect()
}

/// The edits of test 1, made in `from`'s directory under `top`, each checked on every side.
async fn edits_propagate(remote: &Remote, from: &Machine, rid: &str, dirs: &[&Path], top: &str) {
    let journal_has = |event: &'static str, old: String, new: String| {
        let rid = rid.to_string();
        async move {
            let j = remote.journal().await;
            let found = by_replica(&j, &rid)
                .iter()
                .any(|e| e["event_type"] == event && e["old_path"] == old.as_str() && e["path"] == new.as_str());
            assert!(found, "no `{event}` {old} → {new} from replica {rid} in the journal: {:#?}", by_replica(&j, &rid));
        }
    };

    phase(&format!("{}: create a file", from.name));
    write(&from.p(&format!("{top}/hello.txt")), b"hello\n");
    let t = remote.wait_converged("a created file everywhere", dirs).await;
    assert!(t.contains_key(&format!("/{top}/hello.txt")), "{t:?}");

    phase(&format!("{}: nested directories and files", from.name));
    write(&from.p(&format!("{top}/src/lib/x.rs")), b"fn x() {}\n");
    write(&from.p(&format!("{top}/src/lib/y.rs")), b"fn y() {}\n");
    write(&from.p(&format!("{top}/docs/guide/intro.md")), b"# intro\n");
    write(&from.p(&format!("{top}/docs/readme.md")), &vec![b'r'; 100 * 1024]);
    // Larger than any inline limit, incompressible-ish.
    let big: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    write(&from.p(&format!("{top}/docs/big.bin")), &big);
    remote.wait_converged("nested dirs and files everywhere", dirs).await;

    phase(&format!("{}: overwrite a file", from.name));
    write(&from.p(&format!("{top}/hello.txt")), b"hello again, longer this time\n");
    remote.wait_converged("an overwrite everywhere", dirs).await;

    phase(&format!("{}: rename a file (travels as a rename)", from.name));
    std::fs::rename(from.p(&format!("{top}/src/lib/x.rs")), from.p(&format!("{top}/src/lib/z.rs"))).unwrap();
    let t = remote.wait_converged("a renamed file everywhere", dirs).await;
    assert!(!t.contains_key(&format!("/{top}/src/lib/x.rs")) && t.contains_key(&format!("/{top}/src/lib/z.rs")));
    journal_has("rename", format!("/{top}/src/lib/x.rs"), format!("/{top}/src/lib/z.rs")).await;

    phase(&format!("{}: rename a directory", from.name));
    std::fs::rename(from.p(&format!("{top}/docs")), from.p(&format!("{top}/documentation"))).unwrap();
    let t = remote.wait_converged("a renamed directory everywhere", dirs).await;
    assert!(t.contains_key(&format!("/{top}/documentation/guide/intro.md")), "{t:?}");
    assert!(!t.keys().any(|p| p.starts_with(&format!("/{top}/docs"))), "{t:?}");
    journal_has("rename", format!("/{top}/docs"), format!("/{top}/documentation")).await;

    phase(&format!("{}: chmod 0755 (travels as a chmod)", from.name));
    chmod(&from.p(&format!("{top}/src/lib/y.rs")), 0o755);
    let t = remote.wait_converged("a mode change everywhere", dirs).await;
    assert!(matches!(t[&format!("/{top}/src/lib/y.rs")], Node::File { mode: 0o755, .. }), "{t:?}");
    for d in dirs {
        let mode = std::fs::metadata(d.join(format!("{top}/src/lib/y.rs"))).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "{}", d.display());
    }
    let j = remote.journal().await;
    assert!(
        by_replica(&j, rid).iter().any(|e| e["event_type"] == "chmod" && e["path"] == format!("/{top}/src/lib/y.rs")),
        "no chmod entry from {rid}"
    );

    phase(&format!("{}: delete a file", from.name));
    std::fs::remove_file(from.p(&format!("{top}/hello.txt"))).unwrap();
    let t = remote.wait_converged("a deleted file gone everywhere", dirs).await;
    assert!(!t.contains_key(&format!("/{top}/hello.txt")));

    phase(&format!("{}: delete a directory", from.name));
    std::fs::remove_dir_all(from.p(&format!("{top}/src"))).unwrap();
    let t = remote.wait_converged("a deleted directory gone everywhere", dirs).await;
    assert!(!t.keys().any(|p| p.starts_with(&format!("/{top}/src"))), "{t:?}");
}

// ---------------------------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_propagate_both_ways() {
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

    let dirs = [a.dir.as_path(), b.dir.as_path()];
    edits_propagate(remote, a, &rid_a, &dirs, "from-a").await;
    edits_propagate(remote, b, &rid_b, &dirs, "from-b").await;

    phase("a files-API write appears in both directories");
    remote.write("/api/nested/from-api.txt", b"written through the files API\n").await;
    let t = remote.wait_converged("a files-API write in both dirs", &dirs).await;
    assert!(t.contains_key("/api/nested/from-api.txt"));
    assert_eq!(std::fs::read(a.p("api/nested/from-api.txt")).unwrap(), b"written through the files API\n");

    phase("status without --dir finds the attachment from the current directory; logs print");
    let out = a.cli_in(&a.p("api/nested"), &["status", "--json"], CLI_TIMEOUT);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(parse_json(&out)["replica_id"], rid_a.as_str());
    let out = b.cli(&["logs", "--dir", b.d()]);
    assert!(out.status.success() && !out.stdout.is_empty(), "{}", show(&out));

    phase("nothing echoed back, no conflicts");
    let j = remote.journal().await;
    let api_path = "/api/nested/from-api.txt";
    assert!(
        !j.iter().any(|e| e["path"] == api_path && e["source"] == "replica"),
        "a worker echoed the files-API write back: {:#?}",
        j.iter().filter(|e| e["path"] == api_path).collect::<Vec<_>>()
    );
    assert!(remote.conflicts("").await.is_empty(), "{:#?}", remote.conflicts("").await);

    a.detach();
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
    let count = |dir: &Path| local_tree(dir).map(|t| t.values().filter(|n| matches!(n, Node::File { .. })).count());
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
    let files: BTreeMap<&String, &Node> = t.iter().filter(|(_, n)| matches!(n, Node::File { .. })).collect();
    assert_eq!(files.len(), expected_files, "files in the volume");
    for (p, data) in &model {
        match files.get(p) {
            Some(Node::File { sha256: s, .. }) => assert_eq!(s, &sha256(data), "{p}"),
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
async fn detach_then_attach_from_volume_is_identical() {
    let remote = &Remote::start("team-sync-4").await;
    let a = &Machine::new("A", remote);
    let b = &Machine::new("B", remote);
    a.attach_ok(&remote.vol, &[]);
    b.attach_ok(&remote.vol, &[]);

    phase("some shared content");
    write(&a.p("keep.txt"), b"keep\n");
    write(&a.p("change.txt"), b"old\n");
    write(&a.p("gone.txt"), b"will be removed\n");
    write(&a.p("dir/inner.txt"), b"inner\n");
    remote.wait_converged("shared content", &[a.dir.as_path(), b.dir.as_path()]).await;

    phase("detach A: its worker stops and it is no longer listed");
    let pid_a = a.worker_pid();
    a.detach();
    assert!(!pid_alive(pid_a));
    let list = parse_json(&a.cli(&["list", "--json"]));
    assert_eq!(list, json!([]), "{list}");
    assert!(a.p("keep.txt").exists(), "detach keeps the local files");

    phase("the other side changes: B and the files API");
    write(&b.p("change.txt"), b"new from B\n");
    std::fs::remove_file(b.p("gone.txt")).unwrap();
    write(&b.p("b-only/new.txt"), b"new\n");
    remote.write("/api.txt", b"from the API\n").await;
    let t = remote.wait_converged("B and the volume agree", &[b.dir.as_path()]).await;
    assert!(t.contains_key("/api.txt") && !t.contains_key("/gone.txt"));
    assert_eq!(std::fs::read(a.p("change.txt")).unwrap(), b"old\n", "detached A was not touched");

    phase("attach --init-from volume into a fresh directory: identical right away");
    let fresh = a.fresh_dir("fresh");
    a.attach_ok_in(&remote.vol, &fresh, &["--init-from", "volume"]);
    let vol_tree = remote.tree().await.unwrap();
    let fresh_tree = local_tree(&fresh).unwrap();
    assert_eq!(fresh_tree, vol_tree, "{}", tree_diff("fresh", &fresh_tree, "volume", &vol_tree));
    let b_tree = local_tree(&b.dir).unwrap();
    assert_eq!(fresh_tree, b_tree, "{}", tree_diff("fresh", &fresh_tree, "B", &b_tree));

    phase("attach --init-from volume into A's stale old directory: made identical too");
    a.attach_ok(&remote.vol, &["--init-from", "volume"]);
    let t = remote.converged(&[a.dir.as_path(), fresh.as_path(), b.dir.as_path()]).await;
    t.unwrap_or_else(|e| panic!("right after attach --init-from volume: {e}"));
    a.wait_idle().await;
    assert!(a.status_of(&fresh).unwrap()["state"] == "idle" || a.status_of(&fresh).unwrap()["state"] == "syncing");
    assert_eq!(remote.read("/gone.txt").await, None, "A's stale gone.txt was re-uploaded");
    assert_eq!(remote.read("/change.txt").await.as_deref(), Some(&b"new from B\n"[..]), "A's stale change.txt won");

    let out = a.cli(&["detach", "--dir", fresh.to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    a.detach();
    b.detach();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptied_dir_is_not_mass_deleted() {
    let remote = &Remote::start("team-sync-5").await;
    let a = &Machine::new("A", remote);
    a.attach_ok(&remote.vol, &[]);

    phase("20 files synced");
    for i in 0..20 {
        write(&a.p(&format!("f/{:02}.txt", i)), format!("file {i}\n").as_bytes());
    }
    let synced = remote.wait_converged("20 files in the volume", &[a.dir.as_path()]).await;
    assert_eq!(synced.values().filter(|n| matches!(n, Node::File { .. })).count(), 20);
    a.wait_idle().await;

    // (how the directory is lost, how it is then initialized)
    for (how, round) in [("emptied", "volume"), ("replaced", "volume"), ("emptied", "local")] {
        phase(&format!("[{round}] the worker is killed and the directory {how}"));
        let pid = a.worker_pid();
        signal(pid, libc::SIGKILL);
        wait_dead(pid).await;
        a.wait_status("stopped", |s| if s["state"] == "stopped" { Ok(()) } else { Err("not stopped".into()) }).await;
        if how == "emptied" {
            for e in std::fs::read_dir(&a.dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    std::fs::remove_dir_all(p).unwrap();
                } else {
                    std::fs::remove_file(p).unwrap();
                }
            }
        } else {
            // A different directory at the same path, with an unrelated file in it.
            std::fs::rename(&a.dir, a.dir.with_extension("old")).unwrap();
            std::fs::create_dir(&a.dir).unwrap();
            write(&a.p("unrelated.txt"), b"not from the volume\n");
        }

        phase(&format!("[{how}] attach without --init-from refuses to propagate the deletion"));
        let out = a.attach(&remote.vol, &[]);
        assert!(!out.status.success(), "attach of an emptied dir succeeded: {}", show(&out));
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(said.contains("--init-from"), "the refusal does not mention --init-from: {}", show(&out));
        let s = a.status();
        assert_eq!(s["state"], "error", "{s}");
        let errors = s["errors"].as_array().unwrap_or_else(|| panic!("{s}"));
        assert!(errors.iter().any(|e| e.as_str().unwrap_or("").contains("--init-from")), "{s}");
        assert_eq!(remote.tree().await.unwrap(), synced, "the volume lost files");
        let j = remote.journal().await;
        assert!(!j.iter().any(|e| e["event_type"] == "remove"), "removes were journaled");

        phase(&format!("[{round}] attach --init-from {round}"));
        a.attach_ok(&remote.vol, &["--init-from", round]);
        if round == "volume" {
            let restored = local_tree(&a.dir).unwrap();
            assert_eq!(restored, synced, "{}", tree_diff("dir", &restored, "before", &synced));
            a.wait_idle().await;
            assert_eq!(remote.tree().await.unwrap(), synced, "the volume changed");
        } else {
            assert_eq!(remote.tree().await.unwrap(), Tree::new(), "--init-from local empties the volume");
            a.wait_idle().await;
            assert_eq!(local_tree(&a.dir).unwrap(), Tree::new());
        }
    }
    a.detach();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_entry_types_are_named() {
    let remote = &Remote::start("team-sync-6").await;
    let a = &Machine::new("A", remote);
    a.attach_ok(&remote.vol, &[]);
    a.wait_idle().await;

    phase("a symlink, a fifo and a regular file");
    write(&a.p("target.txt"), b"target\n");
    std::os::unix::fs::symlink("target.txt", a.p("weird-symlink")).unwrap();
    let fifo = std::ffi::CString::new(a.p("sub/weird-fifo").to_str().unwrap()).unwrap();
    std::fs::create_dir_all(a.p("sub")).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "{}", std::io::Error::last_os_error());
    write(&a.p("sub/regular.txt"), b"regular\n");

    phase("status names both paths; the regular files still sync");
    a.wait_status("both unsupported entries named", |s| {
        let errors: Vec<&str> =
            s["errors"].as_array().map(|e| e.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let named = |n: &str| errors.iter().any(|e| e.contains(n));
        if named("weird-symlink") && named("weird-fifo") {
            Ok(())
        } else {
            Err(format!("errors: {errors:?}"))
        }
    })
    .await;
    wait_until("regular files in the volume", SYNC_TIMEOUT, || async move {
        let t = remote.tree().await?;
        if t.contains_key("/sub/regular.txt") && t.contains_key("/target.txt") {
            Ok(t)
        } else {
            Err(format!("{t:?}"))
        }
    })
    .await;
    let t = remote.tree().await.unwrap();
    assert!(!t.contains_key("/weird-symlink") && !t.contains_key("/sub/weird-fifo"), "{t:?}");
    a.detach();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitignore_and_git_dir_are_skipped() {
    let remote = &Remote::start("team-sync-7").await;
    let a = &Machine::new("A", remote);
    let b = &Machine::new("B", remote);
    let ignored = |p: &str| p.ends_with(".log") || p == "/build" || p.starts_with("/build/");

    phase("a repository in A before attaching: .git, ignored and kept files");
    write(&a.p(".gitignore"), b"*.log\nbuild/\n");
    write(&a.p(".git/HEAD"), b"ref: refs/heads/main\n");
    write(&a.p(".git/objects/ab/cdef"), b"object");
    write(&a.p("pre.log"), b"log\n");
    write(&a.p("build/pre.o"), b"obj");
    write(&a.p("keep/pre.txt"), b"pre\n");
    a.attach_ok(&remote.vol, &[]);
    b.attach_ok(&remote.vol, &[]);
    let a_tree = without(&local_tree(&a.dir).unwrap(), ignored);
    remote.wait_converged("B has A's tree without .git and ignored files", &[b.dir.as_path()]).await;
    let t = remote.tree().await.unwrap();
    assert_eq!(t, a_tree, "{}", tree_diff("volume", &t, "A (filtered)", &a_tree));
    assert!(t.contains_key("/.gitignore") && t.contains_key("/keep/pre.txt"));

    phase("live edits: ignored and .git changes stay local, the rest syncs");
    write(&b.p(".git/HEAD"), b"B's own repository\n");
    write(&a.p("live.log"), b"log\n");
    write(&a.p("build/live.o"), b"obj");
    write(&a.p(".git/index"), b"index");
    write(&a.p("deep/nested/x.log"), b"nested log\n");
    write(&a.p("keep/live.txt"), b"live\n");
    wait_until("A's live edits in B", SYNC_TIMEOUT, || async move {
        let t = remote.tree().await?;
        let bt = without(&local_tree(&b.dir)?, |_| false);
        let at = without(&local_tree(&a.dir)?, ignored);
        if t == at && bt == t {
            Ok(())
        } else {
            Err(format!("{}\n{}", tree_diff("A (filtered)", &at, "volume", &t), tree_diff("B", &bt, "volume", &t)))
        }
    })
    .await;
    let t = remote.tree().await.unwrap();
    for p in ["/.git", "/live.log", "/pre.log", "/build", "/deep/nested/x.log"] {
        assert!(!t.contains_key(p), "{p} reached the volume");
    }
    assert_eq!(std::fs::read(b.p(".git/HEAD")).unwrap(), b"B's own repository\n");
    assert_eq!(std::fs::read(a.p(".git/HEAD")).unwrap(), b"ref: refs/heads/main\n");
    a.wait_idle().await;
    b.wait_idle().await;
    a.detach();
    b.detach();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_init_merges_or_names_differing_paths() {
    let remote = &Remote::start("team-sync-8").await;
    let a = &Machine::new("A", remote);
    let b = &Machine::new("B", remote);
    remote.write("/shared.txt", b"same\n").await;
    remote.write("/vol-only/v.txt", b"only in the volume\n").await;

    phase("both non-empty, the common path identical: auto merges both ways");
    write(&a.p("shared.txt"), b"same\n");
    write(&a.p("local-only/l.txt"), b"only in A\n");
    a.attach_ok(&remote.vol, &[]);
    let t = remote.wait_converged("the union on both sides", &[a.dir.as_path()]).await;
    for p in ["/shared.txt", "/vol-only/v.txt", "/local-only/l.txt"] {
        assert!(t.contains_key(p), "{p} missing after the merge: {t:?}");
    }
    a.wait_idle().await;

    phase("a common path differs: auto refuses with exit 4 naming it, nothing changes");
    write(&b.p("shared.txt"), b"different on B\n");
    write(&b.p("b-only.txt"), b"only in B\n");
    let before_vol = remote.tree().await.unwrap();
    let before_b = local_tree(&b.dir).unwrap();
    let out = b.attach(&remote.vol, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("shared.txt"),
        "the differing path is not named: {}",
        show(&out)
    );
    assert_eq!(remote.tree().await.unwrap(), before_vol, "the volume changed");
    assert_eq!(local_tree(&b.dir).unwrap(), before_b, "B's directory changed");

    phase("--init-from volume then makes B identical to the volume");
    b.attach_ok(&remote.vol, &["--init-from", "volume"]);
    let vol = remote.tree().await.unwrap();
    let bt = local_tree(&b.dir).unwrap();
    assert_eq!(bt, vol, "{}", tree_diff("B", &bt, "volume", &vol));
    assert_eq!(std::fs::read(b.p("shared.txt")).unwrap(), b"same\n");
    remote.wait_converged("all three agree", &[a.dir.as_path(), b.dir.as_path()]).await;
    a.detach();
    b.detach();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_retention_floor_the_worker_bootstraps_again_and_keeps_unsent_edits() {
    let remote =
        &Remote::start_with("team-sync-reseed", &["--journal-retain-entries", "5", "--compaction-interval", "200ms"])
            .await;
    let a = &Machine::new("A", remote);
    write(&a.p("keep.txt"), b"synced\n");
    write(&a.p("old/gone.txt"), b"old\n");
    a.attach_ok(&remote.vol, &[]);
    let s = a.wait_idle().await;
    let cursor = s["cursor"].as_u64().unwrap();

    phase("A's worker stopped; an unsent local edit; 40 writes and a removal push the floor past its cursor");
    let pid = a.worker_pid();
    signal(pid, libc::SIGSTOP);
    write(&a.p("keep.txt"), b"edited while the worker was stopped\n");
    for i in 0..40 {
        remote.write(&format!("/new/{i:02}.txt"), format!("new {i}\n").as_bytes()).await;
    }
    assert!(remote.c.api.delete_path(&remote.vol, "/old").await.unwrap().deleted);
    wait_until("the floor to pass A's cursor", SYNC_TIMEOUT, || async {
        match remote.c.api.changes(&remote.vol, &ChangesQuery { after: cursor, ..Default::default() }).await {
            Err(e) if e.reason() == Some(Reason::ReseedRequired) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    phase("A resumes: reseed, bootstrap again, the unsent edit uploads, the removal applies");
    signal(pid, libc::SIGCONT);
    let t = remote.wait_converged("A and the volume converge", &[&a.dir]).await;
    assert!(!t.contains_key("/old/gone.txt") && !t.contains_key("/old"), "{t:?}");
    assert_eq!(t.keys().filter(|k| k.starts_with("/new/")).count(), 40, "the 40 new files: {t:?}");
    assert_eq!(remote.read("/keep.txt").await.as_deref(), Some(&b"edited while the worker was stopped\n"[..]));
    a.wait_idle().await;
    let logs = a.cli(&["logs"]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("bootstrapping again"), "{}", show(&logs));
    a.detach();
}
