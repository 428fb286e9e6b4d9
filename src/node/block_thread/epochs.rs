//! The masternode registry in the block thread (DESIGN §7): every block
//! that becomes final (certified, or below a certified canonical block) is
//! applied to the registry once, in height order, and each step is one
//! store write, so a restart resumes from the last step.
//!
//! Each decided set weighs its epoch's block producers and rewards, and
//! gives its finality committee: the block thread checks proofs and block
//! endorsements against it and, once the final chain enters an epoch,
//! hands it (and the next one's) to the consensus thread, and the sets'
//! node ids to the net layer (reserved slots).

use super::{BlockThread, BlockThreadError};
use crate::chain::reward::payout_address;
use crate::config::ChainSpec;
use crate::consensus::EpochCommittee;
use crate::consensus::NodeId;
use crate::finality::ValidatorSet;
use crate::masternode::{
    CommitteeBook, CommitteeRules, EpochRules, Member, MemberStatus, Registry, Snapshot,
};
use crate::net::{NetCommand, NetSendError};
use crate::node::channels::NodeEvent;
use crate::rpc::archive::{apply_final_block, final_block, stored_sets};
use crate::store::{ReadView, Store, StoreError};
use crate::time::Clock;
use crate::types::Validator;
use crossbeam_channel::TrySendError;
use std::collections::BTreeSet;
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

/// The committee of `epoch`: the genesis set's for epochs 0 and 1, else
/// the stored set's (`None` while undecided).
fn committee_of(
    view: &ReadView<'_>,
    rules: &CommitteeRules,
    genesis: &ValidatorSet,
    epoch: u64,
) -> Result<Option<EpochCommittee>, BlockThreadError> {
    if epoch <= 1 {
        return Ok(Some(rules.committee(epoch, genesis, None)));
    }
    Ok(stored_sets(view, rules, epoch)?.map(|s| s.committee))
}

/// The epoch the registry's final chain is in: the one of the next block.
fn registry_epoch(view: &ReadView<'_>, rules: &CommitteeRules) -> Result<u64, StoreError> {
    let applied = view.registry_next_height()?.saturating_sub(1);
    Ok(rules.current_epoch(applied))
}

/// The committees of the epoch the final chain is in and of the next one,
/// as the store holds them: what the engine starts with.
pub fn epoch_committees(
    store: &Store,
    spec: &ChainSpec,
    genesis: &ValidatorSet,
) -> Result<(EpochCommittee, Option<EpochCommittee>), BlockThreadError> {
    let rules = CommitteeRules::of(spec);
    let view = store.read()?;
    let epoch = registry_epoch(&view, &rules)?;
    let next = committee_of(&view, &rules, genesis, epoch.saturating_add(1))?;
    match committee_of(&view, &rules, genesis, epoch)? {
        Some(current) => Ok((current, next)),
        // The registry stores the next epoch's set with the block that
        // enters this one: a store without it is damaged.
        None => Err(BlockThreadError::MissingEpochSet { epoch }),
    }
}

/// The sets blocks may name after a restart (the current epoch's
/// neighbours) and the epoch the consensus thread starts in.
pub(super) fn load_committees(
    store: &Store,
    rules: &CommitteeRules,
    genesis: &ValidatorSet,
) -> Result<(CommitteeBook, u64), BlockThreadError> {
    let view = store.read()?;
    let mut book = CommitteeBook::new(rules.sets(0, genesis.clone(), None));
    let current = registry_epoch(&view, rules)?;
    let latest = view.latest_epoch()?.unwrap_or(1);
    for epoch in current.saturating_sub(2).max(2)..=latest {
        if let Some(sets) = stored_sets(&view, rules, epoch)? {
            book.insert(sets);
        }
    }
    Ok((book, current))
}

impl<C: Clock> BlockThread<C> {
    /// Applies the final blocks the registry has not seen yet (a bounded
    /// number per call) and stores each step.
    pub(super) fn advance_registry(&mut self) -> Result<(), BlockThreadError> {
        for _ in 0..BLOCKS_PER_TURN {
            let height = self.registry.next_height();
            let read = final_block(&self.store.read()?, height);
            let Some(block) = read.map_err(|e| BlockThreadError::Registry(e.to_string()))? else {
                break;
            };
            let applied = apply_final_block(&mut self.registry, height, &block)
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
                let rules = self.settings.committee_rules();
                if let Some(sets) = stored_sets(&self.store.read()?, &rules, snapshot.epoch)? {
                    self.committees.insert(sets);
                }
            }
        }
        self.publish_epoch();
        self.publish_net_validators();
        Ok(())
    }

    /// Tells the consensus thread once the final chain entered a new epoch
    /// (again on the next turn if its inbox was full).
    fn publish_epoch(&mut self) {
        let rules = self.settings.committee_rules();
        let applied = self.registry.next_height().saturating_sub(1);
        let epoch = rules.current_epoch(applied);
        if epoch <= self.epoch_published {
            return;
        }
        let committee = |e: u64| {
            self.committees.get(e).map(|set| EpochCommittee {
                epoch: e,
                committee: set.clone(),
            })
        };
        let Some(current) = committee(epoch) else {
            log::warn!("entered epoch {epoch}, but its set is not decided here yet");
            return;
        };
        let next = committee(epoch.saturating_add(1));
        match self
            .channels
            .consensus
            .try_send(NodeEvent::Epoch { current, next })
        {
            Ok(()) | Err(TrySendError::Disconnected(_)) => self.epoch_published = epoch,
            Err(TrySendError::Full(_)) => {}
        }
    }

    /// Tells the net layer, at the start and once the final chain enters
    /// a new epoch, whose connections hold validator slots: the genesis set
    /// (the endorsers) and the sets of this epoch and the next, so a joiner
    /// holds one from before it votes. Again next turn if the command
    /// channel was full.
    fn publish_net_validators(&mut self) {
        let rules = self.settings.committee_rules();
        let epoch = rules.current_epoch(self.registry.next_height().saturating_sub(1));
        let Some(net) = &self.net else {
            return;
        };
        if self.net_epoch_published.is_some_and(|e| e >= epoch) {
            return;
        }
        let genesis = self.validators.validators().iter();
        let mut ids: BTreeSet<NodeId> = genesis.map(|v| v.id).collect();
        for set in [epoch, epoch.saturating_add(1)].map(|e| self.committees.producers(e)) {
            ids.extend(
                set.into_iter()
                    .flat_map(|s| s.validators().iter().map(|v| v.id)),
            );
        }
        match net.send(NetCommand::SetValidators(ids)) {
            Ok(()) | Err(NetSendError::Stopped) => self.net_epoch_published = Some(epoch),
            Err(NetSendError::Full) => {}
        }
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
