//! [`Core`]: the worker's decisions without I/O — when to send local changes, when and how soon
//! to poll the volume again, when to bootstrap again, renew the lease or look at conflicts.
//! Events go in with the time they happened; commands come out for the driver
//! ([`crate::worker::Worker::run`]) to execute, whose outcomes come back as events. No tokio, no
//! file system, no HTTP: the tests below drive it with scripted event sequences.
//!
//! ```text
//!  driver ──Event (change, tick, debounce elapsed, pushed, polled, applied, …)──▶ Core
//!  driver ◀──Command (push, poll after, apply page, re-bootstrap, renew, check conflicts)── Core
//!                                 deadline(): when the debounce fires
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
    /// A page answered the poll issued `after` a cursor; `cursor` is the index's cursor now.
    Polled { after: u64, cursor: u64, outcome: Reply },
    /// The page was applied; `more` when entries are known to be waiting; `paused` as for
    /// `Pushed` (applying a page may push first).
    Applied { ok: bool, more: bool, paused: bool },
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

/// Which call a re-bootstrap interrupted: it resumes that one afterwards.
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
}

impl Core {
    /// A core that sends once at start (the first scan) and long-polls up to `long_poll`.
    pub fn new(now: Instant, long_poll: Duration) -> Core {
        Core { long_poll, due: Some(now), burst: None, paused: false, reseeding: None }
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
                    Reply::Reseed => self.reseed(Origin::Push),
                    Reply::Done | Reply::Failed => None,
                }
            }
            Event::Polled { after, cursor, outcome } => match outcome {
                Reply::Done if after == cursor => Some(Command::Apply),
                // The cursor moved meanwhile (a re-bootstrap, a page of our own): ask again.
                Reply::Done => Some(self.poll(Duration::ZERO, Duration::ZERO)),
                Reply::Reseed => self.reseed(Origin::Poll),
                Reply::Failed => Some(self.poll(Duration::ZERO, RETRY_AFTER)),
            },
            Event::Applied { ok, more, paused } => {
                self.paused = paused;
                match (ok, more) {
                    (true, true) => Some(self.poll(Duration::ZERO, Duration::ZERO)),
                    (true, false) => Some(self.poll(self.long_poll, Duration::ZERO)),
                    (false, _) => Some(self.poll(Duration::ZERO, RETRY_AFTER)),
                }
            }
            Event::Rebootstrapped { ok } => match self.reseeding.take() {
                // Send what the re-bootstrap kept at once.
                Some(Origin::Push) => {
                    self.due = Some(now);
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
            let failed = Event::Polled { after: 0, cursor: 0, outcome: Reply::Failed };
            assert_eq!(c.handle(t0, failed), poll(Duration::ZERO, RETRY_AFTER), "retried after a pause");
        }
        assert_eq!(c.handle(t0, Event::Polled { after: 0, cursor: 0, outcome: Reply::Done }), Some(Command::Apply));
        assert_eq!(
            c.handle(t0, Event::Applied { ok: true, more: true, paused: false }),
            poll(Duration::ZERO, Duration::ZERO)
        );
        assert_eq!(c.handle(t0, Event::Applied { ok: true, more: false, paused: false }), poll(LONG, Duration::ZERO));
        assert_eq!(
            c.handle(t0, Event::Applied { ok: false, more: false, paused: false }),
            poll(Duration::ZERO, RETRY_AFTER)
        );
    }

    #[test]
    fn a_page_for_a_cursor_that_moved_is_not_applied() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        let stale = Event::Polled { after: 4, cursor: 9, outcome: Reply::Done };
        assert_eq!(c.handle(t0, stale), poll(Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn a_reseed_while_polling_bootstraps_again_then_polls() {
        let t0 = Instant::now();
        let mut c = settled(t0);
        let reseed = Event::Polled { after: 3, cursor: 3, outcome: Reply::Reseed };
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
}
