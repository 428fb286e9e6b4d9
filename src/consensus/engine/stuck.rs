//! Stuck work inside the engine (issue 13 finding 7): accepted-but-unproven
//! transactions are re-asked with a capped exponential backoff, and their
//! number is capped. The bookkeeping is [`super::super::unproven`]'s; this
//! file decides what a re-ask sends and what the cap refuses.
//!
//! **The re-ask.** A tx this node accepted waits for window votes of the
//! other validators. If they never come, the likely cause is that the
//! missing validators lack the tx (they expired it, or never had it): so
//! each due re-ask goes, as an ordinary `Query` (one per validator, all due
//! txids together), to exactly the validators whose vote is missing from
//! its tally and that answer polls (a silent one is skipped). A validator
//! lacking it answers `Unknown` and fetches it (refetch on demand), polls
//! it and, if the network agrees, signs it. The answers change nothing
//! here (the tx is accepted already), so the query is not a poll's: it
//! carries [`REASK_REQUEST_ID`], holds no poll slot back and its answer is
//! dropped uncounted.
//!
//! **The cap, and why admission is what stops.** At
//! `UnprovenLimits::max_txs` accepted-but-unproven txs, new admissions are
//! refused (a wallet gets [`SubmitError::UnprovenBacklog`], peers' txs are
//! dropped and counted, `Unknown` txids are not fetched). The alternatives
//! are worse in DESIGN §5's terms: dropping an acceptance would forget what
//! the vote-safety record promises (we may have signed it; the record must
//! outlive any cap), and no longer signing accepted txs would strand
//! exactly the txs whose proof may lack only our vote while their outpoints
//! stay locked. Refusing new work keeps every promise, costs nothing to
//! peers that did not cause it, tells the wallet why, and lets the backlog
//! drain as proofs complete. Txs already sampling may still be accepted,
//! so the count can pass the cap by at most the txs sampling when it was
//! reached (bounded by the mempool). Acceptances restored at start are
//! never refused.

use super::{Engine, Origin, SubmitError};
use crate::consensus::epochs::Committees;
use crate::consensus::messages::{ConsensusMessage, NodeId};
use crate::consensus::windows::WindowBook;
use crate::crypto::Keypair;
use crate::mempool::TxStatus;
use crate::time::MonoTime;
use crate::types::Hash;
use std::collections::BTreeMap;

/// The request id of re-ask queries; polls' requests are numbered from 1.
pub const REASK_REQUEST_ID: u64 = 0;

/// A re-ask may run this fraction of its first gap late (500 ms of 2 s),
/// on a wakeup the engine has anyway.
const REASK_SLACK_DIVISOR: u64 = 4;

impl Engine {
    /// Starts the re-ask schedule of a tx just accepted here.
    pub(super) fn note_unproven(&mut self, now: MonoTime, txid: Hash) {
        let me = self.signer.as_ref().map(Keypair::public);
        let weight = others_weight(&self.windows, &self.committees, me, &txid);
        self.unproven.insert(now, txid, weight);
    }

    /// Refuses to admit a new tx while the accepted-but-unproven txs are at
    /// the cap (a tx held already passes: its admission is a no-op).
    pub(super) fn unproven_room(&mut self, txid: &Hash, origin: Origin) -> Result<(), SubmitError> {
        if !self.unproven.is_full() || self.mempool.contains(txid) {
            return Ok(());
        }
        self.metrics.txs_refused_unproven += 1;
        if origin != Origin::Local {
            log::debug!("dropping peer tx {txid}: accepted-but-unproven txs at the cap");
        }
        Err(SubmitError::UnprovenBacklog {
            held: self.unproven.len(),
            max: self.unproven.max_txs(),
        })
    }

    /// Whether a txid answered `Unknown` is worth fetching (not at the cap).
    pub(super) fn may_fetch_unknown(&self) -> bool {
        !self.unproven.is_full()
    }

    /// When re-asks need a wakeup of their own: never while another
    /// wakeup (`others`) comes within [`REASK_SLACK_DIVISOR`]th of the first
    /// gap after the next re-ask is due (it runs then, a little late), so a
    /// busy engine wakes no more often for them; an idle one wakes on time.
    pub(super) fn unproven_wake(&self, others: Option<MonoTime>) -> Option<MonoTime> {
        let due = self.unproven.next_due()?;
        let slack_ms = self.config.limits.unproven.first_ms / REASK_SLACK_DIVISOR;
        match others {
            Some(other) if other <= due.plus_ms(slack_ms) => None,
            _ => Some(due),
        }
    }

    /// Re-asks every accepted-but-unproven tx that is due, each of the
    /// validators whose window vote for it is missing here.
    pub(super) fn reask_unproven(&mut self, now: MonoTime) {
        let me = self.signer.as_ref().map(Keypair::public);
        let (windows, committees) = (&self.windows, &self.committees);
        let due = self
            .unproven
            .take_due(now, |txid| others_weight(windows, committees, me, txid));
        if due.is_empty() || self.halted {
            return;
        }
        let mut asks: BTreeMap<NodeId, Vec<Hash>> = BTreeMap::new();
        for txid in due {
            let accepted = self
                .mempool
                .get(&txid)
                .is_some_and(|e| e.status == TxStatus::LocallyAccepted);
            if !accepted {
                self.unproven.remove(&txid);
                continue;
            }
            self.metrics.unproven_reasked += 1;
            let committee = self.committees.current();
            let tally = self.windows.tally_in(&txid, self.committees.epoch());
            for (member, validator) in committee.validators().iter().enumerate() {
                let id = validator.id;
                let voted = tally.is_some_and(|t| t.has_voted(member));
                if Some(id) != me && !voted && !self.polls.is_unresponsive(&id) {
                    asks.entry(id).or_default().push(txid);
                }
            }
        }
        let per_query = (self.config.snowball.max_txs_per_query as usize).max(1);
        for (to, txids) in asks {
            for chunk in txids.chunks(per_query) {
                let txids = chunk.to_vec();
                let request_id = REASK_REQUEST_ID;
                self.send(to, ConsensusMessage::Query { request_id, txids });
            }
        }
    }
}

/// The weight of the votes for `txid` tallied here, ours left out: our own
/// vote follows our acceptance, so only others' votes are news.
fn others_weight(
    windows: &WindowBook,
    committees: &Committees,
    me: Option<NodeId>,
    txid: &Hash,
) -> u64 {
    // Votes of an older epoch count for nothing: their voters sign again.
    let validators = committees.current();
    let Some(tally) = windows.tally_in(txid, committees.epoch()) else {
        return 0;
    };
    let ours = me
        .filter(|id| validators.index_of(id).is_some_and(|m| tally.has_voted(m)))
        .and_then(|id| validators.weight_of(&id))
        .unwrap_or(0);
    tally.weight().saturating_sub(ours)
}
