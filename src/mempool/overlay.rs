//! The UTXO view validation sees: the ledger's durable view plus the
//! transactions finalized here but not yet committed (outputs they create
//! are spendable, outpoints they spend are spent), so chains of payments
//! work before the ledger catches up. Read-only; dropped entry by entry as
//! the ledger reports them durable.

use super::{Mempool, TxStatus};
use crate::ledger::{UtxoEntry, UtxoState, UtxoView, ViewError};
use crate::types::{Hash, OutPoint, PublicKeyBytes};

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
}

impl<S, V: UtxoView> UtxoView for OverlayView<'_, S, V> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<UtxoEntry>, ViewError> {
        let created = self
            .pool
            .get(&outpoint.txid)
            .filter(|parent| parent.status == TxStatus::Finalized);
        let entry = match created {
            Some(parent) => usize::try_from(outpoint.vout)
                .ok()
                .and_then(|vout| parent.tx.outputs.get(vout))
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
}
