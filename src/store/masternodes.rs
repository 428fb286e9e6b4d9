//! The masternode registry on disk (DESIGN §7): each member as the certified
//! chain left it, the set of every decided epoch, and the height the
//! registry applies next. One write transaction per applied block, so a
//! kill -9 leaves the registry at a block boundary; a restart replays the
//! certified blocks above it.

use super::lmdb::{decode_value, get_decoded, put, Tables};
use super::schema::{self, META_LATEST_EPOCH, META_REGISTRY_HEIGHT};
use super::{ReadView, Scan, StoreError};
use crate::ledger::{bonds_created, Bond, BondState};
use crate::masternode::{Member, Snapshot};
use crate::types::encoding::encode;
use crate::types::{Hash, OutPoint, PublicKeyBytes, Tx};
use lmdb::RwTransaction;

impl super::Store {
    /// Records one applied block: the members it changed, the snapshot it
    /// decided (if any), and `next_height`. Refused unless the stored
    /// registry expected exactly this block (`next_height - 1`).
    pub fn put_registry_step(
        &self,
        next_height: u64,
        changed: &[Member],
        snapshot: Option<&Snapshot>,
    ) -> Result<(), StoreError> {
        self.write(|txn, t| {
            let held: u64 = get_decoded(txn, t.meta, META_REGISTRY_HEIGHT)?.unwrap_or(1);
            if held.checked_add(1) != Some(next_height) {
                return Err(StoreError::RegistryOutOfStep {
                    held,
                    next: next_height,
                });
            }
            for member in changed {
                put(txn, t.masternodes, &member.validator.id.0, &encode(member))?;
            }
            if let Some(snapshot) = snapshot {
                put(
                    txn,
                    t.epochs,
                    &schema::height_key(snapshot.epoch),
                    &encode(snapshot),
                )?;
                put(txn, t.meta, META_LATEST_EPOCH, &encode(&snapshot.epoch))?;
            }
            put(txn, t.meta, META_REGISTRY_HEIGHT, &encode(&next_height))
        })
    }
}

/// Records the bonds `tx` (finalized, `txid`) puts its outputs under, in
/// the write transaction that creates them.
pub(super) fn put_bonds(
    txn: &mut RwTransaction<'_>,
    t: &Tables,
    tx: &Tx,
    txid: Hash,
) -> Result<usize, StoreError> {
    let collateral_of = |outpoint: &OutPoint| -> Result<Option<Bond>, StoreError> {
        let key = schema::outpoint_key(outpoint);
        let bond: Option<Bond> = get_decoded(&*txn, t.bonds, &key)?;
        Ok(bond.filter(|b| b.is_collateral(outpoint)))
    };
    let bonds = bonds_created(tx, collateral_of)?;
    for (vout, bond) in &bonds {
        let key = schema::outpoint_key(&OutPoint { txid, vout: *vout });
        put(txn, t.bonds, &key, &encode(bond))?;
    }
    Ok(bonds.len())
}

impl ReadView<'_> {
    /// The bond `outpoint` is under, if any.
    pub fn bond(&self, outpoint: &OutPoint) -> Result<Option<Bond>, StoreError> {
        self.get_decoded(self.tables().bonds, &schema::outpoint_key(outpoint))
    }

    /// Every bond ever made (spent outputs' too), in outpoint order: few,
    /// one per collateral and per output of a collateral's spend.
    pub fn scan_bonds(&self) -> Result<Scan<'_, (OutPoint, Bond)>, StoreError> {
        let bonds = self.tables().bonds;
        self.scan(bonds, None, move |key, value| {
            let outpoint = schema::outpoint_from_key(key)
                .ok_or_else(|| "key is not an outpoint".to_string())?;
            Ok((
                outpoint,
                decode_value(bonds, value).map_err(|e| e.to_string())?,
            ))
        })
    }

    /// Where `bond` stands in the registry, the tip at the maturity height
    /// (the one rewards mature against). A member not yet registered here
    /// (its block is not final yet) keeps it bound.
    pub fn bond_state(&self, bond: &Bond) -> Result<BondState, StoreError> {
        let tip = self.maturity_height()?;
        Ok(match self.masternode(&bond.identity)? {
            Some(member) => member.bond_state(bond, self.epoch_rules(), tip),
            None => BondState::Bonded,
        })
    }

    /// The certified height the registry applies next (1: none applied).
    pub fn registry_next_height(&self) -> Result<u64, StoreError> {
        Ok(self
            .get_decoded(self.tables().meta, META_REGISTRY_HEIGHT)?
            .unwrap_or(1))
    }

    pub fn masternode(&self, identity: &PublicKeyBytes) -> Result<Option<Member>, StoreError> {
        self.get_decoded(self.tables().masternodes, &identity.0)
    }

    /// Every member ever registered (each locked collateral, so the count
    /// is bounded by the money supply), in identity order.
    pub fn masternodes(&self) -> Result<Vec<Member>, StoreError> {
        let table = self.tables().masternodes;
        self.scan(table, None, move |_, value| {
            super::lmdb::decode_value(table, value).map_err(|e| e.to_string())
        })?
        .collect()
    }

    /// The set of `epoch`, once decided.
    pub fn epoch_snapshot(&self, epoch: u64) -> Result<Option<Snapshot>, StoreError> {
        self.get_decoded(self.tables().epochs, &schema::height_key(epoch))
    }

    /// The most recently decided set, if any epoch was decided yet.
    /// The epoch of the latest decided set (`None` before the first).
    pub fn latest_epoch(&self) -> Result<Option<u64>, StoreError> {
        self.get_decoded(self.tables().meta, META_LATEST_EPOCH)
    }

    pub fn latest_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        match self.get_decoded::<u64>(self.tables().meta, META_LATEST_EPOCH)? {
            Some(epoch) => self.epoch_snapshot(epoch),
            None => Ok(None),
        }
    }
}
