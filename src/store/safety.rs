//! What this node learned of broken promises (DESIGN §5): window-vote
//! equivocation evidence, and safety violations with the halt they impose.
//! Each change is ONE write transaction: a violation's proofs and the halt
//! flag land together, so a kill -9 leaves either no halt or a halt whose
//! evidence is on disk, and a restart stays halted until an operator
//! clears the flag (the evidence stays).
//! Evidence is opaque bytes here (its format belongs to `finality`); the
//! store never judges it, it only bounds how much is kept per voter.

use super::lmdb::{delete, get, put};
use super::schema::{self, SafetyViolationRecord, META_SAFETY_HALT};
use super::StoreError;
use crate::finality::MAX_WINDOW_EVIDENCE_PER_VOTER;
use crate::types::encoding::encode;
use crate::types::{Hash, OutPoint, PublicKeyBytes};
use ::lmdb::{Cursor, Transaction};

impl super::Store {
    /// Stores window evidence against `voter` for `outpoint`; `false` if
    /// held already or the voter has [`MAX_WINDOW_EVIDENCE_PER_VOTER`]
    /// pieces stored (one is enough to slash it).
    pub fn put_window_evidence(
        &self,
        voter: &PublicKeyBytes,
        outpoint: &OutPoint,
        encoded: &[u8],
    ) -> Result<bool, StoreError> {
        let key = schema::window_evidence_key(voter, outpoint);
        self.write(|txn, t| {
            if get(txn, t.window_evidence, &key)?.is_some() {
                return Ok(false);
            }
            let held = {
                let mut cursor = txn
                    .open_ro_cursor(t.window_evidence.db)
                    .map_err(StoreError::lmdb("cursor over window_evidence".to_string()))?;
                cursor
                    .iter_from(voter.0)
                    .take_while(|pair| pair.as_ref().is_ok_and(|(k, _)| k.starts_with(&voter.0)))
                    .take(MAX_WINDOW_EVIDENCE_PER_VOTER)
                    .count()
            };
            if held >= MAX_WINDOW_EVIDENCE_PER_VOTER {
                return Ok(false);
            }
            put(txn, t.window_evidence, &key, encoded)?;
            Ok(true)
        })
    }

    /// Persists a safety violation and halts on it, in one write. A second
    /// violation is kept too; the halt keeps naming the first.
    pub fn put_safety_halt(&self, record: &SafetyViolationRecord) -> Result<(), StoreError> {
        let key = record.conflicting.0;
        self.write(|txn, t| {
            put(txn, t.safety_violations, &key, &encode(record))?;
            if get(txn, t.meta, META_SAFETY_HALT)?.is_none() {
                put(txn, t.meta, META_SAFETY_HALT, &encode(&record.conflicting))?;
            }
            Ok(())
        })
    }

    /// The operator's decision: finalization may resume. The evidence stays.
    /// `false` if the node was not halted.
    pub fn clear_safety_halt(&self) -> Result<bool, StoreError> {
        self.write(|txn, t| delete(txn, t.meta, META_SAFETY_HALT))
    }

    /// The violation that halts this node, if an operator has not cleared it.
    pub fn safety_halt(&self) -> Result<Option<SafetyViolationRecord>, StoreError> {
        self.read()?.safety_halt()
    }
}

impl super::ReadView<'_> {
    /// The violation that halts this node, if an operator has not cleared it.
    pub fn safety_halt(&self) -> Result<Option<SafetyViolationRecord>, StoreError> {
        let t = self.tables();
        let Some(conflicting) = self.get_decoded::<Hash>(t.meta, META_SAFETY_HALT)? else {
            return Ok(None);
        };
        match self.get_decoded::<SafetyViolationRecord>(t.safety_violations, &conflicting.0)? {
            Some(record) => Ok(Some(record)),
            None => Err(StoreError::corrupt(
                "meta",
                META_SAFETY_HALT,
                format!("the halt names violation {conflicting}, which is not stored"),
            )),
        }
    }

    /// Stored window evidence, at most `limit` pieces, by voter then outpoint.
    pub fn window_evidence(&self, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.opaque_values(self.tables().window_evidence, limit)
    }
}
