//! The thin tokio driver of the worker's [`Core`]: the notify watcher, the timers, the long
//! poll (with whether its page touches unsent local edits) and SIGTERM/SIGINT (or the caller's
//! stop, [`Worker::run_until`]) become events; the core's commands are executed here (scan and
//! append, apply to the file system, re-bootstrap, renew, look at conflicts) and their outcomes
//! go back in as events.
//!
//! ```text
//! select { stop ▸ end | watcher ▸ LocalChange | deadline ▸ DebounceElapsed | poll ▸ Polled
//!          | rescan/renew/conflict ticks }  ─▶ Core::handle ─▶ Command ─▶ execute ─▶ Event ─▶ …
//! ```

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tideline_types::wire::ChangesPage;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::{interval, sleep, sleep_until, Instant, MissedTickBehavior};

use super::{io_err, Worker, CONFLICT_POLL, LONG_POLL, RENEW_EVERY, RESCAN_EVERY};
use crate::core::{Command, Core, Event, Reply};
use crate::error::{SyncError, SyncResult};
use crate::local::TMP_PREFIX;
use crate::remote::Remote;
use crate::status::Status;

type PullFuture = Pin<Box<dyn Future<Output = (u64, SyncResult<ChangesPage>)> + Send>>;

fn pull(remote: Remote, after: u64, wait: Duration, delay: Duration) -> PullFuture {
    Box::pin(async move {
        if !delay.is_zero() {
            sleep(delay).await;
        }
        (after, remote.changes(after, wait).await)
    })
}

impl Worker {
    /// Executes one of the core's commands (all but `Poll`, which `run` owns); returns the
    /// event its outcome makes.
    async fn execute(&mut self, command: Command, page: &mut Option<ChangesPage>) -> Option<Event> {
        match command {
            Command::Push => {
                let outcome = match self.push(false).await {
                    Ok(()) => {
                        self.last_error = None;
                        Reply::Done
                    }
                    Err(SyncError::Reseed { .. }) => Reply::Reseed,
                    Err(SyncError::LeaseExpired) => Reply::LeaseExpired,
                    Err(e) => {
                        self.failed("send local changes", &e);
                        Reply::Failed
                    }
                };
                Some(Event::Pushed { outcome, paused: self.paused })
            }
            Command::Apply => {
                let Some(p) = page.take() else {
                    return Some(Event::Applied { ok: false, more: false });
                };
                let (ok, more) = match self.on_page(p).await {
                    Ok(more) => {
                        self.last_error = None;
                        (true, more)
                    }
                    Err(e) => {
                        self.failed("apply volume changes", &e);
                        (false, false)
                    }
                };
                Some(Event::Applied { ok, more })
            }
            Command::Rebootstrap => {
                let result = self.rebootstrap().await;
                if let Err(e) = &result {
                    self.failed("bootstrap again", e);
                }
                Some(Event::Rebootstrapped { ok: result.is_ok() })
            }
            Command::Renew => {
                let result = self.register().await;
                if let Err(e) = &result {
                    self.failed("renew the replica lease", e);
                }
                Some(Event::Renewed { ok: result.is_ok() })
            }
            Command::CheckConflicts => {
                let result = self.check_conflicts().await;
                if let Err(e) = &result {
                    self.failed("read conflicts", e);
                }
                Some(Event::ConflictsChecked { ok: result.is_ok(), paused: self.paused })
            }
            Command::Poll { .. } => unreachable!("run owns the poll"),
        }
    }

    /// The steady state, until SIGTERM or SIGINT: the driver of [`Core`].
    pub async fn run(self) -> SyncResult<()> {
        // Listening starts with the loop (polled first there), as the default action of both
        // signals ends a worker that is still catching up.
        let signalled = async {
            let mut term = signal(SignalKind::terminate()).map_err(io_err("listen for SIGTERM".into()))?;
            let mut int = signal(SignalKind::interrupt()).map_err(io_err("listen for SIGINT".into()))?;
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            Ok(())
        };
        self.run_until(signalled).await
    }

    /// The steady state until `stop` completes (an error from it ends the worker with that
    /// error): the driver of [`Core`]. `stop` is first polled once the worker caught up.
    pub async fn run_until(mut self, stop: impl Future<Output = SyncResult<()>>) -> SyncResult<()> {
        let mut last = Status::default();
        self.busy = true;
        self.save_status(&mut last);
        if let Err(e) = self.register().await {
            self.failed("register the replica", &e);
        }
        if let Err(e) = self.catch_up().await {
            self.failed("catch up with the volume", &e);
        }
        self.started = true;
        let (tx, mut events) = mpsc::channel::<()>(1);
        let watched = self.root.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                // Opening and reading (our own scans and hashes among them) change nothing.
                let access = matches!(ev.kind, notify::EventKind::Access(_));
                if !access && ev.paths.iter().any(|p| relevant(&watched, p)) {
                    let _ = tx.try_send(());
                }
            }
        })
        .map_err(|e| SyncError::Other(format!("watch {}: {e}", self.root.display())))?;
        watcher
            .watch(&self.root, RecursiveMode::Recursive)
            .map_err(|e| SyncError::Other(format!("watch {}: {e}", self.root.display())))?;
        let mut rescan = interval(RESCAN_EVERY);
        let mut renew = interval(RENEW_EVERY);
        let mut conflicts = interval(CONFLICT_POLL);
        for t in [&mut rescan, &mut renew, &mut conflicts] {
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        }
        let mut core = Core::new(std::time::Instant::now(), LONG_POLL);
        let Command::Poll { wait, delay } = core.start() else { unreachable!("the core starts by polling") };
        let mut poll = pull(self.remote.clone(), self.index.cursor(), wait, delay);
        let mut page: Option<ChangesPage> = None;
        let mut stop = std::pin::pin!(stop);
        tracing::info!(
            "syncing {} with volume {} as replica {}",
            self.root.display(),
            self.att.volume_id,
            self.att.replica_id
        );
        let stopped = loop {
            self.busy = core.busy();
            self.save_status(&mut last);
            let deadline = core.deadline().map(Instant::from_std);
            let event = tokio::select! {
                result = &mut stop => break result,
                Some(()) = events.recv() => Event::LocalChange,
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Event::DebounceElapsed,
                (after, res) = &mut poll => {
                    let (outcome, dirty) = match res {
                        Ok(p) => match self.dirty(&p) {
                            Ok(dirty) => {
                                page = Some(p);
                                (Reply::Done, dirty)
                            }
                            Err(e) => {
                                self.failed("apply volume changes", &e);
                                (Reply::Failed, false)
                            }
                        },
                        Err(SyncError::Reseed { .. }) => (Reply::Reseed, false),
                        Err(SyncError::LeaseExpired) => (Reply::LeaseExpired, false),
                        Err(e) => {
                            self.failed("read volume changes", &e);
                            (Reply::Failed, false)
                        }
                    };
                    Event::Polled { after, cursor: self.index.cursor(), outcome, dirty }
                }
                _ = rescan.tick() => Event::RescanTick,
                _ = renew.tick() => Event::RenewTick,
                _ = conflicts.tick(), if core.paused() => Event::ConflictTick,
            };
            let mut next = Some(event);
            while let Some(event) = next.take() {
                next = match core.handle(std::time::Instant::now(), event) {
                    None => None,
                    Some(Command::Poll { wait, delay }) => {
                        poll = pull(self.remote.clone(), self.index.cursor(), wait, delay);
                        None
                    }
                    Some(command) => self.execute(command, &mut page).await,
                };
            }
        };
        tracing::info!("worker stopping");
        drop(watcher);
        self.busy = false;
        let _ = self.index.commit(None);
        stopped
    }
}

/// Events worth a scan: anything but `.git/` and the worker's own temp files.
fn relevant(root: &Path, p: &Path) -> bool {
    let Ok(rel) = p.strip_prefix(root) else { return false };
    let mut comps = rel.components();
    if comps.next().is_some_and(|c| c.as_os_str() == ".git") {
        return false;
    }
    !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(TMP_PREFIX))
}
