//! [`Clock`]: the wall clock, injected. Everything that stamps a time into a command (`at_ms`,
//! `created_at_ms`, expiries), ages an object in the blob store, or decides that something
//! expired reads one of these instead of `SystemTime::now()`, so a test can move time by hand
//! ([`ManualClock`]) instead of sleeping through a grace period.
//!
//! ```text
//!  SystemClock ─┐                       api ops: ids, at_ms, expiries ─▶ Command ─▶ Raft ─▶ apply
//!  ManualClock ─┴─▶ Arc<dyn Clock> ─▶   collector: marks, sweeps, object ages, snapshot expiry
//!                                       compactor: request ids past their 24 h window
//! ```
//!
//! The state machine never reads a clock: every time it needs travels inside the command, so
//! each node applies the same entry to the same result.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Wall time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }
}

/// A clock that moves only when told to (tests). Clones share one reading.
///
/// It starts at the system clock's reading. An object store still stamps objects with real
/// time, so an object written after the clock was made is younger than the clock says (an age
/// below zero counts as zero): advance in steps longer than the test itself runs.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now_ms: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock reading what the system clock reads now.
    pub fn new() -> Self {
        Self::at(SystemClock.now_ms())
    }

    /// A clock reading `now_ms`.
    pub fn at(now_ms: i64) -> Self {
        ManualClock { now_ms: Arc::new(AtomicI64::new(now_ms)) }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).expect("an advance fits in i64 milliseconds");
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_its_clones_follow() {
        let clock = ManualClock::at(1_000);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        assert_eq!(shared.now_ms(), 1_000);
        clock.advance(Duration::from_secs(2));
        assert_eq!((clock.now_ms(), shared.now_ms()), (3_000, 3_000));
    }

    #[test]
    fn the_system_clock_is_past_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
