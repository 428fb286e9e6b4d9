//! The masternode registry in the block thread (DESIGN §7): every block
//! that becomes final (certified, or below a certified canonical block) is
//! applied to the registry once, in height order, and each step is one
//! store write, so a restart resumes from the last step.
//!
//! The registry decides each epoch's set; the consensus and net threads
//! still run on the genesis set (epoch 0) until they follow the snapshots.

use super::{BlockThread, BlockThreadError};
use crate::chain::reward::payout_address;
use crate::masternode::{EpochRules, Member, MemberStatus, Registry, Snapshot};
use crate::rpc::archive::{apply_final_block, final_block};
use crate::store::{Store, StoreError};
use crate::time::Clock;
use crate::types::Validator;
use std::sync::atomic::Ordering::Relaxed;

/// Most final blocks applied per loop turn, so a long catch-up (a synced
/// chain, a restart far behind) never holds the thread from its slots.
const BLOCKS_PER_TURN: usize = 32;

/// The registry as the store left it, or the genesis registry.
pub(super) fn load_registry(
    store: &Store,
    rules: EpochRules,
    genesis: &[Validator],
) -> Result<Registry, StoreError> {
    let view = store.read()?;
    let next_height = view.registry_next_height()?;
    let fresh = Registry::genesis(rules, genesis, payout_address);
    if next_height <= 1 {
        return Ok(fresh);
    }
    let latest = view
        .latest_snapshot()?
        .unwrap_or_else(|| fresh.latest().clone());
    Ok(Registry::restore(
        rules,
        view.masternodes()?,
        next_height,
        latest,
    ))
}

impl<C: Clock> BlockThread<C> {
    /// Applies the final blocks the registry has not seen yet (a bounded
    /// number per call) and stores each step.
    pub(super) fn advance_registry(&mut self) -> Result<(), BlockThreadError> {
        for _ in 0..BLOCKS_PER_TURN {
            let height = self.registry.next_height();
            let read = final_block(&self.store.read()?, height);
            let Some((block, signers)) =
                read.map_err(|e| BlockThreadError::Registry(e.to_string()))?
            else {
                break;
            };
            let applied = apply_final_block(&mut self.registry, height, &block, &signers)
                .map_err(|e| BlockThreadError::Registry(e.to_string()))?;
            self.store.put_registry_step(
                height.saturating_add(1),
                &applied.changed,
                applied.snapshot.as_ref(),
            )?;
            for member in &applied.changed {
                log_change(member, height, self.registry.rules());
            }
            if let Some(snapshot) = &applied.snapshot {
                log_epoch(snapshot);
                self.publish_set();
            }
        }
        Ok(())
    }

    /// The latest decided set, as gauges (at start and at each decision).
    pub(super) fn publish_set(&self) {
        let latest = self.registry.latest();
        let metrics = &self.channels.metrics;
        let members = u64::try_from(latest.members.len()).unwrap_or(u64::MAX);
        metrics.masternode_set_epoch.store(latest.epoch, Relaxed);
        metrics.masternode_set_members.store(members, Relaxed);
        metrics
            .masternode_set_weight
            .store(latest.total_weight(), Relaxed);
    }
}

/// A member's registration or departure, as the operator reads it (a
/// member merely seen voting again is not news).
fn log_change(member: &Member, height: u64, rules: &EpochRules) {
    let id = member.validator.id;
    match member.status {
        MemberStatus::Registered if member.registered_at == height => log::info!(
            "masternode {id:?} registered at height {height}: weight {}, votes from epoch {}",
            member.validator.weight,
            member.active_from(rules)
        ),
        MemberStatus::Deregistered { height: at } if at == height => log::info!(
            "masternode {id:?} deregistered at height {height}: leaves at epoch {}, \
             collateral unbonded at epoch {}",
            member.leaves_at(rules).unwrap_or(0),
            member.unbonded_at(rules).unwrap_or(0)
        ),
        MemberStatus::Slashed { height: at } if at == height => log::warn!(
            "masternode {id:?} slashed at height {height}: leaves at epoch {}, collateral burned",
            member.leaves_at(rules).unwrap_or(0)
        ),
        _ => log::debug!("masternode {id:?} seen voting at height {height}"),
    }
}

/// An epoch change, as the operator reads it.
fn log_epoch(snapshot: &Snapshot) {
    log::info!(
        "epoch {} decided: {} masternodes, weight {}",
        snapshot.epoch,
        snapshot.members.len(),
        snapshot.total_weight()
    );
}
