//! The UTXO view validation sees: the ledger's durable view plus the
//! transactions finalized here but not yet committed (outputs they create
//! are spendable, outpoints they spend are spent), so chains of payments
//! work before the ledger catches up. Read-only; dropped entry by entry as
//! the ledger reports them durable.

use super::{Mempool, TxStatus};
use crate::ledger::{bonds_created, Bond, BondState, UtxoEntry, UtxoState, UtxoView, ViewError};
use crate::types::{Hash, OutPoint, PublicKeyBytes, Tx};

pub struct OverlayView<'a, S, V> {
    pub pool: &'a Mempool<S>,
    pub base: &'a V,
}

impl<S, V: UtxoView> OverlayView<'_, S, V> {
    /// The finalized transaction spending `outpoint`, pending or durable.
    pub fn finalized_spender(&self, outpoint: &OutPoint) -> Result<Option<Hash>, ViewError> {
        if let Some(by) = self.pool.finalized_spender(outpoint) {
            return Ok(Some(by));
        }
        Ok(match self.base.utxo(outpoint)? {
            Some(UtxoEntry {
                state: UtxoState::Spent { by },
                ..
            }) => Some(by),
            _ => None,
        })
    }

    /// The finalized tx here that created `outpoint`, not yet durable.
    fn pending_parent(&self, outpoint: &OutPoint) -> Option<&Tx> {
        self.pool
            .get(&outpoint.txid)
            .filter(|parent| parent.status == TxStatus::Finalized)
            .map(|parent| &parent.tx)
    }

    /// `outpoint`'s bond if it is a collateral itself: output 0 of a
    /// registration. One level, so a chain of pending txs is never walked.
    fn collateral(&self, outpoint: &OutPoint) -> Result<Option<Bond>, ViewError> {
        match self.pending_parent(outpoint) {
            Some(parent) => Ok(parent
                .registration
                .as_ref()
                .filter(|_| outpoint.vout == 0)
                .map(|registration| Bond {
                    identity: registration.identity,
                    collateral: *outpoint,
                })),
            None => Ok(self
                .base
                .bond(outpoint)?
                .filter(|bond| bond.is_collateral(outpoint))),
        }
    }
}

impl<S, V: UtxoView> UtxoView for OverlayView<'_, S, V> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<UtxoEntry>, ViewError> {
        let entry = match self.pending_parent(outpoint) {
            Some(parent) => usize::try_from(outpoint.vout)
                .ok()
                .and_then(|vout| parent.outputs.get(vout))
                .map(|output| UtxoEntry {
                    output: *output,
                    state: UtxoState::Unspent,
                }),
            None => self.base.utxo(outpoint)?,
        };
        Ok(entry.map(|mut e| {
            if e.state.is_unspent() {
                if let Some(by) = self.pool.finalized_spender(outpoint) {
                    e.state = UtxoState::Spent { by };
                }
            }
            e
        }))
    }

    fn tip_height(&self) -> Result<u64, ViewError> {
        self.base.tip_height()
    }

    /// Registrations count once final in a block, never from the pool.
    fn registered_at(&self, identity: &PublicKeyBytes) -> Result<Option<u64>, ViewError> {
        self.base.registered_at(identity)
    }

    fn bond(&self, outpoint: &OutPoint) -> Result<Option<Bond>, ViewError> {
        let Some(parent) = self.pending_parent(outpoint) else {
            return self.base.bond(outpoint);
        };
        let bonds = bonds_created(parent, |input| self.collateral(input))?;
        Ok(bonds
            .into_iter()
            .find_map(|(vout, bond)| (vout == outpoint.vout).then_some(bond)))
    }

    /// Bonds let go only by the final chain, never by the pool.
    fn bond_state(&self, bond: &Bond) -> Result<BondState, ViewError> {
        self.base.bond_state(bond)
    }
}
