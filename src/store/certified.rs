//! Block certification in the store (DESIGN §6): this validator's
//! endorsement guard, the certificates it learned and the equivocation
//! evidence it caught, each change in ONE write transaction.
//!
//! The guard (`endorsed`, height → hash) is slashing protection: a
//! validator writes it before its signature leaves the node and never
//! signs a different hash at a height it holds, so a SIGKILL between the
//! write and the send can cost an endorsement, never cause a conflicting
//! one. Certificates and evidence are opaque bytes here (their format
//! belongs to `chain`); the store never judges them.

use super::lmdb::{get_decoded, put, ReadView, Tables};
use super::schema::{self, CertificateRecord};
use super::StoreError;
use crate::types::encoding::encode;
use crate::types::{Hash, PublicKeyBytes};
use ::lmdb::RwTransaction;

/// Which stored equivocation evidence: both tables key it by voter first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvidenceKind {
    /// Two endorsements of one height (`evidence`).
    Endorsement,
    /// Two window votes over conflicting spends (`window_evidence`).
    Window,
}

/// Longer than any evidence key's suffix after the voter, and above it:
/// seeking `voter ‖ this` lands past every piece against `voter`.
const PAST_VOTER: [u8; 64] = [0xFF; 64];

/// What the endorsement guard said about signing `hash` at a height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndorseGuard {
    /// Recorded now: sign it.
    Recorded,
    /// This very hash was endorsed before: signing it again is harmless.
    AlreadyEndorsed,
    /// Another block was endorsed at that height: never sign this one.
    Conflicts { endorsed: Hash },
}

impl super::Store {
    /// Records that this validator endorses `hash` at `height`, unless it
    /// endorsed another block there; one write transaction, committed
    /// before the caller signs.
    pub fn record_endorsement(&self, height: u64, hash: &Hash) -> Result<EndorseGuard, StoreError> {
        let key = schema::height_key(height);
        self.write(|txn, t| match get_decoded::<Hash>(txn, t.endorsed, &key)? {
            Some(endorsed) if endorsed == *hash => Ok(EndorseGuard::AlreadyEndorsed),
            Some(endorsed) => Ok(EndorseGuard::Conflicts { endorsed }),
            None => {
                put(txn, t.endorsed, &key, &encode(hash))?;
                Ok(EndorseGuard::Recorded)
            }
        })
    }

    /// Stores the certificate of `record.hash` at `height` (a later one for
    /// the same height replaces nothing) and raises the certified tip if
    /// it is higher; one write transaction. `false` if one was held.
    pub fn put_certificate(
        &self,
        height: u64,
        record: &CertificateRecord,
    ) -> Result<bool, StoreError> {
        let key = schema::height_key(height);
        self.write(|txn, t| {
            if get_decoded::<CertificateRecord>(txn, t.certificates, &key)?.is_some() {
                return Ok(false);
            }
            put(txn, t.certificates, &key, &encode(record))?;
            raise_final_height(txn, t, height, &record.hash)?;
            let tip: Option<(u64, Hash)> = get_decoded(txn, t.meta, schema::META_CERTIFIED_TIP)?;
            if !matches!(tip, Some((held, _)) if held >= height) {
                put(
                    txn,
                    t.meta,
                    schema::META_CERTIFIED_TIP,
                    &encode(&(height, record.hash)),
                )?;
            }
            Ok(true)
        })
    }

    /// Stores equivocation evidence against `voter` at `height`, one per
    /// pair; `false` if held already.
    pub fn put_evidence(
        &self,
        voter: &PublicKeyBytes,
        height: u64,
        encoded: &[u8],
    ) -> Result<bool, StoreError> {
        let key = schema::evidence_key(voter, height);
        self.write(|txn, t| {
            if super::lmdb::get(txn, t.evidence, &key)?.is_some() {
                return Ok(false);
            }
            put(txn, t.evidence, &key, encoded)?;
            Ok(true)
        })
    }
}

/// The voter an evidence key starts with.
fn voter_of(key: &[u8]) -> Result<PublicKeyBytes, String> {
    key.get(..32)
        .and_then(|prefix| <[u8; 32]>::try_from(prefix).ok())
        .map(PublicKeyBytes)
        .ok_or_else(|| "key does not start with a voter".to_string())
}

/// Raises the final height to `height` if `hash` is both its canonical
/// block and its certified one (whichever of the two is written last).
pub(super) fn raise_final_height(
    txn: &mut RwTransaction<'_>,
    t: &Tables,
    height: u64,
    hash: &Hash,
) -> Result<(), StoreError> {
    let key = schema::height_key(height);
    let canonical: Option<Hash> = get_decoded(txn, t.heights, &key)?;
    let certified: Option<CertificateRecord> = get_decoded(txn, t.certificates, &key)?;
    if canonical != Some(*hash) || !certified.is_some_and(|c| c.hash == *hash) {
        return Ok(());
    }
    let held: Option<u64> = get_decoded(txn, t.meta, schema::META_FINAL_HEIGHT)?;
    if held.is_none() || held < Some(height) {
        put(txn, t.meta, schema::META_FINAL_HEIGHT, &encode(&height))?;
    }
    Ok(())
}

impl ReadView<'_> {
    /// The highest height whose canonical block is certified (0: none).
    pub fn final_height(&self) -> Result<u64, StoreError> {
        Ok(self
            .get_decoded(self.tables().meta, schema::META_FINAL_HEIGHT)?
            .unwrap_or(0))
    }

    /// The height reward maturity is judged at: `min(tip, final + maturity)`,
    /// so a reward matures only `maturity` blocks on AND under a certified block.
    pub fn maturity_height(&self) -> Result<u64, StoreError> {
        let tip = self.tip()?.height;
        let bound = self
            .final_height()?
            .saturating_add(self.reward_maturity_blocks());
        Ok(tip.min(bound))
    }

    /// The hash this validator endorsed at `height`, if any.
    pub fn endorsed_at(&self, height: u64) -> Result<Option<Hash>, StoreError> {
        self.get_decoded(self.tables().endorsed, &schema::height_key(height))
    }

    pub fn certificate_at(&self, height: u64) -> Result<Option<CertificateRecord>, StoreError> {
        self.get_decoded(self.tables().certificates, &schema::height_key(height))
    }

    /// The highest certified height and its block.
    pub fn certified_tip(&self) -> Result<Option<(u64, Hash)>, StoreError> {
        self.get_decoded(self.tables().meta, schema::META_CERTIFIED_TIP)
    }

    /// Stored certificates from `height` up, in height order.
    pub fn scan_certificates_from(
        &self,
        height: u64,
    ) -> Result<super::Scan<'_, (u64, CertificateRecord)>, StoreError> {
        let table = self.tables().certificates;
        self.scan(
            table,
            Some(&schema::height_key(height)),
            move |key, value| {
                let key: [u8; 8] = key
                    .try_into()
                    .map_err(|_| "key is not a height".to_string())?;
                let record = super::lmdb::decode_value(table, value).map_err(|e| e.to_string())?;
                Ok((u64::from_be_bytes(key), record))
            },
        )
    }

    pub fn has_evidence(&self, voter: &PublicKeyBytes, height: u64) -> Result<bool, StoreError> {
        self.contains(self.tables().evidence, &schema::evidence_key(voter, height))
    }

    /// Stored evidence, at most `limit` pieces, by voter then height.
    pub fn evidence(&self, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.opaque_values(self.tables().evidence, limit)
    }

    fn evidence_table(&self, kind: EvidenceKind) -> super::lmdb::Table {
        match kind {
            EvidenceKind::Endorsement => self.tables().evidence,
            EvidenceKind::Window => self.tables().window_evidence,
        }
    }

    /// The voters stored evidence of `kind` accuses, ascending, at most
    /// `limit`: one seek each, however many pieces a voter has.
    pub fn accused_voters(
        &self,
        kind: EvidenceKind,
        limit: usize,
    ) -> Result<Vec<PublicKeyBytes>, StoreError> {
        let table = self.evidence_table(kind);
        let mut voters: Vec<PublicKeyBytes> = Vec::new();
        let mut seek = Vec::with_capacity(32 + PAST_VOTER.len());
        while voters.len() < limit {
            let from = (!seek.is_empty()).then_some(seek.as_slice());
            let next = self.scan(table, from, |key, _| voter_of(key))?.next();
            let Some(voter) = next.transpose()? else {
                break;
            };
            seek.clear();
            seek.extend_from_slice(&voter.0);
            seek.extend_from_slice(&PAST_VOTER);
            voters.push(voter);
        }
        Ok(voters)
    }

    /// Stored evidence of `kind` against `voter`, at most `limit` pieces,
    /// as stored (each within the table's size limit).
    pub fn evidence_against(
        &self,
        kind: EvidenceKind,
        voter: &PublicKeyBytes,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let table = self.evidence_table(kind);
        let max = table.spec.max_value_bytes;
        let scan = self.scan(table, Some(&voter.0), move |key, value| {
            if value.len() > max {
                return Err(format!(
                    "value is {} bytes, over the limit of {max}",
                    value.len()
                ));
            }
            Ok((voter_of(key)?, value.to_vec()))
        })?;
        let mut pieces = Vec::new();
        for item in scan.take(limit) {
            let (accused, bytes) = item?;
            if accused != *voter {
                break;
            }
            pieces.push(bytes);
        }
        Ok(pieces)
    }

    /// The first `limit` values of `table`, as stored, each within the
    /// table's size limit (a larger one is `Corrupt`).
    pub(super) fn opaque_values(
        &self,
        table: super::lmdb::Table,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let max = table.spec.max_value_bytes;
        self.scan(table, None, move |_, value| {
            if value.len() > max {
                return Err(format!(
                    "value is {} bytes, over the limit of {max}",
                    value.len()
                ));
            }
            Ok(value.to_vec())
        })?
        .take(limit)
        .collect()
    }
}
