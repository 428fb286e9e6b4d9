//! A bounded memory of recent facts keyed by hash (settled txids, seen
//! proofs, verified votes): the oldest entry is forgotten first, so peers
//! can never grow it past its capacity.

use foldhash::{HashMap, HashMapExt};
use std::collections::VecDeque;
use std::hash::Hash as StdHash;

#[derive(Clone, Debug)]
pub struct RecentMap<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: StdHash + Eq + Copy, V> RecentMap<K, V> {
    /// Holds at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> RecentMap<K, V> {
        RecentMap {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Inserts or overwrites; a new key may evict the oldest one.
    pub fn insert(&mut self, key: K, value: V) {
        if let Some(v) = self.map.get_mut(&key) {
            *v = value;
            return;
        }
        if self.map.len() >= self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.map.remove(&oldest);
            }
        }
        self.map.insert(key, value);
        self.order.push_back(key);
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_oldest_beyond_capacity() {
        let mut r = RecentMap::new(2);
        r.insert(1, 'a');
        r.insert(2, 'b');
        r.insert(1, 'c'); // overwrite keeps its age
        r.insert(3, 'd');
        assert!(!r.contains(&1));
        assert_eq!(r.get(&2), Some(&'b'));
        assert_eq!(r.get(&3), Some(&'d'));
        assert_eq!(r.len(), 2);
    }
}
