//! The chain state a block is validated against, read from one LMDB
//! snapshot: [`StoreChainView`] implements `chain::ChainView` over a
//! `ReadView`, positioned at the block the candidate must extend.
//!
//! Positioned at the tip, "archived" means archived by any block. For a
//! rival of an adopted block it is positioned at that block's parent, and
//! only txs archived at or below the parent's height count, so the
//! entries the rival would re-archive after the undo are not refused.
//! Read-only: it never writes, and a thread holding one must drop it
//! before it writes the store.

use crate::chain::{ChainTip, ChainView, ChainViewError, SlotClock};
use crate::finality::ValidatorSet;
use crate::store::{ReadView, StoreError, TxStatus};
use crate::time::Timestamp;
use crate::types::{Amount, ChainId, Hash, Tx};

pub struct StoreChainView<'s> {
    pub read: ReadView<'s>,
    pub chain_id: ChainId,
    /// The genesis validator set: the snapshot of every slot so far.
    pub validators: &'s ValidatorSet,
    /// The block a candidate must extend.
    pub parent: ChainTip,
    pub now: Timestamp,
    pub slot_clock: SlotClock,
}

fn view_error(e: StoreError) -> ChainViewError {
    ChainViewError(e.to_string())
}

impl ChainView for StoreChainView<'_> {
    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    fn tip(&self) -> ChainTip {
        self.parent
    }

    fn validators_for_slot(&self, _slot: u64) -> Option<&ValidatorSet> {
        Some(self.validators)
    }

    fn is_archived(&self, txid: &Hash) -> Result<bool, ChainViewError> {
        let record = self.read.tx(txid).map_err(view_error)?;
        Ok(matches!(
            record.map(|r| r.status),
            Some(TxStatus::Archived { height, .. }) if height <= self.parent.height
        ))
    }

    fn fee_of(&self, tx: &Tx) -> Result<Option<Amount>, ChainViewError> {
        let mut inputs = Amount::ZERO;
        for input in &tx.inputs {
            let entry = self
                .read
                .utxo(&input.prev)
                .map_err(|e| ChainViewError(e.to_string()))?;
            let Some(entry) = entry else {
                return Ok(None);
            };
            let Some(sum) = inputs.checked_add(entry.output.value) else {
                return Ok(None);
            };
            inputs = sum;
        }
        let Some(outputs) = Amount::checked_sum(tx.outputs.iter().map(|o| o.value)) else {
            return Ok(None);
        };
        Ok(inputs.checked_sub(outputs))
    }

    fn now(&self) -> Timestamp {
        self.now
    }

    fn slot_clock(&self) -> SlotClock {
        self.slot_clock
    }
}
