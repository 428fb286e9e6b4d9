//! Slots: `slot = floor(unix_time_ms / block_interval_ms)`, and the clock
//! skew a node tolerates before it calls a block early (DESIGN §6, §12
//! "Clock trouble").
//!
//! Pure arithmetic on a `now` that the caller passes in; it never reads a
//! clock, and it saturates instead of overflowing on hostile slot numbers.

use crate::time::Timestamp;

/// Why a slot clock cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotClockError {
    #[error("block interval must be at least 1 ms")]
    ZeroInterval,
}

/// Slot arithmetic for one chain's block interval and skew bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotClock {
    block_interval_ms: u64,
    max_skew_ms: u64,
}

impl SlotClock {
    pub fn new(block_interval_ms: u64, max_skew_ms: u64) -> Result<SlotClock, SlotClockError> {
        if block_interval_ms == 0 {
            return Err(SlotClockError::ZeroInterval);
        }
        Ok(SlotClock {
            block_interval_ms,
            max_skew_ms,
        })
    }

    pub fn block_interval_ms(&self) -> u64 {
        self.block_interval_ms
    }

    pub fn max_skew_ms(&self) -> u64 {
        self.max_skew_ms
    }

    /// The slot that `now` falls in.
    pub fn slot_at(&self, now: Timestamp) -> u64 {
        now.as_millis() / self.block_interval_ms
    }

    /// First millisecond of `slot` (saturating for absurd slots).
    pub fn slot_start_ms(&self, slot: u64) -> u64 {
        slot.saturating_mul(self.block_interval_ms)
    }

    /// First millisecond after `slot`.
    pub fn slot_end_ms(&self, slot: u64) -> u64 {
        self.slot_start_ms(slot)
            .saturating_add(self.block_interval_ms)
    }

    /// True if `slot` has not begun even on a clock `max_skew_ms` ahead of
    /// ours: a block for it is refused, not merely early.
    pub fn is_future_slot(&self, slot: u64, now: Timestamp) -> bool {
        self.slot_start_ms(slot) > self.latest_acceptable_ms(now)
    }

    /// The latest instant a peer's clock may show while ours shows `now`.
    pub fn latest_acceptable_ms(&self, now: Timestamp) -> u64 {
        now.as_millis().saturating_add(self.max_skew_ms)
    }

    /// True if `timestamp_ms` lies in `slot` widened by the skew bound on
    /// both sides: `[start − skew, end + skew)`.
    pub fn timestamp_in_slot(&self, slot: u64, timestamp_ms: u64) -> bool {
        let earliest = self.slot_start_ms(slot).saturating_sub(self.max_skew_ms);
        let end = self.slot_end_ms(slot).saturating_add(self.max_skew_ms);
        (earliest..end).contains(&timestamp_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> SlotClock {
        SlotClock::new(5_000, 500).unwrap()
    }

    #[test]
    fn slot_is_floor_of_time_over_interval() {
        let c = clock();
        assert_eq!(c.slot_at(Timestamp(0)), 0);
        assert_eq!(c.slot_at(Timestamp(4_999)), 0);
        assert_eq!(c.slot_at(Timestamp(5_000)), 1);
        assert_eq!(c.slot_start_ms(3), 15_000);
        assert_eq!(c.slot_end_ms(3), 20_000);
        assert_eq!(c.slot_start_ms(u64::MAX), u64::MAX);
        assert_eq!(SlotClock::new(0, 1), Err(SlotClockError::ZeroInterval));
    }

    #[test]
    fn next_slot_is_accepted_only_within_the_skew() {
        let c = clock();
        // Slot 2 starts at 10_000: acceptable from 9_500 on our clock.
        assert!(c.is_future_slot(2, Timestamp(9_499)));
        assert!(!c.is_future_slot(2, Timestamp(9_500)));
        assert!(!c.is_future_slot(1, Timestamp(9_499)));
        assert!(c.is_future_slot(u64::MAX, Timestamp(1_764_028_800_000)));
    }

    #[test]
    fn timestamp_window_is_the_slot_widened_by_the_skew() {
        let c = clock();
        assert!(c.timestamp_in_slot(2, 9_500));
        assert!(!c.timestamp_in_slot(2, 9_499));
        assert!(c.timestamp_in_slot(2, 15_499));
        assert!(!c.timestamp_in_slot(2, 15_500));
    }
}
