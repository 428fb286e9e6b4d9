//! Byzantine validators. Each runs a real `Engine` for its state; only what
//! it sends is rewritten here, by one [`Strategy`]. The [`Adversary`] sees
//! every message any node sends (a strong adversary) but holds no honest key.
//!
//! Owns the adversary's knowledge and its RNG; must never touch an honest
//! node's engine, ledger or outgoing messages.

use super::rng::below;
use crate::consensus::{ConsensusMessage, NodeId, Output, Verdict};
use crate::crypto::Keypair;
use crate::finality::WindowVote;
use crate::types::{Hash, OutPoint, Tx};
use rand_chacha::ChaCha20Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Window votes the adversary keeps for replay.
const ARCHIVE_CAPACITY: usize = 256;

/// How a Byzantine validator answers polls and signs windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strategy {
    /// `Invalid` for everything, never a window vote.
    AlwaysInvalid,
    /// `Valid` for everything, and window votes over every tx it has seen,
    /// both sides of a double spend included; relays no transactions, so
    /// each side of a double spend spreads only as far as honest gossip takes it.
    ValidForAll,
    /// `Valid` (and signed in its windows) for whichever side of a conflict
    /// is currently losing among honest preferences, to keep the split alive.
    KeepSplit,
    /// Sends nothing at all.
    Silent,
    /// Sends, beside its own windows, window votes replayed from earlier
    /// ones (its own and other validators').
    ReplayOldVotes,
    /// Sends window votes signed with a wrong key, or in another validator's name.
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

/// What the Byzantine validators know and share.
pub struct Adversary {
    rng: ChaCha20Rng,
    /// Every spend of every outpoint seen in any message: the conflict sets.
    spends: BTreeMap<OutPoint, BTreeSet<Hash>>,
    inputs: BTreeMap<Hash, Vec<OutPoint>>,
    /// Every txid seen, in order; each Byzantine voter's windows cover a
    /// suffix of it (`signed_upto`).
    seen: Vec<Hash>,
    signed_upto: BTreeMap<NodeId, usize>,
    /// Honest nodes whose latest verdict on a txid was `Valid`.
    honest_valid: BTreeMap<Hash, BTreeSet<usize>>,
    /// Recent window votes, from anyone.
    archive: VecDeque<WindowVote>,
    honest_ids: Vec<NodeId>,
    /// A key no validator owns, for votes signed with the wrong key.
    forger: Keypair,
}

impl Adversary {
    pub fn new(honest_ids: Vec<NodeId>, rng: ChaCha20Rng) -> Adversary {
        Adversary {
            rng,
            spends: BTreeMap::new(),
            inputs: BTreeMap::new(),
            seen: Vec::new(),
            signed_upto: BTreeMap::new(),
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
            ConsensusMessage::Votes { verdicts, .. } if honest => {
                for (txid, verdict) in verdicts {
                    let nodes = self.honest_valid.entry(*txid).or_default();
                    if *verdict == Verdict::Valid {
                        nodes.insert(from);
                    } else {
                        nodes.remove(&from);
                    }
                }
            }
            ConsensusMessage::WindowVote(window) => {
                if self.archive.len() == ARCHIVE_CAPACITY {
                    self.archive.pop_front();
                }
                self.archive.push_back((**window).clone());
            }
            _ => {}
        }
    }

    pub fn observe_tx(&mut self, tx: &Tx) {
        let txid = tx.txid();
        if self.inputs.contains_key(&txid) {
            return;
        }
        for input in &tx.inputs {
            self.spends.entry(input.prev).or_default().insert(txid);
        }
        self.inputs
            .insert(txid, tx.inputs.iter().map(|i| i.prev).collect());
        self.seen.push(txid);
    }

    /// What a Byzantine node following `strategy` actually sends instead of `out`.
    pub fn rewrite(&mut self, strategy: Strategy, me: &Keypair, out: Output) -> Vec<Output> {
        let msg = match &out {
            Output::Send { msg, .. }
            | Output::Broadcast { msg, .. }
            | Output::RelayToObservers { msg, .. } => msg,
            Output::Event(_) | Output::Misbehaved { .. } => return vec![out],
        };
        let withheld = strategy == Strategy::ValidForAll
            && matches!(msg, ConsensusMessage::Tx(_) | ConsensusMessage::Txs { .. });
        if strategy == Strategy::Silent || withheld {
            return Vec::new();
        }
        match out {
            Output::Send {
                to,
                msg:
                    ConsensusMessage::Votes {
                        request_id,
                        verdicts,
                    },
            } => {
                let verdicts = verdicts
                    .into_iter()
                    .map(|(txid, honest)| (txid, self.verdict(strategy, &txid, honest)))
                    .collect();
                vec![Output::Send {
                    to,
                    msg: ConsensusMessage::Votes {
                        request_id,
                        verdicts,
                    },
                }]
            }
            Output::Broadcast {
                msg: ConsensusMessage::WindowVote(window),
                skip,
            } if window.vote.voter == me.public() => self
                .windows(strategy, me, Arc::unwrap_or_clone(window))
                .into_iter()
                .map(|w| Output::Broadcast {
                    msg: ConsensusMessage::WindowVote(Arc::new(w)),
                    skip: skip.clone(),
                })
                .collect(),
            out => vec![out],
        }
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

    /// The windows sent in place of our honest `window`.
    fn windows(&mut self, strategy: Strategy, me: &Keypair, window: WindowVote) -> Vec<WindowVote> {
        let (scope, seq) = (window.vote.scope(), window.vote.seq);
        let from = self.signed_upto.get(&me.public()).copied().unwrap_or(0);
        let fresh: Vec<Hash> = self.seen.get(from..).unwrap_or_default().to_vec();
        self.signed_upto.insert(me.public(), self.seen.len());
        let with = |extra: Vec<Hash>| {
            let mut txids = window.txids.clone();
            txids.extend(extra);
            WindowVote::sign(me, scope, seq, txids)
        };
        match strategy {
            Strategy::AlwaysInvalid | Strategy::Silent => Vec::new(),
            Strategy::ValidForAll => vec![with(fresh)],
            Strategy::KeepSplit => {
                let losing = fresh
                    .into_iter()
                    .filter(|t| self.is_losing(t) == Some(true))
                    .collect();
                vec![with(losing)]
            }
            Strategy::ReplayOldVotes => {
                let old = self.pick_archived();
                std::iter::once(window).chain(old).collect()
            }
            Strategy::ForgeVotes => {
                let pick = below(&mut self.rng, self.honest_ids.len() as u64 + 1) as usize;
                let forged = match self.honest_ids.get(pick) {
                    // In an honest validator's name, signed with our own key.
                    Some(victim) => {
                        let mut w = window.clone();
                        w.vote.voter = *victim;
                        w
                    }
                    // In our own name, signed with a key that is not ours.
                    None => {
                        let mut w =
                            WindowVote::sign(&self.forger, scope, seq, window.txids.clone());
                        w.vote.voter = me.public();
                        w
                    }
                };
                vec![window, forged]
            }
        }
    }

    fn pick_archived(&mut self) -> Option<WindowVote> {
        let i = below(&mut self.rng, self.archive.len() as u64) as usize;
        self.archive.get(i).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finality::VoteScope;
    use crate::sim::rng::concern_rng;
    use crate::types::{Address, Amount, ChainId, PublicKeyBytes, SignatureBytes, TxIn, TxOut};

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
            registration: None,
        }
    }

    fn adversary() -> Adversary {
        Adversary::new(
            vec![Keypair::from_seed_label("h").public()],
            concern_rng(1, "byz"),
        )
    }

    fn byz() -> Keypair {
        Keypair::from_seed_label("byz")
    }

    fn scope() -> VoteScope {
        VoteScope {
            chain_id: ChainId(3),
            genesis_hash: Hash::digest(b"g"),
            epoch: 0,
        }
    }

    /// The windows sent in place of an honest window over `txids`.
    fn sign(adv: &mut Adversary, strategy: Strategy, txids: Vec<Hash>) -> Vec<WindowVote> {
        let honest = WindowVote::sign(&byz(), scope(), 5, txids);
        let out = Output::Broadcast {
            msg: ConsensusMessage::WindowVote(Arc::new(honest)),
            skip: Vec::new(),
        };
        adv.rewrite(strategy, &byz(), out)
            .into_iter()
            .map(|o| match o {
                Output::Broadcast {
                    msg: ConsensusMessage::WindowVote(w),
                    ..
                } => Arc::unwrap_or_clone(w),
                other => panic!("not a window: {other:?}"),
            })
            .collect()
    }

    fn answer(adv: &mut Adversary, strategy: Strategy, txids: &[Hash]) -> Vec<Verdict> {
        let out = Output::Send {
            to: PublicKeyBytes([9; 32]),
            msg: ConsensusMessage::Votes {
                request_id: 7,
                verdicts: txids.iter().map(|t| (*t, Verdict::Invalid)).collect(),
            },
        };
        match adv.rewrite(strategy, &byz(), out).first() {
            Some(Output::Send {
                msg: ConsensusMessage::Votes { verdicts, .. },
                ..
            }) => verdicts.iter().map(|(_, v)| *v).collect(),
            other => panic!("not votes: {other:?}"),
        }
    }

    #[test]
    fn keep_split_backs_the_side_honest_nodes_abandon_and_signs_it() {
        let (a, b) = (spend(0, 1), spend(0, 2));
        let mut adv = adversary();
        adv.observe_tx(&a);
        adv.observe_tx(&b);
        let votes_for = |txid: Hash| ConsensusMessage::Votes {
            request_id: 1,
            verdicts: vec![(txid, Verdict::Valid)],
        };
        adv.observe(0, true, &votes_for(a.txid()));
        adv.observe(1, true, &votes_for(a.txid()));
        adv.observe(2, true, &votes_for(b.txid()));
        let verdicts = answer(&mut adv, Strategy::KeepSplit, &[a.txid(), b.txid()]);
        assert_eq!(verdicts, vec![Verdict::Invalid, Verdict::Valid]);
        let sent = sign(&mut adv, Strategy::KeepSplit, vec![a.txid()]);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].position(&b.txid()).is_some());
        assert_eq!(sent[0].check_shape().map(|_| ()), Ok(()));
    }

    #[test]
    fn valid_for_all_signs_both_sides_of_a_double_spend() {
        let (a, b) = (spend(0, 1), spend(0, 2));
        let mut adv = adversary();
        adv.observe_tx(&a);
        adv.observe_tx(&b);
        assert_eq!(
            answer(&mut adv, Strategy::ValidForAll, &[a.txid(), b.txid()]),
            vec![Verdict::Valid; 2]
        );
        let sent = sign(&mut adv, Strategy::ValidForAll, Vec::new());
        assert!(sent[0].position(&a.txid()).is_some() && sent[0].position(&b.txid()).is_some());
        assert_eq!(sent[0].vote.verify_signature(), Ok(()));
        // Each seen tx is signed once: the next window adds nothing new.
        let next = sign(&mut adv, Strategy::ValidForAll, vec![Hash::ZERO]);
        assert_eq!(next[0].txids, vec![Hash::ZERO]);
    }

    #[test]
    fn forged_windows_never_verify() {
        let mut adv = adversary();
        for i in 0..20u8 {
            let sent = sign(
                &mut adv,
                Strategy::ForgeVotes,
                vec![spend(i.into(), 1).txid()],
            );
            assert_eq!(sent.len(), 2);
            assert_eq!(sent[0].vote.verify_signature(), Ok(()));
            assert!(sent[1].vote.verify_signature().is_err());
        }
    }

    #[test]
    fn silent_sends_nothing_and_invalid_never_votes() {
        let mut adv = adversary();
        let txid = spend(0, 1).txid();
        assert!(sign(&mut adv, Strategy::Silent, vec![txid]).is_empty());
        assert!(sign(&mut adv, Strategy::AlwaysInvalid, vec![txid]).is_empty());
        assert_eq!(
            answer(&mut adv, Strategy::AlwaysInvalid, &[txid]),
            vec![Verdict::Invalid]
        );
    }

    #[test]
    fn replay_resends_an_archived_window_beside_its_own() {
        let mut adv = adversary();
        let old = WindowVote::sign(&Keypair::from_seed_label("h"), scope(), 0, vec![Hash::ZERO]);
        adv.observe(
            0,
            true,
            &ConsensusMessage::WindowVote(Arc::new(old.clone())),
        );
        let sent = sign(&mut adv, Strategy::ReplayOldVotes, vec![spend(0, 1).txid()]);
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1], old);
    }
}
