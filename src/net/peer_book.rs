//! Who to talk to: known addresses (bounded), configured peers dialed with
//! exponential backoff and jitter, timed bans, addresses learned by
//! `GetPeers/Peers`, and the tie-break that keeps one connection per node pair.
//!
//! An IP a configured peer or a proven validator lives on is never banned:
//! on one host (a devnet on 127.0.0.1) or behind one NAT, one hostile peer
//! would otherwise cut every validator there off. Peers from such an IP are
//! banned by node id after the handshake instead.
//!
//! Sans-IO: `now` is passed in and the jitter comes from a seeded RNG, so a
//! run replays exactly. It never opens a socket; the event loop asks it what
//! to dial and tells it what happened.

use crate::consensus::messages::NodeId;
use crate::time::MonoTime;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

/// Gossiped addresses are forgotten after this many failed dials in a row.
pub const MAX_GOSSIP_FAILURES: u32 = 6;
/// Own addresses remembered (learned from connections to ourselves).
const MAX_OWN_ADDRS: usize = 16;
/// Longest backoff for a configured peer: there are few of them, a dial
/// costs little, and after a partition heals the chain converges only
/// once they are linked again.
pub const CONFIGURED_BACKOFF_MAX_MS: u64 = 5_000;

#[derive(Clone, Debug)]
pub struct PeerBookConfig {
    /// Always (re)dialed, never forgotten.
    pub configured_peers: Vec<SocketAddr>,
    pub max_known_addrs: usize,
    pub dial_backoff_base_ms: u64,
    pub dial_backoff_max_ms: u64,
    pub ban_duration_ms: u64,
    pub max_bans: usize,
}

/// What a ban applies to: an address before the handshake, a node after it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum BanKey {
    Ip(IpAddr),
    Node(NodeId),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum DialState {
    Idle,
    Dialing,
    Connected,
}

#[derive(Clone, Debug)]
struct KnownAddr {
    configured: bool,
    failures: u32,
    next_dial_at: MonoTime,
    state: DialState,
    node_id: Option<NodeId>,
    /// The node that proved its key on a connection we dialed to this
    /// address (an inbound peer's announced address proves nothing).
    proven: Option<NodeId>,
}

/// Addresses, dial schedule and bans.
#[derive(Debug)]
pub struct PeerBook {
    config: PeerBookConfig,
    rng: ChaCha20Rng,
    known: BTreeMap<SocketAddr, KnownAddr>,
    own_addrs: BTreeSet<SocketAddr>,
    /// IPs of configured peers: never banned by IP.
    protected_ips: BTreeSet<IpAddr>,
    /// Where each validator last proved its key from: never banned by IP.
    /// Bounded by the validator set (only proven validators are entered).
    validator_ips: BTreeMap<NodeId, IpAddr>,
    bans: BTreeMap<BanKey, MonoTime>,
}

/// Which of two connections between the same pair of nodes survives: the one
/// initiated by the lower node id. Both ends compute the same answer, so
/// they close the same socket. Returns true if the `new` connection should
/// replace the existing one (which is then closed); false to close `new`.
pub fn new_connection_wins(
    local: &NodeId,
    remote: &NodeId,
    existing_outbound: bool,
    new_outbound: bool,
) -> bool {
    let keep_outbound = local < remote;
    existing_outbound != new_outbound && new_outbound == keep_outbound
}

impl PeerBook {
    pub fn new(
        config: PeerBookConfig,
        own_listen_addr: Option<SocketAddr>,
        rng_seed: u64,
        now: MonoTime,
    ) -> PeerBook {
        let mut book = PeerBook {
            rng: ChaCha20Rng::seed_from_u64(rng_seed),
            known: BTreeMap::new(),
            own_addrs: own_listen_addr.into_iter().collect(),
            protected_ips: BTreeSet::new(),
            validator_ips: BTreeMap::new(),
            bans: BTreeMap::new(),
            config,
        };
        for addr in book.config.configured_peers.clone() {
            book.add_configured(addr, now);
        }
        book
    }

    /// An address to dial now and redial whenever disconnected (config, `addnode`).
    pub fn add_configured(&mut self, addr: SocketAddr, now: MonoTime) {
        if self.own_addrs.contains(&addr) {
            return;
        }
        self.protected_ips.insert(addr.ip());
        self.bans.remove(&BanKey::Ip(addr.ip()));
        let k = self.known.entry(addr).or_insert(KnownAddr {
            configured: true,
            failures: 0,
            next_dial_at: now,
            state: DialState::Idle,
            node_id: None,
            proven: None,
        });
        k.configured = true;
    }

    /// The delay before the next dial after `failures` failures in a row:
    /// `base·2^failures` capped at the max, then a uniform draw in its upper
    /// half ("equal jitter") so restarted nodes do not redial in lockstep.
    /// A configured peer's cap is at most [`CONFIGURED_BACKOFF_MAX_MS`].
    pub fn backoff_ms(&mut self, failures: u32, configured: bool) -> u64 {
        let c = &self.config;
        let max = if configured {
            c.dial_backoff_max_ms.min(CONFIGURED_BACKOFF_MAX_MS)
        } else {
            c.dial_backoff_max_ms
        };
        let full = c
            .dial_backoff_base_ms
            .saturating_mul(1u64.checked_shl(failures.min(32)).unwrap_or(u64::MAX))
            .min(max);
        let half = full / 2;
        half + self.rng.next_u64() % (full - half + 1)
    }

    /// Addresses to dial now, skipping connected nodes, ourselves and
    /// bans; each is marked as being dialed. Configured peers have reserved
    /// slots; at most `budget` gossiped addresses are dialed.
    pub fn dials_due(
        &mut self,
        now: MonoTime,
        budget: usize,
        is_connected: impl Fn(&NodeId) -> bool,
    ) -> Vec<SocketAddr> {
        let mut due = Vec::new();
        let mut gossiped = 0;
        for (addr, k) in &self.known {
            if !k.configured && gossiped >= budget {
                continue;
            }
            let banned = self
                .bans
                .get(&BanKey::Ip(addr.ip()))
                .is_some_and(|&until| now < until)
                || k.node_id
                    .and_then(|n| self.bans.get(&BanKey::Node(n)))
                    .is_some_and(|&until| now < until);
            if k.state == DialState::Idle
                && now >= k.next_dial_at
                && !banned
                && !self.own_addrs.contains(addr)
                && !k.node_id.as_ref().is_some_and(&is_connected)
            {
                due.push(*addr);
                gossiped += usize::from(!k.configured);
            }
        }
        for addr in &due {
            if let Some(k) = self.known.get_mut(addr) {
                k.state = DialState::Dialing;
            }
        }
        due
    }

    /// A dial (or its handshake) failed: back off, and forget gossip that keeps failing.
    pub fn dial_failed(&mut self, addr: SocketAddr, now: MonoTime) {
        let Some((failures, configured)) =
            self.known.get(&addr).map(|k| (k.failures, k.configured))
        else {
            return;
        };
        let delay = self.backoff_ms(failures, configured);
        if let Some(k) = self.known.get_mut(&addr) {
            k.failures = k.failures.saturating_add(1);
            k.state = DialState::Idle;
            k.next_dial_at = now.plus_ms(delay);
            if !k.configured && k.failures >= MAX_GOSSIP_FAILURES {
                self.known.remove(&addr);
            }
        }
    }

    /// A handshake completed with `node_id` reachable at `addr` (the dialed
    /// address, or the listen address an inbound peer announced).
    pub fn connected(&mut self, addr: SocketAddr, node_id: NodeId, now: MonoTime) {
        if self.own_addrs.contains(&addr) {
            return;
        }
        self.insert_bounded(addr, now);
        if let Some(k) = self.known.get_mut(&addr) {
            // A stranger announcing a configured peer's address is not that peer.
            if k.configured && k.proven.is_some_and(|p| p != node_id) {
                return;
            }
            k.failures = 0;
            k.state = DialState::Connected;
            k.node_id = Some(node_id);
        }
    }

    /// A connection to `addr` closed: it may be redialed after the base backoff.
    pub fn disconnected(&mut self, addr: SocketAddr, now: MonoTime) {
        let delay = self.backoff_ms(0, false);
        if let Some(k) = self.known.get_mut(&addr) {
            k.state = DialState::Idle;
            k.next_dial_at = now.plus_ms(delay);
        }
    }

    /// `addr` turned out to be ourselves: never dial it again.
    pub fn is_own_addr(&mut self, addr: SocketAddr) {
        self.known.remove(&addr);
        if self.own_addrs.len() < MAX_OWN_ADDRS {
            self.own_addrs.insert(addr);
        }
    }

    /// Addresses from a `Peers` message; the book stays within `max_known_addrs`.
    pub fn add_gossiped(&mut self, addrs: &[SocketAddr], now: MonoTime) {
        for addr in addrs {
            if !self.own_addrs.contains(addr) && !addr.ip().is_unspecified() && addr.port() != 0 {
                self.insert_bounded(*addr, now);
            }
        }
    }

    fn insert_bounded(&mut self, addr: SocketAddr, now: MonoTime) {
        if self.known.contains_key(&addr) {
            return;
        }
        if self.known.len() >= self.config.max_known_addrs {
            // Evict the idle gossiped address that failed most; configured and live ones stay.
            let victim = self
                .known
                .iter()
                .filter(|(_, k)| !k.configured && k.state == DialState::Idle)
                .max_by_key(|(_, k)| k.failures)
                .map(|(a, _)| *a);
            match victim {
                Some(v) => {
                    self.known.remove(&v);
                }
                None => return,
            }
        }
        self.known.insert(
            addr,
            KnownAddr {
                configured: false,
                failures: 0,
                next_dial_at: now,
                state: DialState::Idle,
                node_id: None,
                proven: None,
            },
        );
    }

    /// Up to `max` addresses to answer `GetPeers` with: those we are connected to first.
    pub fn addrs_to_share(&self, max: usize) -> Vec<SocketAddr> {
        let mut live: Vec<SocketAddr> = self
            .known
            .iter()
            .filter(|(_, k)| k.state == DialState::Connected)
            .map(|(a, _)| *a)
            .collect();
        let rest = self
            .known
            .iter()
            .filter(|(_, k)| k.state != DialState::Connected && k.failures == 0)
            .map(|(a, _)| *a);
        live.extend(rest);
        live.truncate(max);
        live
    }

    /// Whether a configured peer or a proven validator lives on `ip` (so
    /// it is never banned by IP).
    pub fn is_protected_ip(&self, ip: &IpAddr) -> bool {
        self.protected_ips.contains(ip) || self.validator_ips.values().any(|v| v == ip)
    }

    /// Forgets the addresses of former validators (no longer exempt).
    pub fn keep_validators(&mut self, validators: &BTreeSet<NodeId>) {
        self.validator_ips.retain(|id, _| validators.contains(id));
    }

    /// `validator` proved its key from `ip`: protect that address from IP bans.
    pub fn validator_seen(&mut self, validator: NodeId, ip: IpAddr) {
        self.validator_ips.insert(validator, ip);
        self.bans.remove(&BanKey::Ip(ip));
    }

    /// A connection we dialed to `addr` proved `node_id`'s key.
    pub fn dial_proved(&mut self, addr: SocketAddr, node_id: NodeId) {
        if let Some(k) = self.known.get_mut(&addr) {
            k.proven = Some(node_id);
        }
    }

    /// Whether `node_id` proved its key at a configured address we dialed.
    pub fn is_configured_node(&self, node_id: &NodeId) -> bool {
        self.known
            .values()
            .any(|k| k.configured && k.proven.as_ref() == Some(node_id))
    }

    /// Bans `key` for `ban_duration_ms`; the table stays within `max_bans`.
    /// False if `key` is the IP of a configured peer: not banned.
    pub fn ban(&mut self, key: BanKey, now: MonoTime) -> bool {
        if let BanKey::Ip(ip) = &key {
            if self.is_protected_ip(ip) {
                return false;
            }
        }
        self.expire_bans(now);
        if self.bans.len() >= self.config.max_bans && !self.bans.contains_key(&key) {
            if let Some(soonest) = self
                .bans
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(k, _)| *k)
            {
                self.bans.remove(&soonest);
            }
        }
        self.bans
            .insert(key, now.plus_ms(self.config.ban_duration_ms));
        true
    }

    pub fn is_banned(&self, key: &BanKey, now: MonoTime) -> bool {
        self.bans.get(key).is_some_and(|&until| now < until)
    }

    pub fn expire_bans(&mut self, now: MonoTime) {
        self.bans.retain(|_, until| now < *until);
    }

    pub fn ban_count(&self) -> usize {
        self.bans.len()
    }

    pub fn known_count(&self) -> usize {
        self.known.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PublicKeyBytes;

    fn config(configured: &[&str]) -> PeerBookConfig {
        PeerBookConfig {
            configured_peers: configured.iter().map(|a| a.parse().unwrap()).collect(),
            max_known_addrs: 8,
            dial_backoff_base_ms: 100,
            dial_backoff_max_ms: 10_000,
            ban_duration_ms: 60_000,
            max_bans: 4,
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn node(b: u8) -> NodeId {
        PublicKeyBytes([b; 32])
    }

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds() {
        let mut book = PeerBook::new(config(&[]), None, 7, MonoTime(0));
        for failures in 0..12 {
            let full = (100u64 << failures).min(10_000);
            for _ in 0..50 {
                let d = book.backoff_ms(failures, false);
                assert!(
                    d >= full / 2 && d <= full,
                    "failures {failures}: {d} not in [{}, {full}]",
                    full / 2
                );
            }
        }
        // Two books with different seeds do not redial in lockstep.
        let mut other = PeerBook::new(config(&[]), None, 8, MonoTime(0));
        let a: Vec<u64> = (0..8).map(|_| book.backoff_ms(5, false)).collect();
        let b: Vec<u64> = (0..8).map(|_| other.backoff_ms(5, false)).collect();
        assert_ne!(a, b);
        // A configured peer is redialed within its shorter cap.
        let cap = CONFIGURED_BACKOFF_MAX_MS.min(10_000);
        assert!((0..50).all(|_| book.backoff_ms(20, true) <= cap));
    }

    #[test]
    fn failed_configured_peer_is_redialed_after_its_backoff() {
        let mut book = PeerBook::new(config(&["10.0.0.1:1"]), None, 1, MonoTime(0));
        let none = |_: &NodeId| false;
        assert_eq!(
            book.dials_due(MonoTime(0), 8, none),
            vec![addr("10.0.0.1:1")]
        );
        assert!(
            book.dials_due(MonoTime(0), 8, none).is_empty(),
            "dialing: not due twice"
        );
        let mut at = MonoTime(0);
        for failures in 0..5u32 {
            book.dial_failed(addr("10.0.0.1:1"), at);
            let earliest = at.plus_ms((100u64 << failures) / 2);
            assert!(book.dials_due(MonoTime(earliest.0 - 1), 8, none).is_empty());
            let latest = at.plus_ms(100u64 << failures);
            assert_eq!(book.dials_due(latest, 8, none).len(), 1);
            at = latest;
        }
        assert_eq!(
            book.known_count(),
            1,
            "configured peers are never forgotten"
        );
    }

    #[test]
    fn gossiped_addresses_are_bounded_and_forgotten_after_failures() {
        let mut book = PeerBook::new(config(&["10.0.0.1:1"]), None, 1, MonoTime(0));
        let many: Vec<SocketAddr> = (2..100).map(|i| addr(&format!("10.0.0.{i}:1"))).collect();
        book.add_gossiped(&many, MonoTime(0));
        assert_eq!(book.known_count(), 8);
        let mut book = PeerBook::new(config(&[]), None, 1, MonoTime(0));
        book.add_gossiped(&[addr("10.0.0.2:1")], MonoTime(0));
        for _ in 0..MAX_GOSSIP_FAILURES {
            assert_eq!(
                book.dials_due(MonoTime(u64::MAX / 2), 8, |_| false).len(),
                1
            );
            book.dial_failed(addr("10.0.0.2:1"), MonoTime(0));
        }
        assert_eq!(book.known_count(), 0);
    }

    #[test]
    fn never_dials_itself_a_connected_node_or_a_banned_address() {
        let own = addr("10.0.0.9:1");
        let mut book = PeerBook::new(
            config(&["10.0.0.1:1", "10.0.0.9:1"]),
            Some(own),
            1,
            MonoTime(0),
        );
        let gossiped = [
            own,
            addr("10.0.0.2:1"),
            addr("10.0.0.3:1"),
            addr("0.0.0.0:5"),
        ];
        book.add_gossiped(&gossiped, MonoTime(0));
        book.connected(addr("10.0.0.1:1"), node(1), MonoTime(0));
        assert!(book.ban(BanKey::Ip(addr("10.0.0.2:1").ip()), MonoTime(0)));
        assert_eq!(
            book.dials_due(MonoTime(0), 8, |_| false),
            vec![addr("10.0.0.3:1")]
        );
        // After a disconnect the node is redialed, unless it is connected some other way.
        book.disconnected(addr("10.0.0.1:1"), MonoTime(0));
        assert!(book
            .dials_due(MonoTime(1_000), 8, |n| *n == node(1))
            .is_empty());
        assert_eq!(
            book.dials_due(MonoTime(1_000), 8, |_| false),
            vec![addr("10.0.0.1:1")]
        );
    }

    #[test]
    fn bans_expire_and_the_table_is_bounded() {
        let mut book = PeerBook::new(config(&[]), None, 1, MonoTime(0));
        let key = BanKey::Node(node(1));
        book.ban(key, MonoTime(0));
        assert!(book.is_banned(&key, MonoTime(59_999)));
        assert!(!book.is_banned(&key, MonoTime(60_000)));
        for i in 0..10 {
            book.ban(BanKey::Node(node(i)), MonoTime(i as u64));
        }
        assert_eq!(book.ban_count(), 4);
        assert!(book.is_banned(&BanKey::Node(node(9)), MonoTime(10)));
        book.expire_bans(MonoTime(100_000));
        assert_eq!(book.ban_count(), 0);
    }

    #[test]
    fn an_ip_shared_with_a_configured_peer_is_never_banned_by_ip() {
        let mut book = PeerBook::new(
            config(&["127.0.0.1:7001", "127.0.0.1:7002"]),
            Some(addr("127.0.0.1:7000")),
            1,
            MonoTime(0),
        );
        let loopback = addr("127.0.0.1:7001").ip();
        // A hostile peer on the same host misbehaves: its node id is banned, the host is not.
        assert!(!book.ban(BanKey::Ip(loopback), MonoTime(0)));
        assert!(book.ban(BanKey::Node(node(66)), MonoTime(0)));
        assert!(!book.is_banned(&BanKey::Ip(loopback), MonoTime(1)));
        assert_eq!(book.dials_due(MonoTime(1), 8, |_| false).len(), 2);
        // Another host is banned as before, and `addnode` on it lifts that.
        let other = addr("10.0.0.5:1").ip();
        assert!(book.ban(BanKey::Ip(other), MonoTime(0)));
        assert!(book.is_banned(&BanKey::Ip(other), MonoTime(1)));
        book.add_configured(addr("10.0.0.5:1"), MonoTime(1));
        assert!(!book.is_banned(&BanKey::Ip(other), MonoTime(1)));
        assert!(!book.ban(BanKey::Ip(other), MonoTime(2)));
    }

    #[test]
    fn a_validators_address_is_never_banned_by_ip() {
        let mut book = PeerBook::new(config(&[]), None, 1, MonoTime(0));
        let host = addr("10.0.0.7:1").ip();
        assert!(book.ban(BanKey::Ip(host), MonoTime(0)));
        book.validator_seen(node(7), host);
        assert!(!book.is_banned(&BanKey::Ip(host), MonoTime(1)));
        assert!(!book.ban(BanKey::Ip(host), MonoTime(2)));
    }

    #[test]
    fn configured_peers_are_dialed_beyond_the_outbound_budget() {
        let mut book = PeerBook::new(config(&["10.0.0.1:1", "10.0.0.2:1"]), None, 1, MonoTime(0));
        book.add_gossiped(&[addr("10.0.0.3:1"), addr("10.0.0.4:1")], MonoTime(0));
        let due = book.dials_due(MonoTime(0), 1, |_| false);
        assert_eq!(
            due,
            vec![addr("10.0.0.1:1"), addr("10.0.0.2:1"), addr("10.0.0.3:1")]
        );
        book.dial_proved(addr("10.0.0.1:1"), node(1));
        assert!(book.is_configured_node(&node(1)));
        book.dial_proved(addr("10.0.0.3:1"), node(3));
        assert!(!book.is_configured_node(&node(3)));
    }

    #[test]
    fn a_stranger_announcing_a_configured_address_is_not_that_peer() {
        let mut book = PeerBook::new(config(&["10.0.0.1:1"]), None, 1, MonoTime(0));
        book.dials_due(MonoTime(0), 8, |_| false);
        book.dial_proved(addr("10.0.0.1:1"), node(1));
        book.dial_failed(addr("10.0.0.1:1"), MonoTime(0));
        // An inbound stranger claims the address as its listen address.
        book.connected(addr("10.0.0.1:1"), node(66), MonoTime(0));
        assert!(!book.is_configured_node(&node(66)));
        assert_eq!(
            book.dials_due(MonoTime(u64::MAX / 2), 8, |n| *n == node(66)),
            vec![addr("10.0.0.1:1")],
            "the real peer is still dialed"
        );
    }

    #[test]
    fn tie_break_keeps_exactly_one_connection_on_both_ends() {
        let (low, high) = (node(1), node(2));
        // Each end holds its outbound and its inbound connection to the other,
        // and may see them complete in either order.
        for low_first_outbound in [true, false] {
            for high_first_outbound in [true, false] {
                let low_keeps_outbound = {
                    let existing = low_first_outbound;
                    new_connection_wins(&low, &high, existing, !existing) != existing
                };
                let high_keeps_outbound = {
                    let existing = high_first_outbound;
                    new_connection_wins(&high, &low, existing, !existing) != existing
                };
                // low's outbound socket is high's inbound one: both keep the same socket.
                assert!(low_keeps_outbound);
                assert!(!high_keeps_outbound);
            }
        }
        // Two connections in the same direction: the existing one stays.
        assert!(!new_connection_wins(&low, &high, true, true));
        assert!(!new_connection_wins(&high, &low, false, false));
    }

    #[test]
    fn shares_connected_addresses_first() {
        let mut book = PeerBook::new(config(&["10.0.0.1:1", "10.0.0.2:1"]), None, 1, MonoTime(0));
        book.connected(addr("10.0.0.2:1"), node(2), MonoTime(0));
        assert_eq!(book.addrs_to_share(1), vec![addr("10.0.0.2:1")]);
        assert_eq!(book.addrs_to_share(8).len(), 2);
    }
}
