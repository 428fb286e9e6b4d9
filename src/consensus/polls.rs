//! Outstanding polls and the batched requests that carry them. A poll is
//! one sample of `k'` stake slots for one txid; a request is one `Query` to
//! one validator carrying many polls' txids. A validator's answer fills
//! every slot it holds in the poll. Both end together: when the answer
//! arrives or the request's deadline passes (missing = not `Valid`). A poll
//! ends earlier once the answers still missing can no longer change whether
//! it reached a `Valid` or an `Invalid` quorum, so a silent validator costs
//! a poll nothing once the others have decided it.
//!
//! While a validator has a query in flight, further slots for it are held
//! and go together once it answers (or once it has proven unresponsive):
//! fuller queries under load, no wait when idle.
//!
//! Pure bookkeeping: it never samples, decides or sends anything.

use super::messages::{NodeId, Verdict};
use super::snowball::PollTally;
use crate::mempool::Deadlines;
use crate::time::MonoTime;
use crate::types::Hash;
use foldhash::{HashMap, HashSet, HashSetExt};
use std::collections::{BTreeMap, BTreeSet};

pub type PollId = u64;

/// One poll in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Poll {
    pub txid: Hash,
    pub tally: PollTally,
    answered: u32,
    /// `alpha'` when the poll started.
    quorum: u32,
}

impl Poll {
    /// Both quorums are settled: each has been reached, or the slots still
    /// unanswered could not reach it.
    fn is_decided(&self) -> bool {
        let open = self.tally.sampled.saturating_sub(self.answered);
        let settled = |count: u32| count >= self.quorum || count + open < self.quorum;
        open == 0 || (settled(self.tally.valid) && settled(self.tally.invalid))
    }
}

/// A poll a request answers, and how many of its slots the asked validator holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollSlots {
    pub poll: PollId,
    pub slots: u32,
}

/// One `Query` in flight to one validator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub to: NodeId,
    pub deadline: MonoTime,
    pub txids: Vec<Hash>,
    /// `polls[i]` is the poll `txids[i]` answers.
    pub polls: Vec<PollSlots>,
}

#[derive(Clone, Debug, Default)]
pub struct Polls {
    polls: HashMap<PollId, Poll>,
    requests: HashMap<u64, Request>,
    deadlines: Deadlines<u64>,
    next_poll_id: PollId,
    next_request_id: u64,
    /// Poll queries in flight per validator.
    in_flight: BTreeMap<NodeId, u32>,
    /// Poll slots held back while their validator already has its share of
    /// queries in flight (Nagle-style): under load each validator gets
    /// fewer, fuller queries; an idle validator is asked at once. Hashed:
    /// every sampled slot lands here; releases go out in id order.
    held: HashMap<NodeId, Vec<(Hash, PollSlots)>>,
    /// Validators whose last query expired unanswered: nothing waits for
    /// them (behind a silent validator a held slot would wait a whole
    /// `poll_timeout`, and its poll twice as long to fail) until they answer.
    unresponsive: BTreeSet<NodeId>,
    /// A query ended for a validator with held slots: they may go now.
    released: bool,
}

/// Poll slots for one validator, ready to go as queries.
pub struct Release {
    pub to: NodeId,
    pub txids: Vec<Hash>,
    pub polls: Vec<PollSlots>,
}

impl Polls {
    /// Opens a poll of `sampled` slots for `txid` that needs `quorum` slots.
    pub fn start(&mut self, txid: Hash, sampled: u32, quorum: u32) -> PollId {
        self.next_poll_id += 1;
        let id = self.next_poll_id;
        self.polls.insert(
            id,
            Poll {
                txid,
                tally: PollTally {
                    sampled,
                    valid: 0,
                    invalid: 0,
                },
                answered: 0,
                quorum,
            },
        );
        id
    }

    /// Registers a request about to be sent; returns its request id.
    pub fn send(&mut self, request: Request) -> u64 {
        self.next_request_id += 1;
        let id = self.next_request_id;
        *self.in_flight.entry(request.to).or_default() += 1;
        self.deadlines.insert((request.deadline, id));
        self.requests.insert(id, request);
        id
    }

    /// The request `request_id` if it was sent to `from` and is still open;
    /// anything else (unknown, late, or asked of someone else) is `None`.
    pub fn take_answered(&mut self, request_id: u64, from: &NodeId) -> Option<Request> {
        if self.requests.get(&request_id)?.to != *from {
            return None;
        }
        let request = self.requests.remove(&request_id)?;
        self.deadlines.remove(&(request.deadline, request_id));
        self.unresponsive.remove(from);
        self.ended(&request);
        Some(request)
    }

    /// Whether `validator`'s last query expired unanswered (and it has
    /// answered none since).
    pub fn is_unresponsive(&self, validator: &NodeId) -> bool {
        self.unresponsive.contains(validator)
    }

    /// The next request whose deadline is at or before `now`.
    pub fn take_expired(&mut self, now: MonoTime) -> Option<Request> {
        let &(deadline, id) = self.deadlines.first()?;
        if deadline > now {
            return None;
        }
        self.deadlines.pop_first();
        let request = self.requests.remove(&id)?;
        self.unresponsive.insert(request.to);
        self.ended(&request);
        Some(request)
    }

    fn ended(&mut self, request: &Request) {
        if let Some(n) = self.in_flight.get_mut(&request.to) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(&request.to);
            }
        }
        self.released |= self.held.contains_key(&request.to);
    }

    /// Holds one poll's slots for `to` until [`Polls::release`]. Slots of
    /// polls already decided are dropped whenever the hold grows past
    /// `max_held`, so it never holds more than the open polls.
    pub fn hold(&mut self, to: NodeId, txid: Hash, at: PollSlots, max_held: usize) {
        let held = self.held.entry(to).or_default();
        if held.len() >= max_held {
            held.retain(|(_, at)| self.polls.contains_key(&at.poll));
        }
        held.push((txid, at));
    }

    /// The held slots of every validator with fewer than `max_in_flight`
    /// poll queries in flight (or unresponsive), without those of polls
    /// decided meanwhile (their answers could not change anything). At
    /// most one poll of a txid goes in one release: two polls answered by
    /// the same message would count one sample twice, so the later one
    /// stays held.
    pub fn release(&mut self, max_in_flight: u32) -> Vec<Release> {
        self.released = false;
        let mut ready = self.with_room(self.held.keys(), &self.in_flight, max_in_flight);
        ready.sort_unstable();
        let mut out = Vec::with_capacity(ready.len());
        for to in ready {
            let Some(held) = self.held.remove(&to) else {
                continue;
            };
            let mut release = Release {
                to,
                txids: Vec::with_capacity(held.len()),
                polls: Vec::with_capacity(held.len()),
            };
            let mut included = HashSet::with_capacity(held.len());
            let mut later = Vec::new();
            for (txid, at) in held {
                if !self.polls.contains_key(&at.poll) {
                    continue;
                }
                if included.insert(txid) {
                    release.txids.push(txid);
                    release.polls.push(at);
                } else {
                    later.push((txid, at));
                }
            }
            if !later.is_empty() {
                self.held.insert(to, later);
            }
            out.push(release);
        }
        out
    }

    /// Those of `waiting` with fewer than `max` in `in_flight` (or unresponsive).
    fn with_room<'a>(
        &self,
        waiting: impl Iterator<Item = &'a NodeId>,
        in_flight: &BTreeMap<NodeId, u32>,
        max: u32,
    ) -> Vec<NodeId> {
        waiting
            .filter(|to| {
                in_flight.get(*to).copied().unwrap_or(0) < max || self.unresponsive.contains(*to)
            })
            .copied()
            .collect()
    }

    /// Some held slots may be released now.
    pub fn has_releasable(&self) -> bool {
        self.released
    }

    /// Counts one sampled validator's answer (`None` = missing) into each
    /// of its slots and returns the poll once it is decided.
    pub fn record(&mut self, at: PollSlots, verdict: Option<Verdict>) -> Option<Poll> {
        let poll = self.polls.get_mut(&at.poll)?;
        match verdict {
            Some(Verdict::Valid) => poll.tally.valid += at.slots,
            Some(Verdict::Invalid) => poll.tally.invalid += at.slots,
            Some(Verdict::Unknown) | None => {}
        }
        poll.answered += at.slots;
        if !poll.is_decided() {
            return None;
        }
        self.polls.remove(&at.poll)
    }

    pub fn outstanding_polls(&self) -> usize {
        self.polls.len()
    }

    pub fn outstanding_requests(&self) -> usize {
        self.requests.len()
    }

    pub fn next_deadline(&self) -> Option<MonoTime> {
        self.deadlines.next_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PublicKeyBytes;

    #[test]
    fn only_the_asked_peer_can_answer_once_for_all_its_slots() {
        let mut p = Polls::default();
        let (a, b) = (PublicKeyBytes([1; 32]), PublicKeyBytes([2; 32]));
        let poll = p.start(Hash::ZERO, 3, 3);
        let at = PollSlots { poll, slots: 2 };
        let id = p.send(Request {
            to: a,
            deadline: MonoTime(10),
            txids: vec![Hash::ZERO],
            polls: vec![at],
        });
        assert!(p.take_answered(id, &b).is_none());
        assert!(p.take_answered(id, &a).is_some());
        assert!(p.take_answered(id, &a).is_none());
        assert!(p.take_expired(MonoTime(100)).is_none());
        assert!(p.record(at, Some(Verdict::Valid)).is_none());
        let done = p.record(PollSlots { poll, slots: 1 }, None).unwrap();
        assert_eq!(done.tally.valid, 2, "one answer fills both of its slots");
        assert_eq!(p.outstanding_polls(), 0);
    }

    #[test]
    fn held_slots_wait_for_an_answer_and_skip_decided_polls_and_repeats() {
        let mut p = Polls::default();
        let a = PublicKeyBytes([1; 32]);
        let (x, y) = (Hash([1; 32]), Hash([2; 32]));
        let at = |poll| PollSlots { poll, slots: 1 };
        let first = p.start(x, 1, 1);
        let id = p.send(Request {
            to: a,
            deadline: MonoTime(10),
            txids: vec![x],
            polls: vec![at(first)],
        });
        let (second, decided, other) = (p.start(x, 1, 1), p.start(y, 1, 1), p.start(y, 1, 1));
        for (txid, poll) in [(x, second), (y, decided), (y, other)] {
            p.hold(a, txid, at(poll), 100);
        }
        assert!(p.release(1).is_empty(), "one query in flight: all held");
        assert!(!p.has_releasable());
        assert!(p.record(at(decided), Some(Verdict::Valid)).is_some());
        assert!(p.take_answered(id, &a).is_some());
        assert!(p.has_releasable());
        let released = p.release(1);
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].txids, [x, y], "the decided poll is dropped");
        assert_eq!(released[0].polls, [at(second), at(other)]);
        // A second poll of one txid waits for the next release.
        for _ in 0..2 {
            let poll = p.start(x, 1, 1);
            p.hold(a, x, at(poll), 100);
        }
        assert_eq!(p.release(1)[0].txids, [x]);
        assert_eq!(p.release(1)[0].txids, [x]);
        assert!(p.release(1).is_empty());
    }

    #[test]
    fn nothing_waits_for_a_validator_whose_last_query_expired() {
        let mut p = Polls::default();
        let a = PublicKeyBytes([1; 32]);
        let x = Hash([1; 32]);
        let at = |poll| PollSlots { poll, slots: 1 };
        let send = |p: &mut Polls, deadline| {
            let poll = p.start(x, 1, 1);
            p.send(Request {
                to: a,
                deadline: MonoTime(deadline),
                txids: vec![x],
                polls: vec![at(poll)],
            })
        };
        send(&mut p, 10);
        let later = send(&mut p, 20);
        assert!(p.take_expired(MonoTime(10)).is_some());
        let poll = p.start(x, 1, 1);
        p.hold(a, x, at(poll), 100);
        assert_eq!(
            p.release(1).len(),
            1,
            "silent: not held, one query still in flight"
        );
        // It answers again: held behind its queries once more.
        assert!(p.take_answered(later, &a).is_some());
        send(&mut p, 30);
        let poll = p.start(x, 1, 1);
        p.hold(a, x, at(poll), 100);
        assert!(p.release(1).is_empty());
    }

    #[test]
    fn a_poll_ends_as_soon_as_missing_answers_cannot_change_it() {
        let mut p = Polls::default();
        let answer = |p: &mut Polls, poll, v| p.record(PollSlots { poll, slots: 1 }, Some(v));
        // 4 slots, quorum 3: three Valid decide it; the fourth is not awaited.
        let poll = p.start(Hash::ZERO, 4, 3);
        assert!(answer(&mut p, poll, Verdict::Valid).is_none());
        assert!(answer(&mut p, poll, Verdict::Valid).is_none());
        let done = answer(&mut p, poll, Verdict::Valid).unwrap();
        assert_eq!((done.tally.valid, done.tally.invalid), (3, 0));
        // Two Unknown leave neither quorum reachable: failed, decided.
        let poll = p.start(Hash::ZERO, 4, 3);
        assert!(answer(&mut p, poll, Verdict::Unknown).is_none());
        let done = answer(&mut p, poll, Verdict::Unknown).unwrap();
        assert_eq!(done.tally.valid, 0);
        // One Valid, one Invalid: both quorums still open until the end.
        let poll = p.start(Hash::ZERO, 5, 3);
        assert!(answer(&mut p, poll, Verdict::Valid).is_none());
        assert!(answer(&mut p, poll, Verdict::Invalid).is_none());
        assert!(answer(&mut p, poll, Verdict::Invalid).is_none());
        assert!(answer(&mut p, poll, Verdict::Unknown).is_none());
        assert!(answer(&mut p, poll, Verdict::Invalid).is_some());
        assert_eq!(p.outstanding_polls(), 0);
    }
}
