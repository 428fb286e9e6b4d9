//! The checkpoint chain's RPC methods (Bitcoin shapes where Bitcoin has
//! them): `getblockchaininfo`, `getblockcount`, `getbestblockhash`,
//! `getblockhash`, `getblock`, the block location of `getrawtransaction`,
//! `getvalidators`, `getrewardinfo`, `verifychain`, and of certified blocks
//! `getchaintips` and `getevidence`.
//!
//! Each answer is read from one LMDB snapshot. Stored blocks are decoded
//! with the block limit; one that does not decode is a store error that
//! points at `verifychain`, never a panic.

use super::archive::{registered_payout, StoreArchive};
use super::errors::{self, RpcError};
use super::RpcContext;
use super::{archive, bitcoin};
use crate::chain::reward::payout_address;
use crate::chain::{
    block_reward, ArchiveView, Block, Equivocation, VoteContext, BLOCK_VERSION, MAX_BLOCK_BYTES,
};
use crate::finality::{FinalityProof, ValidatorSet, WindowEquivocation};
use crate::ledger::UtxoState;
use crate::store::{ReadView, TxRecord, TxStatus};
use crate::types::{json, Amount, DecodeError, Hash, Network, Tier};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;

/// How much of a block `getblock` shows (bitcoind's verbosity levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockVerbosity {
    /// 0: the block's canonical encoding in hex.
    Hex,
    /// 1: header fields, txids and the reward.
    Summary,
    /// 2: as 1, with whole transactions, their fees and proof summaries.
    Full,
}

impl BlockVerbosity {
    /// From bitcoind's integer (or `true` = 1, `false` = 0).
    pub fn from_json(value: Option<&Value>) -> Result<BlockVerbosity, RpcError> {
        let level = match value {
            None => return Ok(BlockVerbosity::Summary),
            Some(Value::Bool(b)) => Some(u64::from(*b)),
            Some(v) => v.as_u64(),
        };
        match level {
            Some(0) => Ok(BlockVerbosity::Hex),
            Some(1) => Ok(BlockVerbosity::Summary),
            Some(2) => Ok(BlockVerbosity::Full),
            _ => Err(RpcError::invalid_param(
                "verbosity",
                "expected 0 (hex), 1 (header, txids, reward) or 2 (whole transactions and proofs)",
            )),
        }
    }
}

pub(super) fn blockchain_info(ctx: &RpcContext) -> Result<Value, RpcError> {
    let view = ctx.store.read()?;
    let tip = view.tip()?;
    let stats = view.stats()?;
    let interval_secs = ctx.spec.config.ledger.block_interval_secs.max(1);
    let current_slot = ctx.clock.wall().as_millis() / 1_000 / interval_secs;
    let network = ctx.spec.config.network;
    let genesis = ctx.spec.genesis_hash();
    // The highest block known certified, held or not (sync fetches it).
    let headers = view
        .certified_tip()?
        .map_or(tip.height, |(height, _)| height.max(tip.height));
    let syncing = ctx.metrics.block_syncing.load(Ordering::Relaxed) != 0;
    let progress = if syncing && headers > 0 {
        // Heights, not work: blocks are alike in cost here.
        format!("{:.8}", tip.height as f64 / headers as f64)
    } else {
        "1.00000000".to_string()
    };
    // Bitcoin Core's field for node-level alerts: a persisted safety halt.
    let warnings = view.safety_halt()?.map_or_else(String::new, |halt| {
        format!(
            "SAFETY HALT: finality proofs for conflicting transactions {} and {} (both spend {}); \
             finalization stopped until an operator restarts with --clear-safety-halt",
            halt.finalized, halt.conflicting, halt.outpoint
        )
    });
    Ok(json!({
        "chain": network.name(),
        "blocks": tip.height,
        "headers": headers,
        "bestblockhash": tip.hash.to_string(),
        "difficulty": 1,
        "mediantime": tip.slot.saturating_mul(interval_secs),
        "verificationprogress": progress.parse::<serde_json::Number>().map_or(json!(1), Value::Number),
        "initialblockdownload": syncing,
        "chainwork": format!("{:064x}", tip.height),
        "size_on_disk": stats.used_bytes,
        "pruned": false,
        "warnings": warnings,
        "chain_id": ctx.spec.chain_id().0,
        "bestblockslot": tip.slot,
        // The tip slot's start, cheap to know (the block's own timestamp lies in it).
        "time": tip.slot.saturating_mul(interval_secs),
        "current_slot": current_slot,
        // Empty slots count too: a lag indicator, not proof of missing blocks.
        "slots_behind": current_slot.saturating_sub(tip.slot),
        "block_interval_secs": interval_secs,
        "genesis_hash": genesis.to_string(),
        "finalized_txs": stats.finalized_count,
        "archived_txs": stats.txs.saturating_sub(stats.unarchived),
        "unarchived_txs": stats.unarchived,
        "unspent_outputs": stats.unspent,
    }))
}

pub(super) fn block_count(ctx: &RpcContext) -> Result<Value, RpcError> {
    Ok(json!(ctx.store.tip()?.height))
}

pub(super) fn best_block_hash(ctx: &RpcContext) -> Result<Value, RpcError> {
    Ok(json!(ctx.store.tip()?.hash.to_string()))
}

pub(super) fn block_hash(ctx: &RpcContext, height: u64) -> Result<Value, RpcError> {
    let view = ctx.store.read()?;
    let tip = view.tip()?;
    let hash = view
        .block_hash_at(height)?
        .filter(|_| height <= tip.height)
        .ok_or_else(|| out_of_range(height, tip.height))?;
    Ok(json!(hash.to_string()))
}

/// Bitcoin's -8 "Block height out of range".
fn out_of_range(height: u64, tip: u64) -> RpcError {
    RpcError::new(
        errors::INVALID_PARAMETER,
        format!("Block height out of range: {height} (the tip is at {tip})"),
    )
}

/// A stored block that does not decode: the datadir is damaged.
fn corrupt_block(hash: &Hash, problem: impl std::fmt::Display) -> RpcError {
    RpcError::new(
        errors::STORE_ERROR,
        format!("stored block {hash} is unreadable: {problem}; run verifychain"),
    )
}

/// The block with `hash` on the chain, decoded, with its encoded size.
fn stored_block(view: &ReadView<'_>, hash: &Hash) -> Result<Option<(Block, usize)>, RpcError> {
    let Some(bytes) = view.block(hash)? else {
        return Ok(None);
    };
    let block = Block::decode(&bytes, MAX_BLOCK_BYTES).map_err(|e| corrupt_block(hash, e))?;
    Ok(Some((block, bytes.len())))
}

pub(super) fn block(
    ctx: &RpcContext,
    hash: Hash,
    verbosity: BlockVerbosity,
) -> Result<Value, RpcError> {
    let view = ctx.store.read()?;
    let tip = view.tip()?;
    if hash == ctx.spec.genesis_hash() {
        return genesis_block(ctx, &view, verbosity);
    }
    let not_found = || {
        RpcError::new(
            errors::NOT_FOUND,
            format!("block {hash} not found on this node's chain"),
        )
    };
    if verbosity == BlockVerbosity::Hex {
        let bytes = view.block(&hash)?.ok_or_else(not_found)?;
        return Ok(json!(hex::encode(bytes)));
    }
    let (block, size) = stored_block(&view, &hash)?.ok_or_else(not_found)?;
    let network = ctx.spec.config.network;
    let set = super::methods::validator_set(ctx)?;
    let committees = super::methods::committees(ctx)?;
    let h = &block.header;
    let next = view.block_hash_at(h.height.saturating_add(1))?;
    let txs: Vec<Value> = match verbosity {
        BlockVerbosity::Full => block
            .entries
            .iter()
            .map(|proof| full_entry(&view, proof, &committees, network))
            .collect::<Result<_, _>>()?,
        _ => block
            .entries
            .iter()
            .map(|proof| json!(proof.tx.txid().to_string()))
            .collect(),
    };
    let reward = reward_view(&view, &block, tip.height, ctx)?;
    let certificate = view.certificate_at(h.height)?.filter(|c| c.hash == hash);
    let certified_tip = view.certified_tip()?;
    // Final: certified, or an ancestor of a certified block of our chain.
    let is_final = certificate.is_some()
        || match certified_tip {
            Some((height, certified)) => {
                height >= h.height && view.block_hash_at(height)? == Some(certified)
            }
            None => false,
        };
    Ok(json!({
        "hash": hash.to_string(),
        "confirmations": confirmations(tip.height, h.height),
        "height": h.height,
        "version": h.version,
        "chain_id": h.chain_id.0,
        "slot": h.slot,
        "time": h.timestamp_ms / 1_000,
        "timestamp_ms": h.timestamp_ms,
        "previousblockhash": h.prev_hash.to_string(),
        "nextblockhash": next.map(|n| n.to_string()),
        "producer": hex::encode(h.producer.0),
        "producer_address": registered_payout(&view, &h.producer)?.to_text(network),
        "vrf_output": hex::encode(h.vrf_output.0),
        "vrf_proof": hex::encode(h.vrf_proof.0),
        "entries_root": h.entries_root.to_string(),
        "size": size,
        "nTx": block.entries.len(),
        "tx": txs,
        "reward": reward,
        // Offenders whose equivocation evidence the block carries (§7).
        "slashed": block
            .evidence
            .iter()
            .map(|e| hex::encode(e.offender().0))
            .collect::<Vec<_>>(),
        // Members whose heartbeat the block carries (§7, liveness).
        "heartbeats": block
            .heartbeats
            .iter()
            .map(|h| hex::encode(h.validator.0))
            .collect::<Vec<_>>(),
        "certified": certificate.is_some(),
        "certified_weight": certificate.as_ref().map_or(0, |c| c.weight),
        "total_weight": set.total_weight(),
        "final": is_final,
    }))
}

/// Bitcoin's count: the tip itself has one confirmation.
fn confirmations(tip: u64, height: u64) -> u64 {
    tip.saturating_sub(height).saturating_add(1)
}

/// The genesis is the chain config, not a stored block: its encoding is
/// the canonical form its hash is taken of, and its one "transaction" is
/// the allocations (outputs `genesis_hash:i`), like Bitcoin's coinbase.
fn genesis_block(
    ctx: &RpcContext,
    view: &ReadView<'_>,
    verbosity: BlockVerbosity,
) -> Result<Value, RpcError> {
    let bytes = ctx.spec.genesis_bytes();
    if verbosity == BlockVerbosity::Hex {
        return Ok(json!(hex::encode(&bytes)));
    }
    let network = ctx.spec.config.network;
    let genesis = ctx.spec.genesis_hash();
    let tip = view.tip()?;
    let allocations: Vec<Value> = ctx
        .spec
        .allocations
        .iter()
        .enumerate()
        .map(|(n, o)| {
            json!({
                "value": bitcoin::amount(o.value),
                "n": n,
                "scriptPubKey": bitcoin::script_pubkey(&o.address, network),
                "value_units": o.value.units(),
            })
        })
        .collect();
    let tx = match verbosity {
        BlockVerbosity::Full => json!([{
            "txid": genesis.to_string(),
            "hash": genesis.to_string(),
            "vin": [],
            "vout": allocations,
        }]),
        _ => json!([genesis.to_string()]),
    };
    Ok(json!({
        "hash": genesis.to_string(),
        "confirmations": confirmations(tip.height, 0),
        "height": 0,
        "version": BLOCK_VERSION,
        "time": ctx.spec.config.genesis.timestamp,
        "size": bytes.len(),
        "nTx": 1,
        "tx": tx,
        "previousblockhash": Value::Null,
        "nextblockhash": view.block_hash_at(1)?.map(|n| n.to_string()),
        "slot": archive::genesis_tip(&ctx.spec).slot,
        "chain_id": ctx.spec.chain_id().0,
    }))
}

/// `getblockheader`: Bitcoin's header fields (TIME's header has no nonce
/// or bits: blocks are drawn by VRF sortition), or its hex at `verbose=false`.
pub(super) fn block_header(ctx: &RpcContext, hash: Hash, verbose: bool) -> Result<Value, RpcError> {
    let view = ctx.store.read()?;
    let tip = view.tip()?;
    if hash == ctx.spec.genesis_hash() {
        if !verbose {
            return Ok(json!(hex::encode(ctx.spec.genesis_bytes())));
        }
        return Ok(json!({
            "hash": hash.to_string(),
            "confirmations": confirmations(tip.height, 0),
            "height": 0,
            "version": BLOCK_VERSION,
            "merkleroot": Hash::ZERO.to_string(),
            "time": ctx.spec.config.genesis.timestamp,
            "nTx": 1,
            "nextblockhash": view.block_hash_at(1)?.map(|n| n.to_string()),
        }));
    }
    let (block, _) = stored_block(&view, &hash)?
        .ok_or_else(|| RpcError::new(errors::NOT_FOUND, format!("Block not found: {hash}")))?;
    let h = &block.header;
    if !verbose {
        return Ok(json!(hex::encode(crate::types::encoding::encode(h))));
    }
    Ok(json!({
        "hash": hash.to_string(),
        "confirmations": confirmations(tip.height, h.height),
        "height": h.height,
        "version": h.version,
        "merkleroot": h.entries_root.to_string(),
        "time": h.timestamp_ms / 1_000,
        "nTx": block.entries.len(),
        "previousblockhash": h.prev_hash.to_string(),
        "nextblockhash": view.block_hash_at(h.height.saturating_add(1))?.map(|n| n.to_string()),
        "slot": h.slot,
        "timestamp_ms": h.timestamp_ms,
    }))
}

/// The time (Unix seconds) of the stored block `hash`, if held.
pub(super) fn block_time(view: &ReadView<'_>, hash: &Hash) -> Result<Option<u64>, RpcError> {
    Ok(stored_block(view, hash)?.map(|(block, _)| block.header.timestamp_ms / 1_000))
}

/// Summary of a proof's votes as the committee of their epoch weighs them
/// (weights `null` if this node has not decided that epoch's set).
pub(super) fn proof_summary(
    proof: &FinalityProof,
    committees: &StoreArchive<'_>,
) -> Map<String, Value> {
    let epoch = proof.votes.first().map_or(0, |(vote, _)| vote.epoch);
    let set = committees.committee_for_epoch(epoch);
    let weight: Option<u64> = set.map(|set| {
        proof
            .votes
            .iter()
            .filter_map(|(vote, _)| set.weight_of(&vote.voter))
            .sum()
    });
    let mut map = Map::new();
    map.insert("votes".into(), json!(proof.votes.len()));
    map.insert(
        "voters".into(),
        json!(proof
            .votes
            .iter()
            .map(|(v, _)| hex::encode(v.voter.0))
            .collect::<Vec<_>>()),
    );
    map.insert(
        "epochs".into(),
        json!(proof.votes.iter().map(|(v, _)| v.epoch).collect::<Vec<_>>()),
    );
    map.insert(
        "seqs".into(),
        json!(proof.votes.iter().map(|(v, _)| v.seq).collect::<Vec<_>>()),
    );
    map.insert("epoch".into(), json!(epoch));
    map.insert("weight".into(), json!(weight));
    map.insert(
        "required_weight".into(),
        json!(set.map(ValidatorSet::required_weight)),
    );
    map.insert(
        "total_weight".into(),
        json!(set.map(ValidatorSet::total_weight)),
    );
    map
}

/// An entry of a verbosity-2 block: the tx, its fee and its proof.
fn full_entry(
    view: &ReadView<'_>,
    proof: &FinalityProof,
    committees: &StoreArchive<'_>,
    network: Network,
) -> Result<Value, RpcError> {
    let mut entry = bitcoin::tx(&proof.tx, network);
    let fee = view.fee_of(&proof.tx)?;
    entry.insert("fee".into(), json!(fee.map(bitcoin::amount)));
    entry.insert("fee_units".into(), json!(fee.map(Amount::units)));
    entry.insert(
        "proof".into(),
        Value::Object(proof_summary(proof, committees)),
    );
    Ok(Value::Object(entry))
}

/// A block's reward tx: its outputs with their state, and maturity.
fn reward_view(
    view: &ReadView<'_>,
    block: &Block,
    tip: u64,
    ctx: &RpcContext,
) -> Result<Value, RpcError> {
    let network = ctx.spec.config.network;
    let maturity = u64::from(ctx.spec.config.ledger.reward_maturity_blocks);
    let matures_at = crate::chain::reward_matures_at(block.header.height, maturity);
    // `tip` reaches the maturity, and a certified block covers the reward's.
    let mature = tip >= matures_at && view.maturity_height()? >= matures_at;
    let outputs: Vec<Value> = block
        .reward
        .outputs
        .iter()
        .enumerate()
        .map(|(vout, output)| {
            let outpoint = block
                .reward
                .outpoint(u32::try_from(vout).unwrap_or(u32::MAX));
            let state = match view.utxo(&outpoint)?.map(|e| e.state) {
                Some(UtxoState::Spent { by }) => json!({ "spent_by": by.to_string() }),
                Some(UtxoState::Immature { .. } | UtxoState::Unspent) if mature => {
                    json!("spendable")
                }
                Some(_) => json!("immature"),
                None => json!("missing"),
            };
            let mut shown = json::tx_output(vout, output, network);
            if let Some(map) = shown.as_object_mut() {
                map.insert("state".into(), state);
            }
            Ok(shown)
        })
        .collect::<Result<_, RpcError>>()?;
    let total = Amount::checked_sum(block.reward.outputs.iter().map(|o| o.value));
    Ok(json!({
        "txid": block.reward.id().to_string(),
        "total": total.map(json::amount),
        "matures_at_height": matures_at,
        "mature": mature,
        "outputs": outputs,
    }))
}

/// `getrawtransaction TXID true`'s block location: Bitcoin's `blockhash`
/// and `confirmations`, or `confirmations: 0` while no block archives it.
pub(super) fn insert_location(map: &mut Map<String, Value>, record: &TxRecord, tip: u64) {
    match record.status {
        TxStatus::Archived { height, block } => {
            map.insert("status".into(), json!("archived"));
            map.insert(
                "location".into(),
                json!(format!("archived at height {height}")),
            );
            map.insert("blockhash".into(), json!(block.to_string()));
            map.insert("height".into(), json!(height));
            map.insert("confirmations".into(), json!(confirmations(tip, height)));
        }
        TxStatus::Finalized => {
            map.insert("status".into(), json!("finalized"));
            map.insert("location".into(), json!("finalized, not yet archived"));
            map.insert("blockhash".into(), Value::Null);
            map.insert("height".into(), Value::Null);
            map.insert("confirmations".into(), json!(0));
        }
    }
}

pub(super) fn validators(ctx: &RpcContext) -> Result<Value, RpcError> {
    let set = super::methods::validator_set(ctx)?;
    let network = ctx.spec.config.network;
    Ok(json!({
        "total_weight": set.total_weight(),
        "required_weight": set.required_weight(),
        "validators": set.validators().iter().map(|v| {
            let tier = Tier::ALL.iter().find(|t| t.weight() == v.weight);
            json!({
                "id": hex::encode(v.id.0),
                "vrf_key": hex::encode(v.vrf_key.0),
                "weight": v.weight,
                "tier": tier.map_or(json!("custom"), |t| json!(t)),
                "payout_address": payout_address(&v.id).to_text(network),
            })
        }).collect::<Vec<_>>(),
    }))
}

/// The reward rules of the set that pays the block at `height` (default:
/// the tip; none at the genesis), and that block's reward.
pub(super) fn reward_info(ctx: &RpcContext, height: Option<u64>) -> Result<Value, RpcError> {
    let view = ctx.store.read()?;
    let tip = view.tip()?;
    if height == Some(0) {
        return Err(RpcError::invalid_param(
            "height",
            "height 0 is the genesis, which pays no reward",
        ));
    }
    let height = height.unwrap_or(tip.height);
    if height > tip.height {
        return Err(out_of_range(height, tip.height));
    }
    let set = super::masternodes::paying_set(ctx, &view, height)?;
    let base = block_reward(set.members.len());
    let producer_cut = Amount(base.units() / 10);
    let block = match view.block_hash_at(height)?.filter(|_| height > 0) {
        None => Value::Null,
        Some(hash) => {
            let (block, _) = stored_block(&view, &hash)?
                .ok_or_else(|| corrupt_block(&hash, "its bytes are missing"))?;
            let mut reward = reward_view(&view, &block, tip.height, ctx)?;
            if let Some(map) = reward.as_object_mut() {
                map.insert("height".into(), json!(height));
                map.insert("blockhash".into(), json!(hash.to_string()));
                let payout = registered_payout(&view, &block.header.producer)?;
                map.insert(
                    "producer_address".into(),
                    json!(payout.to_text(ctx.spec.config.network)),
                );
            }
            reward
        }
    };
    Ok(json!({
        "epoch": set.epoch,
        "validators": set.members.len(),
        "total_weight": set.total_weight(),
        // 100 TIME x (1 + ln N), before the block's fees are added.
        "block_reward": json::amount(base),
        "producer_share_percent": 10,
        // Of the base reward; the producer also gets 10% of fees and the rounding dust.
        "producer_reward": json::amount(producer_cut),
        "validators_reward": json::amount(Amount(base.units() - producer_cut.units())),
        "maturity_blocks": ctx.spec.config.ledger.reward_maturity_blocks,
        "tip_height": tip.height,
        "block": block,
    }))
}

pub(super) fn verify_chain(ctx: &RpcContext) -> Result<Value, RpcError> {
    let set = super::methods::validator_set(ctx)?;
    let started = ctx.clock.mono();
    let params = archive::replay_params(&ctx.spec, ctx.clock.wall())
        .map_err(|e| RpcError::new(errors::INTERNAL_ERROR, e.to_string()))?;
    let found = archive::verify_store(&ctx.store, &ctx.spec, set, &params)?;
    let elapsed_ms = ctx.clock.mono().saturating_since(started).as_millis();
    let replay = &found.replay;
    let failure = match (
        &replay.failure,
        &found.tables,
        &found.certificates,
        &found.registry,
    ) {
        (Some(f), _, _, _) => json!({
            "height": f.height,
            "block": f.block.map(|h| h.to_string()),
            "reason": f.fault.reason(),
            "message": f.fault.to_string(),
        }),
        (None, Err(e), _, _) => json!({
            "height": Value::Null,
            "block": Value::Null,
            "reason": "tables_disagree",
            "message": e.to_string(),
        }),
        (None, Ok(_), Err(e), _) => json!({
            "height": e.height(),
            "block": Value::Null,
            "reason": "bad_certificate",
            "message": e.to_string(),
        }),
        (None, Ok(_), Ok(_), Err(e)) => json!({
            "height": Value::Null,
            "block": Value::Null,
            "reason": "registry_mismatch",
            "message": e.to_string(),
        }),
        (None, Ok(_), Ok(_), Ok(_)) => Value::Null,
    };
    let tables = found.tables.as_ref().ok().map(|s| {
        json!({
            "archived_txs": s.archived,
            "unarchived_txs": s.unarchived,
            "reward_outputs": s.reward_outputs,
        })
    });
    Ok(json!({
        "valid": found.is_ok(),
        "tip_height": replay.tip.height,
        "tip_hash": replay.tip.hash.to_string(),
        "blocks": replay.blocks,
        "txs": replay.txs,
        "proofs": replay.txs,
        "votes": replay.votes,
        "certificates": found.certificates.as_ref().ok(),
        "epochs": found.registry.as_ref().ok(),
        "tables": tables,
        "elapsed_ms": u64::try_from(elapsed_ms).unwrap_or(u64::MAX),
        "failure": failure,
    }))
}

/// Most heights `getchaintips` walks down to find where a branch leaves ours.
const MAX_BRANCH_WALK: u64 = 100_000;
/// Most pieces of evidence `getevidence` lists.
const MAX_EVIDENCE_LISTED: usize = 1_000;

/// `getchaintips`, Bitcoin Core's shape (`height`, `hash`, `branchlen`,
/// `status`) plus `certified`. The store keeps one chain: the active tip,
/// and, when the highest certificate names a block our chain lacks, that
/// block as `headers-only` (known certified, not held; sync fetches it).
pub(super) fn chain_tips(ctx: &RpcContext) -> Result<Value, RpcError> {
    let view = ctx.store.read()?;
    let tip = view.tip()?;
    let tip_certified = view
        .certificate_at(tip.height)?
        .is_some_and(|c| c.hash == tip.hash);
    let mut tips = vec![json!({
        "height": tip.height,
        "hash": tip.hash.to_string(),
        "branchlen": 0,
        "status": "active",
        "certified": tip_certified,
    })];
    if let Some((height, hash)) = view.certified_tip()? {
        if view.block_hash_at(height)? != Some(hash) {
            // Its branch leaves ours at or above our last certified block.
            let top = height.saturating_sub(1).min(tip.height);
            let mut base = top;
            while base > 0 && top - base < MAX_BRANCH_WALK {
                let certified = view.certificate_at(base)?.map(|c| c.hash);
                if certified.is_some() && certified == view.block_hash_at(base)? {
                    break;
                }
                base -= 1;
            }
            tips.push(json!({
                "height": height,
                "hash": hash.to_string(),
                "branchlen": height.saturating_sub(base),
                "status": "headers-only",
                "certified": true,
            }));
        }
    }
    Ok(json!(tips))
}

/// `getevidence`: the equivocation evidence this node stored, block
/// endorsements then window votes, each saying its `kind` and checked again
/// against the validator set.
pub(super) fn evidence(ctx: &RpcContext) -> Result<Value, RpcError> {
    let committees = super::methods::committees(ctx)?;
    let (chain_id, genesis_hash) = (ctx.spec.chain_id(), ctx.spec.genesis_hash());
    let view = ctx.store.read()?;
    let stored = view.evidence(MAX_EVIDENCE_LISTED)?;
    let windows = view.window_evidence(MAX_EVIDENCE_LISTED.saturating_sub(stored.len()))?;
    let undecodable =
        |e: DecodeError| json!({ "error": format!("stored evidence does not decode: {e}") });
    let window_listed = windows
        .iter()
        .map(|bytes| match WindowEquivocation::decode(bytes) {
            Ok(e) => json!({
                "kind": "window",
                "voter": hex::encode(e.first.vote.voter.0),
                "outpoint": e.key().map(|(_, o)| o.to_string()),
                "txids": [e.first.tx.txid().to_string(), e.second.tx.txid().to_string()],
                "seqs": [e.first.vote.seq, e.second.vote.seq],
                "valid": e.verify(chain_id, genesis_hash, |epoch| committees.committee_for_epoch(epoch)).is_ok(),
                "hex": hex::encode(bytes),
            }),
            Err(e) => undecodable(e),
        });
    let listed: Vec<Value> = stored
        .iter()
        .map(|bytes| match Equivocation::decode(bytes) {
            Ok(e) => json!({
                "kind": "block",
                "voter": hex::encode(e.first.voter.0),
                "height": e.first.height,
                "blocks": [e.first.hash.to_string(), e.second.hash.to_string()],
                "valid": VoteContext::at_height(
                    (chain_id, genesis_hash),
                    e.first.height,
                    |h| committees.epoch_of(h),
                    |epoch| committees.endorsers_for_epoch(epoch),
                )
                .and_then(|context| e.verify(&context))
                .is_ok(),
                "hex": hex::encode(bytes),
            }),
            Err(e) => undecodable(e),
        })
        .chain(window_listed)
        .collect();
    Ok(json!(listed))
}
