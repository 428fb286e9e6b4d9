//! The masternode registry: every member the certified chain ever admitted,
//! and the validator set it decides for each epoch (DESIGN §7).
//!
//! Fed certified blocks in height order, it returns the snapshot of epoch
//! `e + 2` when the last block of epoch `e` is applied, so every node that
//! holds the same certified chain holds the same snapshots.

use super::EpochRules;
use crate::chain::Standing;
use crate::finality::{ValidatorSet, ValidatorSetError};
use crate::ledger::{Bond, BondState};
use crate::types::{Address, OutPoint, PublicKeyBytes, Registration, Tier, Tx, Validator};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// Where a member stands in the certified chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Registered (or in the genesis) and neither deregistered nor slashed.
    Registered,
    /// Its collateral was spent by a tx certified at `height`.
    Deregistered { height: u64 },
    /// Equivocation evidence against it was certified at `height`.
    Slashed { height: u64 },
}

/// One masternode as the certified chain knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub validator: Validator,
    /// `None` for genesis members, which lock no collateral.
    pub tier: Option<Tier>,
    pub collateral: Option<OutPoint>,
    pub listen_addr: Option<SocketAddr>,
    pub payout: Address,
    /// Height of the certified block that registered it (0: genesis).
    pub registered_at: u64,
    pub status: MemberStatus,
    /// Last epoch in which a certified block carried its vote. A new member
    /// starts as seen in the epoch before it may vote, so it has its full
    /// `inactive_epochs` in the set to show up.
    pub last_seen_epoch: u64,
}

impl Member {
    /// The first epoch in which it votes.
    pub fn active_from(&self, rules: &EpochRules) -> u64 {
        match self.registered_at {
            0 => 0,
            height => rules.effective_epoch(height),
        }
    }

    /// The first epoch in which it no longer votes, if it left or was removed.
    pub fn leaves_at(&self, rules: &EpochRules) -> Option<u64> {
        match self.status {
            MemberStatus::Registered => None,
            MemberStatus::Deregistered { height } | MemberStatus::Slashed { height } => {
                Some(rules.effective_epoch(height))
            }
        }
    }

    /// The first epoch in which a deregistered member's collateral may move
    /// again; `None` while registered, and forever for a slashed member.
    pub fn unbonded_at(&self, rules: &EpochRules) -> Option<u64> {
        match self.status {
            MemberStatus::Deregistered { height } => Some(
                rules
                    .effective_epoch(height)
                    .saturating_add(rules.unbonding_epochs()),
            ),
            MemberStatus::Registered | MemberStatus::Slashed { .. } => None,
        }
    }

    /// Where `bond` stands with this member, the chain's tip at
    /// `tip_height`: a bond names a collateral, and only the member that
    /// holds that collateral keeps it bound.
    pub fn bond_state(&self, bond: &Bond, rules: &EpochRules, tip_height: u64) -> BondState {
        if self.collateral != Some(bond.collateral) {
            return BondState::Released;
        }
        match self.status {
            MemberStatus::Registered => BondState::Bonded,
            MemberStatus::Slashed { .. } => BondState::Burned,
            MemberStatus::Deregistered { .. } => match self.unbonded_at(rules) {
                Some(until_epoch) if rules.epoch_of(tip_height) < until_epoch => {
                    BondState::Unbonding { until_epoch }
                }
                _ => BondState::Released,
            },
        }
    }

    /// Whether it signed recently enough, as of the end of epoch `decided_by`.
    fn is_live(&self, rules: &EpochRules, decided_by: u64) -> bool {
        self.last_seen_epoch.saturating_add(rules.inactive_epochs()) > decided_by
    }
}

/// The validator set of one epoch, with what the operator surface shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub epoch: u64,
    /// Ordered by identity key: the order is part of the set hash.
    pub members: Vec<Member>,
}

impl Snapshot {
    pub fn validator_set(&self) -> Result<ValidatorSet, ValidatorSetError> {
        ValidatorSet::new(self.members.iter().map(|m| m.validator).collect())
    }

    pub fn total_weight(&self) -> u64 {
        self.members
            .iter()
            .fold(0u64, |sum, m| sum.saturating_add(m.validator.weight))
    }
}

/// What one certified block changes in the registry.
#[derive(Clone, Copy, Debug)]
pub struct BlockEffects<'a> {
    pub height: u64,
    /// The block's archived transactions, in block order.
    pub txs: &'a [&'a Tx],
    /// The validators seen live in it: its producer, its certificate's
    /// signers, the voters of the window votes its proofs carry and the
    /// validators of its heartbeats.
    pub signers: &'a [PublicKeyBytes],
    /// Identities whose equivocation evidence the block carries.
    pub slashed: &'a [PublicKeyBytes],
}

/// What applying one block changed: the members to store again, and the
/// set it decided if it ended an epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub changed: Vec<Member>,
    pub snapshot: Option<Snapshot>,
}

/// Why the registry refused a block or a registration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("certified block {got} applied out of order: the registry expects height {expected}")]
    OutOfOrder { expected: u64, got: u64 },
    #[error(
        "identity {identity:?} is already a masternode (registered at height {height}): \
         one identity registers once; use a new identity key"
    )]
    AlreadyRegistered {
        identity: PublicKeyBytes,
        height: u64,
    },
}

/// Every member the certified chain admitted, and the latest decided set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registry {
    rules: EpochRules,
    members: BTreeMap<PublicKeyBytes, Member>,
    by_collateral: BTreeMap<OutPoint, PublicKeyBytes>,
    next_height: u64,
    latest: Snapshot,
}

impl Registry {
    /// The registry at genesis: the genesis validators, paid at `payout(id)`,
    /// are the set of epochs 0 and 1.
    pub fn genesis(
        rules: EpochRules,
        validators: &[Validator],
        payout: impl Fn(&PublicKeyBytes) -> Address,
    ) -> Registry {
        let members: BTreeMap<PublicKeyBytes, Member> = validators
            .iter()
            .map(|v| {
                let member = Member {
                    validator: *v,
                    tier: None,
                    collateral: None,
                    listen_addr: None,
                    payout: payout(&v.id),
                    registered_at: 0,
                    status: MemberStatus::Registered,
                    last_seen_epoch: 0,
                };
                (v.id, member)
            })
            .collect();
        let latest = Snapshot {
            epoch: 1,
            members: members.values().cloned().collect(),
        };
        Registry {
            rules,
            members,
            by_collateral: BTreeMap::new(),
            next_height: 1,
            latest,
        }
    }

    /// The registry as stored: its members, the height it expects next and
    /// the latest set it decided.
    pub fn restore(
        rules: EpochRules,
        members: Vec<Member>,
        next_height: u64,
        latest: Snapshot,
    ) -> Registry {
        let by_collateral = members
            .iter()
            .filter(|m| m.status == MemberStatus::Registered)
            .filter_map(|m| m.collateral.map(|c| (c, m.validator.id)))
            .collect();
        Registry {
            rules,
            members: members.into_iter().map(|m| (m.validator.id, m)).collect(),
            by_collateral,
            next_height,
            latest,
        }
    }

    pub fn rules(&self) -> &EpochRules {
        &self.rules
    }

    /// The certified height the registry expects next.
    pub fn next_height(&self) -> u64 {
        self.next_height
    }

    /// The most recently decided set (epoch 1's at genesis).
    pub fn latest(&self) -> &Snapshot {
        &self.latest
    }

    pub fn member(&self, identity: &PublicKeyBytes) -> Option<&Member> {
        self.members.get(identity)
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Where `identity` stands as of the block at `height` (at or above
    /// the last block applied: the registry knows no later block).
    pub fn standing(&self, identity: &PublicKeyBytes, height: u64) -> Standing {
        match self.members.get(identity) {
            Some(m) if m.registered_at <= height => match m.status {
                MemberStatus::Slashed { height: at } if at <= height => {
                    Standing::Slashed { height: at }
                }
                _ => Standing::Member,
            },
            _ => Standing::NotAMember,
        }
    }

    /// The member whose collateral is `outpoint`, while it is locked.
    pub fn collateral_owner(&self, outpoint: &OutPoint) -> Option<&Member> {
        self.by_collateral
            .get(outpoint)
            .and_then(|id| self.members.get(id))
    }

    /// Whether a registration could still take effect: its identity is new.
    pub fn check_registration(&self, registration: &Registration) -> Result<(), RegistryError> {
        match self.members.get(&registration.identity) {
            None => Ok(()),
            Some(member) => Err(RegistryError::AlreadyRegistered {
                identity: registration.identity,
                height: member.registered_at,
            }),
        }
    }

    /// Applies the next certified block: what changed, and the snapshot it
    /// decides when it is the last block of an epoch.
    pub fn apply(&mut self, block: &BlockEffects<'_>) -> Result<Applied, RegistryError> {
        if block.height != self.next_height {
            return Err(RegistryError::OutOfOrder {
                expected: self.next_height,
                got: block.height,
            });
        }
        let height = block.height;
        let epoch = self.rules.epoch_of(height);
        // The first step stores the genesis members too: from then on the
        // stored records are the whole registry.
        let mut changed: BTreeSet<PublicKeyBytes> = if height == 1 {
            self.members.keys().copied().collect()
        } else {
            BTreeSet::new()
        };
        // Registrations first: a block may archive a collateral's spend
        // before (in txid order) the registration that created it.
        for tx in block.txs {
            if let Some(registration) = &tx.registration {
                if self.register(tx, registration, height) {
                    changed.insert(registration.identity);
                }
            }
        }
        for input in block.txs.iter().flat_map(|tx| &tx.inputs) {
            if let Some(id) = self.by_collateral.remove(&input.prev) {
                self.set_status(&id, MemberStatus::Deregistered { height });
                changed.insert(id);
            }
        }
        for id in block.slashed {
            if self.set_status(id, MemberStatus::Slashed { height }) {
                changed.insert(*id);
            }
        }
        for id in block.signers {
            if let Some(member) = self.members.get_mut(id) {
                if member.last_seen_epoch < epoch {
                    member.last_seen_epoch = epoch;
                    changed.insert(*id);
                }
            }
        }
        self.next_height = height.saturating_add(1);
        let snapshot = self.rules.ends_epoch(height).then(|| {
            self.latest = self.decide(self.rules.effective_epoch(height), epoch);
            self.latest.clone()
        });
        Ok(Applied {
            changed: changed
                .iter()
                .filter_map(|id| self.members.get(id).cloned())
                .collect(),
            snapshot,
        })
    }

    /// A new identity's registration, locking output 0; a repeated identity
    /// changes nothing (its output 0 is then an ordinary output).
    fn register(&mut self, tx: &Tx, registration: &Registration, height: u64) -> bool {
        if self.check_registration(registration).is_err() {
            return false;
        }
        let collateral = tx.outpoint(0);
        let member = Member {
            validator: Validator {
                id: registration.identity,
                vrf_key: registration.vrf_key,
                weight: registration.tier.weight(),
            },
            tier: Some(registration.tier),
            collateral: Some(collateral),
            listen_addr: Some(registration.listen_addr),
            payout: registration.payout,
            registered_at: height,
            status: MemberStatus::Registered,
            last_seen_epoch: self.rules.effective_epoch(height).saturating_sub(1),
        };
        self.by_collateral.insert(collateral, registration.identity);
        self.members.insert(registration.identity, member);
        true
    }

    /// Sets a member's status, unless it was slashed already (slashing
    /// overrides a deregistration: the collateral still burns). Whether it
    /// changed.
    fn set_status(&mut self, id: &PublicKeyBytes, status: MemberStatus) -> bool {
        match self.members.get_mut(id) {
            Some(member) if !matches!(member.status, MemberStatus::Slashed { .. }) => {
                member.status = status;
                true
            }
            _ => false,
        }
    }

    /// The set of `epoch`, decided at the end of epoch `decided_by`:
    /// registered, live members. If none is live the previous set carries
    /// on: a set never empties, or no block could ever be certified again.
    fn decide(&self, epoch: u64, decided_by: u64) -> Snapshot {
        let members: Vec<Member> = self
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Registered && m.is_live(&self.rules, decided_by))
            .cloned()
            .collect();
        if members.is_empty() {
            return Snapshot {
                epoch,
                members: self.latest.members.clone(),
            };
        }
        Snapshot { epoch, members }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Amount, Hash, SignatureBytes, TxIn, TxOut, VrfPublicBytes, TX_VERSION};

    fn rules() -> EpochRules {
        EpochRules::new(10, 2, 3).unwrap()
    }

    fn genesis_validator(byte: u8) -> Validator {
        Validator {
            id: PublicKeyBytes([byte; 32]),
            vrf_key: VrfPublicBytes([byte; 32]),
            weight: 10,
        }
    }

    fn registry() -> Registry {
        let set: Vec<Validator> = (1..=4).map(genesis_validator).collect();
        Registry::genesis(rules(), &set, |id| Address([id.0[0]; 20]))
    }

    fn registration_tx(byte: u8, tier: Tier) -> Tx {
        Tx {
            version: crate::types::TX_VERSION_REGISTRATION,
            inputs: vec![TxIn {
                prev: OutPoint {
                    txid: Hash::digest(&[byte]),
                    vout: 0,
                },
                pubkey: PublicKeyBytes([byte; 32]),
                sig: SignatureBytes([0; 64]),
            }],
            outputs: vec![TxOut {
                value: tier.collateral(),
                address: Address([byte; 20]),
            }],
            registration: Some(Box::new(Registration {
                tier,
                identity: PublicKeyBytes([byte; 32]),
                vrf_key: VrfPublicBytes([byte; 32]),
                listen_addr: "127.0.0.1:1".parse().unwrap(),
                payout: Address([byte; 20]),
                identity_sig: SignatureBytes([0; 64]),
            })),
        }
    }

    fn spend(outpoint: OutPoint) -> Tx {
        Tx {
            version: TX_VERSION,
            inputs: vec![TxIn {
                prev: outpoint,
                pubkey: PublicKeyBytes([0; 32]),
                sig: SignatureBytes([0; 64]),
            }],
            outputs: vec![TxOut {
                value: Amount(1),
                address: Address([0; 20]),
            }],
            registration: None,
        }
    }

    /// Every genesis validator signs every block unless listed in `absent`.
    fn signers(absent: &[u8]) -> Vec<PublicKeyBytes> {
        (1..=4)
            .filter(|b| !absent.contains(b))
            .map(|b| PublicKeyBytes([b; 32]))
            .collect()
    }

    /// Applies empty blocks (signed by all but `absent`) up to `height`,
    /// returning the snapshots decided on the way.
    fn run_to(reg: &mut Registry, height: u64, absent: &[u8]) -> Vec<Snapshot> {
        let signers = signers(absent);
        let mut decided = Vec::new();
        while reg.next_height() <= height {
            let block = BlockEffects {
                height: reg.next_height(),
                txs: &[],
                signers: &signers,
                slashed: &[],
            };
            decided.extend(reg.apply(&block).unwrap().snapshot);
        }
        decided
    }

    fn apply_txs(reg: &mut Registry, txs: &[&Tx]) -> Option<Snapshot> {
        let signers = signers(&[]);
        let block = BlockEffects {
            height: reg.next_height(),
            txs,
            signers: &signers,
            slashed: &[],
        };
        reg.apply(&block).unwrap().snapshot
    }

    fn ids(snapshot: &Snapshot) -> Vec<u8> {
        snapshot
            .members
            .iter()
            .map(|m| m.validator.id.0[0])
            .collect()
    }

    #[test]
    fn a_registration_votes_from_the_epoch_after_next() {
        let mut reg = registry();
        run_to(&mut reg, 11, &[]);
        let tx = registration_tx(9, Tier::Silver);
        apply_txs(&mut reg, &[&tx]); // height 12, epoch 1
        let member = reg.member(&PublicKeyBytes([9; 32])).unwrap();
        assert_eq!(member.active_from(reg.rules()), 3);
        assert_eq!(member.validator.weight, Tier::Silver.weight());
        let decided = run_to(&mut reg, 19, &[]);
        assert_eq!(decided.iter().map(|s| s.epoch).collect::<Vec<_>>(), [3]);
        assert_eq!(ids(&decided[0]), [1, 2, 3, 4, 9]);
        assert_eq!(decided[0].total_weight(), 40 + 100);
        assert_eq!(reg.latest(), &decided[0]);
    }

    #[test]
    fn spending_the_collateral_deregisters_and_starts_unbonding() {
        let mut reg = registry();
        let tx = registration_tx(9, Tier::Bronze);
        apply_txs(&mut reg, &[&tx]); // height 1
        let before = run_to(&mut reg, 24, &[]);
        assert_eq!(ids(&before[1]), [1, 2, 3, 4, 9], "epoch 3 has it");
        assert!(reg.collateral_owner(&tx.outpoint(0)).is_some());
        let out = spend(tx.outpoint(0));
        apply_txs(&mut reg, &[&out]); // height 25, epoch 2
        let member = reg.member(&PublicKeyBytes([9; 32])).unwrap();
        assert_eq!(member.status, MemberStatus::Deregistered { height: 25 });
        assert_eq!(member.leaves_at(reg.rules()), Some(4));
        assert_eq!(member.unbonded_at(reg.rules()), Some(4 + 3));
        assert!(reg.collateral_owner(&tx.outpoint(0)).is_none());
        // Its spend's coins unbond at the first height of epoch 7 (10 blocks
        // each); a bond naming another collateral is void.
        let bond = Bond {
            identity: PublicKeyBytes([9; 32]),
            collateral: tx.outpoint(0),
        };
        let rules = reg.rules();
        let until_epoch = 7;
        assert_eq!(
            member.bond_state(&bond, rules, 69),
            BondState::Unbonding { until_epoch }
        );
        assert_eq!(member.bond_state(&bond, rules, 70), BondState::Released);
        let other = Bond {
            collateral: out.outpoint(0),
            ..bond
        };
        assert_eq!(member.bond_state(&other, rules, 0), BondState::Released);
        // Still live when epoch 4 is decided: it leaves because it deregistered.
        let decided = run_to(&mut reg, 29, &[]);
        assert_eq!((decided[0].epoch, ids(&decided[0])), (4, vec![1, 2, 3, 4]));
    }

    #[test]
    fn registration_and_spend_in_one_block_never_vote() {
        let mut reg = registry();
        let tx = registration_tx(9, Tier::Bronze);
        let out = spend(tx.outpoint(0));
        // The spend comes first, as txid order may put it.
        apply_txs(&mut reg, &[&out, &tx]);
        let member = reg.member(&PublicKeyBytes([9; 32])).unwrap();
        assert_eq!(member.status, MemberStatus::Deregistered { height: 1 });
        let decided = run_to(&mut reg, 29, &[]);
        assert!(decided.iter().all(|s| ids(s) == [1, 2, 3, 4]));
    }

    #[test]
    fn an_identity_registers_once() {
        let mut reg = registry();
        let first = registration_tx(9, Tier::Bronze);
        apply_txs(&mut reg, &[&first]);
        let mut second = registration_tx(9, Tier::Gold);
        second.inputs[0].prev.vout = 7;
        assert_eq!(
            reg.check_registration(second.registration.as_deref().unwrap()),
            Err(RegistryError::AlreadyRegistered {
                identity: PublicKeyBytes([9; 32]),
                height: 1
            })
        );
        apply_txs(&mut reg, &[&second]);
        let member = reg.member(&PublicKeyBytes([9; 32])).unwrap();
        assert_eq!(member.tier, Some(Tier::Bronze));
        assert!(reg.collateral_owner(&second.outpoint(0)).is_none());
    }

    #[test]
    fn an_absent_member_leaves_after_its_inactive_epochs() {
        let mut reg = registry();
        // Validator 4 signs nothing from height 1 on (epoch 0 counts as seen).
        let decided = run_to(&mut reg, 39, &[4]);
        let sets: Vec<(u64, Vec<u8>)> = decided.iter().map(|s| (s.epoch, ids(s))).collect();
        // Seen in epoch 0; inactive_epochs = 2: still live at the end of
        // epoch 1, gone from the set decided at the end of epoch 2.
        assert_eq!(
            sets,
            [
                (2, vec![1, 2, 3, 4]),
                (3, vec![1, 2, 3, 4]),
                (4, vec![1, 2, 3]),
                (5, vec![1, 2, 3])
            ]
        );
    }

    #[test]
    fn a_slashed_member_is_removed_and_never_unbonds() {
        let mut reg = registry();
        let tx = registration_tx(9, Tier::Bronze);
        apply_txs(&mut reg, &[&tx]);
        let out = spend(tx.outpoint(0));
        apply_txs(&mut reg, &[&out]); // deregistered at 2
        let signers = signers(&[]);
        let slashed = [PublicKeyBytes([9; 32]), PublicKeyBytes([2; 32])];
        let block = BlockEffects {
            height: 3,
            txs: &[],
            signers: &signers,
            slashed: &slashed,
        };
        reg.apply(&block).unwrap();
        let nine = reg.member(&PublicKeyBytes([9; 32])).unwrap();
        assert_eq!(nine.status, MemberStatus::Slashed { height: 3 });
        assert_eq!(nine.unbonded_at(reg.rules()), None);
        let bond = Bond {
            identity: PublicKeyBytes([9; 32]),
            collateral: tx.outpoint(0),
        };
        assert_eq!(
            nine.bond_state(&bond, reg.rules(), u64::MAX),
            BondState::Burned
        );
        let decided = run_to(&mut reg, 9, &[]);
        assert_eq!(ids(&decided[0]), [1, 3, 4]);
    }

    #[test]
    fn a_new_member_that_never_votes_leaves_after_its_grace() {
        let mut reg = registry();
        let tx = registration_tx(9, Tier::Bronze);
        apply_txs(&mut reg, &[&tx]); // epoch 0: votes from epoch 2
        let decided = run_to(&mut reg, 49, &[]);
        let with_nine: Vec<u64> = decided
            .iter()
            .filter(|s| ids(s).contains(&9))
            .map(|s| s.epoch)
            .collect();
        // Absent through epochs 2 and 3 (inactive_epochs = 2): the set
        // decided at the end of epoch 3, epoch 5's, is the first without it.
        assert_eq!(with_nine, [2, 3, 4]);
    }

    #[test]
    fn a_set_never_empties() {
        let mut reg = registry();
        let decided = run_to(&mut reg, 59, &[1, 2, 3, 4]);
        assert!(decided.iter().all(|s| ids(s) == [1, 2, 3, 4]));
    }

    #[test]
    fn blocks_apply_in_height_order_only() {
        let mut reg = registry();
        let block = BlockEffects {
            height: 2,
            txs: &[],
            signers: &[],
            slashed: &[],
        };
        assert_eq!(
            reg.apply(&block),
            Err(RegistryError::OutOfOrder {
                expected: 1,
                got: 2
            })
        );
    }

    #[test]
    fn the_sets_are_a_function_of_the_chain() {
        // Two registries fed the same blocks decide the same sets, whatever
        // else they were asked in between.
        let txs: Vec<Tx> = (10..20).map(|b| registration_tx(b, Tier::Bronze)).collect();
        let mut a = registry();
        let mut b = registry();
        let mut decided = (Vec::new(), Vec::new());
        for (i, tx) in txs.iter().enumerate() {
            decided.0.extend(apply_txs(&mut a, &[tx]));
            let _ = b.check_registration(tx.registration.as_deref().unwrap());
            decided.1.extend(apply_txs(&mut b, &[tx]));
            if i % 3 == 0 {
                let out = spend(tx.outpoint(0));
                decided.0.extend(apply_txs(&mut a, &[&out]));
                decided.1.extend(apply_txs(&mut b, &[&out]));
            }
        }
        decided.0.extend(run_to(&mut a, 29, &[]));
        decided.1.extend(run_to(&mut b, 29, &[]));
        assert_eq!(decided.0, decided.1);
        assert_eq!(a, b);
        let last = decided.0.last().unwrap();
        assert_eq!(last.validator_set().unwrap().len(), 4 + 6);
    }

    #[test]
    fn a_restored_registry_carries_on_like_the_original() {
        // What the store keeps after each block: the changed members, the
        // next height, the latest set. Restored from it, a registry
        // decides what the uninterrupted one decides.
        let txs: Vec<Tx> = (10..16).map(|b| registration_tx(b, Tier::Bronze)).collect();
        let mut original = registry();
        // The store starts empty: the first step writes the genesis members.
        let mut stored: BTreeMap<PublicKeyBytes, Member> = BTreeMap::new();
        let signers = signers(&[]);
        for (i, tx) in txs.iter().enumerate() {
            let out = spend(txs[i.saturating_sub(1)].outpoint(0));
            let block_txs: Vec<&Tx> = if i % 2 == 1 { vec![tx, &out] } else { vec![tx] };
            let block = BlockEffects {
                height: original.next_height(),
                txs: &block_txs,
                signers: &signers,
                slashed: &[],
            };
            let applied = original.apply(&block).unwrap();
            stored.extend(applied.changed.into_iter().map(|m| (m.validator.id, m)));
        }
        let mut restored = Registry::restore(
            rules(),
            stored.into_values().collect(),
            original.next_height(),
            original.latest().clone(),
        );
        assert_eq!(restored, original);
        assert_eq!(
            run_to(&mut restored, 39, &[2]),
            run_to(&mut original, 39, &[2])
        );
    }
}
