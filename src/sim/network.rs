//! The simulated network: for each message, when (if ever) and how many times
//! it arrives. Seeded latency (a base plus an exponential tail), loss,
//! duplication, extra reordering delay, and partitions that heal at a given
//! time. Loss, duplication and reordering stop at `faults_until_ms`, so the
//! liveness checker can measure a connected, reliable network afterwards.
//!
//! Owns no messages and no clock: the cluster asks it for delivery times.
//! Must never draw from anything but its own seeded RNG.

use super::rng::{below, chance, exponential_ms, shuffled};
use rand_chacha::ChaCha20Rng;
use std::collections::BTreeSet;

/// A split of the cluster: `side` cannot talk to the other nodes from
/// `start_ms` until `heal_ms`, except to and from `bridges`, nodes that
/// reach both halves (a well-placed adversary). A message is cut if it leaves
/// or would arrive inside the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub start_ms: u64,
    pub heal_ms: u64,
    pub side: BTreeSet<usize>,
    pub bridges: BTreeSet<usize>,
}

impl Partition {
    /// `count` of the `nodes` nodes, chosen by `rng`, cut off from the rest.
    pub fn random(
        rng: &mut ChaCha20Rng,
        nodes: usize,
        count: usize,
        start_ms: u64,
        heal_ms: u64,
    ) -> Partition {
        Partition {
            start_ms,
            heal_ms,
            side: shuffled(rng, nodes).into_iter().take(count).collect(),
            bridges: BTreeSet::new(),
        }
    }

    fn cuts(&self, a: usize, b: usize, at_ms: u64) -> bool {
        (self.start_ms..self.heal_ms).contains(&at_ms)
            && (self.side.contains(&a) != self.side.contains(&b))
            && !self.bridges.contains(&a)
            && !self.bridges.contains(&b)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Smallest one-way latency.
    pub latency_base_ms: u64,
    /// Mean of the exponential part added to the base.
    pub latency_tail_mean_ms: u64,
    /// Chance a message is dropped, in parts per million.
    pub loss_ppm: u32,
    /// Chance a message arrives twice (the copy has its own latency).
    pub duplicate_ppm: u32,
    /// Chance a message is held back by up to `reorder_window_ms` more.
    pub reorder_ppm: u32,
    pub reorder_window_ms: u64,
    pub partitions: Vec<Partition>,
    /// Loss, duplication and reordering apply to messages sent before this.
    pub faults_until_ms: u64,
}

impl Default for NetworkConfig {
    /// A LAN-to-WAN mix: 20 ms base, 30 ms mean tail, no faults.
    fn default() -> Self {
        NetworkConfig {
            latency_base_ms: 20,
            latency_tail_mean_ms: 30,
            loss_ppm: 0,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            reorder_window_ms: 0,
            partitions: Vec::new(),
            faults_until_ms: 0,
        }
    }
}

impl NetworkConfig {
    /// When the last fault ends: every partition healed, no more loss.
    pub fn faults_end_ms(&self) -> u64 {
        self.partitions
            .iter()
            .map(|p| p.heal_ms)
            .chain([self.faults_until_ms])
            .max()
            .unwrap_or(0)
    }
}

/// The arrival times of one sent message: none (lost), one, or two (duplicated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Lost,
    Once(u64),
    Twice(u64, u64),
}

impl Delivery {
    pub fn times(self) -> impl Iterator<Item = u64> {
        let (a, b) = match self {
            Delivery::Lost => (None, None),
            Delivery::Once(t) => (Some(t), None),
            Delivery::Twice(t, u) => (Some(t), Some(u)),
        };
        a.into_iter().chain(b)
    }
}

pub struct Network {
    config: NetworkConfig,
    rng: ChaCha20Rng,
}

impl Network {
    pub fn new(config: NetworkConfig, rng: ChaCha20Rng) -> Network {
        Network { config, rng }
    }

    /// Whether `a` and `b` can exchange messages at `at_ms`.
    pub fn connected(&self, a: usize, b: usize, at_ms: u64) -> bool {
        !self.config.partitions.iter().any(|p| p.cuts(a, b, at_ms))
    }

    /// When a message sent now from `from` to `to` arrives. A message is lost
    /// if the link is cut when it leaves or when it would arrive.
    pub fn route(&mut self, from: usize, to: usize, now_ms: u64) -> Delivery {
        let faulty = now_ms < self.config.faults_until_ms;
        if !self.connected(from, to, now_ms)
            || (faulty && chance(&mut self.rng, self.config.loss_ppm))
        {
            return Delivery::Lost;
        }
        let first = now_ms + self.latency_ms(faulty);
        let copy = (faulty && chance(&mut self.rng, self.config.duplicate_ppm))
            .then(|| now_ms + self.latency_ms(faulty));
        let arrives = |t: &u64| self.connected(from, to, *t);
        match (Some(first).filter(arrives), copy.filter(arrives)) {
            (Some(a), Some(b)) => Delivery::Twice(a, b),
            (Some(t), None) | (None, Some(t)) => Delivery::Once(t),
            (None, None) => Delivery::Lost,
        }
    }

    fn latency_ms(&mut self, faulty: bool) -> u64 {
        let c = &self.config;
        let mut ms = c.latency_base_ms + exponential_ms(&mut self.rng, c.latency_tail_mean_ms);
        if faulty && chance(&mut self.rng, c.reorder_ppm) {
            ms += below(&mut self.rng, c.reorder_window_ms + 1);
        }
        ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::{concern_rng, PPM};

    fn network(config: NetworkConfig) -> Network {
        Network::new(config, concern_rng(1, "network"))
    }

    #[test]
    fn latency_is_at_least_the_base() {
        let mut net = network(NetworkConfig::default());
        for now in 0..1000 {
            match net.route(0, 1, now) {
                Delivery::Once(t) => assert!(t >= now + 20),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn partition_cuts_across_sides_only_until_heal() {
        let side: BTreeSet<usize> = [0, 1].into();
        let config = NetworkConfig {
            partitions: vec![Partition {
                start_ms: 100,
                heal_ms: 500,
                side,
                bridges: [3].into(),
            }],
            ..NetworkConfig::default()
        };
        assert_eq!(config.faults_end_ms(), 500);
        let mut net = network(config);
        assert_eq!(net.route(0, 2, 200), Delivery::Lost);
        assert_eq!(net.route(2, 1, 499), Delivery::Lost);
        assert!(matches!(net.route(0, 1, 200), Delivery::Once(_)));
        assert!(matches!(net.route(2, 4, 200), Delivery::Once(_)));
        assert!(
            matches!(net.route(0, 3, 200), Delivery::Once(_)),
            "bridges reach both sides"
        );
        assert!(matches!(net.route(0, 2, 500), Delivery::Once(_)));
        // Sent just before the cut, arriving inside it: lost.
        assert_eq!(net.route(0, 2, 99), Delivery::Lost);
    }

    #[test]
    fn loss_and_duplication_stop_when_faults_end() {
        let mut net = network(NetworkConfig {
            loss_ppm: PPM / 2,
            duplicate_ppm: PPM / 2,
            faults_until_ms: 10_000,
            ..NetworkConfig::default()
        });
        let during: Vec<Delivery> = (0..1000).map(|i| net.route(0, 1, i)).collect();
        assert!(during.contains(&Delivery::Lost));
        assert!(during.iter().any(|d| matches!(d, Delivery::Twice(..))));
        for now in 10_000..11_000 {
            assert!(matches!(net.route(0, 1, now), Delivery::Once(_)));
        }
    }

    #[test]
    fn same_seed_routes_identically() {
        let config = NetworkConfig {
            loss_ppm: 100_000,
            duplicate_ppm: 100_000,
            reorder_ppm: 100_000,
            reorder_window_ms: 300,
            faults_until_ms: u64::MAX,
            ..NetworkConfig::default()
        };
        let mut a = network(config.clone());
        let mut b = network(config);
        for now in 0..500 {
            assert_eq!(a.route(0, 1, now), b.route(0, 1, now));
        }
    }
}
