//! Every RPC method: parsed once from its JSON-RPC name and params into a
//! typed [`Method`] (each bad param is an error naming it), then dispatched
//! by `match`. Params may be positional (`[...]`, as bitcoin-cli sends) or
//! named (`{...}`).
//!
//! Reads use one LMDB snapshot each; submissions and engine questions go to
//! the consensus thread and are waited for at most `consensus_timeout`.

use super::archive::StoreArchive;
use super::blocks::{self, BlockVerbosity};
use super::errors::{self, RpcError};
use super::wait::{Wait, DEFAULT_TX_WAIT, MAX_WAIT};
use super::{bitcoin, help, masternodes, mempool, status, utxos, RpcContext};
use crate::consensus::{NodeId, PeerWork, SubmitError, TxStatusReport};
use crate::finality::{FinalityProof, ValidatorSet};
use crate::ledger::TxError;
use crate::mempool::TxStatus;
use crate::metrics::Channel;
use crate::node::channels::{
    ConsensusQuery, FinalityTimings, NodeEvent, SubmitRefused, TxStatusAnswer,
};
use crate::node::StopReason;
use crate::store::schema::PROOFS;
use crate::time::MonoTime;
use crate::types::encoding::decode;
use crate::types::tx::MAX_TX_BYTES_HARD;
use crate::types::{Address, Hash, OutPoint, PublicKeyBytes, Tx};
use crossbeam_channel::{bounded, Receiver, SendTimeoutError};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    GetBlockchainInfo,
    GetBlockCount,
    GetBestBlockHash,
    GetBlockHash {
        height: u64,
    },
    GetBlock {
        hash: Hash,
        verbosity: BlockVerbosity,
    },
    GetRawTransaction {
        txid: Hash,
        verbose: bool,
    },
    SendRawTransaction {
        tx: Box<Tx>,
    },
    GetTxOut {
        outpoint: OutPoint,
    },
    GetMempoolInfo,
    GetRawMempool {
        verbose: bool,
    },
    GetMempoolEntry {
        txid: Hash,
    },
    GetPeerInfo,
    GetConnectionCount,
    Ping,
    Help {
        method: Option<String>,
    },
    GetBlockHeader {
        hash: Hash,
        verbose: bool,
    },
    DecodeRawTransaction {
        tx: Box<Tx>,
    },
    ValidateAddress {
        address: String,
    },
    GetTxOutSetInfo,
    EstimateSmartFee,
    /// A long poll; parked on the connection's thread (see [`super::wait`]).
    Wait(Wait),
    GetStatus,
    GetNetworkInfo,
    Uptime,
    Stop,
    GetTxStatus {
        txid: Hash,
    },
    GetFinalityProof {
        txid: Hash,
    },
    GetConsensusInfo,
    ListUnspent {
        minconf: u64,
        maxconf: u64,
        addresses: Vec<Address>,
    },
    GetBalance {
        address: Address,
        minconf: u64,
    },
    GetValidators,
    GetRewardInfo {
        height: Option<u64>,
    },
    VerifyChain,
    GetChainTips,
    GetEvidence,
    GetEpochInfo,
    GetMasternodes {
        epoch: Option<u64>,
    },
    GetMasternode {
        id: PublicKeyBytes,
    },
}

/// A request's params, positional or named.
struct Params<'a> {
    method: &'a str,
    positional: &'a [Value],
    named: Option<&'a Map<String, Value>>,
}

impl<'a> Params<'a> {
    fn new(method: &'a str, params: &'a Value) -> Result<Params<'a>, RpcError> {
        match params {
            Value::Null => Ok(Params {
                method,
                positional: &[],
                named: None,
            }),
            Value::Array(items) => Ok(Params {
                method,
                positional: items,
                named: None,
            }),
            Value::Object(map) => Ok(Params {
                method,
                positional: &[],
                named: Some(map),
            }),
            _ => Err(RpcError::new(
                errors::INVALID_PARAMS,
                "params must be an array or an object",
            )),
        }
    }

    /// Refuses params beyond `names` (positional or named).
    fn takes_only(&self, names: &[&str]) -> Result<(), RpcError> {
        if self.positional.len() > names.len() {
            return Err(RpcError::new(
                errors::INVALID_PARAMS,
                format!(
                    "{} takes at most {} parameter(s) ({}), got {}",
                    self.method,
                    names.len(),
                    names.join(", "),
                    self.positional.len()
                ),
            ));
        }
        if let Some(unknown) = self
            .named
            .and_then(|m| m.keys().find(|k| !names.contains(&k.as_str())))
        {
            return Err(RpcError::invalid_param(
                unknown,
                format!("{} has no such parameter", self.method),
            ));
        }
        Ok(())
    }

    fn get(&self, index: usize, name: &str) -> Option<&'a Value> {
        let value = match self.named {
            Some(map) => map.get(name),
            None => self.positional.get(index),
        };
        value.filter(|v| !v.is_null())
    }

    fn required(&self, index: usize, name: &str) -> Result<&'a Value, RpcError> {
        self.get(index, name)
            .ok_or_else(|| RpcError::invalid_param(name, "missing"))
    }

    fn str(&self, index: usize, name: &str) -> Result<&'a str, RpcError> {
        self.required(index, name)?
            .as_str()
            .ok_or_else(|| RpcError::invalid_param(name, "expected a string"))
    }

    fn hash(&self, index: usize, name: &str) -> Result<Hash, RpcError> {
        self.str(index, name)?
            .parse()
            .map_err(|e| RpcError::invalid_param(name, e))
    }

    fn u64(&self, index: usize, name: &str) -> Result<u64, RpcError> {
        self.required(index, name)?
            .as_u64()
            .ok_or_else(|| RpcError::invalid_param(name, "expected a non-negative integer"))
    }

    fn u64_or(&self, index: usize, name: &str, default: u64) -> Result<u64, RpcError> {
        match self.get(index, name) {
            None => Ok(default),
            Some(_) => self.u64(index, name),
        }
    }

    fn opt_u64(&self, index: usize, name: &str) -> Result<Option<u64>, RpcError> {
        match self.get(index, name) {
            None => Ok(None),
            Some(_) => self.u64(index, name).map(Some),
        }
    }

    /// `true`/`false`, or bitcoind's verbosity integers (0 = false).
    fn flag(&self, index: usize, name: &str) -> Result<bool, RpcError> {
        match self.get(index, name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => v
                .as_u64()
                .map(|n| n != 0)
                .ok_or_else(|| RpcError::invalid_param(name, "expected true or false")),
        }
    }

    fn address(&self, index: usize, name: &str, ctx: &RpcContext) -> Result<Address, RpcError> {
        Address::parse(self.str(index, name)?, ctx.spec.config.network)
            .map_err(|e| RpcError::new(errors::NOT_FOUND, format!("Invalid address '{name}': {e}")))
    }

    /// A JSON array of address strings, at most [`utxos::MAX_LISTUNSPENT_ADDRESSES`].
    fn addresses(
        &self,
        index: usize,
        name: &str,
        ctx: &RpcContext,
    ) -> Result<Vec<Address>, RpcError> {
        let missing = || {
            RpcError::invalid_param(
                name,
                "this node keeps no wallet: pass the addresses to list, e.g. listunspent 0 9999999 '[\"dtime1...\"]'",
            )
        };
        let list = self
            .get(index, name)
            .ok_or_else(missing)?
            .as_array()
            .ok_or_else(|| RpcError::invalid_param(name, "expected an array of addresses"))?;
        if list.is_empty() {
            return Err(missing());
        }
        if list.len() > utxos::MAX_LISTUNSPENT_ADDRESSES {
            return Err(RpcError::invalid_param(
                name,
                format!("at most {} addresses", utxos::MAX_LISTUNSPENT_ADDRESSES),
            ));
        }
        list.iter()
            .map(|v| {
                let text = v
                    .as_str()
                    .ok_or_else(|| RpcError::invalid_param(name, "expected address strings"))?;
                Address::parse(text, ctx.spec.config.network).map_err(|e| {
                    RpcError::new(
                        errors::NOT_FOUND,
                        format!("Invalid address '{}': {e}", clip(text)),
                    )
                })
            })
            .collect()
    }
}

impl Method {
    /// Parses `name` and `params` into a method, or says which param is wrong.
    pub fn parse(name: &str, params: &Value, ctx: &RpcContext) -> Result<Method, RpcError> {
        let p = Params::new(name, params)?;
        let no_params = |m: Method| p.takes_only(&[]).map(|()| m);
        match name {
            "getblockchaininfo" => no_params(Method::GetBlockchainInfo),
            "getblockcount" => no_params(Method::GetBlockCount),
            "getbestblockhash" => no_params(Method::GetBestBlockHash),
            "getmempoolinfo" => no_params(Method::GetMempoolInfo),
            "getrawmempool" => {
                p.takes_only(&["verbose", "mempool_sequence"])?;
                Ok(Method::GetRawMempool {
                    verbose: p.flag(0, "verbose")?,
                })
            }
            "getmempoolentry" => {
                p.takes_only(&["txid"])?;
                Ok(Method::GetMempoolEntry {
                    txid: p.hash(0, "txid")?,
                })
            }
            "getpeerinfo" => no_params(Method::GetPeerInfo),
            "getconnectioncount" => no_params(Method::GetConnectionCount),
            "ping" => no_params(Method::Ping),
            "gettxoutsetinfo" => {
                // Bitcoin's hash_type / hash_or_height / use_index: one digest here.
                p.takes_only(&["hash_type", "hash_or_height", "use_index"])?;
                Ok(Method::GetTxOutSetInfo)
            }
            "estimatesmartfee" => {
                p.takes_only(&["conf_target", "estimate_mode"])?;
                p.u64(0, "conf_target")?;
                Ok(Method::EstimateSmartFee)
            }
            "getstatus" => no_params(Method::GetStatus),
            "help" => {
                p.takes_only(&["command"])?;
                let method = match p.get(0, "command") {
                    None => None,
                    Some(_) => Some(clip(p.str(0, "command")?)),
                };
                Ok(Method::Help { method })
            }
            "getblockheader" => {
                p.takes_only(&["blockhash", "verbose"])?;
                let verbose = match p.get(1, "verbose") {
                    None => true,
                    Some(_) => p.flag(1, "verbose")?,
                };
                Ok(Method::GetBlockHeader {
                    hash: p.hash(0, "blockhash")?,
                    verbose,
                })
            }
            "decoderawtransaction" => {
                p.takes_only(&["hexstring", "iswitness"])?;
                Ok(Method::DecodeRawTransaction {
                    tx: Box::new(decode_tx_hex(p.str(0, "hexstring")?, ctx)?),
                })
            }
            "validateaddress" => {
                p.takes_only(&["address"])?;
                Ok(Method::ValidateAddress {
                    address: clip(p.str(0, "address")?),
                })
            }
            "waitfortx" => {
                p.takes_only(&["txid", "timeout"])?;
                Ok(Method::Wait(Wait::Tx {
                    txid: p.hash(0, "txid")?,
                    timeout: Wait::timeout_from_ms(p.opt_u64(1, "timeout")?, DEFAULT_TX_WAIT),
                }))
            }
            "waitfornewblock" => {
                p.takes_only(&["timeout"])?;
                Ok(Method::Wait(Wait::NewBlock {
                    timeout: Wait::timeout_from_ms(p.opt_u64(0, "timeout")?, MAX_WAIT),
                }))
            }
            "waitforblockheight" => {
                p.takes_only(&["height", "timeout"])?;
                Ok(Method::Wait(Wait::BlockHeight {
                    height: p.u64(0, "height")?,
                    timeout: Wait::timeout_from_ms(p.opt_u64(1, "timeout")?, MAX_WAIT),
                }))
            }
            "getnetworkinfo" => no_params(Method::GetNetworkInfo),
            "uptime" => no_params(Method::Uptime),
            "stop" => no_params(Method::Stop),
            "getconsensusinfo" => no_params(Method::GetConsensusInfo),
            "getvalidators" => no_params(Method::GetValidators),
            "verifychain" => no_params(Method::VerifyChain),
            "getchaintips" => no_params(Method::GetChainTips),
            "getevidence" => no_params(Method::GetEvidence),
            "getepochinfo" => no_params(Method::GetEpochInfo),
            "getmasternodes" => {
                p.takes_only(&["epoch"])?;
                Ok(Method::GetMasternodes {
                    epoch: p.opt_u64(0, "epoch")?,
                })
            }
            "getmasternode" => {
                p.takes_only(&["id"])?;
                Ok(Method::GetMasternode {
                    id: PublicKeyBytes(p.hash(0, "id")?.0),
                })
            }
            "getrewardinfo" => {
                p.takes_only(&["height"])?;
                let height = match p.get(0, "height") {
                    None => None,
                    Some(_) => Some(p.u64(0, "height")?),
                };
                Ok(Method::GetRewardInfo { height })
            }
            "getblockhash" => {
                p.takes_only(&["height"])?;
                Ok(Method::GetBlockHash {
                    height: p.u64(0, "height")?,
                })
            }
            "getblock" => {
                p.takes_only(&["blockhash", "verbosity"])?;
                Ok(Method::GetBlock {
                    hash: p.hash(0, "blockhash")?,
                    verbosity: BlockVerbosity::from_json(p.get(1, "verbosity"))?,
                })
            }
            "getrawtransaction" => {
                p.takes_only(&["txid", "verbose"])?;
                Ok(Method::GetRawTransaction {
                    txid: p.hash(0, "txid")?,
                    verbose: p.flag(1, "verbose")?,
                })
            }
            "sendrawtransaction" => {
                p.takes_only(&["hexstring"])?;
                Ok(Method::SendRawTransaction {
                    tx: Box::new(decode_tx_hex(p.str(0, "hexstring")?, ctx)?),
                })
            }
            "gettxout" => {
                p.takes_only(&["txid", "n"])?;
                let txid = p.hash(0, "txid")?;
                let vout = u32::try_from(p.u64(1, "n")?)
                    .map_err(|_| RpcError::invalid_param("n", "output index too large"))?;
                Ok(Method::GetTxOut {
                    outpoint: OutPoint { txid, vout },
                })
            }
            "gettxstatus" => {
                p.takes_only(&["txid"])?;
                Ok(Method::GetTxStatus {
                    txid: p.hash(0, "txid")?,
                })
            }
            "getfinalityproof" => {
                p.takes_only(&["txid"])?;
                Ok(Method::GetFinalityProof {
                    txid: p.hash(0, "txid")?,
                })
            }
            "listunspent" => {
                p.takes_only(&["minconf", "maxconf", "addresses", "include_unsafe"])?;
                Ok(Method::ListUnspent {
                    minconf: p.u64_or(0, "minconf", 0)?,
                    maxconf: p.u64_or(1, "maxconf", 9_999_999)?,
                    addresses: p.addresses(2, "addresses", ctx)?,
                })
            }
            "getbalance" => {
                // Bitcoin's first slot (the dummy "*"): a wallet-less node needs the address.
                p.takes_only(&["address", "minconf", "include_watchonly", "avoid_reuse"])?;
                if p.get(0, "address").and_then(Value::as_str) == Some("*") {
                    return Err(RpcError::invalid_param(
                        "address",
                        "this node keeps no wallet: pass the address to total, e.g. getbalance dtime1... 0",
                    ));
                }
                Ok(Method::GetBalance {
                    address: p.address(0, "address", ctx)?,
                    minconf: p.u64_or(1, "minconf", 0)?,
                })
            }
            _ => Err(RpcError::new(
                errors::METHOD_NOT_FOUND,
                format!("method not found: '{}'", clip(name)),
            )),
        }
    }
}

/// Hex → transaction, within the chain's size limit.
fn decode_tx_hex(text: &str, ctx: &RpcContext) -> Result<Tx, RpcError> {
    let max_bytes = (ctx.spec.config.ledger.max_tx_bytes as usize).min(MAX_TX_BYTES_HARD);
    if text.len() > 2 * max_bytes {
        return Err(RpcError::new(
            errors::DESERIALIZATION_ERROR,
            format!(
                "transaction hex is {} characters, over the limit for {max_bytes} bytes",
                text.len()
            ),
        ));
    }
    let bytes = hex::decode(text).map_err(|e| {
        RpcError::new(
            errors::DESERIALIZATION_ERROR,
            format!("transaction is not valid hex: {e}"),
        )
    })?;
    Tx::decode(&bytes, max_bytes).map_err(|e| {
        RpcError::new(
            errors::DESERIALIZATION_ERROR,
            format!("cannot decode transaction: {e}"),
        )
    })
}

/// Method names are echoed in errors; keep a hostile one short.
fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Runs `method`.
pub fn call(ctx: &RpcContext, method: Method) -> Result<Value, RpcError> {
    let network = ctx.spec.config.network;
    match method {
        Method::GetBlockchainInfo => blocks::blockchain_info(ctx),
        Method::GetBlockCount => blocks::block_count(ctx),
        Method::GetBestBlockHash => blocks::best_block_hash(ctx),
        Method::GetBlockHash { height } => blocks::block_hash(ctx, height),
        Method::GetBlock { hash, verbosity } => blocks::block(ctx, hash, verbosity),
        Method::GetRawTransaction { txid, verbose } => raw_transaction(ctx, txid, verbose),
        Method::DecodeRawTransaction { tx } => Ok(Value::Object(bitcoin::tx(&tx, network))),
        Method::SendRawTransaction { tx } => send_raw_transaction(ctx, *tx),
        Method::GetTxOut { outpoint } => utxos::tx_out(ctx, outpoint),
        Method::GetTxOutSetInfo => utxos::tx_out_set_info(ctx),
        Method::ValidateAddress { address } => Ok(utxos::validate_address(ctx, &address)),
        Method::EstimateSmartFee => Ok(json!({
            // The fee is fixed by the chain: any target gets the minimum.
            "feerate": bitcoin::amount(ctx.spec.config.ledger.min_fee),
            "blocks": 1,
            "feerate_units": ctx.spec.config.ledger.min_fee.units(),
            "per": "transaction",
        })),
        Method::GetMempoolEntry { txid } => mempool::mempool_entry(ctx, txid),
        Method::GetRawMempool { verbose: true } => mempool::raw_mempool_verbose(ctx),
        Method::GetBlockHeader { hash, verbose } => blocks::block_header(ctx, hash, verbose),
        Method::GetConnectionCount => Ok(json!(ctx.net.as_ref().map_or(0, |n| n.metrics().peers))),
        Method::Ping => Ok(Value::Null),
        Method::Help { method } => {
            help::text(method.as_deref())
                .map(Value::String)
                .ok_or_else(|| {
                    RpcError::new(
                        errors::METHOD_NOT_FOUND,
                        format!("help: unknown command: {}", method.unwrap_or_default()),
                    )
                })
        }
        // Outside a single request (in a batch) a wait answers at once.
        Method::Wait(wait) => super::wait::answer_now(ctx, wait),
        Method::GetStatus => status::status(ctx),
        Method::GetMempoolInfo => {
            let snapshot = query(ctx, |reply| ConsensusQuery::Mempool { reply })?;
            Ok(json!({
                "size": snapshot.size,
                "bytes": snapshot.bytes,
                "maxmempool": ctx.spec.config.consensus.mempool_max_txs,
            }))
        }
        Method::GetRawMempool { verbose: false } => {
            let snapshot = query(ctx, |reply| ConsensusQuery::Mempool { reply })?;
            Ok(json!(snapshot
                .txids
                .iter()
                .map(Hash::to_string)
                .collect::<Vec<_>>()))
        }
        Method::GetPeerInfo => {
            let peers = ctx.net.as_ref().map(|net| net.peers()).unwrap_or_default();
            // What each peer's messages cost consensus (its work budget).
            let work: HashMap<NodeId, PeerWork> = if peers.is_empty() {
                HashMap::new()
            } else {
                query(ctx, |reply| ConsensusQuery::PeerWork { reply })?
                    .into_iter()
                    .collect()
            };
            Ok(json!(peers
                .iter()
                .map(|p| {
                    let w = p.node_id.and_then(|id| work.get(&id)).copied();
                    json!({
                        "node_id": p.node_id.map(|id| hex::encode(id.0)),
                        "addr": p.addr.to_string(),
                        "inbound": p.inbound,
                        "connected_at_ms": ctx.clock.wall_at(p.connected_at).as_millis(),
                        "tip_height": p.tip_height,
                        "queued_bytes": p.queued_bytes,
                        "misbehaviour_score": p.misbehaviour_score,
                        "validator": p.validator,
                        "reserved": p.reserved,
                        "consensus_work_charged": w.unwrap_or_default().charged,
                        "consensus_work_dropped": w.unwrap_or_default().dropped,
                    })
                })
                .collect::<Vec<_>>()))
        }
        Method::GetNetworkInfo => {
            let metrics = ctx.net.as_ref().map(|net| net.metrics());
            Ok(json!({
                "version": numeric_version(),
                "subversion": concat!("/timecoin:", env!("CARGO_PKG_VERSION"), "/"),
                "protocolversion": crate::net::message::PROTOCOL_VERSION,
                "localservices": "0000000000000000",
                "localrelay": true,
                "timeoffset": 0,
                "relayfee": bitcoin::amount(ctx.spec.config.ledger.min_fee),
                "incrementalfee": bitcoin::amount(ctx.spec.config.ledger.min_fee),
                "localaddresses": [],
                "warnings": "",
                "network": network.name(),
                "networkactive": metrics.is_some(),
                "connections": metrics.as_ref().map_or(0, |m| m.peers),
                "bans": metrics.as_ref().map_or(0, |m| m.bans),
                "bytes_in": metrics.as_ref().map_or(0, |m| m.bytes_in),
                "bytes_out": metrics.as_ref().map_or(0, |m| m.bytes_out),
                "command_drops": metrics.as_ref().map_or(0, |m| m.command_drops),
                "outbox_drops": metrics.as_ref().map_or(0, |m| m.outbox_drops),
                "misbehaviour_disconnects": metrics.as_ref().map_or(0, |m| m.misbehaviour_disconnects),
            }))
        }
        Method::Uptime => Ok(json!(ctx
            .clock
            .mono()
            .saturating_since(ctx.started_at)
            .as_secs())),
        Method::Stop => {
            // A stop already under way is just as good.
            let _ = ctx.stop.try_send(StopReason::Rpc);
            Ok(json!("timecoin stopping"))
        }
        Method::GetTxStatus { txid } => tx_status(ctx, txid),
        Method::GetFinalityProof { txid } => finality_proof(ctx, txid),
        Method::GetConsensusInfo => {
            let info = query(ctx, |reply| ConsensusQuery::Info { reply })?;
            Ok(json!({
                "epoch": info.epoch,
                "validators": info.validators,
                "total_weight": info.total_weight,
                "required_weight": info.required_weight,
                "k": info.sample_k,
                "alpha": info.sample_alpha,
                "beta": ctx.spec.config.consensus.beta,
                "poll_timeout_ms": ctx.spec.config.consensus.poll_timeout_ms,
                "is_validator": info.is_validator,
                "halted": info.halted,
                "mempool_txs": info.mempool_txs,
                "mempool_reloaded": info.mempool_reloaded,
                "polls_started": info.polls_started,
                "polls_succeeded": info.polls_succeeded,
                "polls_failed": info.polls_failed,
                "proofs_assembled": info.proofs_assembled,
                "finality_votes_signed": info.finality_votes_signed,
                "next_timeout_ms": info.next_timeout.map(|at| ctx.clock.wall_at(at).as_millis()),
            }))
        }
        Method::ListUnspent {
            minconf,
            maxconf,
            addresses,
        } => utxos::list_unspent(ctx, minconf, maxconf, &addresses),
        Method::GetBalance { address, minconf } => utxos::balance(ctx, &address, minconf),
        Method::GetValidators => blocks::validators(ctx),
        Method::GetRewardInfo { height } => blocks::reward_info(ctx, height),
        Method::VerifyChain => blocks::verify_chain(ctx),
        Method::GetChainTips => blocks::chain_tips(ctx),
        Method::GetEvidence => blocks::evidence(ctx),
        Method::GetEpochInfo => masternodes::epoch_info(ctx),
        Method::GetMasternodes { epoch } => masternodes::masternodes(ctx, epoch),
        Method::GetMasternode { id } => masternodes::masternode(ctx, id),
    }
}

pub(super) fn validator_set(ctx: &RpcContext) -> Result<ValidatorSet, RpcError> {
    ValidatorSet::new(ctx.spec.validators.clone())
        .map_err(|e| RpcError::new(errors::INTERNAL_ERROR, e.to_string()))
}

/// Every epoch's finality committee, as this node's store decided it
/// (drawn when first asked for): what window votes and proofs are weighed
/// by (seats), where blocks are weighed by the whole set.
pub(super) fn committees(ctx: &RpcContext) -> Result<StoreArchive<'_>, RpcError> {
    Ok(StoreArchive::new(
        ctx.store.read()?,
        &ctx.spec,
        validator_set(ctx)?,
    )?)
}

/// Sends `event` to the consensus thread and waits for its answer, both
/// bounded by `consensus_timeout`.
fn ask<T>(ctx: &RpcContext, event: NodeEvent, answer: &Receiver<T>) -> Result<T, RpcError> {
    match ctx.inbox.try_send(event) {
        Ok(()) => {}
        Err(crossbeam_channel::TrySendError::Full(event)) => {
            ctx.metrics.count_backpressure(Channel::ConsensusInbox);
            match ctx.inbox.send_timeout(event, ctx.consensus_timeout) {
                Ok(()) => {}
                Err(SendTimeoutError::Timeout(_)) => {
                    return Err(RpcError::busy("the consensus inbox is full"))
                }
                Err(SendTimeoutError::Disconnected(_)) => {
                    return Err(RpcError::busy("the node is shutting down"))
                }
            }
        }
        Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
            return Err(RpcError::busy("the node is shutting down"))
        }
    }
    answer
        .recv_timeout(ctx.consensus_timeout)
        .map_err(|_| RpcError::busy("consensus did not answer in time"))
}

pub(super) fn query<T>(
    ctx: &RpcContext,
    make: impl FnOnce(crossbeam_channel::Sender<T>) -> ConsensusQuery,
) -> Result<T, RpcError> {
    let (reply, answer) = bounded(1);
    ask(ctx, NodeEvent::Query(make(reply)), &answer)
}

/// A transaction is `finalized` only once durable in the store; before
/// that the engine's status is reported.
fn tx_status(ctx: &RpcContext, txid: Hash) -> Result<Value, RpcError> {
    let TxStatusAnswer { report, timings } =
        query(ctx, |reply| ConsensusQuery::TxStatus { txid, reply })?;
    // Read after the engine's answer: a commit it reported is visible here.
    let record = ctx.store.tx(&txid)?;
    if record.is_none() && report.is_none() {
        return Err(RpcError::new(
            errors::NOT_FOUND,
            format!("transaction {txid} is unknown here (never submitted, or settled long ago)"),
        ));
    }
    let status = match (&record, report.map(|r| r.status)) {
        (Some(_), _) => "finalized",
        (None, Some(status)) => status_name(status),
        (None, None) => "unknown",
    };
    let mut view = json!({
        "txid": txid.to_string(),
        "status": status,
        "durable": record.is_some(),
    });
    let Some(map) = view.as_object_mut() else {
        return Ok(view);
    };
    if let Some(r) = report.filter(|r| !r.durable) {
        insert_report(ctx, map, &r);
    }
    if let Some(t) = timings {
        insert_timings(ctx, map, &t);
    }
    // Time to the complete proof, from whichever source still has it (the
    // engine's entry until the durable report arrives, the timings after).
    let first_seen = timings
        .map(|t| t.first_seen)
        .or(report.and_then(|r| r.first_seen));
    let finalized_at = timings
        .and_then(|t| t.finalized_at)
        .or(report.and_then(|r| r.finalized_at));
    if let (Some(first_seen), Some(finalized_at)) = (first_seen, finalized_at) {
        let ms = finalized_at.saturating_since(first_seen).as_millis();
        map.insert(
            "finality_ms".into(),
            json!(u64::try_from(ms).unwrap_or(u64::MAX)),
        );
    }
    if let Some(record) = record {
        map.insert("finalized_at_ms".into(), json!(record.finalized_at_ms));
        map.insert("sequence".into(), json!(record.sequence));
    }
    Ok(view)
}

/// A pending tx's engine status as the RPC names it.
pub(super) fn status_name(status: TxStatus) -> &'static str {
    match status {
        TxStatus::Seen => "seen",
        TxStatus::Sampling => "sampling",
        TxStatus::LocallyAccepted => "locally_accepted",
        // Proof complete, commit pending: not yet reported as finalized.
        TxStatus::Finalized => "committing",
        TxStatus::Rejected => "rejected",
        TxStatus::Expired => "expired",
    }
}

/// Bitcoin Core's integer form of the version: 0.1.0 is 100.
fn numeric_version() -> u64 {
    let part = |s: &str| s.parse::<u64>().unwrap_or(0);
    part(env!("CARGO_PKG_VERSION_MAJOR")) * 10_000
        + part(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + part(env!("CARGO_PKG_VERSION_PATCH"))
}

/// `getrawtransaction`: the hex, or Bitcoin's verbose view (`vin`, `vout`,
/// `blockhash`, `confirmations`, `time`, `blocktime`) with TIME's `finality`.
fn raw_transaction(ctx: &RpcContext, txid: Hash, verbose: bool) -> Result<Value, RpcError> {
    let view = ctx.store.read()?;
    let record = view.tx(&txid)?.ok_or_else(|| {
        RpcError::new(
            errors::NOT_FOUND,
            format!(
                "no finalized transaction {txid} here; see gettxstatus (or waitfortx) for pending ones"
            ),
        )
    })?;
    if !verbose {
        return Ok(json!(hex::encode(record.tx.encode())));
    }
    let tip = view.tip()?;
    let mut answer = bitcoin::tx(&record.tx, ctx.spec.config.network);
    blocks::insert_location(&mut answer, &record, tip.height);
    let final_secs = record.finalized_at_ms / 1_000;
    let block_time = match record.status {
        crate::store::TxStatus::Archived { block, .. } => blocks::block_time(&view, &block)?,
        crate::store::TxStatus::Finalized => None,
    };
    // Bitcoin's `time` is when the tx was first final; TIME knows it before any block.
    answer.insert("time".into(), json!(block_time.unwrap_or(final_secs)));
    if let Some(block_time) = block_time {
        answer.insert("blocktime".into(), json!(block_time));
    }
    answer.insert("finality".into(), bitcoin::finality(&record));
    answer.insert("sequence".into(), json!(record.sequence));
    answer.insert("finalized_at_ms".into(), json!(record.finalized_at_ms));
    Ok(Value::Object(answer))
}

/// `sendrawtransaction`; a spend of a still-pending parent says so.
fn send_raw_transaction(ctx: &RpcContext, tx: Tx) -> Result<Value, RpcError> {
    let txid = tx.txid();
    // The engine forgets settled txs after a while (and at restart); the store does not.
    if ctx.store.tx(&txid)?.is_some() {
        return Err(SubmitRefused::from(SubmitError::AlreadyFinalized(txid)).into());
    }
    // Answered only once the admitted tx is durable in the mempool
    // table (the consensus thread hears it from the ledger's group
    // commit), so an acknowledged tx survives a crash.
    let (reply, answer) = bounded(1);
    match ask(ctx, NodeEvent::Submit { tx, reply }, &answer)? {
        Ok(txid) => Ok(json!(txid.to_string())),
        Err(SubmitRefused::Engine(SubmitError::Invalid(TxError::UnknownOutpoint {
            index,
            outpoint,
        }))) => Err(unknown_outpoint(ctx, index, outpoint)),
        Err(refused) => Err(refused.into()),
    }
}

/// -25 for a missing input; when its tx is pending here, the fix is to wait.
fn unknown_outpoint(ctx: &RpcContext, index: usize, outpoint: OutPoint) -> RpcError {
    let parent = outpoint.txid;
    let pending = query(ctx, |reply| ConsensusQuery::TxStatus {
        txid: parent,
        reply,
    })
    .ok()
    .and_then(|a| a.report)
    .is_some_and(|r| !matches!(r.status, TxStatus::Rejected | TxStatus::Expired));
    let message = if pending {
        format!(
            "input {index} spends {outpoint}, an output of transaction {parent}, which is still \
             pending (not yet final) on this node: wait for its finality \
             (time-cli status {parent} --wait, or the waitfortx RPC) and send again"
        )
    } else {
        format!("input {index} spends unknown outpoint {outpoint} (missing or spent inputs)")
    };
    RpcError::new(errors::VERIFY_ERROR, message)
}

/// The engine's instants are monotonic; users read them as unix ms.
fn unix_ms(ctx: &RpcContext, at: Option<MonoTime>) -> Option<u64> {
    at.map(|at| ctx.clock.wall_at(at).as_millis())
}

fn insert_report(ctx: &RpcContext, map: &mut Map<String, Value>, r: &TxStatusReport) {
    let ms = |t| unix_ms(ctx, t);
    map.insert("confidence".into(), json!(r.confidence));
    map.insert("counter".into(), json!(r.counter));
    map.insert("polls_completed".into(), json!(r.polls_completed));
    map.insert("polls_outstanding".into(), json!(r.polls_outstanding));
    map.insert("proof_weight".into(), json!(r.proof_weight));
    map.insert("proof_needed".into(), json!(r.proof_needed));
    map.insert("first_seen_ms".into(), json!(ms(r.first_seen)));
    map.insert(
        "locally_accepted_at_ms".into(),
        json!(ms(r.locally_accepted_at)),
    );
    map.insert("finalized_at_ms".into(), json!(ms(r.finalized_at)));
    map.insert("expires_at_ms".into(), json!(ms(r.expires_at)));
}

fn insert_timings(ctx: &RpcContext, map: &mut Map<String, Value>, t: &FinalityTimings) {
    let ms = |t| unix_ms(ctx, t);
    map.insert("first_seen_ms".into(), json!(ms(Some(t.first_seen))));
    map.insert(
        "locally_accepted_at_ms".into(),
        json!(ms(t.locally_accepted_at)),
    );
    map.insert("finalized_at_ms".into(), json!(ms(t.finalized_at)));
    map.insert("durable_at_ms".into(), json!(ms(Some(t.durable_at))));
    let durable_ms = t.durable_at.saturating_since(t.first_seen).as_millis();
    map.insert(
        "durable_ms".into(),
        json!(u64::try_from(durable_ms).unwrap_or(u64::MAX)),
    );
}

fn finality_proof(ctx: &RpcContext, txid: Hash) -> Result<Value, RpcError> {
    let bytes = ctx.store.proof(&txid)?.ok_or_else(|| {
        RpcError::new(
            errors::NOT_FOUND,
            format!("no finality proof for {txid}: it is not finalized (or not yet durable) here"),
        )
    })?;
    let proof: FinalityProof = decode(&bytes, PROOFS.max_value_bytes, "finality proof")
        .map_err(|e| RpcError::new(errors::STORE_ERROR, format!("stored proof is corrupt: {e}")))?;
    let mut answer = Map::new();
    answer.insert("txid".into(), json!(txid.to_string()));
    answer.insert("hex".into(), json!(hex::encode(&bytes)));
    answer.extend(blocks::proof_summary(&proof, &committees(ctx)?));
    Ok(Value::Object(answer))
}
