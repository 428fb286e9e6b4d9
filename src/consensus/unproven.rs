//! Transactions this node locally accepted whose proof has not completed
//! here yet ("accepted but unproven", issue 13 finding 7): when each is
//! re-asked next, how long the gap before it is, and how many there are.
//!
//! A re-ask is due `first_ms` after acceptance; each re-ask that found no
//! new vote doubles the gap up to `max_ms`; a new vote (the tally's weight
//! grew since the last look) resets it to `first_ms`, since the proof is
//! on its way. So a tx whose proof never completes costs a few messages a
//! minute, not one round every poll interval, forever.
//!
//! Pure bookkeeping on injected time: the engine decides what a re-ask
//! sends. Bounded by the engine's cap on accepted-but-unproven txs
//! (`UnprovenLimits::max_txs`), which refuses new admissions at the cap and
//! never forgets an acceptance (the vote-safety record outlives any cap).

use crate::mempool::Deadlines;
use crate::time::MonoTime;
use crate::types::Hash;
use foldhash::{HashMap, HashMapExt};

/// The re-ask schedule and the cap of accepted-but-unproven txs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnprovenLimits {
    /// New admissions (wallet or peers) are refused while this many
    /// accepted txs wait for their proof.
    pub max_txs: usize,
    /// First re-ask, after acceptance; the gap after a new vote.
    pub first_ms: u64,
    /// The longest gap between two re-asks.
    pub max_ms: u64,
}

impl Default for UnprovenLimits {
    /// A proof normally completes within a few hundred milliseconds of
    /// acceptance (a window of 10 ms and a relay): the first re-ask comes
    /// at 2 s, then at most one a minute. 16,384 is about 8 s of the
    /// design rate (2,000 tx/s) with no proof completing at all.
    fn default() -> UnprovenLimits {
        UnprovenLimits {
            max_txs: 16_384,
            first_ms: 2_000,
            max_ms: 60_000,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    due_at: MonoTime,
    gap_ms: u64,
    /// The tally's weight at the last look.
    weight: u64,
}

/// The accepted-but-unproven txs and their re-ask timers.
pub struct Unproven {
    limits: UnprovenLimits,
    entries: HashMap<Hash, Entry>,
    schedule: Deadlines<Hash>,
}

impl Unproven {
    pub fn new(limits: UnprovenLimits) -> Unproven {
        Unproven {
            limits,
            entries: HashMap::new(),
            schedule: Deadlines::new(),
        }
    }

    /// `txid` was locally accepted at `now` with a tally of `weight`.
    pub fn insert(&mut self, now: MonoTime, txid: Hash, weight: u64) {
        if self.entries.contains_key(&txid) {
            return;
        }
        let gap_ms = self.limits.first_ms.max(1);
        let due_at = now.plus_ms(gap_ms);
        self.entries.insert(
            txid,
            Entry {
                due_at,
                gap_ms,
                weight,
            },
        );
        self.schedule.insert((due_at, txid));
    }

    /// `txid` is no longer accepted-but-unproven (finalized, or lost to a
    /// finalized conflict).
    pub fn remove(&mut self, txid: &Hash) {
        if let Some(entry) = self.entries.remove(txid) {
            self.schedule.remove(&(entry.due_at, *txid));
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// At the cap: new admissions are refused.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.limits.max_txs
    }

    pub fn max_txs(&self) -> usize {
        self.limits.max_txs
    }

    /// When the next re-ask is due.
    pub fn next_due(&self) -> Option<MonoTime> {
        self.schedule.next_at()
    }

    /// The txids to re-ask now. Each due txid whose tally (`weight_of`)
    /// grew since the last look is not re-asked: its gap resets to
    /// `first_ms`. The others are returned and their gap doubles (up to
    /// `max_ms`).
    pub fn take_due(&mut self, now: MonoTime, weight_of: impl Fn(&Hash) -> u64) -> Vec<Hash> {
        let mut due = Vec::new();
        while let Some(&(at, txid)) = self.schedule.first() {
            if at > now {
                break;
            }
            self.schedule.pop_first();
            let Some(entry) = self.entries.get_mut(&txid) else {
                continue;
            };
            let weight = weight_of(&txid);
            if weight > entry.weight {
                entry.gap_ms = self.limits.first_ms.max(1);
            } else {
                due.push(txid);
                entry.gap_ms = entry
                    .gap_ms
                    .saturating_mul(2)
                    .min(self.limits.max_ms.max(1));
            }
            entry.weight = weight;
            entry.due_at = now.plus_ms(entry.gap_ms);
            self.schedule.insert((entry.due_at, txid));
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> Unproven {
        Unproven::new(UnprovenLimits {
            max_txs: 2,
            first_ms: 100,
            max_ms: 400,
        })
    }

    /// The times `txid` is re-asked within `0..end_ms` at a 1 ms step,
    /// with its tally weight `weight(t)`.
    fn asks(book: &mut Unproven, end_ms: u64, weight: impl Fn(u64) -> u64) -> Vec<u64> {
        let mut at = Vec::new();
        for t in 0..end_ms {
            if !book.take_due(MonoTime(t), |_| weight(t)).is_empty() {
                at.push(t);
            }
        }
        at
    }

    #[test]
    fn re_asks_back_off_doubling_up_to_the_cap() {
        let mut b = book();
        b.insert(MonoTime(0), Hash::ZERO, 1);
        assert_eq!(b.next_due(), Some(MonoTime(100)));
        // Gaps 100, 200, 400, 400, …
        assert_eq!(
            asks(&mut b, 2_000, |_| 1),
            vec![100, 300, 700, 1_100, 1_500, 1_900]
        );
    }

    #[test]
    fn a_new_vote_resets_the_gap_and_skips_that_re_ask() {
        let mut b = book();
        b.insert(MonoTime(0), Hash::ZERO, 1);
        // A vote arrives at 500 ms: the look at 700 skips and resets.
        let at = asks(&mut b, 1_600, |t| if t < 500 { 1 } else { 2 });
        assert_eq!(at, vec![100, 300, 800, 1_000, 1_400]);
    }

    #[test]
    fn the_cap_counts_entries_until_they_leave() {
        let mut b = book();
        b.insert(MonoTime(0), Hash::digest(b"a"), 0);
        assert!(!b.is_full());
        b.insert(MonoTime(0), Hash::digest(b"a"), 0);
        assert_eq!(b.len(), 1, "inserted once");
        b.insert(MonoTime(0), Hash::digest(b"b"), 0);
        assert!(b.is_full());
        b.remove(&Hash::digest(b"a"));
        assert!(!b.is_full());
        assert_eq!(b.next_due(), Some(MonoTime(100)));
        b.remove(&Hash::digest(b"b"));
        assert_eq!(b.next_due(), None);
    }
}
