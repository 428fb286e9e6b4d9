//! The UTXO set's Bitcoin-named methods: `gettxout`, `listunspent`,
//! `getbalance`, `gettxoutsetinfo`, `validateaddress`.
//!
//! The node keeps no wallet, so the address-keyed calls take the addresses
//! to look at. A finalized output is final at once: its `confirmations`
//! counts the blocks that archive it (0 until one does), so `minconf`
//! defaults to 0, not Bitcoin's 1.

use super::bitcoin;
use super::errors::{self, RpcError};
use super::RpcContext;
use crate::ledger::BondState;
use crate::ledger::UtxoState;
use crate::store::{ReadView, TxStatus};
use crate::types::{Address, Amount, Hash, OutPoint};
use serde_json::{json, Value};

/// `listunspent` returns at most this many outputs.
pub const MAX_LISTUNSPENT: usize = 10_000;
/// `listunspent` takes at most this many addresses.
pub const MAX_LISTUNSPENT_ADDRESSES: usize = 100;

/// Blocks that archive the output `outpoint` (Bitcoin's count: the block
/// holding it is the first): genesis outputs are in every block, a reward
/// output in its own block, a transfer once a block archives its tx.
fn confirmations(
    ctx: &RpcContext,
    view: &ReadView<'_>,
    outpoint: &OutPoint,
    state: UtxoState,
    tip: u64,
) -> Result<u64, RpcError> {
    let since = |height: u64| tip.saturating_sub(height).saturating_add(1);
    if outpoint.txid == ctx.spec.genesis_hash() {
        return Ok(since(0));
    }
    if let UtxoState::Immature { matures_at } = state {
        let maturity = u64::from(ctx.spec.config.ledger.reward_maturity_blocks);
        return Ok(since(matures_at.saturating_sub(maturity)));
    }
    Ok(match view.tx(&outpoint.txid)?.map(|r| r.status) {
        Some(TxStatus::Archived { height, .. }) => since(height),
        _ => 0,
    })
}

/// How a masternode bond holds an unspent output (DESIGN §7).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Free, or a bond that let go.
    None,
    /// A bonded collateral: spending it deregisters its masternode.
    Collateral,
    /// Unbonding or burned: it cannot move now.
    Locked,
}

fn hold(view: &ReadView<'_>, outpoint: &OutPoint) -> Result<Hold, RpcError> {
    let Some(bond) = view.bond(outpoint)? else {
        return Ok(Hold::None);
    };
    Ok(match view.bond_state(&bond)? {
        BondState::Released => Hold::None,
        BondState::Burned => Hold::Locked,
        BondState::Bonded if bond.is_collateral(outpoint) => Hold::Collateral,
        BondState::Bonded | BondState::Unbonding { .. } => Hold::Locked,
    })
}

pub(super) fn tx_out(ctx: &RpcContext, outpoint: OutPoint) -> Result<Value, RpcError> {
    let view = ctx.store.read()?;
    let tip = view.tip()?;
    let Some(entry) = view.utxo(&outpoint)? else {
        // Like bitcoind: spent or unknown outputs are `null`.
        return Ok(Value::Null);
    };
    let spendable = match entry.state {
        UtxoState::Unspent => true,
        UtxoState::Immature { matures_at } => tip.height >= matures_at,
        UtxoState::Spent { .. } => return Ok(Value::Null),
    } && hold(&view, &outpoint)? != Hold::Locked;
    let network = ctx.spec.config.network;
    Ok(json!({
        "bestblock": tip.hash.to_string(),
        "confirmations": confirmations(ctx, &view, &outpoint, entry.state, tip.height)?,
        "value": bitcoin::amount(entry.output.value),
        "scriptPubKey": bitcoin::script_pubkey(&entry.output.address, network),
        "coinbase": matches!(entry.state, UtxoState::Immature { .. }),
        "value_units": entry.output.value.units(),
        "spendable": spendable,
    }))
}

pub(super) fn list_unspent(
    ctx: &RpcContext,
    minconf: u64,
    maxconf: u64,
    addresses: &[Address],
) -> Result<Value, RpcError> {
    let view = ctx.store.read()?;
    let tip = view.tip()?.height;
    let network = ctx.spec.config.network;
    let mut listed = Vec::new();
    for address in addresses {
        let room = MAX_LISTUNSPENT.saturating_sub(listed.len());
        for (outpoint, output) in view.unspent_by_address(address, room)? {
            // Every output listed here is spendable (immature rewards and
            // unbonding or burned masternode coins are skipped); spending a
            // collateral deregisters its masternode, so it is flagged.
            let hold = hold(&view, &outpoint)?;
            if hold == Hold::Locked {
                continue;
            }
            let state = view
                .utxo(&outpoint)?
                .map_or(UtxoState::Unspent, |e| e.state);
            let confirmations = confirmations(ctx, &view, &outpoint, state, tip)?;
            if confirmations < minconf || confirmations > maxconf {
                continue;
            }
            listed.push(json!({
                "txid": outpoint.txid.to_string(),
                "vout": outpoint.vout,
                "address": output.address.to_text(network),
                "scriptPubKey": hex::encode(output.address.0),
                "amount": bitcoin::amount(output.value),
                "confirmations": confirmations,
                "spendable": true,
                "solvable": true,
                "safe": true,
                "amount_units": output.value.units(),
                "masternode_collateral": hold == Hold::Collateral,
            }));
        }
    }
    Ok(Value::Array(listed))
}

pub(super) fn balance(
    ctx: &RpcContext,
    address: &Address,
    minconf: u64,
) -> Result<Value, RpcError> {
    if minconf == 0 {
        return Ok(bitcoin::amount(ctx.store.balance(address)?));
    }
    let view = ctx.store.read()?;
    let tip = view.tip()?.height;
    let mut total = Amount::ZERO;
    for (outpoint, output) in view.unspent_by_address(address, usize::MAX)? {
        let state = view
            .utxo(&outpoint)?
            .map_or(UtxoState::Unspent, |e| e.state);
        if confirmations(ctx, &view, &outpoint, state, tip)? >= minconf {
            total = total.checked_add(output.value).ok_or_else(|| {
                RpcError::new(errors::STORE_ERROR, "balance overflows; run verifychain")
            })?;
        }
    }
    Ok(bitcoin::amount(total))
}

/// `gettxoutsetinfo`: the UTXO set's size, its total (the supply less what
/// fees burned), how much of it slashing burned, and a digest of its contents in key order, which two nodes
/// at the same state report alike.
pub(super) fn tx_out_set_info(ctx: &RpcContext) -> Result<Value, RpcError> {
    let view = ctx.store.read()?;
    let tip = view.tip()?;
    let mut hasher = blake3::Hasher::new();
    let mut txouts: u64 = 0;
    let mut total = Amount::ZERO;
    let mut transactions: u64 = 0;
    let mut last_txid: Option<Hash> = None;
    for item in view.scan_utxos()? {
        let (outpoint, entry) = item?;
        if matches!(entry.state, UtxoState::Spent { .. }) {
            continue;
        }
        hasher.update(&crate::types::encoding::encode(&(outpoint, entry.output)));
        txouts += 1;
        total = total.checked_add(entry.output.value).ok_or_else(|| {
            RpcError::new(errors::STORE_ERROR, "UTXO values overflow; run verifychain")
        })?;
        // Keys are in txid order: a txid differs from the last one only once.
        if last_txid != Some(outpoint.txid) {
            last_txid = Some(outpoint.txid);
            transactions += 1;
        }
    }
    let burned = burned_total(&view)?;
    Ok(json!({
        "height": tip.height,
        "bestblock": tip.hash.to_string(),
        "transactions": transactions,
        "txouts": txouts,
        "hash_serialized_3": hex::encode(hasher.finalize().as_bytes()),
        "total_amount": bitcoin::amount(total),
        "total_amount_units": total.units(),
        "burned_amount": bitcoin::amount(burned),
        "burned_amount_units": burned.units(),
    }))
}

/// Unspent outputs bound to a slashed masternode: they count in the UTXO
/// set's total, but never move again.
fn burned_total(view: &ReadView<'_>) -> Result<Amount, RpcError> {
    let overflow = || RpcError::new(errors::STORE_ERROR, "UTXO values overflow; run verifychain");
    let mut burned = Amount::ZERO;
    for item in view.scan_bonds()? {
        let (outpoint, bond) = item?;
        let Some(entry) = view.utxo(&outpoint)? else {
            continue;
        };
        if entry.state.is_unspent() && view.bond_state(&bond)? == BondState::Burned {
            burned = burned
                .checked_add(entry.output.value)
                .ok_or_else(overflow)?;
        }
    }
    Ok(burned)
}

pub(super) fn validate_address(ctx: &RpcContext, text: &str) -> Value {
    let network = ctx.spec.config.network;
    match Address::parse(text, network) {
        Ok(address) => json!({
            "isvalid": true,
            "address": address.to_text(network),
            "scriptPubKey": hex::encode(address.0),
            "isscript": false,
            "iswitness": false,
        }),
        Err(e) => json!({ "isvalid": false, "error": e.to_string() }),
    }
}
