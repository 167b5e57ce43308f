//! One attachment's worker: uploads local changes, applies the volume's, and keeps the index,
//! cursor and status file current.
//!
//! ```text
//! loop {
//!   notify event ─▶ debounce (50 ms, at most 1 s) ─▶ push: scan → plan → append batches
//!   long poll ─────▶ page ─▶ unsent edits on its paths? push first (the volume records the
//!                            conflict) ─▶ apply page ─▶ commit index + cursor ─▶ PUT cursor
//!   a push or poll refused for a lapsed lease ─▶ register again ─▶ that call again
//!   every 30 s rescan; every 60 s renew the lease; every 2 s while paused, look at conflicts
//! }
//! ```
//! Uploads pause while conflicts this replica caused are open; downloads go on. The decisions
//! (when to send, how soon to poll again, when to bootstrap or register again, whether a page
//! waits for a push) are the sans-IO [`crate::core::Core`]'s; `run` (in `driver`) turns the
//! watcher, timers and answers into events and executes its commands.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tideline_types::limits::{
    FILE_BYTES_MAX, SYNC_BATCH_CHANGES_MAX as BATCH_CHANGES_MAX, SYNC_BATCH_CONTENT_BYTES_MAX, SYNC_LEASE_RENEW_MS,
    SYNC_LONG_POLL_MS,
};
use tideline_types::wire::{ChangesPage, ReplicaChange};
use tideline_types::{ConflictStatus, EntryKind, EventType};
use tokio::time::sleep;

use super::apply::Applier;
use super::home::{inode_of, AttachDir, Attachment};
use super::index::{rekey, Index, Kind, Update};
use super::init::{self, InitFrom, Outcome, Policy};
use super::local::{self, local_path, Capabilities, Meta};
use super::plan::{self, Change};
use super::remote::{content_base64, Remote, PAGE_ENTRIES};
use super::status::{LocalConflict, Status};
use crate::core::RETRY_AFTER;
use crate::error::{SyncError, SyncResult};
use crate::progress::{Progress, Silent, Task};

mod driver;

/// A full rescan catches what events missed.
const RESCAN_EVERY: Duration = Duration::from_secs(30);
/// The server's lease is 5 minutes; renew well inside it.
const RENEW_EVERY: Duration = Duration::from_millis(SYNC_LEASE_RENEW_MS as u64);
const CONFLICT_POLL: Duration = Duration::from_secs(2);
const LONG_POLL: Duration = Duration::from_millis(SYNC_LONG_POLL_MS);
/// A batch carries at most `BATCH_CHANGES_MAX` changes and this much file content (or one
/// larger file alone): what fits one append body (see `tideline_types::limits`).
const BATCH_BYTES_MAX: u64 = SYNC_BATCH_CONTENT_BYTES_MAX as u64;
/// Largest file a worker sends (the server's limit for one file).
const FILE_SIZE_MAX: u64 = FILE_BYTES_MAX as u64;
/// Recent problems kept for `sync status`.
const PROBLEMS_MAX: usize = 50;
/// The mass-deletion guard: this share of synced entries missing (and at least this many).
const GUARD_MISSING_MIN: usize = 20;
/// How problems about this replica's open conflicts start (dropped once they are resolved).
const CONFLICT_NOTE: &str = "conflict on ";

pub struct Worker {
    ad: AttachDir,
    att: Attachment,
    root: PathBuf,
    remote: Remote,
    index: Index,
    caps: Capabilities,
    rejected: HashMap<String, String>,
    problems: Vec<String>,
    local_conflicts: Vec<LocalConflict>,
    scan_problems: Vec<String>,
    last_error: Option<String>,
    paused: bool,
    open_conflicts: usize,
    head: u64,
    pending: usize,
    busy: bool,
    /// False until the first catch-up with the volume was tried: the head is not known yet.
    started: bool,
    progress: Arc<dyn Progress>,
}

/// One change as sent: its place in the batch, its wire form, and the index update it makes
/// once accepted.
type Sent = (usize, ReplicaChange, Option<Update>);

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> SyncError {
    SyncError::io_with(what)
}

impl Worker {
    /// The worker of one attachment, reporting nothing (see [`Worker::with_progress`]).
    pub fn open(ad: AttachDir, att: Attachment) -> SyncResult<Worker> {
        let root = att.dir.clone();
        std::fs::create_dir_all(&root).map_err(io_err(format!("create {}", root.display())))?;
        let caps = local::probe(&root).map_err(io_err(format!("probe {}", root.display())))?;
        let remote = Remote::new(&att.server, &att.token, &att.volume_id, &att.replica_id)?;
        let index = Index::open(&ad.path).map_err(io_err(format!("open the index in {}", ad.path.display())))?;
        Ok(Worker {
            ad,
            att,
            root,
            remote,
            index,
            caps,
            rejected: HashMap::new(),
            problems: Vec::new(),
            local_conflicts: Vec::new(),
            scan_problems: Vec::new(),
            last_error: None,
            paused: false,
            open_conflicts: 0,
            head: 0,
            pending: 0,
            busy: true,
            started: false,
            progress: Arc::new(Silent),
        })
    }

    /// Reports long work (the bootstrap, uploads shown with `push(true)`) to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Worker {
        self.progress = progress;
        self
    }

    pub fn attachment(&self) -> &Attachment {
        &self.att
    }

    fn applier(&mut self) -> Applier<'_> {
        Applier {
            root: &self.root,
            remote: &self.remote,
            index: &mut self.index,
            caps: self.caps,
            rejected: &self.rejected,
            problems: &mut self.problems,
            local_conflicts: &mut self.local_conflicts,
            page: HashMap::new(),
            unsynced: Default::default(),
        }
    }

    pub async fn register(&mut self) -> SyncResult<()> {
        self.head = self.remote.register(&self.caps, &self.root).await?;
        Ok(())
    }

    /// Refuses to run when the directory looks emptied or replaced since the last sync, which
    /// would otherwise be sent as deleting everything.
    pub fn guard(&self) -> Result<(), String> {
        let dir = self.root.display();
        let synced = self.index.len();
        let why = if inode_of(&self.root) != self.att.root_inode {
            Some(format!("{dir} is not the directory that was attached (it was replaced or recreated)"))
        } else if self.index.is_empty() {
            None
        } else {
            let scan = local::scan(&self.root, self.att.gitignore).map_err(|e| format!("scan {dir}: {e}"))?;
            let missing = self
                .index
                .entries()
                .keys()
                .filter(|p| !scan.entries.contains_key(*p) && local::lstat(&self.root, p).ok().flatten().is_none())
                .count();
            if scan.entries.is_empty() {
                Some(format!("{dir} is empty but {synced} entries were synced"))
            } else if missing * 2 >= synced && missing >= GUARD_MISSING_MIN {
                Some(format!("{missing} of {synced} synced entries are missing from {dir}"))
            } else {
                None
            }
        };
        match why {
            None => Ok(()),
            Some(why) => Err(format!(
                "{why}; not deleting them from the volume. Re-attach with `--init-from volume` to restore the \
                 directory from the volume, or with `--init-from local` to make the volume match it (deleting what is \
                 missing)"
            )),
        }
    }

    /// The first sync of a fresh attachment; returns what was done.
    pub async fn initialize(&mut self, from: InitFrom) -> SyncResult<Outcome> {
        self.index.reset(Default::default(), 0).map_err(io_err("reset the index".into()))?;
        let staging = self.ad.staging();
        let progress = Arc::clone(&self.progress);
        let seq = init::download(&self.applier(), &staging, progress.as_ref()).await?;
        let policy = match from {
            InitFrom::Volume => Policy::Volume,
            InitFrom::Local => Policy::IndexOnly,
            InitFrom::Auto => {
                let remote_has = init::list(&staging).map_err(io_err("read the bootstrap archive".into()))?;
                let local_has = local::scan(&self.root, self.att.gitignore).map_err(io_err("scan".into()))?;
                if remote_has.is_empty() {
                    Policy::IndexOnly
                } else if local_has.entries.is_empty() {
                    Policy::Volume
                } else {
                    let differ =
                        init::differences(&self.root, &remote_has).map_err(io_err("compare with the volume".into()))?;
                    if !differ.is_empty() {
                        let _ = std::fs::remove_file(&staging);
                        return Err(init::refuse_merge(&differ));
                    }
                    Policy::Merge
                }
            }
        };
        let outcome = init::materialize(&mut self.applier(), &staging, seq, policy, progress.as_ref());
        let _ = std::fs::remove_file(&staging);
        let outcome = outcome?;
        self.att.root_inode = inode_of(&self.root);
        match self.push(true).await {
            // A first push longer than the lease (outside the worker loop, where the core decides
            // this): register again and send the rest.
            Err(SyncError::LeaseExpired) => {
                self.register().await?;
                self.push(true).await?
            }
            other => other?,
        }
        self.remote.put_cursor(self.index.cursor()).await?;
        Ok(outcome)
    }

    /// Sends local changes (scan → plan → batches); `show` reports them to the progress sink.
    pub async fn push(&mut self, show: bool) -> SyncResult<()> {
        let scan = local::scan(&self.root, self.att.gitignore).map_err(io_err("scan".into()))?;
        self.scan_problems = scan.problems.clone();
        let plan = plan::plan(&self.root, &self.index, &scan).map_err(io_err("compare with the index".into()))?;
        self.index.stage(plan.refresh.into_iter().map(|(p, e)| (p, Some(e))).collect());
        self.index.commit(None).map_err(io_err("record the index".into()))?;
        self.pending = plan.changes.len();
        if self.paused || plan.changes.is_empty() {
            return Ok(());
        }
        let meter = if show && plan.changes.len() > 1 {
            self.progress.start(Task::ChangesToVolume, Some(plan.changes.len() as u64))
        } else {
            None
        };
        let mut rest = plan.changes.as_slice();
        while !rest.is_empty() && !self.paused {
            let (batch, wire) = self.batch(rest)?;
            rest = &rest[batch.len()..];
            self.send(batch, wire).await?;
            self.pending = rest.len();
            if let Some(m) = &meter {
                m.advance(batch.len() as u64);
            }
        }
        if let Some(m) = meter {
            m.finish();
        }
        Ok(())
    }

    /// The longest prefix of `changes` that fits one append, with its wire form and the content
    /// identity each write was sent with.
    fn batch<'c>(&mut self, changes: &'c [Change]) -> SyncResult<(&'c [Change], Vec<Sent>)> {
        let mut wire = Vec::new();
        let mut bytes = 0u64;
        for (n, c) in changes.iter().enumerate() {
            if !fits(n, bytes, 0) {
                return Ok((&changes[..n], wire));
            }
            let (v, update) = match c {
                Change::MkDir { path, meta } => (
                    ReplicaChange {
                        entry_kind: Some(EntryKind::Directory),
                        mode: Some(meta.mode),
                        ..ReplicaChange::at(EventType::Create, path)
                    },
                    Some((path.clone(), Some(meta.entry(None)))),
                ),
                Change::Write { path, create, .. } => {
                    let file = local_path(&self.root, path);
                    let md = std::fs::symlink_metadata(&file).map_err(io_err(format!("stat {path}")))?;
                    let Some(meta) = Meta::of(&md).filter(|m| m.kind == Kind::File) else {
                        continue; // replaced since the scan; the next scan sends what is there
                    };
                    if meta.size > FILE_SIZE_MAX {
                        self.note(format!("{path} is larger than 100 MiB and cannot be synced"));
                        continue;
                    }
                    // A file that would take the batch past its budget starts the next batch
                    // (alone, if it is that large): one append body must hold the batch.
                    if !fits(n, bytes, meta.size) {
                        return Ok((&changes[..n], wire));
                    }
                    let content = std::fs::read(&file).map_err(io_err(format!("read {path}")))?;
                    if !fits(n, bytes, content.len() as u64) {
                        return Ok((&changes[..n], wire)); // grew since the stat
                    }
                    bytes += content.len() as u64;
                    let sha = local::sha256_hex(&content);
                    let v = ReplicaChange {
                        entry_kind: Some(EntryKind::File),
                        mode: Some(meta.mode),
                        content_base64: Some(content_base64(&content)),
                        content_sha256: Some(sha.clone()),
                        size_bytes: Some(content.len() as u64),
                        ..ReplicaChange::at(if *create { EventType::Create } else { EventType::Write }, path)
                    };
                    (v, Some((path.clone(), Some(meta.entry(Some(sha))))))
                }
                Change::Chmod { path, meta } => {
                    let mut e = self.index.get(path).cloned().unwrap_or_else(|| meta.entry(None));
                    e.mode = meta.mode;
                    let v = ReplicaChange { mode: Some(meta.mode), ..ReplicaChange::at(EventType::Chmod, path) };
                    (v, Some((path.clone(), Some(e))))
                }
                Change::Rename { from, to } => (ReplicaChange::rename(from, to), None),
                Change::Remove { path } => (ReplicaChange::remove(path), None),
            };
            wire.push((n, v, update));
        }
        Ok((changes, wire))
    }

    /// Appends one batch and records in the index what the volume accepted.
    async fn send(&mut self, batch: &[Change], wire: Vec<Sent>) -> SyncResult<()> {
        if wire.is_empty() {
            return Ok(());
        }
        let request_id = format!("{:032x}", rand::random::<u128>());
        let changes: Vec<ReplicaChange> = wire.iter().map(|(_, v, _)| v.clone()).collect();
        let mut attempt = 0;
        let answer = loop {
            match self.remote.append(&request_id, self.index.cursor(), &changes).await {
                Ok(a) => break a,
                // The same request id and payload are answered once: retrying is safe. The client
                // already retried a 503 or a refused connection; this also covers a timeout.
                Err(SyncError::Unavailable(_)) if attempt < 4 => {
                    attempt += 1;
                    sleep(RETRY_AFTER * attempt).await;
                }
                Err(e) => return Err(e),
            }
        };
        let conflicts = answer.conflicts;
        let conflicted = |p: &str| {
            conflicts.iter().any(|c| {
                c.incoming_path.as_deref() == Some(p) || c.path == p || c.incoming_old_path.as_deref() == Some(p)
            })
        };
        for (n, v, update) in wire {
            let c = &batch[n];
            if conflicted(c.path()) {
                if let (Change::Write { path, .. }, Some(sha)) = (c, v.content_sha256.as_deref()) {
                    self.rejected.insert(path.clone(), sha.to_string());
                }
                continue;
            }
            let updates = match c {
                Change::Rename { from, to } => rekey(&self.index, from, to),
                Change::Remove { path } => self.index.subtree(path).into_iter().map(|(p, _)| (p, None)).collect(),
                _ => update.into_iter().collect(),
            };
            self.index.stage(updates);
        }
        self.index.commit(None).map_err(io_err("record the index".into()))?;
        if !conflicts.is_empty() {
            for c in &conflicts {
                self.note(format!(
                    "{CONFLICT_NOTE}{} ({}): your version is kept as {}; uploads pause until `tideline sync conflicts mark {}`",
                    c.path, c.reason, c.artifact_path, c.path
                ));
            }
            self.paused = true;
            self.open_conflicts = conflicts.len();
        }
        Ok(())
    }

    /// Whether a page touches paths with local edits not yet sent (the core then has them sent
    /// first, so the volume decides the conflict).
    fn dirty(&mut self, page: &ChangesPage) -> SyncResult<bool> {
        if page.changes.is_empty() {
            return Ok(false);
        }
        let dirty = self.applier().dirty_targets(&page.changes).map_err(io_err("inspect local edits".into()))?;
        Ok(!dirty.is_empty())
    }

    /// Applies a page; returns whether more entries are waiting.
    async fn on_page(&mut self, page: ChangesPage) -> SyncResult<bool> {
        self.head = page.head_seq;
        if page.changes.is_empty() {
            return Ok(false);
        }
        let full = page.changes.len() >= PAGE_ENTRIES;
        let cursor = self.applier().apply_page(&page.changes).await?;
        if let Err(e) = self.remote.put_cursor(cursor).await {
            tracing::warn!("report cursor {cursor}: {e}");
        }
        Ok(full || cursor < self.head)
    }

    /// Applies everything up to the head without uploading (start-up, before the first scan).
    pub async fn catch_up(&mut self) -> SyncResult<()> {
        let paused = std::mem::replace(&mut self.paused, true);
        let result = async {
            loop {
                let page = self.remote.changes(self.index.cursor(), Duration::ZERO).await;
                let page = match page {
                    Err(SyncError::Reseed { .. }) => {
                        self.rebootstrap().await?;
                        continue;
                    }
                    other => other?,
                };
                if !self.on_page(page).await? {
                    return Ok(());
                }
            }
        }
        .await;
        self.paused = paused;
        result
    }

    /// Re-bootstraps after the cursor fell below the retention floor, keeping unsent edits.
    async fn rebootstrap(&mut self) -> SyncResult<()> {
        tracing::warn!("cursor {} is below the volume's retention floor: bootstrapping again", self.index.cursor());
        let staging = self.ad.staging();
        let progress = Arc::clone(&self.progress);
        let seq = init::download(&self.applier(), &staging, progress.as_ref()).await?;
        let outcome = init::materialize(&mut self.applier(), &staging, seq, Policy::Reconcile, progress.as_ref());
        let _ = std::fs::remove_file(&staging);
        let outcome = outcome?;
        tracing::info!(
            "re-bootstrapped at seq {seq}: {} files written, {} local edits kept, {} removed",
            outcome.written,
            outcome.kept_local,
            outcome.removed
        );
        Ok(())
    }

    /// Resumes uploads once no conflict this replica caused is open.
    async fn check_conflicts(&mut self) -> SyncResult<()> {
        let open = self.remote.conflicts(ConflictStatus::Open).await?;
        let mine = open.iter().filter(|c| c.replica_id.as_deref() == Some(self.remote.replica_id.as_str())).count();
        self.open_conflicts = mine;
        if mine == 0 && self.paused {
            tracing::info!("conflicts resolved: uploads resume");
            self.paused = false;
            self.rejected.clear();
            self.problems.retain(|p| !p.starts_with(CONFLICT_NOTE));
        }
        Ok(())
    }

    fn note(&mut self, problem: String) {
        tracing::warn!("{problem}");
        self.problems.push(problem);
        if self.problems.len() > PROBLEMS_MAX {
            self.problems.remove(0);
        }
    }

    fn status(&self) -> Status {
        let state = if self.last_error.is_some() {
            "error"
        } else if !self.started {
            "starting"
        } else if self.paused {
            "paused"
        } else if self.busy || self.pending > 0 || self.index.cursor() < self.head {
            "syncing"
        } else {
            "idle"
        };
        let mut errors = self.scan_problems.clone();
        errors.extend(self.problems.iter().cloned());
        errors.extend(self.last_error.iter().cloned());
        Status {
            state: state.into(),
            cursor: self.index.cursor(),
            head_seq: self.head,
            pending_local: self.pending,
            open_conflicts: self.open_conflicts,
            errors,
            local_conflicts: self.local_conflicts.clone(),
        }
    }

    fn save_status(&self, last: &mut Status) {
        let st = self.status();
        if &st != last {
            if let Err(e) = st.save(&self.ad) {
                tracing::warn!("write status: {e}");
            }
            *last = st;
        }
    }

    /// Records a failure for `sync status` (cleared by the next success).
    fn failed(&mut self, what: &str, e: &SyncError) {
        tracing::warn!("{what}: {e}");
        self.last_error = Some(format!("{what}: {e}"));
    }

    /// Saves the status with `error` as the reason the worker does not run.
    pub fn refuse(&mut self, error: String) {
        self.last_error = Some(error);
        let _ = self.status().save(&self.ad);
    }
}

/// Whether a change with `size` bytes of content joins a batch that already holds `n` changes
/// and `bytes` bytes of content: the first always does; later ones while the batch stays within
/// `BATCH_CHANGES_MAX` changes and `BATCH_BYTES_MAX` bytes. So a batch's content is at most
/// `BATCH_BYTES_MAX`, or one file alone — what `tideline_types::limits` proves fits one append.
fn fits(n: usize, bytes: u64, size: u64) -> bool {
    n == 0 || (n < BATCH_CHANGES_MAX && bytes + size <= BATCH_BYTES_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_holds_its_budget_or_one_file_alone() {
        let mib = 1024 * 1024;
        assert!(fits(0, 0, FILE_SIZE_MAX), "a largest file goes, alone");
        assert!(fits(0, 0, 0));
        assert!(fits(1, 0, BATCH_BYTES_MAX), "exactly the budget");
        assert!(!fits(1, 1, BATCH_BYTES_MAX), "one byte past it");
        assert!(!fits(1, BATCH_BYTES_MAX - 1, FILE_SIZE_MAX), "8 MiB of small files, then 100 MiB: two batches");
        assert!(fits(3, 2 * mib, 6 * mib));
        assert!(fits(1, BATCH_BYTES_MAX, 0), "a change without content still fits a full batch");
        assert!(fits(BATCH_CHANGES_MAX - 1, 0, 0));
        assert!(!fits(BATCH_CHANGES_MAX, 0, 0), "at most BATCH_CHANGES_MAX changes");
    }
}
