//! Reads for catch-up (DESIGN §8): the finality proofs of the latest
//! finalized transactions, in finalization order. `proofs` is keyed by the
//! tx record's sequence (see `schema`), so "the last N" is a range of keys,
//! read with one cursor and no lookup in `txs`.
//!
//! Read-only: the catch-up thread calls these, never the consensus thread.

use super::lmdb::ReadView;
use super::schema::{self, META_FINALIZED_COUNT};
use super::StoreError;

impl ReadView<'_> {
    /// The sequence the next finalized tx will take: proofs exist for
    /// `0..finalized_count()`.
    pub fn finalized_count(&self) -> Result<u64, StoreError> {
        self.get_meta(META_FINALIZED_COUNT)
    }

    /// Up to `limit` stored proofs with sequences in `from..to`, oldest
    /// first, each with its sequence (bytes as stored, within the table's
    /// size limit).
    pub fn proofs_in(
        &self,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let proofs = self.tables().proofs;
        let max = proofs.spec.max_value_bytes;
        let start = schema::proof_key(from);
        let scan = self.scan(proofs, Some(&start), move |key, value| {
            let key: [u8; 8] = key
                .try_into()
                .map_err(|_| "key is not a sequence".to_string())?;
            if value.len() > max {
                return Err(format!(
                    "value is {} bytes, over the limit of {max}",
                    value.len()
                ));
            }
            Ok((u64::from_be_bytes(key), value.to_vec()))
        })?;
        let mut out = Vec::new();
        for item in scan {
            let (sequence, bytes) = item?;
            if sequence >= to || out.len() >= limit {
                break;
            }
            out.push((sequence, bytes));
        }
        Ok(out)
    }
}
