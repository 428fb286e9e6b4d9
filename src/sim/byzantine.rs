//! Byzantine validators. Each runs a real `Engine` for its state; only what
//! it sends is rewritten here, by one [`Strategy`]. The [`Adversary`] sees
//! every message any node sends (a strong adversary) but holds no honest key.
//!
//! Owns the adversary's knowledge and its RNG; must never touch an honest
//! node's engine, ledger or outgoing messages.

use super::rng::below;
use crate::consensus::{ConsensusMessage, NodeId, Output, Verdict};
use crate::crypto::Keypair;
use crate::finality::FinalityVote;
use crate::types::{ChainId, Hash, OutPoint, Tx};
use rand_chacha::ChaCha20Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;

/// Signed `Votes` responses the adversary keeps for replay.
const ARCHIVE_CAPACITY: usize = 256;

/// How a Byzantine validator answers queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strategy {
    /// `Invalid` for everything, never a finality vote.
    AlwaysInvalid,
    /// `Valid` for everything, both sides of a double spend included, and a
    /// signed finality vote for all of it; relays no transactions, so each
    /// side of a double spend spreads only as far as honest gossip takes it.
    ValidForAll,
    /// `Valid` (and signed) for whichever side of a conflict is currently
    /// losing among honest preferences, to keep the split alive.
    KeepSplit,
    /// Sends nothing at all.
    Silent,
    /// Answers with finality votes replayed from earlier responses (its own
    /// and other validators'), and resends old responses verbatim.
    ReplayOldVotes,
    /// Signs finality votes with a wrong key, or in another validator's name.
    ForgeVotes,
}

impl Strategy {
    pub const ALL: [Strategy; 6] = [
        Strategy::AlwaysInvalid,
        Strategy::ValidForAll,
        Strategy::KeepSplit,
        Strategy::Silent,
        Strategy::ReplayOldVotes,
        Strategy::ForgeVotes,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::AlwaysInvalid => "invalid",
            Strategy::ValidForAll => "valid-for-all",
            Strategy::KeepSplit => "split",
            Strategy::Silent => "silent",
            Strategy::ReplayOldVotes => "replay",
            Strategy::ForgeVotes => "forge",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown strategy '{0}': expected invalid, valid-for-all, split, silent, replay or forge")]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| UnknownStrategy(s.to_string()))
    }
}

/// The query a Byzantine node is answering, as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryInfo {
    pub request_id: u64,
    pub want_votes: bool,
}

/// What the Byzantine validators know and share.
pub struct Adversary {
    chain_id: ChainId,
    slot_duration_ms: u64,
    rng: ChaCha20Rng,
    /// Every spend of every outpoint seen in any message: the conflict sets.
    spends: BTreeMap<OutPoint, BTreeSet<Hash>>,
    inputs: BTreeMap<Hash, Vec<OutPoint>>,
    /// Honest nodes whose latest verdict on a txid was `Valid`.
    honest_valid: BTreeMap<Hash, BTreeSet<usize>>,
    /// Recent `Votes` carrying a finality vote, from anyone.
    archive: VecDeque<ConsensusMessage>,
    honest_ids: Vec<NodeId>,
    /// A key no validator owns, for votes signed with the wrong key.
    forger: Keypair,
}

impl Adversary {
    pub fn new(
        chain_id: ChainId,
        slot_duration_ms: u64,
        honest_ids: Vec<NodeId>,
        rng: ChaCha20Rng,
    ) -> Adversary {
        Adversary {
            chain_id,
            slot_duration_ms: slot_duration_ms.max(1),
            rng,
            spends: BTreeMap::new(),
            inputs: BTreeMap::new(),
            honest_valid: BTreeMap::new(),
            archive: VecDeque::new(),
            honest_ids,
            forger: Keypair::from_seed_label("timecoin sim forger"),
        }
    }

    /// Learns from a message node `from` sent (`honest` says whose it was).
    pub fn observe(&mut self, from: usize, honest: bool, msg: &ConsensusMessage) {
        match msg {
            ConsensusMessage::Tx(tx) => self.observe_tx(tx),
            ConsensusMessage::Txs { txs } => txs.iter().for_each(|tx| self.observe_tx(tx)),
            ConsensusMessage::Proof(proof) => self.observe_tx(&proof.tx),
            ConsensusMessage::Votes {
                verdicts,
                finality_vote,
                ..
            } => {
                if honest {
                    for (txid, verdict) in verdicts {
                        let nodes = self.honest_valid.entry(*txid).or_default();
                        if *verdict == Verdict::Valid {
                            nodes.insert(from);
                        } else {
                            nodes.remove(&from);
                        }
                    }
                }
                if finality_vote.is_some() {
                    if self.archive.len() == ARCHIVE_CAPACITY {
                        self.archive.pop_front();
                    }
                    self.archive.push_back(msg.clone());
                }
            }
            ConsensusMessage::GetTxs { .. } | ConsensusMessage::Query { .. } => {}
        }
    }

    pub fn observe_tx(&mut self, tx: &Tx) {
        let txid = tx.txid();
        for input in &tx.inputs {
            self.spends.entry(input.prev).or_default().insert(txid);
        }
        self.inputs
            .entry(txid)
            .or_insert_with(|| tx.inputs.iter().map(|i| i.prev).collect());
    }

    /// What a Byzantine node following `strategy` actually sends instead of
    /// `out`. `query` is the query being answered, if `out` answers one.
    pub fn rewrite(
        &mut self,
        strategy: Strategy,
        me: &Keypair,
        now_ms: u64,
        query: Option<&QueryInfo>,
        out: Output,
    ) -> Vec<Output> {
        let withheld = match &out {
            Output::Send { msg, .. } | Output::Broadcast { msg, .. } => {
                strategy == Strategy::ValidForAll
                    && matches!(msg, ConsensusMessage::Tx(_) | ConsensusMessage::Txs { .. })
            }
            Output::Event(_) => false,
        };
        if strategy == Strategy::Silent || withheld {
            return Vec::new();
        }
        let Output::Send {
            to,
            msg:
                ConsensusMessage::Votes {
                    request_id,
                    verdicts,
                    finality_vote,
                },
        } = out
        else {
            return vec![out];
        };
        let want_votes = query
            .filter(|q| q.request_id == request_id)
            .map_or(finality_vote.is_some(), |q| q.want_votes);
        let verdicts: Vec<(Hash, Verdict)> = verdicts
            .into_iter()
            .map(|(txid, honest)| (txid, self.verdict(strategy, &txid, honest)))
            .collect();
        let mut valid: Vec<Hash> = verdicts
            .iter()
            .filter(|(_, v)| *v == Verdict::Valid)
            .map(|(txid, _)| *txid)
            .collect();
        valid.sort_unstable();
        valid.dedup();
        let slot = finality_vote
            .as_ref()
            .map_or(now_ms / self.slot_duration_ms, |v| v.slot);
        let vote = (want_votes && !valid.is_empty())
            .then(|| self.vote(strategy, me, slot, &valid, finality_vote))
            .flatten();
        let mut sent = vec![Output::Send {
            to,
            msg: ConsensusMessage::Votes {
                request_id,
                verdicts,
                finality_vote: vote,
            },
        }];
        if strategy == Strategy::ReplayOldVotes {
            if let Some(old) = self.pick_archived() {
                sent.push(Output::Send { to, msg: old });
            }
        }
        sent
    }

    fn verdict(&self, strategy: Strategy, txid: &Hash, honest: Verdict) -> Verdict {
        match strategy {
            Strategy::AlwaysInvalid => Verdict::Invalid,
            Strategy::KeepSplit => match self.is_losing(txid) {
                Some(true) => Verdict::Valid,
                Some(false) => Verdict::Invalid,
                None => honest,
            },
            Strategy::Silent => honest,
            Strategy::ValidForAll | Strategy::ReplayOldVotes | Strategy::ForgeVotes => {
                Verdict::Valid
            }
        }
    }

    /// `Some(true)` if `txid` is in a conflict and not the side most honest
    /// nodes currently answer `Valid` for (ties go to the lowest txid, as in
    /// Snowball); `None` if it conflicts with nothing.
    fn is_losing(&self, txid: &Hash) -> Option<bool> {
        let members: BTreeSet<Hash> = self
            .inputs
            .get(txid)?
            .iter()
            .filter_map(|outpoint| self.spends.get(outpoint))
            .flatten()
            .copied()
            .collect();
        if members.len() < 2 {
            return None;
        }
        let support = |t: &Hash| self.honest_valid.get(t).map_or(0, BTreeSet::len);
        let leader =
            crate::consensus::snowball::preferred(members.iter().map(|t| (*t, support(t) as u32)));
        Some(leader != Some(*txid))
    }

    fn vote(
        &mut self,
        strategy: Strategy,
        me: &Keypair,
        slot: u64,
        valid_sorted: &[Hash],
        honest: Option<FinalityVote>,
    ) -> Option<FinalityVote> {
        match strategy {
            Strategy::AlwaysInvalid | Strategy::Silent => None,
            Strategy::ValidForAll | Strategy::KeepSplit => {
                Some(FinalityVote::sign(me, self.chain_id, slot, valid_sorted))
            }
            Strategy::ReplayOldVotes => self
                .pick_archived()
                .and_then(|old| match old {
                    ConsensusMessage::Votes { finality_vote, .. } => finality_vote,
                    _ => None,
                })
                .or(honest),
            Strategy::ForgeVotes => {
                let pick = below(&mut self.rng, self.honest_ids.len() as u64 + 1) as usize;
                Some(match self.honest_ids.get(pick) {
                    // In an honest validator's name, signed with our own key.
                    Some(victim) => FinalityVote {
                        voter: *victim,
                        ..FinalityVote::sign(me, self.chain_id, slot, valid_sorted)
                    },
                    // In our own name, signed with a key that is not ours.
                    None => FinalityVote {
                        voter: me.public(),
                        ..FinalityVote::sign(&self.forger, self.chain_id, slot, valid_sorted)
                    },
                })
            }
        }
    }

    fn pick_archived(&mut self) -> Option<ConsensusMessage> {
        let i = below(&mut self.rng, self.archive.len() as u64) as usize;
        self.archive.get(i).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::concern_rng;
    use crate::types::{Address, Amount, PublicKeyBytes, SignatureBytes, TxIn, TxOut};

    fn spend(vout: u32, to: u8) -> Tx {
        Tx {
            version: 1,
            inputs: vec![TxIn {
                prev: OutPoint {
                    txid: Hash::digest(b"genesis"),
                    vout,
                },
                pubkey: PublicKeyBytes([1; 32]),
                sig: SignatureBytes([0; 64]),
            }],
            outputs: vec![TxOut {
                value: Amount(1),
                address: Address([to; 20]),
            }],
        }
    }

    fn adversary() -> Adversary {
        Adversary::new(
            ChainId(3),
            5000,
            vec![Keypair::from_seed_label("h").public()],
            concern_rng(1, "byz"),
        )
    }

    fn answer(adv: &mut Adversary, strategy: Strategy, txids: &[Hash]) -> Vec<Output> {
        let out = Output::Send {
            to: PublicKeyBytes([9; 32]),
            msg: ConsensusMessage::Votes {
                request_id: 7,
                verdicts: txids.iter().map(|t| (*t, Verdict::Invalid)).collect(),
                finality_vote: None,
            },
        };
        let query = QueryInfo {
            request_id: 7,
            want_votes: true,
        };
        adv.rewrite(
            strategy,
            &Keypair::from_seed_label("byz"),
            0,
            Some(&query),
            out,
        )
    }

    fn verdicts_and_vote(out: &[Output]) -> (Vec<Verdict>, Option<FinalityVote>) {
        match &out[0] {
            Output::Send {
                msg:
                    ConsensusMessage::Votes {
                        verdicts,
                        finality_vote,
                        ..
                    },
                ..
            } => (
                verdicts.iter().map(|(_, v)| *v).collect(),
                finality_vote.clone(),
            ),
            other => panic!("not votes: {other:?}"),
        }
    }

    #[test]
    fn keep_split_backs_the_side_honest_nodes_abandon() {
        let (a, b) = (spend(0, 1), spend(0, 2));
        let mut adv = adversary();
        adv.observe_tx(&a);
        adv.observe_tx(&b);
        let votes_for = |txid: Hash| ConsensusMessage::Votes {
            request_id: 1,
            verdicts: vec![(txid, Verdict::Valid)],
            finality_vote: None,
        };
        adv.observe(0, true, &votes_for(a.txid()));
        adv.observe(1, true, &votes_for(a.txid()));
        adv.observe(2, true, &votes_for(b.txid()));
        let out = answer(&mut adv, Strategy::KeepSplit, &[a.txid(), b.txid()]);
        let (verdicts, vote) = verdicts_and_vote(&out);
        assert_eq!(verdicts, vec![Verdict::Invalid, Verdict::Valid]);
        assert_eq!(vote.unwrap().root, crate::crypto::merkle::root(&[b.txid()]));
    }

    #[test]
    fn valid_for_all_signs_both_sides_of_a_double_spend() {
        let (a, b) = (spend(0, 1), spend(0, 2));
        let mut adv = adversary();
        let out = answer(&mut adv, Strategy::ValidForAll, &[a.txid(), b.txid()]);
        let (verdicts, vote) = verdicts_and_vote(&out);
        assert_eq!(verdicts, vec![Verdict::Valid; 2]);
        assert_eq!(vote.unwrap().verify_signature(), Ok(()));
    }

    #[test]
    fn forged_votes_never_verify() {
        let mut adv = adversary();
        for i in 0..20u8 {
            let out = answer(&mut adv, Strategy::ForgeVotes, &[spend(i.into(), 1).txid()]);
            let (_, vote) = verdicts_and_vote(&out);
            assert!(vote.unwrap().verify_signature().is_err());
        }
    }

    #[test]
    fn silent_sends_nothing_and_invalid_never_votes() {
        let mut adv = adversary();
        let txid = spend(0, 1).txid();
        assert!(answer(&mut adv, Strategy::Silent, &[txid]).is_empty());
        let (verdicts, vote) =
            verdicts_and_vote(&answer(&mut adv, Strategy::AlwaysInvalid, &[txid]));
        assert_eq!((verdicts, vote), (vec![Verdict::Invalid], None));
    }

    #[test]
    fn replay_answers_with_an_archived_vote_and_resends_it() {
        let mut adv = adversary();
        let old = FinalityVote::sign(&Keypair::from_seed_label("h"), ChainId(3), 0, &[Hash::ZERO]);
        adv.observe(
            0,
            true,
            &ConsensusMessage::Votes {
                request_id: 1,
                verdicts: vec![(Hash::ZERO, Verdict::Valid)],
                finality_vote: Some(old.clone()),
            },
        );
        let out = answer(&mut adv, Strategy::ReplayOldVotes, &[spend(0, 1).txid()]);
        assert_eq!(out.len(), 2);
        assert_eq!(verdicts_and_vote(&out).1, Some(old));
    }
}
