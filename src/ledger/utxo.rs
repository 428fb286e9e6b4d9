//! What the ledger knows about an outpoint, and the read interface validation
//! needs. `MemUtxoSet` is the in-memory twin of the LMDB store, used by the
//! simulator, by tests and as the model the store is checked against.

use super::bond::{bonds_created, Bond, BondState};
use crate::types::{Address, Amount, Hash, OutPoint, PublicKeyBytes, Tx, TxOut};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;

/// Durable state of an outpoint. `Locked` lives only in the mempool (a pending
/// spend), so it is not stored here; archival is a property of the spending
/// transaction (the store's tx record), not of the outpoint.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum UtxoState {
    Unspent,
    /// Spent by the finalized transaction `by`.
    Spent {
        by: Hash,
    },
    /// An unspent block reward output, spendable once the tip height
    /// reaches `matures_at`. It keeps this state after maturity: maturity
    /// follows the tip, which a reorg may move back.
    Immature {
        matures_at: u64,
    },
}

impl UtxoState {
    /// Not yet spent by a finalized transaction (mature or not).
    pub fn is_unspent(&self) -> bool {
        !matches!(self, UtxoState::Spent { .. })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct UtxoEntry {
    pub output: TxOut,
    pub state: UtxoState,
}

/// A read failure below the ledger (disk, corruption). Not the peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reading the UTXO set failed: {0}")]
pub struct ViewError(pub String);

/// Read access to outpoints, as validation needs it.
pub trait UtxoView {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<UtxoEntry>, ViewError>;

    /// Height of the tip block, against which reward maturity is judged;
    /// read from the same state as [`Self::utxo`].
    fn tip_height(&self) -> Result<u64, ViewError>;

    /// The height at which the final chain registered masternode
    /// `identity`, if it did (DESIGN §7: an identity registers once).
    fn registered_at(&self, identity: &PublicKeyBytes) -> Result<Option<u64>, ViewError>;

    /// The bond `outpoint` is under, if any (see [`super::bond`]).
    fn bond(&self, outpoint: &OutPoint) -> Result<Option<Bond>, ViewError>;

    /// Where `bond` stands in the final chain's registry, as of the tip.
    fn bond_state(&self, bond: &Bond) -> Result<BondState, ViewError>;
}

/// In-memory UTXO set with an address index, at a tip height.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct MemUtxoSet {
    entries: BTreeMap<OutPoint, UtxoEntry>,
    by_address: BTreeSet<(Address, OutPoint)>,
    tip_height: u64,
    /// Registered masternode identities, with the height that registered them.
    masternodes: BTreeMap<PublicKeyBytes, u64>,
    /// Outputs bound to a collateral, as finalized txs created them.
    bonds: BTreeMap<OutPoint, Bond>,
}

impl MemUtxoSet {
    /// Adds genesis-style outputs that no transaction spends.
    pub fn add_outputs(&mut self, txid: Hash, outputs: &[TxOut]) {
        self.create(txid, outputs, UtxoState::Unspent);
    }

    /// Adds a block's reward outputs, spendable once the tip reaches `matures_at`.
    pub fn add_reward_outputs(&mut self, txid: Hash, outputs: &[TxOut], matures_at: u64) {
        self.create(txid, outputs, UtxoState::Immature { matures_at });
    }

    /// Records a masternode registration made final at `height`.
    pub fn add_masternode(&mut self, identity: PublicKeyBytes, height: u64) {
        self.masternodes.insert(identity, height);
    }

    /// Moves the tip, as applying or undoing blocks does.
    pub fn set_tip_height(&mut self, height: u64) {
        self.tip_height = height;
    }

    fn create(&mut self, txid: Hash, outputs: &[TxOut], state: UtxoState) {
        for (vout, output) in outputs.iter().enumerate() {
            let op = OutPoint {
                txid,
                vout: vout as u32,
            };
            let output = *output;
            self.entries.insert(op, UtxoEntry { output, state });
            self.by_address.insert((output.address, op));
        }
    }

    /// Applies an already validated transaction: spends its inputs, creates its outputs.
    pub fn apply(&mut self, tx: &Tx) {
        let txid = tx.txid();
        for input in &tx.inputs {
            if let Some(entry) = self.entries.get_mut(&input.prev) {
                entry.state = UtxoState::Spent { by: txid };
                self.by_address.remove(&(entry.output.address, input.prev));
            }
        }
        self.add_outputs(txid, &tx.outputs);
        let collateral_of = |op: &OutPoint| {
            let bond = self.bonds.get(op).filter(|b| b.is_collateral(op));
            Ok::<_, Infallible>(bond.copied())
        };
        let Ok(bonds) = bonds_created(tx, collateral_of);
        for (vout, bond) in bonds {
            self.bonds.insert(OutPoint { txid, vout }, bond);
        }
    }

    pub fn unspent_of(&self, address: &Address) -> Vec<(OutPoint, TxOut)> {
        let first = OutPoint {
            txid: Hash::ZERO,
            vout: 0,
        };
        self.by_address
            .range((*address, first)..)
            .take_while(|(a, _)| a == address)
            .filter_map(|(_, op)| self.entries.get(op).map(|e| (*op, e.output)))
            .collect()
    }

    pub fn balance(&self, address: &Address) -> Amount {
        Amount(
            self.unspent_of(address)
                .iter()
                .map(|(_, o)| o.value.0)
                .sum(),
        )
    }

    pub fn entries(&self) -> impl Iterator<Item = (&OutPoint, &UtxoEntry)> {
        self.entries.iter()
    }
}

impl UtxoView for MemUtxoSet {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<UtxoEntry>, ViewError> {
        Ok(self.entries.get(outpoint).copied())
    }

    fn tip_height(&self) -> Result<u64, ViewError> {
        Ok(self.tip_height)
    }

    fn registered_at(&self, identity: &PublicKeyBytes) -> Result<Option<u64>, ViewError> {
        Ok(self.masternodes.get(identity).copied())
    }

    fn bond(&self, outpoint: &OutPoint) -> Result<Option<Bond>, ViewError> {
        Ok(self.bonds.get(outpoint).copied())
    }

    /// The model keeps no registry statuses: a bond stays bonded.
    fn bond_state(&self, _bond: &Bond) -> Result<BondState, ViewError> {
        Ok(BondState::Bonded)
    }
}
