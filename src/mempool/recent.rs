//! A bounded memory of recent facts keyed by hash (settled txids, seen
//! proofs, verified votes, vote tallies): the oldest entry is forgotten
//! first, so peers can never grow it past its capacity.

use foldhash::{HashMap, HashMapExt};
use std::collections::VecDeque;
use std::hash::Hash as StdHash;

#[derive(Clone, Debug)]
pub struct RecentMap<K, V> {
    /// Value and the insertion number of its entry in `order`.
    map: HashMap<K, (V, u64)>,
    /// Keys oldest first; an entry whose number no longer matches the map
    /// was removed (or re-inserted later) and is skipped.
    order: VecDeque<(K, u64)>,
    inserted: u64,
    capacity: usize,
}

impl<K: StdHash + Eq + Copy, V> RecentMap<K, V> {
    /// Holds at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> RecentMap<K, V> {
        RecentMap {
            map: HashMap::new(),
            order: VecDeque::new(),
            inserted: 0,
            capacity: capacity.max(1),
        }
    }

    /// Inserts or overwrites; a new key may evict the oldest one.
    pub fn insert(&mut self, key: K, value: V) {
        if let Some((v, _)) = self.map.get_mut(&key) {
            *v = value;
            return;
        }
        let number = self.admit(key);
        self.map.insert(key, (value, number));
    }

    /// The value of `key`, inserted from `make` if absent (which may evict the oldest).
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        // One lookup while no room must be made (the hot case: a hit).
        if self.is_full() && !self.map.contains_key(&key) {
            self.make_room();
        }
        let (order, inserted) = (&mut self.order, &mut self.inserted);
        &mut self
            .map
            .entry(key)
            .or_insert_with(|| (make(), queue(order, inserted, key)))
            .0
    }

    /// Whether a new key must first evict or compact.
    fn is_full(&self) -> bool {
        self.map.len() >= self.capacity || self.order.len() >= self.capacity.saturating_mul(2)
    }

    /// Makes room for new `key` and queues it; returns its insertion number.
    fn admit(&mut self, key: K) -> u64 {
        self.make_room();
        queue(&mut self.order, &mut self.inserted, key)
    }

    /// Evicts the oldest entries until one more fits, and drops stale
    /// order entries so the order stays bounded too.
    fn make_room(&mut self) {
        while self.map.len() >= self.capacity {
            let Some((oldest, number)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&oldest).is_some_and(|(_, n)| *n == number) {
                self.map.remove(&oldest);
            }
        }
        if self.order.len() >= self.capacity.saturating_mul(2) {
            // Removals left stale entries: drop them, so the order stays bounded too.
            let map = &self.map;
            self.order
                .retain(|(k, number)| map.get(k).is_some_and(|(_, n)| n == number));
        }
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(v, _)| v)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key).map(|(v, _)| v)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key).map(|(v, _)| v)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter().map(|(k, (v, _))| (k, v))
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Queues `key` as the newest entry; returns its insertion number.
fn queue<K>(order: &mut VecDeque<(K, u64)>, inserted: &mut u64, key: K) -> u64 {
    *inserted += 1;
    order.push_back((key, *inserted));
    *inserted
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

    #[test]
    fn removal_frees_room_and_the_order_stays_bounded() {
        let mut r = RecentMap::new(3);
        for i in 0..1_000u32 {
            r.insert(i, i);
            assert_eq!(r.remove(&i), Some(i));
            r.insert(i % 5, i);
        }
        assert!(r.len() <= 3);
        assert!(r.order.len() <= 7);
        r.insert(100, 1);
        if let Some(v) = r.get_mut(&100) {
            *v = 2;
        }
        assert_eq!(r.get(&100), Some(&2));
    }
}
