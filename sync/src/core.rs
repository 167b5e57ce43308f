//! [`Core`]: the worker's decisions without I/O — when to send local changes, when and how soon
//! to poll the volume again, when to bootstrap again, renew the lease (on its tick, or because a
//! call found it lapsed) or look at conflicts, and that a page touching unsent local edits waits
//! until they are sent (so the volume decides, and records, the conflict).
//! Events go in with the time they happened; commands come out for the driver
//! ([`crate::worker::Worker::run`]) to execute, whose outcomes come back as events. No tokio, no
//! file system, no HTTP: the tests below drive it with scripted event sequences.
//!
//! ```text
//!  driver ──Event (change, tick, debounce elapsed, pushed, polled, applied, renewed, …)──▶ Core
//!  driver ◀──Command (push, poll after, apply page, re-bootstrap, renew, check conflicts)── Core
//!                                 deadline(): when the debounce fires
//!
//!  page arrives ─▶ dirty (unsent edits on its paths) and not paused? ─▶ Push ─▶ Pushed ─▶ Apply
//!  Pushed/Polled LeaseExpired ─▶ Renew ─▶ Renewed ok ─▶ the interrupted call again
//! ```

use std::time::{Duration, Instant};

/// Quiet time after the last file-system event before changes are sent.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// Longest a burst of events delays sending.
pub const DEBOUNCE_MAX: Duration = Duration::from_secs(1);
/// After a failure, wait this long before the next call.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How a call to the volume ended, as far as scheduling cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    Done,
    /// The cursor fell below the retention floor.
    Reseed,
    /// The replica's lease lapsed: register again, then carry on.
    LeaseExpired,
    /// Any other failure (the driver records it for `sync status`).
    Failed,
}

/// Something that happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The watcher saw a change worth a scan.
    LocalChange,
    /// The periodic rescan is due.
    RescanTick,
    /// The lease renewal is due.
    RenewTick,
    /// The conflict check is due.
    ConflictTick,
    /// The debounce deadline ([`Core::deadline`]) passed.
    DebounceElapsed,
    /// A push (scan, plan, append) ended; `paused` says whether uploads now wait on conflicts.
    Pushed { outcome: Reply, paused: bool },
    /// A page answered the poll issued `after` a cursor; `cursor` is the index's cursor now;
    /// `dirty` when the page touches paths with local edits not yet sent.
    Polled { after: u64, cursor: u64, outcome: Reply, dirty: bool },
    /// The page was applied; `more` when entries are known to be waiting.
    Applied { ok: bool, more: bool },
    /// Registering the replica again (a renewal) ended.
    Renewed { ok: bool },
    /// A re-bootstrap ended.
    Rebootstrapped { ok: bool },
    /// The conflict check ended; `paused` says whether uploads still wait.
    ConflictsChecked { ok: bool, paused: bool },
}

/// Something for the driver to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Scan, plan and send local changes.
    Push,
    /// Ask for the next page after the index's cursor, after `delay`, waiting up to `wait`.
    Poll { wait: Duration, delay: Duration },
    /// Apply the page that just arrived.
    Apply,
    /// Bootstrap again from an archive, keeping unsent edits.
    Rebootstrap,
    /// Register the replica again (renews its lease).
    Renew,
    /// Look whether this replica's conflicts are still open.
    CheckConflicts,
}

/// Which call a re-bootstrap or a renewal interrupted: it resumes that one afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Push,
    Poll,
}

/// The worker's scheduling state.
#[derive(Debug)]
pub struct Core {
    long_poll: Duration,
    /// When local changes are to be sent (`None`: nothing to send).
    due: Option<Instant>,
    /// When the current burst of events began (bounds the debounce).
    burst: Option<Instant>,
    /// Uploads wait while conflicts this replica caused are open.
    paused: bool,
    /// The call a running re-bootstrap came from.
    reseeding: Option<Origin>,
    /// The call a running renewal came from (`None`: the periodic one).
    renewing: Option<Origin>,
    /// A page arrived over unsent local edits: it is applied once the push in flight is done.
    page_waits: bool,
}

impl Core {
    /// A core that sends once at start (the first scan) and long-polls up to `long_poll`.
    pub fn new(now: Instant, long_poll: Duration) -> Core {
        Core {
            long_poll,
            due: Some(now),
            burst: None,
            paused: false,
            reseeding: None,
            renewing: None,
            page_waits: false,
        }
    }

    /// The first poll: at once, without waiting.
    pub fn start(&self) -> Command {
        Command::Poll { wait: Duration::ZERO, delay: Duration::ZERO }
    }

    /// When the driver is to report [`Event::DebounceElapsed`].
    pub fn deadline(&self) -> Option<Instant> {
        self.due
    }

    /// Whether local changes wait to be sent.
    pub fn busy(&self) -> bool {
        self.due.is_some()
    }

    /// Whether uploads wait on open conflicts.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Takes in one event at `now`; returns what to do next (at most one command).
    pub fn handle(&mut self, now: Instant, event: Event) -> Option<Command> {
        match event {
            Event::LocalChange => {
                let first = *self.burst.get_or_insert(now);
                self.due = Some((now + DEBOUNCE).min(first + DEBOUNCE_MAX));
                None
            }
            Event::RescanTick => {
                self.due = Some(self.due.unwrap_or(now));
                None
            }
            Event::RenewTick => Some(Command::Renew),
            Event::ConflictTick => self.paused.then_some(Command::CheckConflicts),
            Event::DebounceElapsed => {
                self.due = None;
                self.burst = None;
                Some(Command::Push)
            }
            Event::Pushed { outcome, paused } => {
                self.paused = paused;
                match outcome {
                    Reply::LeaseExpired => self.renew(Origin::Push),
                    // The edits went first: now the page they were sent ahead of.
                    Reply::Done if self.page_waits => {
                        self.page_waits = false;
                        Some(Command::Apply)
                    }
                    // The page is not applied over edits that could not be sent: ask for it again.
                    Reply::Reseed | Reply::Failed if self.page_waits => {
                        self.page_waits = false;
                        Some(self.poll(Duration::ZERO, RETRY_AFTER))
                    }
                    Reply::Reseed => self.reseed(Origin::Push),
                    Reply::Done | Reply::Failed => None,
                }
            }
            Event::Polled { after, cursor, outcome, dirty } => match outcome {
                // Send the edits first so the volume decides (and records) the conflict.
                Reply::Done if after == cursor && dirty && !self.paused => {
                    self.page_waits = true;
                    Some(Command::Push)
                }
                Reply::Done if after == cursor => Some(Command::Apply),
                // The cursor moved meanwhile (a re-bootstrap, a page of our own): ask again.
                Reply::Done => Some(self.poll(Duration::ZERO, Duration::ZERO)),
                Reply::Reseed => self.reseed(Origin::Poll),
                Reply::LeaseExpired => self.renew(Origin::Poll),
                Reply::Failed => Some(self.poll(Duration::ZERO, RETRY_AFTER)),
            },
            Event::Applied { ok, more } => match (ok, more) {
                (true, true) => Some(self.poll(Duration::ZERO, Duration::ZERO)),
                (true, false) => Some(self.poll(self.long_poll, Duration::ZERO)),
                (false, _) => Some(self.poll(Duration::ZERO, RETRY_AFTER)),
            },
            Event::Rebootstrapped { ok } => match self.reseeding.take() {
                // Send what the re-bootstrap kept at once.
                Some(Origin::Push) => {
                    self.due = Some(now);
                    None
                }
                Some(Origin::Poll) => Some(self.poll(Duration::ZERO, if ok { Duration::ZERO } else { RETRY_AFTER })),
                None => None,
            },
            Event::Renewed { ok } => match self.renewing.take() {
                // The push that found the lease lapsed goes again: the page it was sent ahead
                // of (if any) at once, otherwise as a send due now. Without a lease, no send.
                Some(Origin::Push) if self.page_waits => {
                    if ok {
                        Some(Command::Push)
                    } else {
                        self.page_waits = false;
                        Some(self.poll(Duration::ZERO, RETRY_AFTER))
                    }
                }
                Some(Origin::Push) => {
                    if ok {
                        self.due = Some(now);
                    }
                    None
                }
                Some(Origin::Poll) => Some(self.poll(Duration::ZERO, if ok { Duration::ZERO } else { RETRY_AFTER })),
                None => None,
            },
            Event::ConflictsChecked { ok, paused } => {
                self.paused = paused;
                if ok && !paused {
                    self.due = Some(now);
                }
                None
            }
        }
    }

    fn reseed(&mut self, from: Origin) -> Option<Command> {
        self.reseeding = Some(from);
        Some(Command::Rebootstrap)
    }

    fn renew(&mut self, from: Origin) -> Option<Command> {
        self.renewing = Some(from);
        Some(Command::Renew)
    }

    fn poll(&self, wait: Duration, delay: Duration) -> Command {
        Command::Poll { wait, delay }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(25);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn poll(wait: Duration, delay: Duration) -> Option<Command> {
        Some(Command::Poll { wait, delay })
    }

    /// A core whose start-up push already went.
    fn settled(t0: Instant) -> Core {
        let mut c = Core::new(t0, LONG);
        assert_eq!(c.deadline(), Some(t0), "the first scan is due at once");
        assert_eq!(c.handle(t0, Event::DebounceElapsed), Some(Command::Push));
        assert_eq!(c.handle(t0, Event::Pushed { outcome: Reply::Done, paused: false }), None);
        assert!(!c.busy());
        c
    }

    #[test]
    fn a_change_is_sent_after_a_quiet_debounce() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        assert_eq!(c.handle(t0, Event::LocalChange), None);
        assert_eq!(c.deadline(), Some(t0 + DEBOUNCE));
        // Another event inside the quiet time moves the deadline on.
        assert_eq!(c.handle(t0 + ms(30), Event::LocalChange), None);
        assert_eq!(c.deadline(), Some(t0 + ms(30) + DEBOUNCE));
        assert_eq!(c.handle(t0 + ms(80), Event::DebounceElapsed), Some(Command::Push));
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn a_burst_of_events_delays_sending_at_most_debounce_max() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        let mut t = t0;
        while t < t0 + ms(3000) {
            c.handle(t, Event::LocalChange);
            assert!(c.deadline().unwrap() <= t0 + DEBOUNCE_MAX, "at {:?}", t - t0);
            t += ms(20);
        }
        assert_eq!(c.deadline(), Some(t0 + DEBOUNCE_MAX));
        // Once sent, the next burst has its own bound.
        assert_eq!(c.handle(t0 + DEBOUNCE_MAX, Event::DebounceElapsed), Some(Command::Push));
        c.handle(t, Event::LocalChange);
        assert_eq!(c.deadline(), Some(t + DEBOUNCE));
    }

    #[test]
    fn a_rescan_sends_now_but_never_postpones_a_pending_send() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        c.handle(t0 + ms(100), Event::RescanTick);
        assert_eq!(c.deadline(), Some(t0 + ms(100)));
        c.handle(t0 + ms(200), Event::RescanTick);
        assert_eq!(c.deadline(), Some(t0 + ms(100)), "kept, not moved later");
    }

    #[test]
    fn failed_polls_back_off_and_a_page_is_followed_at_once_or_by_a_long_poll() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        assert_eq!(c.start(), Command::Poll { wait: Duration::ZERO, delay: Duration::ZERO });
        for _ in 0..3 {
            let failed = Event::Polled { after: 0, cursor: 0, outcome: Reply::Failed, dirty: false };
            assert_eq!(c.handle(t0, failed), poll(Duration::ZERO, RETRY_AFTER), "retried after a pause");
        }
        assert_eq!(
            c.handle(t0, Event::Polled { after: 0, cursor: 0, outcome: Reply::Done, dirty: false }),
            Some(Command::Apply)
        );
        assert_eq!(c.handle(t0, Event::Applied { ok: true, more: true }), poll(Duration::ZERO, Duration::ZERO));
        assert_eq!(c.handle(t0, Event::Applied { ok: true, more: false }), poll(LONG, Duration::ZERO));
        assert_eq!(c.handle(t0, Event::Applied { ok: false, more: false }), poll(Duration::ZERO, RETRY_AFTER));
    }

    #[test]
    fn a_page_for_a_cursor_that_moved_is_not_applied() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        let stale = Event::Polled { after: 4, cursor: 9, outcome: Reply::Done, dirty: false };
        assert_eq!(c.handle(t0, stale), poll(Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn a_reseed_while_polling_bootstraps_again_then_polls() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        let reseed = Event::Polled { after: 3, cursor: 3, outcome: Reply::Reseed, dirty: false };
        assert_eq!(c.handle(t0, reseed), Some(Command::Rebootstrap));
        assert_eq!(c.handle(t0, Event::Rebootstrapped { ok: true }), poll(Duration::ZERO, Duration::ZERO));
        // A failed re-bootstrap is tried again through the next poll, after a pause.
        assert_eq!(c.handle(t0, reseed), Some(Command::Rebootstrap));
        assert_eq!(c.handle(t0, Event::Rebootstrapped { ok: false }), poll(Duration::ZERO, RETRY_AFTER));
        assert!(!c.busy(), "polling's re-bootstrap schedules no send");
    }

    #[test]
    fn a_reseed_while_pushing_bootstraps_again_then_sends_what_was_kept() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        c.handle(t0, Event::LocalChange);
        assert_eq!(c.handle(t0 + DEBOUNCE, Event::DebounceElapsed), Some(Command::Push));
        let reseed = Event::Pushed { outcome: Reply::Reseed, paused: false };
        assert_eq!(c.handle(t0 + DEBOUNCE, reseed), Some(Command::Rebootstrap));
        let t1 = t0 + ms(900);
        assert_eq!(c.handle(t1, Event::Rebootstrapped { ok: false }), None);
        assert_eq!(c.deadline(), Some(t1), "sent again at once, whether or not it worked");
    }

    #[test]
    fn uploads_pause_while_own_conflicts_are_open_and_resume_at_once_after() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        assert_eq!(c.handle(t0, Event::ConflictTick), None, "no conflict check while not paused");
        c.handle(t0, Event::LocalChange);
        c.handle(t0 + DEBOUNCE, Event::DebounceElapsed);
        assert_eq!(c.handle(t0 + DEBOUNCE, Event::Pushed { outcome: Reply::Done, paused: true }), None);
        assert!(c.paused());
        assert_eq!(c.handle(t0 + ms(2000), Event::ConflictTick), Some(Command::CheckConflicts));
        // Still open, or the check failed: no send.
        assert_eq!(c.handle(t0 + ms(2000), Event::ConflictsChecked { ok: true, paused: true }), None);
        assert_eq!(c.handle(t0 + ms(4000), Event::ConflictsChecked { ok: false, paused: true }), None);
        assert!(!c.busy());
        let t1 = t0 + ms(6000);
        assert_eq!(c.handle(t1, Event::ConflictsChecked { ok: true, paused: false }), None);
        assert!(!c.paused());
        assert_eq!(c.deadline(), Some(t1), "resumed uploads go at once");
        assert_eq!(c.handle(t1, Event::ConflictTick), None);
    }

    #[test]
    fn the_lease_is_renewed_on_every_tick() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        assert_eq!(c.handle(t0, Event::RenewTick), Some(Command::Renew));
        assert_eq!(c.handle(t0 + ms(60_000), Event::RenewTick), Some(Command::Renew));
    }

    #[test]
    fn a_lapsed_lease_while_pushing_registers_again_then_sends_at_once() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        c.handle(t0, Event::LocalChange);
        assert_eq!(c.handle(t0 + DEBOUNCE, Event::DebounceElapsed), Some(Command::Push));
        let lapsed = Event::Pushed { outcome: Reply::LeaseExpired, paused: false };
        assert_eq!(c.handle(t0 + DEBOUNCE, lapsed), Some(Command::Renew));
        assert!(!c.busy(), "nothing is sent before the replica is registered again");
        let t1 = t0 + ms(300);
        assert_eq!(c.handle(t1, Event::Renewed { ok: true }), None);
        assert_eq!(c.deadline(), Some(t1), "the changes go again at once");
        assert_eq!(c.handle(t1, Event::DebounceElapsed), Some(Command::Push));
        assert_eq!(c.handle(t1, Event::Pushed { outcome: Reply::Done, paused: false }), None);
        assert!(!c.busy());
    }

    #[test]
    fn a_failed_registration_after_a_lapsed_lease_sends_nothing_until_the_next_change() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        c.handle(t0, Event::LocalChange);
        c.handle(t0 + DEBOUNCE, Event::DebounceElapsed);
        let lapsed = Event::Pushed { outcome: Reply::LeaseExpired, paused: false };
        assert_eq!(c.handle(t0 + DEBOUNCE, lapsed), Some(Command::Renew));
        assert_eq!(c.handle(t0 + ms(100), Event::Renewed { ok: false }), None);
        assert!(!c.busy(), "as a failed push: the next change or rescan sends again");
        // A later change renews nothing by itself: the next push finds out.
        c.handle(t0 + ms(200), Event::LocalChange);
        assert_eq!(c.deadline(), Some(t0 + ms(200) + DEBOUNCE));
    }

    #[test]
    fn a_lapsed_lease_while_polling_registers_again_then_polls() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        let lapsed = Event::Polled { after: 2, cursor: 2, outcome: Reply::LeaseExpired, dirty: false };
        assert_eq!(c.handle(t0, lapsed), Some(Command::Renew));
        assert_eq!(c.handle(t0, Event::Renewed { ok: true }), poll(Duration::ZERO, Duration::ZERO));
        assert_eq!(c.handle(t0, lapsed), Some(Command::Renew));
        assert_eq!(c.handle(t0, Event::Renewed { ok: false }), poll(Duration::ZERO, RETRY_AFTER), "after a pause");
        assert!(!c.busy(), "polling's renewal schedules no send");
    }

    #[test]
    fn a_periodic_renewal_resumes_nothing() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        assert_eq!(c.handle(t0, Event::RenewTick), Some(Command::Renew));
        assert_eq!(c.handle(t0, Event::Renewed { ok: true }), None);
        assert_eq!(c.handle(t0, Event::RenewTick), Some(Command::Renew));
        assert_eq!(c.handle(t0, Event::Renewed { ok: false }), None);
        assert!(!c.busy());
    }

    #[test]
    fn local_edits_under_a_page_are_pushed_before_the_page_is_applied() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        let dirty = Event::Polled { after: 5, cursor: 5, outcome: Reply::Done, dirty: true };
        assert_eq!(c.handle(t0, dirty), Some(Command::Push), "the volume decides the conflict");
        // The push conflicted and paused uploads: the page is applied all the same.
        assert_eq!(c.handle(t0, Event::Pushed { outcome: Reply::Done, paused: true }), Some(Command::Apply));
        assert!(c.paused());
        assert_eq!(c.handle(t0, Event::Applied { ok: true, more: false }), poll(LONG, Duration::ZERO));
        // A clean page is applied at once.
        let clean = Event::Polled { after: 6, cursor: 6, outcome: Reply::Done, dirty: false };
        assert_eq!(c.handle(t0, clean), Some(Command::Apply));
    }

    #[test]
    fn while_paused_a_dirty_page_is_applied_without_pushing() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        c.handle(t0, Event::LocalChange);
        c.handle(t0 + DEBOUNCE, Event::DebounceElapsed);
        c.handle(t0 + DEBOUNCE, Event::Pushed { outcome: Reply::Done, paused: true });
        let dirty = Event::Polled { after: 5, cursor: 5, outcome: Reply::Done, dirty: true };
        assert_eq!(c.handle(t0 + DEBOUNCE, dirty), Some(Command::Apply), "uploads wait on the conflicts");
    }

    #[test]
    fn a_page_is_not_applied_over_edits_that_could_not_be_sent() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        let dirty = Event::Polled { after: 5, cursor: 5, outcome: Reply::Done, dirty: true };
        for outcome in [Reply::Failed, Reply::Reseed] {
            assert_eq!(c.handle(t0, dirty), Some(Command::Push));
            let pushed = Event::Pushed { outcome, paused: false };
            assert_eq!(c.handle(t0, pushed), poll(Duration::ZERO, RETRY_AFTER), "{outcome:?}: asked for again");
            assert!(!c.busy(), "{outcome:?}: no send scheduled");
        }
        // The next push is an ordinary one: no page waits on it.
        c.handle(t0, Event::LocalChange);
        assert_eq!(c.handle(t0 + DEBOUNCE, Event::DebounceElapsed), Some(Command::Push));
        assert_eq!(c.handle(t0 + DEBOUNCE, Event::Pushed { outcome: Reply::Done, paused: false }), None);
    }

    #[test]
    fn a_lapsed_lease_while_pushing_ahead_of_a_page_registers_pushes_then_applies() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        let dirty = Event::Polled { after: 5, cursor: 5, outcome: Reply::Done, dirty: true };
        assert_eq!(c.handle(t0, dirty), Some(Command::Push));
        let lapsed = Event::Pushed { outcome: Reply::LeaseExpired, paused: false };
        assert_eq!(c.handle(t0, lapsed), Some(Command::Renew));
        assert_eq!(c.handle(t0, Event::Renewed { ok: true }), Some(Command::Push), "the same push, at once");
        assert_eq!(c.handle(t0, Event::Pushed { outcome: Reply::Done, paused: false }), Some(Command::Apply));
        // Without a lease the page waits for the next poll, after a pause.
        assert_eq!(c.handle(t0, dirty), Some(Command::Push));
        assert_eq!(c.handle(t0, lapsed), Some(Command::Renew));
        assert_eq!(c.handle(t0, Event::Renewed { ok: false }), poll(Duration::ZERO, RETRY_AFTER));
        assert_eq!(c.handle(t0, Event::Pushed { outcome: Reply::Done, paused: false }), None, "no page waits");
    }
}
