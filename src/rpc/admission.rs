//! Which connections the RPC server holds (sans-IO: the server does the
//! socket work). A connection is `Fresh` until its first request head is
//! complete, `Idle` between keep-alive requests (or while it closes after
//! a refusal) and `Busy` while a request is read, run and answered.
//!
//! A source (IP address) holds at most [`Limits::per_source`] of the
//! [`Limits::total`] slots. When a new connection finds no room, it takes
//! the slot of an idle keep-alive connection, else of the oldest connection
//! that has not yet sent a complete head (of the largest source, or of its
//! own source when that is the one full). Only when every candidate is
//! `Busy` is it refused. So sockets that connect and stay silent or trickle
//! (from any local process: loopback is a single source) can delay a client
//! by no more than a slot swap, and `Busy` slots need a complete head,
//! which the server bounds in time.

use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub total: usize,
    pub per_source: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted; its first request head is not complete yet.
    Fresh,
    /// Answered; waiting for its next request on the same connection, or
    /// closing after a refusal.
    Idle,
    /// Reading a request's body, running it or writing its answer.
    Busy,
}

/// Why a new connection got no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("all {held} RPC connections (limit {limit} for this source or in total) are serving requests; retry shortly")]
pub struct Full {
    pub held: usize,
    pub limit: usize,
}

/// A connection let in, and the one it displaced (already removed).
#[derive(Debug, PartialEq, Eq)]
pub struct Admitted<T> {
    pub id: u64,
    pub evicted: Option<Evicted<T>>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Evicted<T> {
    /// Its phase when evicted: `Fresh` or `Idle`.
    pub phase: Phase,
    pub io: T,
}

struct Slot<T> {
    source: IpAddr,
    phase: Phase,
    io: T,
}

/// The open connections, each with the server's handle `T` on it; ids grow
/// with age.
pub struct Table<T> {
    limits: Limits,
    open: BTreeMap<u64, Slot<T>>,
    next_id: u64,
}

impl<T> Table<T> {
    pub fn new(limits: Limits) -> Table<T> {
        Table {
            limits,
            open: BTreeMap::new(),
            next_id: 0,
        }
    }

    /// Lets a connection from `source` in as `Fresh`, evicting one if there
    /// is no room (see the module doc).
    pub fn admit(&mut self, source: IpAddr, io: T) -> Result<Admitted<T>, Full> {
        let from_source = self.from(source);
        let evicted = if from_source >= self.limits.per_source {
            Some(self.evict(Some(source)).ok_or(Full {
                held: from_source,
                limit: self.limits.per_source,
            })?)
        } else if self.open.len() >= self.limits.total {
            Some(self.evict(None).ok_or(Full {
                held: self.open.len(),
                limit: self.limits.total,
            })?)
        } else {
            None
        };
        let id = self.next_id;
        self.next_id += 1;
        self.open.insert(
            id,
            Slot {
                source,
                phase: Phase::Fresh,
                io,
            },
        );
        Ok(Admitted { id, evicted })
    }

    /// Moves `id` to `phase`; false if it is no longer held (evicted): its
    /// server side must then close it.
    pub fn set_phase(&mut self, id: u64, phase: Phase) -> bool {
        self.open
            .get_mut(&id)
            .map(|slot| slot.phase = phase)
            .is_some()
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        self.open.get_mut(&id).map(|slot| &mut slot.io)
    }

    pub fn remove(&mut self, id: u64) -> Option<T> {
        self.open.remove(&id).map(|slot| slot.io)
    }

    /// Empties the table (at stop).
    pub fn drain(&mut self) -> impl Iterator<Item = T> {
        std::mem::take(&mut self.open)
            .into_values()
            .map(|slot| slot.io)
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    fn from(&self, source: IpAddr) -> usize {
        self.open.values().filter(|s| s.source == source).count()
    }

    /// Removes the least useful evictable connection: of `source` if given,
    /// else of any source; idle before fresh, then of the source holding the
    /// most slots, then the oldest.
    fn evict(&mut self, source: Option<IpAddr>) -> Option<Evicted<T>> {
        let (&id, _) = self
            .open
            .iter()
            .filter(|(_, s)| s.phase != Phase::Busy && source.map_or(true, |src| s.source == src))
            .min_by_key(|(&id, s)| {
                (
                    s.phase == Phase::Fresh,
                    std::cmp::Reverse(self.from(s.source)),
                    id,
                )
            })?;
        self.open.remove(&id).map(|slot| Evicted {
            phase: slot.phase,
            io: slot.io,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn table(total: usize, per_source: usize) -> Table<&'static str> {
        Table::new(Limits { total, per_source })
    }

    fn evicted(admitted: Result<Admitted<&'static str>, Full>) -> Option<&'static str> {
        admitted.unwrap().evicted.map(|e| e.io)
    }

    #[test]
    fn a_full_table_evicts_idle_then_the_oldest_fresh_never_busy() {
        let mut t = table(3, 3);
        let busy = t.admit(A, "busy").unwrap().id;
        t.admit(A, "fresh").unwrap();
        let idle = t.admit(A, "idle").unwrap().id;
        assert!(t.set_phase(busy, Phase::Busy));
        assert!(t.set_phase(idle, Phase::Idle));
        assert_eq!(evicted(t.admit(A, "new1")), Some("idle"));
        assert_eq!(evicted(t.admit(A, "new2")), Some("fresh"));
        assert_eq!(evicted(t.admit(A, "new3")), Some("new1"), "oldest fresh");
        assert!(!t.set_phase(idle, Phase::Busy), "an evicted id is gone");
        assert!(t.set_phase(busy, Phase::Idle));
        assert_eq!(evicted(t.admit(A, "new4")), Some("busy"));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn a_table_of_busy_connections_refuses() {
        let mut t = table(2, 2);
        for io in ["a", "b"] {
            let id = t.admit(A, io).unwrap().id;
            t.set_phase(id, Phase::Busy);
        }
        assert_eq!(t.admit(B, "c").unwrap_err(), Full { held: 2, limit: 2 });
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn a_source_at_its_cap_evicts_its_own_and_leaves_room_for_others() {
        let mut t = table(4, 2);
        let b = t.admit(B, "b").unwrap().id;
        t.set_phase(b, Phase::Idle);
        assert_eq!(evicted(t.admit(A, "a1")), None);
        assert_eq!(evicted(t.admit(A, "a2")), None);
        assert_eq!(evicted(t.admit(A, "a3")), Some("a1"), "not B's idle one");
        assert_eq!(evicted(t.admit(B, "b2")), None, "B still has room");
        assert_eq!(evicted(t.admit(B, "b3")), Some("b"), "B's idle one first");
        let mut t = table(3, 3);
        t.admit(B, "b").unwrap();
        t.admit(A, "a1").unwrap();
        t.admit(A, "a2").unwrap();
        assert_eq!(evicted(t.admit(B, "b2")), Some("a1"), "the largest source");
    }
}
