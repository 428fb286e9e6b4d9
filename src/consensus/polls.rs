//! Outstanding polls and the batched requests that carry them. A poll is
//! one sample of `k'` validators for one txid; a request is one `Query` to
//! one validator carrying many polls' txids. Both end together: when the
//! answer arrives or the request's deadline passes (missing = not `Valid`).
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
}

/// One `Query` in flight to one validator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub to: NodeId,
    pub deadline: Timestamp,
    pub txids: Vec<Hash>,
    /// `polls[i]` is the poll `txids[i]` answers; empty for a vote request.
    pub polls: Vec<PollId>,
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
    /// Opens a poll of `sampled` validators for `txid`.
    pub fn start(&mut self, txid: Hash, sampled: u32) -> PollId {
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

    /// Counts one sampled validator's answer (`None` = missing) and returns
    /// the poll once every sampled validator is accounted for.
    pub fn record(&mut self, poll_id: PollId, verdict: Option<Verdict>) -> Option<Poll> {
        let poll = self.polls.get_mut(&poll_id)?;
        match verdict {
            Some(Verdict::Valid) => poll.tally.valid += 1,
            Some(Verdict::Invalid) => poll.tally.invalid += 1,
            Some(Verdict::Unknown) | None => {}
        }
        poll.answered += 1;
        if poll.answered < poll.tally.sampled {
            return None;
        }
        self.polls.remove(&poll_id)
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
    fn only_the_asked_peer_can_answer_and_only_once() {
        let mut p = Polls::default();
        let (a, b) = (PublicKeyBytes([1; 32]), PublicKeyBytes([2; 32]));
        let poll = p.start(Hash::ZERO, 1);
        let id = p.send(Request {
            to: a,
            deadline: Timestamp(10),
            txids: vec![Hash::ZERO],
            polls: vec![poll],
            want_votes: false,
        });
        assert!(p.take_answered(id, &b).is_none());
        assert!(p.take_answered(id, &a).is_some());
        assert!(p.take_answered(id, &a).is_none());
        assert!(p.take_expired(Timestamp(100)).is_none());
        let done = p.record(poll, Some(Verdict::Valid)).unwrap();
        assert_eq!(done.tally.valid, 1);
        assert_eq!(p.outstanding_polls(), 0);
    }
}
