//! Who is owed which catch-up proofs, and how many may be read for whom at
//! each tick (DESIGN §8, "a per-peer work budget (… catch-up)"). Pure
//! bookkeeping on injected time, unit-tested: the catch-up thread reads
//! and sends what [`Pacer::due`] grants, nothing else.
//!
//! The rules, each a limit:
//! * one serve per peer: a peer that asks again while it is served, or
//!   within `repeat_after_ms` of its last start, is refused (no restart,
//!   no second copy);
//! * a serve covers at most [`MAX_RECENT_PROOFS`] proofs, the latest ones
//!   at the time of the request, granted oldest first (chained spends
//!   apply in order), at most `per_peer_per_tick` per tick;
//! * validators of the set and strangers draw on separate budgets per
//!   tick, so strangers can never starve a validator, and all strangers
//!   together make us read at most `strangers_per_tick` proofs per tick
//!   whatever their number or ids; at most `max_stranger_serves` strangers
//!   are owed proofs at once (a validator is always taken: the set bounds them).

use crate::consensus::NodeId;
use crate::mempool::RecentMap;
use crate::net::MAX_RECENT_PROOFS;
use crate::time::MonoTime;
use std::collections::VecDeque;

/// The limits of catch-up serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatchUpLimits {
    pub tick_ms: u64,
    pub per_peer_per_tick: u32,
    /// Proofs read per tick for all validators together.
    pub validators_per_tick: u32,
    /// Proofs read per tick for all strangers together.
    pub strangers_per_tick: u32,
    pub max_stranger_serves: usize,
    /// A peer's next serve starts at least this long after its last one did.
    pub repeat_after_ms: u64,
    /// Peers whose last start is remembered (the oldest forgotten first).
    pub peers_remembered: usize,
}

impl Default for CatchUpLimits {
    /// A whole catch-up (2,000 proofs of ~1.5 KB) reaches a peer in 4 s at
    /// 500 proofs/s (~0.75 MB/s, far under its write queue); all strangers
    /// together cost at most 1,000 reads/s, a few percent of one core.
    fn default() -> CatchUpLimits {
        CatchUpLimits {
            tick_ms: 100,
            per_peer_per_tick: 50,
            validators_per_tick: 400,
            strangers_per_tick: 100,
            max_stranger_serves: 64,
            repeat_after_ms: 10_000,
            peers_remembered: 4_096,
        }
    }
}

/// Why a request starts no serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("already being served")]
    Serving,
    #[error("served recently; asks again too soon")]
    TooSoon,
    #[error("too many strangers are being served")]
    Full,
    #[error("nothing to send")]
    Nothing,
}

/// Proofs to read and send now: sequences `from..from + count`, to `peer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub peer: NodeId,
    pub from: u64,
    pub count: u32,
}

/// One peer owed proofs `next..end` (sequences of the `proofs` table).
#[derive(Clone, Copy, Debug)]
struct Serve {
    peer: NodeId,
    next: u64,
    end: u64,
}

pub struct Pacer {
    limits: CatchUpLimits,
    validators: VecDeque<Serve>,
    strangers: VecDeque<Serve>,
    last_start: RecentMap<NodeId, MonoTime>,
    next_tick: MonoTime,
}

impl Pacer {
    pub fn new(limits: CatchUpLimits) -> Pacer {
        Pacer {
            limits,
            validators: VecDeque::new(),
            strangers: VecDeque::new(),
            last_start: RecentMap::new(limits.peers_remembered),
            next_tick: MonoTime(0),
        }
    }

    /// `peer` asks for the latest `max` proofs. `head` reads the sequence
    /// the next finalized tx will take; it is called only once the request
    /// passed every check, so a refused request costs no store read.
    pub fn request<E>(
        &mut self,
        now: MonoTime,
        peer: NodeId,
        validator: bool,
        max: u32,
        head: impl FnOnce() -> Result<u64, E>,
    ) -> Result<Result<(), Refusal>, E> {
        if self.serving(&peer) {
            return Ok(Err(Refusal::Serving));
        }
        let recent = self
            .last_start
            .get(&peer)
            .is_some_and(|at| now.as_millis() < at.as_millis() + self.limits.repeat_after_ms);
        if recent {
            return Ok(Err(Refusal::TooSoon));
        }
        if !validator && self.strangers.len() >= self.limits.max_stranger_serves {
            return Ok(Err(Refusal::Full));
        }
        let end = head()?;
        let wanted = u64::from(max.min(MAX_RECENT_PROOFS));
        let serve = Serve {
            peer,
            next: end.saturating_sub(wanted),
            end,
        };
        if serve.next >= serve.end {
            return Ok(Err(Refusal::Nothing));
        }
        self.last_start.insert(peer, now);
        let queue = if validator {
            &mut self.validators
        } else {
            &mut self.strangers
        };
        queue.push_back(serve);
        if self.serving_count() == 1 {
            // Idle until now: the first grant goes at once.
            self.next_tick = now;
        }
        Ok(Ok(()))
    }

    /// `peer` is gone: what it was owed is dropped (its last start stays,
    /// so reconnecting does not restart its serve early).
    pub fn disconnected(&mut self, peer: &NodeId) {
        self.validators.retain(|s| s.peer != *peer);
        self.strangers.retain(|s| s.peer != *peer);
    }

    /// When [`Pacer::due`] has something to grant; `None` while idle.
    pub fn poll_timeout(&self) -> Option<MonoTime> {
        (!self.validators.is_empty() || !self.strangers.is_empty()).then_some(self.next_tick)
    }

    /// The grants of this tick (none before it is due): validators' first,
    /// from their own budget, then strangers', each queue served in turn.
    pub fn due(&mut self, now: MonoTime) -> Vec<Grant> {
        let mut grants = Vec::new();
        match self.poll_timeout() {
            Some(at) if at <= now => {}
            _ => return grants,
        }
        let per_peer = self.limits.per_peer_per_tick;
        grant_round(
            &mut self.validators,
            self.limits.validators_per_tick,
            per_peer,
            &mut grants,
        );
        grant_round(
            &mut self.strangers,
            self.limits.strangers_per_tick,
            per_peer,
            &mut grants,
        );
        self.next_tick = now.plus_ms(self.limits.tick_ms.max(1));
        grants
    }

    /// Peers owed proofs now.
    pub fn serving_count(&self) -> usize {
        self.validators.len() + self.strangers.len()
    }

    fn serving(&self, peer: &NodeId) -> bool {
        self.validators
            .iter()
            .chain(&self.strangers)
            .any(|s| s.peer == *peer)
    }
}

/// One pass over `queue`: each serve gets up to `per_peer` proofs while
/// `budget` lasts; finished serves leave, the others go to the back in
/// turn, so the next tick starts with whoever this one reached last.
fn grant_round(queue: &mut VecDeque<Serve>, budget: u32, per_peer: u32, out: &mut Vec<Grant>) {
    let mut left = u64::from(budget);
    for _ in 0..queue.len() {
        if left == 0 {
            break;
        }
        let Some(mut serve) = queue.pop_front() else {
            break;
        };
        let count = (serve.end - serve.next).min(u64::from(per_peer)).min(left);
        out.push(Grant {
            peer: serve.peer,
            from: serve.next,
            count: u32::try_from(count).unwrap_or(u32::MAX),
        });
        left -= count;
        serve.next += count;
        if serve.next < serve.end {
            queue.push_back(serve);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PublicKeyBytes;

    fn peer(i: u16) -> NodeId {
        let mut id = [0u8; 32];
        id[..2].copy_from_slice(&i.to_le_bytes());
        PublicKeyBytes(id)
    }

    fn limits() -> CatchUpLimits {
        CatchUpLimits {
            tick_ms: 100,
            per_peer_per_tick: 10,
            validators_per_tick: 40,
            strangers_per_tick: 15,
            max_stranger_serves: 4,
            repeat_after_ms: 1_000,
            peers_remembered: 64,
        }
    }

    fn ask(
        p: &mut Pacer,
        now: u64,
        who: NodeId,
        validator: bool,
        head: u64,
    ) -> Result<(), Refusal> {
        p.request(MonoTime(now), who, validator, MAX_RECENT_PROOFS, || {
            Ok::<u64, ()>(head)
        })
        .unwrap()
    }

    /// Runs ticks until idle; the sequences each peer was granted, in order.
    fn drain(p: &mut Pacer, mut now: u64) -> Vec<(NodeId, u64)> {
        let mut sent = Vec::new();
        while let Some(at) = p.poll_timeout() {
            now = now.max(at.0);
            for g in p.due(MonoTime(now)) {
                sent.extend((g.from..g.from + u64::from(g.count)).map(|s| (g.peer, s)));
            }
        }
        sent
    }

    #[test]
    fn a_serve_grants_the_latest_proofs_oldest_first_at_the_per_peer_pace() {
        let mut p = Pacer::new(limits());
        assert_eq!(ask(&mut p, 0, peer(1), true, 2_025), Ok(()));
        assert_eq!(p.poll_timeout(), Some(MonoTime(0)));
        let first = p.due(MonoTime(0));
        assert_eq!(
            first,
            vec![Grant {
                peer: peer(1),
                from: 25,
                count: 10
            }]
        );
        assert!(p.due(MonoTime(99)).is_empty(), "one grant per tick");
        let rest = drain(&mut p, 100);
        let sequences: Vec<u64> = rest.iter().map(|(_, s)| *s).collect();
        assert_eq!(sequences, (35..2_025).collect::<Vec<_>>());
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn asking_again_while_served_or_soon_after_neither_restarts_nor_doubles() {
        let mut p = Pacer::new(limits());
        assert_eq!(ask(&mut p, 0, peer(1), false, 30), Ok(()));
        assert_eq!(ask(&mut p, 0, peer(1), false, 30), Err(Refusal::Serving));
        p.due(MonoTime(0));
        assert_eq!(ask(&mut p, 50, peer(1), false, 40), Err(Refusal::Serving));
        // Reconnecting does not restart it either.
        p.disconnected(&peer(1));
        assert_eq!(p.serving_count(), 0);
        assert_eq!(ask(&mut p, 60, peer(1), false, 40), Err(Refusal::TooSoon));
        assert_eq!(ask(&mut p, 1_000, peer(1), false, 40), Ok(()));
        let mut head_read = false;
        let refused = p.request(MonoTime(1_000), peer(1), false, 5, || {
            head_read = true;
            Ok::<u64, ()>(40)
        });
        assert_eq!(refused, Ok(Err(Refusal::Serving)));
        assert!(!head_read, "a refused request costs no store read");
        assert_eq!(ask(&mut p, 5_000, peer(2), false, 0), Err(Refusal::Nothing));
    }

    #[test]
    fn strangers_together_get_a_fixed_budget_and_never_crowd_out_a_validator() {
        let mut p = Pacer::new(limits());
        for i in 0..10 {
            let outcome = ask(&mut p, 0, peer(100 + i), false, 2_000);
            assert_eq!(outcome.is_ok(), i < 4, "stranger {i}: {outcome:?}");
        }
        assert_eq!(ask(&mut p, 0, peer(1), true, 2_000), Ok(()));
        assert_eq!(ask(&mut p, 0, peer(2), true, 2_000), Ok(()));
        for tick in 0..20u64 {
            let grants = p.due(MonoTime(tick * 100));
            let to_validators: u32 = grants
                .iter()
                .filter(|g| g.peer == peer(1) || g.peer == peer(2))
                .map(|g| g.count)
                .sum();
            let to_strangers: u32 = grants.iter().map(|g| g.count).sum::<u32>() - to_validators;
            assert_eq!(to_validators, 20, "each validator at its own pace");
            assert_eq!(to_strangers, 15, "all strangers share one budget");
        }
    }

    #[test]
    fn strangers_share_their_budget_in_turn() {
        let mut p = Pacer::new(limits());
        for i in 0..3 {
            assert_eq!(ask(&mut p, 0, peer(100 + i), false, 2_000), Ok(()));
        }
        let mut per_peer = [0u32; 3];
        for tick in 0..30u64 {
            for g in p.due(MonoTime(tick * 100)) {
                per_peer[usize::from(g.peer.0[0] - 100)] += g.count;
            }
        }
        // 15 per tick over 3 peers: 150 each after 30 ticks.
        assert_eq!(per_peer, [150, 150, 150]);
    }
}
