//! Time as the protocol sees it: [`Timestamp`] in milliseconds and the
//! [`Clock`] that produces it.
//!
//! Pure modules never read a clock; they receive `now: Timestamp` from their
//! driver. Only [`SystemClock`] may call `SystemTime::now`; the simulator and
//! tests use [`ManualClock`] (or plain virtual timestamps), so every run
//! replays exactly.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Milliseconds: since the unix epoch in production, virtual in the simulator.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub const fn from_millis(ms: u64) -> Timestamp {
        Timestamp(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + ms`, pinned at the far future instead of wrapping.
    pub const fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// `self + d`, pinned at the far future instead of wrapping.
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        self.plus_ms(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Time elapsed from `earlier` to `self`; zero if `earlier` is later
    /// (clocks may step backwards; that must never underflow).
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A source of `now`. Threads that drive pure state machines own one.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time since the unix epoch. The only place that reads the OS clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned OS clock read
    fn now(&self) -> Timestamp {
        // A clock before 1970 is an operator problem, not a reason to panic:
        // report the epoch and let slot checks refuse what follows.
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to (tests, simulator); shareable across threads.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock(AtomicU64::new(start.0))
    }

    pub fn set(&self, now: Timestamp) {
        self.0.store(now.0, Ordering::SeqCst);
    }

    pub fn advance(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        // fetch_update with a saturating add never fails: the closure always returns Some.
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ms))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Timestamp(u64::MAX - 1);
        assert_eq!(t.plus_ms(10), Timestamp(u64::MAX));
        assert_eq!(Timestamp(5).saturating_since(Timestamp(9)), Duration::ZERO);
        assert_eq!(
            Timestamp(9).saturating_since(Timestamp(5)),
            Duration::from_millis(4)
        );
        assert_eq!(
            Timestamp(1).saturating_add(Duration::from_secs(2)),
            Timestamp(2001)
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp(100));
        assert_eq!(c.now(), Timestamp(100));
        c.advance(Duration::from_millis(50));
        assert_eq!(c.now(), Timestamp(150));
        c.set(Timestamp(7));
        assert_eq!(c.now(), Timestamp(7));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > Timestamp(1_577_836_800_000));
    }
}
