//! Who may hold an inbound connection, and whose buffers go when memory runs
//! short (DESIGN §8 "Admission is a protocol, not a counter").
//!
//! Modelled on Bitcoin Core's inbound eviction: strangers share a bounded
//! inbound budget (handshaking connections included), validators and
//! configured peers hold reserved slots outside it, one address or subnet
//! can hold only a few connections, and when the budget is full a newcomer
//! evicts the least useful stranger rather than being refused. Peers that
//! recently told us something new and the longest-connected ones are
//! protected, and the victim comes from the most represented subnet: an
//! attacker with many sockets mostly evicts itself. Since the newcomer is
//! unknown until its handshake, this is also how a validator always gets
//! in: its connection evicts a stranger, and once it proves its key it
//! moves to a reserved slot.
//!
//! Pure functions of the connection table: the event loop describes its
//! inbound connections as [`Slot`]s and acts on the answer.

use crate::time::MonoTime;
use std::net::IpAddr;

/// Limits on inbound connections from strangers; units in the names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Inbound connections not in a reserved slot, handshaking ones included.
    pub max_inbound: usize,
    pub max_inbound_per_ip: usize,
    /// Per /24 (IPv4) or /64 (IPv6).
    pub max_inbound_per_subnet: usize,
    /// Strangers protected from eviction for the latest useful message.
    pub protect_useful: usize,
    /// Strangers protected from eviction for their connection age.
    pub protect_longest: usize,
}

impl Default for AdmissionLimits {
    /// Fits a small host: with the reserved slots and 16 outbound, about 64
    /// connections, as before admission existed.
    fn default() -> Self {
        AdmissionLimits {
            max_inbound: 48,
            max_inbound_per_ip: 8,
            max_inbound_per_subnet: 16,
            protect_useful: 8,
            protect_longest: 8,
        }
    }
}

impl AdmissionLimits {
    /// Whether a full budget always has a stranger to evict (so a validator
    /// always gets in): the protected ones must leave at least one.
    pub fn check(&self) -> Result<(), String> {
        let protected = self.protect_useful.saturating_add(self.protect_longest);
        if self.max_inbound <= protected {
            return Err(format!(
                "max_inbound ({}) must exceed protect_useful + protect_longest ({protected}), \
                 or a full node could not evict anyone to admit a validator",
                self.max_inbound
            ));
        }
        if self.max_inbound_per_ip == 0 || self.max_inbound_per_subnet == 0 {
            return Err("max_inbound_per_ip and max_inbound_per_subnet must be at least 1".into());
        }
        Ok(())
    }
}

/// One inbound connection as admission sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The event loop's handle for it (a token).
    pub id: usize,
    pub ip: IpAddr,
    pub connected_at: MonoTime,
    /// A proven validator or configured peer: outside the budget, never evicted.
    pub reserved: bool,
    /// Handshake completed (a handshaking connection is never protected).
    pub established: bool,
    /// When it last sent us something new (fresh gossip, blocks, answers).
    pub last_useful_at: Option<MonoTime>,
}

/// Why an inbound connection was refused; `name` labels the metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Banned,
    PerIp,
    PerSubnet,
    /// The budget is full and every stranger is protected.
    Full,
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [
        Refusal::Banned,
        Refusal::PerIp,
        Refusal::PerSubnet,
        Refusal::Full,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Refusal::Banned => "banned",
            Refusal::PerIp => "per_ip",
            Refusal::PerSubnet => "per_subnet",
            Refusal::Full => "full",
        }
    }
}

/// What to do with a new inbound connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Admit,
    /// Admit it after closing the connection with this id.
    Evict(usize),
    Refuse(Refusal),
}

/// The subnet an address counts against: /24 for IPv4 (IPv4-mapped IPv6
/// included), /64 for IPv6.
pub fn subnet(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => subnet(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

/// Decides on a connection just accepted from `ip`, given the other inbound
/// connections. `trusted`: `ip` hosts a configured peer or a known
/// validator, so at its address cap the newcomer replaces that address's
/// least proven stranger instead of being refused (an attacker sharing the
/// host cannot lock the validator out; it still cannot grow past the cap).
pub fn admit_inbound(
    limits: &AdmissionLimits,
    inbound: &[Slot],
    ip: IpAddr,
    trusted: bool,
) -> Admission {
    let strangers = || inbound.iter().filter(|s| !s.reserved);
    let net = subnet(ip);
    let same_ip: Vec<&Slot> = strangers().filter(|s| s.ip == ip).collect();
    let same_net = strangers().filter(|s| subnet(s.ip) == net).count();
    let capped = if same_ip.len() >= limits.max_inbound_per_ip {
        Some(Refusal::PerIp)
    } else if same_net >= limits.max_inbound_per_subnet {
        Some(Refusal::PerSubnet)
    } else {
        None
    };
    if let Some(refusal) = capped {
        if !trusted {
            return Admission::Refuse(refusal);
        }
        // The one that proved least: handshaking before established, then oldest.
        let victim = same_ip
            .iter()
            .copied()
            .min_by_key(|s| (s.established, s.connected_at, s.id))
            .or_else(|| {
                strangers()
                    .filter(|s| subnet(s.ip) == net)
                    .min_by_key(|s| (s.established, s.connected_at, s.id))
            });
        return victim.map_or(Admission::Refuse(refusal), |s| Admission::Evict(s.id));
    }
    if strangers().count() < limits.max_inbound {
        return Admission::Admit;
    }
    select_eviction(limits, inbound).map_or(Admission::Refuse(Refusal::Full), Admission::Evict)
}

/// The least useful stranger, Bitcoin Core style: protect the
/// `protect_useful` that most recently sent something new, then the
/// `protect_longest` connected longest; of the rest, take the youngest
/// connection of the subnet with the most connections. `None` if every
/// inbound connection is reserved or protected.
pub fn select_eviction(limits: &AdmissionLimits, inbound: &[Slot]) -> Option<usize> {
    let mut candidates: Vec<&Slot> = inbound.iter().filter(|s| !s.reserved).collect();
    // Most recently useful first; never-useful and handshaking ones are not protected.
    candidates.sort_by_key(|s| (std::cmp::Reverse(s.last_useful_at), s.id));
    let useful = candidates
        .iter()
        .take(limits.protect_useful)
        .take_while(|s| s.established && s.last_useful_at.is_some())
        .count();
    candidates.drain(..useful);
    candidates.sort_by_key(|s| (!s.established, s.connected_at, s.id));
    let longest = candidates
        .iter()
        .take(limits.protect_longest)
        .take_while(|s| s.established)
        .count();
    candidates.drain(..longest);
    // Subnet → (connections, youngest member).
    let mut groups: Vec<(IpAddr, usize, &Slot)> = Vec::new();
    for s in candidates {
        let net = subnet(s.ip);
        match groups.iter_mut().find(|(n, _, _)| *n == net) {
            Some((_, count, youngest)) => {
                *count += 1;
                if (s.connected_at, s.id) > (youngest.connected_at, youngest.id) {
                    *youngest = s;
                }
            }
            None => groups.push((net, 1, s)),
        }
    }
    groups
        .into_iter()
        .max_by_key(|(net, count, youngest)| {
            (
                *count,
                youngest.connected_at,
                std::cmp::Reverse(*net),
                youngest.id,
            )
        })
        .map(|(_, _, youngest)| youngest.id)
}

/// One connection's share of the global buffer budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    pub id: usize,
    /// Read buffer (a frame in progress) plus write queue.
    pub bytes: usize,
    /// A proven validator or configured peer: closed only if nobody else holds anything.
    pub reserved: bool,
}

/// Whom to close when the buffers of all connections together pass the
/// budget: the largest holder that is not reserved, else the largest.
/// Closing the largest first means honest peers with ordinary traffic are
/// not cut off for an attacker's big frames.
pub fn budget_victim(holders: &[Holder]) -> Option<usize> {
    holders
        .iter()
        .filter(|h| h.bytes > 0)
        .max_by_key(|h| (!h.reserved, h.bytes, std::cmp::Reverse(h.id)))
        .map(|h| h.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            max_inbound: 6,
            max_inbound_per_ip: 3,
            max_inbound_per_subnet: 4,
            protect_useful: 1,
            protect_longest: 1,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// An established stranger from `addr`, connected at `at`.
    fn stranger(id: usize, addr: &str, at: u64) -> Slot {
        Slot {
            id,
            ip: ip(addr),
            connected_at: MonoTime(at),
            reserved: false,
            established: true,
            last_useful_at: None,
        }
    }

    fn reserved(id: usize, addr: &str, at: u64) -> Slot {
        Slot {
            reserved: true,
            ..stranger(id, addr, at)
        }
    }

    #[test]
    fn subnets_are_slash_24_for_ipv4_and_slash_64_for_ipv6() {
        assert_eq!(subnet(ip("10.1.2.3")), ip("10.1.2.0"));
        assert_eq!(subnet(ip("::ffff:10.1.2.3")), ip("10.1.2.0"));
        assert_eq!(subnet(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_ne!(subnet(ip("10.1.2.3")), subnet(ip("10.1.3.3")));
    }

    #[test]
    fn below_every_cap_a_stranger_is_admitted() {
        let slots = [stranger(1, "10.0.0.1", 0), stranger(2, "10.0.1.1", 0)];
        assert_eq!(
            admit_inbound(&limits(), &slots, ip("10.0.2.1"), false),
            Admission::Admit
        );
    }

    #[test]
    fn one_address_holds_at_most_max_inbound_per_ip() {
        let slots: Vec<Slot> = (0..3).map(|i| stranger(i, "10.0.0.1", i as u64)).collect();
        assert_eq!(
            admit_inbound(&limits(), &slots, ip("10.0.0.1"), false),
            Admission::Refuse(Refusal::PerIp)
        );
        assert_eq!(
            admit_inbound(&limits(), &slots, ip("10.0.0.2"), false),
            Admission::Admit
        );
    }

    #[test]
    fn one_subnet_holds_at_most_max_inbound_per_subnet() {
        let slots: Vec<Slot> = (0..4)
            .map(|i| stranger(i, &format!("10.0.0.{i}"), 0))
            .collect();
        assert_eq!(
            admit_inbound(&limits(), &slots, ip("10.0.0.9"), false),
            Admission::Refuse(Refusal::PerSubnet)
        );
        assert_eq!(
            admit_inbound(&limits(), &slots, ip("10.0.1.9"), false),
            Admission::Admit
        );
    }

    #[test]
    fn reserved_slots_count_against_no_cap() {
        let mut slots: Vec<Slot> = (0..10).map(|i| reserved(i, "10.0.0.1", 0)).collect();
        slots.push(stranger(10, "10.0.0.1", 0));
        assert_eq!(
            admit_inbound(&limits(), &slots, ip("10.0.0.1"), false),
            Admission::Admit
        );
    }

    #[test]
    fn a_trusted_host_at_its_cap_replaces_its_least_proven_stranger() {
        let mut slots: Vec<Slot> = (0..3).map(|i| stranger(i, "10.0.0.1", 5)).collect();
        slots[2].established = false;
        slots[2].connected_at = MonoTime(9);
        assert_eq!(
            admit_inbound(&limits(), &slots, ip("10.0.0.1"), true),
            Admission::Evict(2)
        );
    }

    #[test]
    fn a_full_budget_evicts_instead_of_refusing() {
        let slots: Vec<Slot> = (0..6)
            .map(|i| stranger(i, &format!("10.0.{i}.1"), i as u64))
            .collect();
        assert!(matches!(
            admit_inbound(&limits(), &slots, ip("10.9.9.9"), false),
            Admission::Evict(_)
        ));
    }

    #[test]
    fn a_full_budget_of_protected_strangers_refuses() {
        let l = AdmissionLimits {
            max_inbound: 2,
            ..limits()
        };
        let mut slots = vec![stranger(1, "10.0.0.1", 0), stranger(2, "10.0.1.1", 5)];
        slots[1].last_useful_at = Some(MonoTime(6));
        assert_eq!(
            admit_inbound(&l, &slots, ip("10.9.9.9"), false),
            Admission::Refuse(Refusal::Full)
        );
    }

    #[test]
    fn validators_and_configured_peers_are_never_evicted() {
        let slots = [reserved(1, "10.0.0.1", 9), reserved(2, "10.0.0.2", 9)];
        assert_eq!(select_eviction(&limits(), &slots), None);
    }

    #[test]
    fn the_longest_connected_stranger_is_protected() {
        let l = AdmissionLimits {
            protect_useful: 0,
            ..limits()
        };
        let slots = [stranger(1, "10.0.0.1", 0), stranger(2, "10.0.0.2", 9)];
        assert_eq!(select_eviction(&l, &slots), Some(2));
        assert_eq!(select_eviction(&l, &slots[..1]), None);
    }

    #[test]
    fn the_most_recently_useful_stranger_is_protected() {
        let l = AdmissionLimits {
            protect_longest: 0,
            ..limits()
        };
        let mut slots = [stranger(1, "10.0.0.1", 0), stranger(2, "10.0.0.2", 9)];
        slots[1].last_useful_at = Some(MonoTime(10));
        assert_eq!(select_eviction(&l, &slots), Some(1));
    }

    #[test]
    fn a_handshaking_connection_is_never_protected() {
        let mut slots = [stranger(1, "10.0.0.1", 0)];
        slots[0].established = false;
        assert_eq!(select_eviction(&limits(), &slots), Some(1));
    }

    #[test]
    fn the_victim_is_the_youngest_of_the_most_represented_subnet() {
        let l = AdmissionLimits {
            protect_useful: 0,
            protect_longest: 0,
            ..limits()
        };
        let slots = [
            stranger(1, "10.0.0.1", 1),
            stranger(2, "10.7.7.1", 50), // alone in its subnet, youngest overall
            stranger(3, "10.0.0.2", 5),
            stranger(4, "10.0.0.3", 3),
        ];
        assert_eq!(select_eviction(&l, &slots), Some(3));
    }

    #[test]
    fn a_sybil_flood_from_one_subnet_evicts_itself_not_honest_strangers() {
        let l = AdmissionLimits {
            max_inbound: 20,
            max_inbound_per_ip: 100,
            max_inbound_per_subnet: 100,
            protect_useful: 2,
            protect_longest: 2,
        };
        let mut slots: Vec<Slot> = (0..5)
            .map(|i| stranger(i, &format!("10.{i}.0.1"), i as u64))
            .collect();
        for next in 100..300 {
            match admit_inbound(&l, &slots, ip("66.6.6.6"), false) {
                Admission::Admit => {}
                Admission::Evict(victim) => slots.retain(|s| s.id != victim),
                Admission::Refuse(r) => panic!("refused: {r:?}"),
            }
            slots.push(stranger(next, "66.6.6.6", next as u64));
        }
        assert_eq!(slots.len(), 20);
        assert!((0..5).all(|i| slots.iter().any(|s| s.id == i)));
    }

    #[test]
    fn admission_limits_must_leave_someone_to_evict() {
        assert!(AdmissionLimits::default().check().is_ok());
        let l = AdmissionLimits {
            max_inbound: 2,
            ..limits()
        };
        assert!(l.check().is_err());
    }

    #[test]
    fn over_budget_the_largest_stranger_goes_first() {
        let holders = [
            Holder {
                id: 1,
                bytes: 900,
                reserved: true,
            },
            Holder {
                id: 2,
                bytes: 100,
                reserved: false,
            },
            Holder {
                id: 3,
                bytes: 300,
                reserved: false,
            },
        ];
        assert_eq!(budget_victim(&holders), Some(3));
        assert_eq!(budget_victim(&holders[..1]), Some(1));
        assert_eq!(budget_victim(&[]), None);
    }
}
