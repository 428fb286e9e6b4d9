//! The masternode registry over RPC (DESIGN §7): `getepochinfo`,
//! `getmasternodes [epoch]` and `getmasternode ID`, read from the store's
//! registry tables (what the final blocks decided).

use super::archive::genesis_registry;
use super::{errors, RpcContext, RpcError};
use crate::finality::required_weight;
use crate::masternode::{Member, MemberStatus, Snapshot};
use crate::store::ReadView;
use crate::types::{json as tx_json, PublicKeyBytes};
use serde_json::{json, Value};

/// The set of `epoch`: the genesis set for epochs 0 and 1, else the stored
/// snapshot once the final blocks decided it.
fn snapshot_of(
    ctx: &RpcContext,
    view: &ReadView<'_>,
    epoch: u64,
) -> Result<Option<Snapshot>, RpcError> {
    if epoch <= 1 {
        return Ok(Some(genesis_snapshot(ctx, epoch)));
    }
    Ok(view.epoch_snapshot(epoch)?)
}

fn genesis_snapshot(ctx: &RpcContext, epoch: u64) -> Snapshot {
    Snapshot {
        epoch,
        members: genesis_registry(&ctx.spec).latest().members.clone(),
    }
}

/// The set that pays the block at `height`: its epoch's, or while that
/// is undecided (a branch that certified nothing for a while keeps the
/// last set it decided, DESIGN §7) the latest decided one before it.
pub(super) fn paying_set(
    ctx: &RpcContext,
    view: &ReadView<'_>,
    height: u64,
) -> Result<Snapshot, RpcError> {
    let epoch = ctx.spec.epoch_rules.epoch_of(height);
    if let Some(snapshot) = snapshot_of(ctx, view, epoch)? {
        return Ok(snapshot);
    }
    // Epochs are decided in order: the latest decided one is before it.
    match view.latest_snapshot()? {
        Some(latest) if latest.epoch < epoch => Ok(latest),
        _ => Ok(genesis_snapshot(ctx, 1)),
    }
}

fn set_summary(snapshot: &Snapshot) -> Value {
    let total = snapshot.total_weight();
    json!({
        "epoch": snapshot.epoch,
        "masternodes": snapshot.members.len(),
        "total_weight": total,
        "required_weight": required_weight(total),
    })
}

pub(super) fn epoch_info(ctx: &RpcContext) -> Result<Value, RpcError> {
    let rules = ctx.spec.epoch_rules;
    let view = ctx.store.read()?;
    let tip = view.tip()?.height;
    let epoch = rules.epoch_of(tip);
    let current = snapshot_of(ctx, &view, epoch)?;
    let latest = view.latest_snapshot()?;
    Ok(json!({
        "epoch": epoch,
        "tip_height": tip,
        "next_epoch_height": rules.first_height(epoch.saturating_add(1)),
        "final_height": view.final_height()?,
        "registry_height": view.registry_next_height()?.saturating_sub(1),
        // The epoch votes name: the one of the next block the registry's
        // final chain certifies (getconsensusinfo shows the engine's).
        "finality_epoch": rules.epoch_of(view.registry_next_height()?),
        "epoch_blocks": rules.epoch_blocks(),
        "inactive_epochs": rules.inactive_epochs(),
        "unbonding_epochs": rules.unbonding_epochs(),
        "current": current.as_ref().map(set_summary),
        "latest_decided": latest.as_ref().map(set_summary),
    }))
}

pub(super) fn masternodes(ctx: &RpcContext, epoch: Option<u64>) -> Result<Value, RpcError> {
    let view = ctx.store.read()?;
    let epoch = match epoch {
        Some(epoch) => epoch,
        None => ctx.spec.epoch_rules.epoch_of(view.tip()?.height),
    };
    let snapshot = snapshot_of(ctx, &view, epoch)?.ok_or_else(|| {
        RpcError::new(
            errors::INVALID_PARAMETER,
            format!(
                "epoch {epoch} is not decided here yet (its set is decided when the final \
                 blocks reach the end of epoch {}); see getepochinfo",
                epoch.saturating_sub(2)
            ),
        )
    })?;
    let mut out = set_summary(&snapshot);
    out["members"] = snapshot
        .members
        .iter()
        .map(|m| member(ctx, m))
        .collect::<Vec<_>>()
        .into();
    Ok(out)
}

pub(super) fn masternode(ctx: &RpcContext, id: PublicKeyBytes) -> Result<Value, RpcError> {
    let view = ctx.store.read()?;
    // Genesis members reach the table with the registry's first step.
    let found = match view.masternode(&id)? {
        Some(found) => Some(found),
        None if view.registry_next_height()? <= 1 => {
            genesis_registry(&ctx.spec).member(&id).cloned()
        }
        None => None,
    };
    found.map(|m| member(ctx, &m)).ok_or_else(|| {
        RpcError::new(
            errors::NOT_FOUND,
            format!(
                "no masternode {} in the final chain here",
                hex::encode(id.0)
            ),
        )
    })
}

fn member(ctx: &RpcContext, m: &Member) -> Value {
    let rules = &ctx.spec.epoch_rules;
    let network = ctx.spec.config.network;
    let (status, since) = match m.status {
        MemberStatus::Registered => ("registered", m.registered_at),
        MemberStatus::Deregistered { height } => ("deregistered", height),
        MemberStatus::Slashed { height } => ("slashed", height),
    };
    json!({
        "id": hex::encode(m.validator.id.0),
        "vrf_pubkey": hex::encode(m.validator.vrf_key.0),
        "weight": m.validator.weight,
        "tier": m.tier.map_or(json!("genesis"), |t| json!(t)),
        "collateral": m.collateral.as_ref().map(tx_json::outpoint),
        "listen_addr": m.listen_addr.map(|a| a.to_string()),
        "payout_address": m.payout.to_text(network),
        "registered_at": m.registered_at,
        "status": status,
        "status_height": since,
        "active_from_epoch": m.active_from(rules),
        "leaves_at_epoch": m.leaves_at(rules),
        "unbonded_at_epoch": m.unbonded_at(rules),
        "last_seen_epoch": m.last_seen_epoch,
    })
}
