//! Timers ordered by when they fall due, with the earliest one cached.
//!
//! Drivers ask an engine for its next deadline (`poll_timeout`) after
//! every message; with several timer sets that meant a `BTreeSet::first`
//! descent each, on cold memory when a thousand simulated engines take
//! turns. The earliest entry is kept beside the set, so asking costs a
//! field read; only removing the earliest entry descends the tree again.

use crate::time::MonoTime;
use std::collections::BTreeSet;

#[derive(Clone, Debug)]
pub struct Deadlines<K> {
    set: BTreeSet<(MonoTime, K)>,
    /// Always `set.first()`.
    first: Option<(MonoTime, K)>,
}

impl<K: Ord + Copy> Default for Deadlines<K> {
    fn default() -> Deadlines<K> {
        Deadlines {
            set: BTreeSet::new(),
            first: None,
        }
    }
}

impl<K: Ord + Copy> Deadlines<K> {
    pub fn new() -> Deadlines<K> {
        Deadlines::default()
    }

    /// The earliest timer.
    pub fn first(&self) -> Option<&(MonoTime, K)> {
        self.first.as_ref()
    }

    /// When the earliest timer falls due.
    pub fn next_at(&self) -> Option<MonoTime> {
        self.first.map(|(at, _)| at)
    }

    /// Adds a timer; `false` if it was already there.
    pub fn insert(&mut self, timer: (MonoTime, K)) -> bool {
        if !self.set.insert(timer) {
            return false;
        }
        if self.first.map_or(true, |first| timer < first) {
            self.first = Some(timer);
        }
        true
    }

    /// Removes a timer; `false` if it was not there.
    pub fn remove(&mut self, timer: &(MonoTime, K)) -> bool {
        if !self.set.remove(timer) {
            return false;
        }
        if self.first.as_ref() == Some(timer) {
            self.first = self.set.first().copied();
        }
        true
    }

    /// Removes and returns the earliest timer.
    pub fn pop_first(&mut self) -> Option<(MonoTime, K)> {
        let popped = self.set.pop_first();
        self.first = self.set.first().copied();
        popped
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_first_follows_every_insert_and_removal() {
        let mut d = Deadlines::new();
        let mut model = BTreeSet::new();
        // A fixed pseudo-random walk of inserts and removals.
        let mut x: u64 = 7;
        for _ in 0..2_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let timer = (MonoTime((x >> 40) % 50), (x >> 20) % 8);
            match (x >> 8) % 3 {
                0 => assert_eq!(d.insert(timer), model.insert(timer)),
                1 => assert_eq!(d.remove(&timer), model.remove(&timer)),
                _ => assert_eq!(d.pop_first(), model.pop_first()),
            }
            assert_eq!(d.first(), model.first());
            assert_eq!(d.len(), model.len());
        }
    }
}
