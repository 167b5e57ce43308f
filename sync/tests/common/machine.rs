//! [`Machine`]: one laptop — a sync home and a directory — whose attachments run the library's
//! [`Worker`] in a task of the test's runtime. `attach` does what `tideline sync attach` does
//! (register, first sync, then a worker holding the attachment's lock), `status` reads what
//! `sync status --json` prints ([`status::report`]); `stop` ends a worker the way SIGTERM does,
//! `kill` drops it wherever it waits.
//!
//! ```text
//!  attach ─▶ Attachment + Worker::initialize ─▶ task: lock + Worker::run_until(stop) ─▶ status.json
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;
use tideline_sync::home::{AttachDir, Attachment, Home};
use tideline_sync::init::InitFrom;
use tideline_sync::status::{self, Status};
use tideline_sync::worker::Worker;
use tideline_sync::SyncResult;
use tideline_test_support::wait_until;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Volume, SYNC_TIMEOUT};

/// One running worker: how to stop it and the task it runs in.
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<SyncResult<()>>,
}

pub struct Machine {
    pub name: &'static str,
    _home: tempfile::TempDir,
    pub home: Home,
    root: tempfile::TempDir,
    pub dir: PathBuf,
    /// The server its attachments talk to (the node, or a gate in front of it).
    server: String,
    token: String,
    /// Running workers by (canonical) directory.
    workers: Mutex<HashMap<PathBuf, Running>>,
}

impl Machine {
    pub fn new(name: &'static str, volume: &Volume) -> Machine {
        Machine::behind(name, volume, &volume.node.url)
    }

    /// A machine whose attachments reach the node through `server` (a [`super::gate::Gate`]).
    pub fn behind(name: &'static str, volume: &Volume, server: &str) -> Machine {
        let home = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(format!("dir-{name}"));
        std::fs::create_dir(&dir).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        Machine {
            name,
            home: Home { root: home.path().to_path_buf() },
            _home: home,
            root,
            dir,
            server: server.to_string(),
            token: volume.token().to_string(),
            workers: Mutex::new(HashMap::new()),
        }
    }

    /// A second directory under this machine's root (same home), for a fresh attachment.
    pub fn fresh_dir(&self, name: &str) -> PathBuf {
        let d = self.root.path().join(name);
        std::fs::create_dir(&d).unwrap();
        std::fs::canonicalize(&d).unwrap()
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Whether a worker runs for `dir`.
    pub fn running(&self, dir: &Path) -> bool {
        self.workers.lock().unwrap().get(dir).is_some_and(|r| !r.task.is_finished())
    }

    /// What `sync attach VOL DIR [--init-from …]` does; the replica id, or why it refused.
    pub async fn attach_in(&self, vol: &str, dir: &Path, init_from: Option<InitFrom>) -> Result<String, String> {
        let dir = std::fs::canonicalize(dir).unwrap();
        let ad = self.home.dir_for(&dir);
        let att = match (ad.load().ok(), init_from) {
            (Some(att), None) => {
                if self.running(&dir) {
                    return Ok(att.replica_id);
                }
                // Resume: refuse to start over a directory that was emptied or replaced.
                let mut w = Worker::open(ad.clone(), att.clone()).map_err(|e| e.to_string())?;
                if let Err(why) = w.guard() {
                    w.refuse(why.clone());
                    return Err(why);
                }
                att
            }
            (existing, init_from) => {
                if existing.is_some() {
                    self.stop_in(&dir).await;
                    for f in ["index.snap", "index.log", "status.json"] {
                        let _ = std::fs::remove_file(ad.path.join(f));
                    }
                }
                let att = Attachment {
                    volume_id: vol.to_string(),
                    dir: dir.clone(),
                    server: self.server.clone(),
                    token: self.token.clone(),
                    replica_id: format!("tl-{:016x}", rand::random::<u64>()),
                    root_inode: 0,
                    gitignore: true,
                    attached_at: "2026-01-01T00:00:00Z".into(),
                };
                ad.save(&att).map_err(|e| e.to_string())?;
                let mut w = Worker::open(ad.clone(), att).map_err(|e| e.to_string())?;
                w.register().await.map_err(|e| e.to_string())?;
                if let Err(e) = w.initialize(init_from.unwrap_or(InitFrom::Auto)).await {
                    let _ = std::fs::remove_dir_all(&ad.path);
                    return Err(e.to_string());
                }
                ad.save(w.attachment()).map_err(|e| e.to_string())?;
                w.attachment().clone()
            }
        };
        let rid = att.replica_id.clone();
        self.start(ad, att)?;
        Ok(rid)
    }

    pub async fn attach(&self, vol: &str, init_from: Option<InitFrom>) -> Result<String, String> {
        self.attach_in(vol, &self.dir.clone(), init_from).await
    }

    /// Attaches (it must work) and checks the worker runs; the replica id.
    pub async fn attach_ok_in(&self, vol: &str, dir: &Path, init_from: Option<InitFrom>) -> String {
        let rid = self.attach_in(vol, dir, init_from).await;
        let rid = rid.unwrap_or_else(|e| panic!("machine {}: attach {init_from:?}: {e}", self.name));
        assert!(self.running(dir), "the worker is not running right after attach");
        rid
    }

    pub async fn attach_ok(&self, vol: &str, init_from: Option<InitFrom>) -> String {
        self.attach_ok_in(vol, &self.dir.clone(), init_from).await
    }

    /// What `sync run` does: take the lock (with this process's pid), mark the status stale,
    /// refuse an emptied or replaced directory, run until stopped.
    fn start(&self, ad: AttachDir, att: Attachment) -> Result<(), String> {
        let dir = att.dir.clone();
        let mut lock = ad.try_lock().unwrap().ok_or("another worker is running for this directory")?;
        lock.set_len(0).unwrap();
        write!(lock, "{}", std::process::id()).unwrap();
        let starting = Status { state: "starting".into(), ..Status::load(&ad).unwrap_or_default() };
        starting.save(&ad).unwrap();
        let mut worker = Worker::open(ad, att).map_err(|e| e.to_string())?;
        if let Err(why) = worker.guard() {
            worker.refuse(why.clone());
            return Err(why);
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _lock = lock;
            worker
                .run_until(async move {
                    let _ = stopped.await;
                    Ok(())
                })
                .await
        });
        self.workers.lock().unwrap().insert(dir, Running { stop, task });
        Ok(())
    }

    /// Stops the worker of `dir` as SIGTERM does (it ends its loop and commits the index).
    pub async fn stop_in(&self, dir: &Path) {
        let Some(r) = self.workers.lock().unwrap().remove(dir) else { return };
        let _ = r.stop.send(());
        let ended = tokio::time::timeout(SYNC_TIMEOUT, r.task).await;
        let ended = ended.unwrap_or_else(|_| panic!("machine {}: the worker did not stop", self.name));
        ended.unwrap().unwrap_or_else(|e| panic!("machine {}: the worker ended with {e}", self.name));
    }

    pub async fn stop(&self) {
        self.stop_in(&self.dir.clone()).await
    }

    /// Drops the worker of this machine's directory wherever it waits (no index commit, no
    /// status update: as good as a kill for what the next start finds).
    pub async fn kill(&self) {
        let r = self.workers.lock().unwrap().remove(&self.dir).expect("a running worker");
        r.task.abort();
        assert!(r.task.await.unwrap_err().is_cancelled());
    }

    /// What `sync detach` does: stop the worker, forget the attachment (the files stay).
    pub async fn detach_in(&self, dir: &Path) {
        self.stop_in(dir).await;
        std::fs::remove_dir_all(self.home.dir_for(dir).path).unwrap();
    }

    pub async fn detach(&self) {
        self.detach_in(&self.dir.clone()).await
    }

    /// `sync list --json`.
    pub fn list(&self) -> Value {
        let all = self.home.list().unwrap();
        Value::Array(all.iter().map(|(ad, att)| status::report(ad, att)).collect())
    }

    /// `sync status --dir DIR --json`.
    pub fn status_of(&self, dir: &Path) -> Result<Value, String> {
        let (ad, att) = self.home.find(Some(dir)).map_err(|e| e.to_string())?;
        Ok(status::report(&ad, &att))
    }

    pub fn status(&self) -> Value {
        self.status_of(&self.dir).unwrap_or_else(|e| panic!("machine {}: sync status: {e}", self.name))
    }

    /// Waits until the status satisfies `ok` (which explains itself when it does not).
    pub async fn wait_status(&self, what: &str, ok: impl Fn(&Value) -> Result<(), String>) -> Value {
        let what = format!("machine {}: {what}", self.name);
        let ok = &ok;
        wait_until(&what, SYNC_TIMEOUT, || async move {
            let s = self.status_of(&self.dir)?;
            ok(&s).map_err(|e| format!("{e}\nstatus: {s}"))?;
            Ok(s)
        })
        .await
    }

    pub async fn wait_idle(&self) -> Value {
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
}

impl Drop for Machine {
    fn drop(&mut self) {
        for (_, r) in self.workers.lock().unwrap().drain() {
            r.task.abort();
        }
    }
}
