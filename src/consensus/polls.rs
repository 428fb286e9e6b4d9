//! Outstanding polls and the batched requests that carry them. A poll is
//! one sample of `k'` stake slots for one txid; a request is one `Query` to
//! one validator carrying many polls' txids. A validator's answer fills
//! every slot it holds in the poll. Both end together: when the answer
//! arrives or the request's deadline passes (missing = not `Valid`). A poll
//! ends earlier once the answers still missing can no longer change whether
//! it reached a `Valid` or an `Invalid` quorum, so a silent validator costs
//! a poll nothing once the others have decided it.
//!
//! Pure bookkeeping: it never samples, decides or sends anything.

use super::messages::{NodeId, Verdict};
use super::snowball::PollTally;
use crate::time::Timestamp;
use crate::types::Hash;
use std::collections::{BTreeSet, HashMap};

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
    pub deadline: Timestamp,
    pub txids: Vec<Hash>,
    /// `polls[i]` is the poll `txids[i]` answers; empty for a vote request.
    pub polls: Vec<PollSlots>,
    pub want_votes: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Polls {
    polls: HashMap<PollId, Poll>,
    requests: HashMap<u64, Request>,
    deadlines: BTreeSet<(Timestamp, u64)>,
    next_poll_id: PollId,
    next_request_id: u64,
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
        Some(request)
    }

    /// The next request whose deadline is at or before `now`.
    pub fn take_expired(&mut self, now: Timestamp) -> Option<Request> {
        let &(deadline, id) = self.deadlines.first()?;
        if deadline > now {
            return None;
        }
        self.deadlines.pop_first();
        self.requests.remove(&id)
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

    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(at, _)| *at)
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
            deadline: Timestamp(10),
            txids: vec![Hash::ZERO],
            polls: vec![at],
            want_votes: false,
        });
        assert!(p.take_answered(id, &b).is_none());
        assert!(p.take_answered(id, &a).is_some());
        assert!(p.take_answered(id, &a).is_none());
        assert!(p.take_expired(Timestamp(100)).is_none());
        assert!(p.record(at, Some(Verdict::Valid)).is_none());
        let done = p.record(PollSlots { poll, slots: 1 }, None).unwrap();
        assert_eq!(done.tally.valid, 2, "one answer fills both of its slots");
        assert_eq!(p.outstanding_polls(), 0);
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
