//! Gossip deduplication: a bounded set of message hashes, oldest forgotten
//! first, so a relayed `Tx` or `Proof` is delivered once and re-broadcast
//! never (DESIGN §12 relay loops). Pure; never grows past its capacity.

use crate::types::Hash;
use std::collections::{HashSet, VecDeque};

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
