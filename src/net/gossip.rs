//! Gossip deduplication: a bounded set of message hashes, oldest forgotten
//! first, so a relayed `Tx` or `Proof` is delivered once and re-broadcast
//! never (DESIGN §12 relay loops). Pure; never grows past its capacity.

use crate::types::Hash;
use foldhash::{HashSet, HashSetExt};
use std::collections::VecDeque;

/// Each peer relays gossip as soon as it admits it, so duplicates arrive
/// within seconds of the original: a seen-set remembers this many seconds.
pub const SEEN_WINDOW_SECS: u32 = 4;

/// Hashes a seen-set needs to cover [`SEEN_WINDOW_SECS`] of `Tx` and `Proof`
/// gossip at `tx_per_sec` (about 2 MiB at 2,000 tx/s). A duplicate older
/// than that reaches the engine, which drops it too.
pub fn seen_capacity(tx_per_sec: u32) -> usize {
    (tx_per_sec as usize)
        .saturating_mul(2)
        .saturating_mul(SEEN_WINDOW_SECS as usize)
}

#[derive(Debug)]
pub struct SeenSet {
    order: VecDeque<Hash>,
    members: HashSet<Hash>,
    capacity: usize,
}

impl SeenSet {
    pub fn new(capacity: usize) -> SeenSet {
        SeenSet {
            order: VecDeque::new(),
            members: HashSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records `hash`; true if it was not seen before.
    pub fn insert(&mut self, hash: Hash) -> bool {
        if !self.members.insert(hash) {
            return false;
        }
        self.order.push_back(hash);
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.members.remove(&oldest);
            }
        }
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_new_once_and_the_set_stays_bounded() {
        let mut seen = SeenSet::new(3);
        let h = |i: u8| Hash([i; 32]);
        assert!(seen.insert(h(1)));
        assert!(!seen.insert(h(1)));
        for i in 2..10 {
            assert!(seen.insert(h(i)));
        }
        assert_eq!(seen.len(), 3);
        assert!(seen.insert(h(1)), "the oldest are forgotten first");
        assert!(!seen.insert(h(9)));
    }
}
