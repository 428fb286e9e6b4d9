//! Time as the node sees it, in two kinds that must not mix:
//!
//! - [`MonoTime`]: a monotonic instant (ms since the process's first
//!   reading). Every timer, deadline, rate limit, backoff and expiry uses
//!   it, so a stepped wall clock never freezes polls or expires handshakes.
//! - [`Timestamp`]: wall-clock ms since the unix epoch. Only what the
//!   protocol or a user reads as a date uses it: block slots and
//!   timestamps, `finalized_at_ms` records, unix times in RPC answers.
//!
//! Pure modules never read a clock; they receive `now` from their driver.
//! Only [`SystemClock`] may call `Instant::now`/`SystemTime::now`; the
//! simulator and tests use [`ManualClock`] (or plain virtual values), so
//! every run replays exactly.
//!
//! Test hook: if the environment variable [`WALL_OFFSET_ENV`] names a file,
//! [`SystemClock::wall`] adds the signed millisecond offset written in it
//! (re-read at every call; missing or unreadable means 0). The clock-step
//! tests set it to step one node's wall clock without root. It never
//! touches [`SystemClock::mono`].

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Names a file holding a signed ms offset added to the wall clock (tests only).
pub const WALL_OFFSET_ENV: &str = "TIMECOIN_TEST_WALL_OFFSET_FILE";

/// Defines a millisecond count with saturating arithmetic; one macro so
/// the two kinds of time share the code but never the type.
macro_rules! millis_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
        )]
        pub struct $name(pub u64);

        impl $name {
            pub const ZERO: $name = $name(0);

            pub const fn from_millis(ms: u64) -> $name {
                $name(ms)
            }

            pub const fn as_millis(self) -> u64 {
                self.0
            }

            /// `self + ms`, pinned at the far future instead of wrapping.
            pub const fn plus_ms(self, ms: u64) -> $name {
                $name(self.0.saturating_add(ms))
            }

            /// `self + d`, pinned at the far future instead of wrapping.
            pub fn saturating_add(self, d: Duration) -> $name {
                self.plus_ms(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            }

            /// Time elapsed from `earlier` to `self`; zero if `earlier` is
            /// later (that must never underflow).
            pub fn saturating_since(self, earlier: $name) -> Duration {
                Duration::from_millis(self.0.saturating_sub(earlier.0))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}ms", self.0)
            }
        }
    };
}

millis_type!(
    /// Wall-clock milliseconds since the unix epoch (virtual in the
    /// simulator). May step either way: only for slots and dates.
    Timestamp
);

millis_type!(
    /// Monotonic milliseconds since an arbitrary origin (the process's
    /// first reading; virtual in the simulator). Never steps: for timers.
    MonoTime
);

/// Both clocks read at one moment, for drivers that need both (the block
/// thread: slots by the wall, sync and catch-up timers by the monotonic).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Now {
    pub mono: MonoTime,
    pub wall: Timestamp,
}

/// A source of time. Threads that drive pure state machines own one.
pub trait Clock: Send + Sync {
    /// For timers, deadlines, rate limits and expiry.
    fn mono(&self) -> MonoTime;

    /// For slots and dates only.
    fn wall(&self) -> Timestamp;

    fn read(&self) -> Now {
        Now {
            mono: self.mono(),
            wall: self.wall(),
        }
    }

    /// The wall time that monotonic `at` corresponds to by the current
    /// offset between the clocks (to show a timer's instant as a date).
    fn wall_at(&self, at: MonoTime) -> Timestamp {
        let Now { mono, wall } = self.read();
        if at <= mono {
            Timestamp(wall.0.saturating_sub(mono.0 - at.0))
        } else {
            wall.plus_ms(at.0 - mono.0)
        }
    }
}

/// The OS clocks: `Instant` for [`MonoTime`], `SystemTime` for [`Timestamp`].
/// The only place that reads them.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned monotonic clock read
    fn mono(&self) -> MonoTime {
        // One origin per process, so instants from every thread compare.
        static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
        let origin = *ORIGIN.get_or_init(std::time::Instant::now);
        MonoTime(u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    #[allow(clippy::disallowed_methods)] // the one sanctioned wall clock read
    fn wall(&self) -> Timestamp {
        // A clock before 1970 is an operator problem, not a reason to panic:
        // report the epoch and let slot checks refuse what follows.
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let ms = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX);
        Timestamp(ms.saturating_add_signed(test_wall_offset_ms()))
    }
}

/// The offset of the [`WALL_OFFSET_ENV`] test hook; 0 when unset.
fn test_wall_offset_ms() -> i64 {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| std::env::var_os(WALL_OFFSET_ENV).map(PathBuf::from))
        .as_ref()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// A clock that moves only when told to (tests, simulator); shareable
/// across threads. Both kinds read the same count.
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
    fn mono(&self) -> MonoTime {
        MonoTime(self.0.load(Ordering::SeqCst))
    }

    fn wall(&self) -> Timestamp {
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
            MonoTime(1).saturating_add(Duration::from_secs(2)),
            MonoTime(2001)
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp(100));
        assert_eq!(c.wall(), Timestamp(100));
        c.advance(Duration::from_millis(50));
        assert_eq!(
            c.read(),
            Now {
                mono: MonoTime(150),
                wall: Timestamp(150)
            }
        );
        c.set(Timestamp(7));
        assert_eq!(c.mono(), MonoTime(7));
    }

    #[test]
    fn wall_at_maps_instants_either_side_of_now() {
        let c = ManualClock::new(Timestamp(1_000));
        assert_eq!(c.wall_at(MonoTime(400)), Timestamp(400));
        assert_eq!(c.wall_at(MonoTime(1_500)), Timestamp(1_500));
    }

    #[test]
    fn system_clocks_read_sane_values() {
        assert!(SystemClock.wall() > Timestamp(1_577_836_800_000));
        let first = SystemClock.mono();
        assert!(SystemClock.mono() >= first);
    }
}
