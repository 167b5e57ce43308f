//! The shared object store of a run and its outage: an `s3s-fs` process (an S3-compatible
//! server over a directory) behind a harness proxy, so an outage cuts every node off the store
//! at once (new connections refused, live ones cut) while the process keeps running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use tokio::process::{Child, Command};

use crate::proxy::{LinkTable, Proxy, ANY_SOURCE, OBJECT_STORE};

const ACCESS_KEY: &str = "jepsen-ak";
const SECRET_KEY: &str = "jepsen-sk";
const BUCKET: &str = "bucket";
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The `s3s-fs` binary: `S3S_FS_BIN`, else on `PATH`, else `~/.cargo/bin` (installed by
/// `scripts/install-test-tools`).
pub fn s3s_fs_binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("S3S_FS_BIN") {
        return Ok(p.into());
    }
    let home = std::env::var("HOME").unwrap_or_default();
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(PathBuf::from)
        .chain([PathBuf::from(home).join(".cargo/bin")])
        .map(|d| d.join("s3s-fs"))
        .find(|p| p.exists())
        .ok_or_else(|| {
            anyhow!("s3s-fs is not installed (needed by the object-store nemesis): run scripts/install-test-tools")
        })
}

/// A running `s3s-fs` and the proxy in front of it.
pub struct S3Store {
    child: Child,
    pub proxy: Proxy,
    pub root: PathBuf,
}

impl S3Store {
    /// Starts `s3s-fs` over `<dir>/s3` on a free loopback port, and a proxy in front of it.
    pub async fn start(dir: &Path, links: Arc<LinkTable>) -> anyhow::Result<S3Store> {
        let root = dir.join("s3");
        std::fs::create_dir_all(root.join(BUCKET)).with_context(|| format!("create {}", root.display()))?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let log = std::fs::File::create(dir.join("s3s-fs.log"))?;
        let mut cmd = Command::new(s3s_fs_binary()?);
        crate::cluster::die_with_parent(&mut cmd);
        let child = cmd
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .context("spawn s3s-fs")?;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if tokio::time::Instant::now() >= deadline {
                return Err(anyhow!("s3s-fs did not listen on port {port} within {START_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let proxy = Proxy::start(OBJECT_STORE, false, links).await?;
        proxy.set_upstream(([127, 0, 0, 1], port).into());
        Ok(S3Store { child, proxy, root })
    }

    /// The nodes' `--object-store` arguments (through the proxy).
    pub fn node_args(&self) -> Vec<String> {
        vec![
            "--object-store".into(),
            format!("s3://{BUCKET}/tideline"),
            "--s3-endpoint".into(),
            format!("http://{}", self.proxy.listen),
        ]
    }

    /// The nodes' S3 credentials.
    pub fn node_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ]
    }

    /// Whether the store process is still alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Cuts every node off the object store.
pub fn outage(links: &LinkTable) {
    links.block(ANY_SOURCE, OBJECT_STORE);
}
