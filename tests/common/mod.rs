//! A real `tideline server` process for black-box tests: bound to port 0 on loopback, its
//! address read back from stdout, stopped by pid.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tideline_client::types::wire::{ClusterStatus, SyncJournalEntry, TokenRequest, VolumeRequest, Written};
#[allow(unused_imports)] // each test binary uses its own part of `common`
pub use tideline_client::{ChangesQuery, ClientError, Consistency};
use tideline_client::{RetryPolicy, Upload};
#[allow(unused_imports)] // each test binary uses its own part of `common`, like the dead_code allow above
pub use tideline_test_support::{free_ports, wait_for};

pub const ADMIN: &str = "test-admin-token";

/// The client-only `tideline` (built `--no-default-features`: no server, no RocksDB), which the
/// CLI and sync-worker tests run as the user's command, so they prove that build does every
/// `volume` and `sync` command. Built once per test process into `<target>/client-only`, beside
/// the full build, which keeps serving as the server.
pub fn client_bin() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let full = Path::new(env!("CARGO_BIN_EXE_tideline"));
        let profile_dir = full.parent().expect("the binary has a directory");
        let target = profile_dir.parent().expect("the profile dir is in the target dir").join("client-only");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--locked", "--quiet", "-p", "tideline", "--no-default-features", "--target-dir"])
            .arg(&target)
            // Run time, not `env!`: a binary built by another clone carries that clone's path.
            .current_dir(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()))
            .output()
            .expect("run cargo");
        assert!(out.status.success(), "client-only build failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let bin = target.join(profile_dir.file_name().expect("a profile name")).join("tideline");
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
}
/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Server {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &["--listen".into(), "127.0.0.1:0".into()])
    }

    /// Starts a server with extra arguments (`--listen` among them).
    pub fn start_with(data_dir: &Path, args: &[String]) -> Server {
        Self::start_with_env(data_dir, args, &[])
    }

    /// Like [`Server::start_with`], with extra environment variables.
    pub fn start_with_env(data_dir: &Path, args: &[String], envs: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tideline"))
            .args(["server", "--admin-token", ADMIN, "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "warn")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tideline");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let captured = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = captured.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("tideline listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not start; stderr:\n{}", captured.lock().unwrap());
            }
        };
        Server { child, url, data_dir: data_dir.to_path_buf(), stderr: captured }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(status.success());
        self.child.wait().expect("wait")
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A team's (or the admin's) client of one node: the typed client with retries off, so a test
/// sees every answer as the server gave it; raw `reqwest` only where a test sends what the
/// typed client cannot (malformed input, peer routes).
pub struct Client {
    pub api: tideline_client::Client,
    pub url: String,
    pub token: String,
}

impl Client {
    /// A client of `url` with `token`, every request sent once.
    pub fn new(url: &str, token: &str) -> Client {
        let api = tideline_client::Client::builder(url, token).retry(RetryPolicy::none()).build().unwrap();
        Client { api, url: url.to_string(), token: token.to_string() }
    }

    /// A client with a fresh all-permission token for `team`.
    pub async fn for_team(url: &str, team: &str) -> Client {
        Self::for_team_as(url, team, ADMIN).await
    }

    /// Like [`Client::for_team`], asking with the given admin token.
    pub async fn for_team_as(url: &str, team: &str, admin: &str) -> Client {
        let req = TokenRequest { team_id: team.into(), permissions: vec!["*".into()], ..Default::default() };
        let created = Client::new(url, admin).api.create_token(&req).await.unwrap();
        Client::new(url, &created.token)
    }

    pub fn with_url(&self, url: &str) -> Client {
        Client { api: self.api.with_server(url).unwrap(), url: url.to_string(), token: self.token.clone() }
    }

    /// The cluster as this node sees it (admin token).
    pub async fn cluster(&self) -> Result<ClusterStatus, ClientError> {
        self.api.cluster_status().await
    }

    /// A new volume with the server's defaults.
    pub async fn create_volume(&self) -> String {
        self.api.create_volume(&VolumeRequest::default()).await.unwrap().id
    }

    pub async fn write(&self, vol: &str, path: &str, data: Vec<u8>) -> Result<Written, ClientError> {
        self.api.write_file(vol, path, Upload::bytes(data)).await
    }

    pub async fn read(&self, vol: &str, path: &str) -> Result<Vec<u8>, ClientError> {
        Ok(self.api.read_file(vol, path).await?.to_vec())
    }

    /// The whole journal, paged.
    pub async fn journal(&self, vol: &str) -> Vec<SyncJournalEntry> {
        self.journal_with(vol, Consistency::Linearizable).await
    }

    /// The whole journal as this node has applied it (`Consistency::Local`).
    pub async fn journal_with(&self, vol: &str, consistency: Consistency) -> Vec<SyncJournalEntry> {
        let mut out = Vec::new();
        loop {
            let q = ChangesQuery { consistency: Some(consistency), ..ChangesQuery::page(out.len() as u64, 2048) };
            let page = self.api.changes(vol, &q).await.unwrap_or_else(|e| panic!("journal of {vol}: {e}"));
            if page.changes.is_empty() {
                return out;
            }
            out.extend(page.changes);
        }
    }
}

/// Deterministic content for file `i`; every 50th is large enough for the object store.
pub fn content(i: usize) -> Vec<u8> {
    let len = if i.is_multiple_of(50) { 70 * 1024 + i } else { 16 + i % 300 };
    (0..len).map(|j| ((i * 31 + j * 7) % 256) as u8).collect()
}

/// A finished command's exit status and output, for assertion messages.
pub fn show(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
