//! The checkpoint chain through the JSON-RPC layer: a real RPC server over a
//! real LMDB store holding real blocks (built by the real builder, with
//! finality proofs signed by the chain's validators). Block reads answer in
//! Bitcoin's shapes, every bad input is a JSON-RPC error naming what is
//! wrong, and `verifychain` (RPC and `time-cli`) passes a good chain and
//! names the first bad block of a damaged one.

mod archive_support;
mod chain_support;
mod consensus_support;
mod store_support;

use archive_support::ArchiveChain;
use crossbeam_channel::{bounded, Receiver};
use serde_json::{json, Value};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;
use timecoin::chain::{block_reward, Block, ChainTip, MAX_BLOCK_ENTRIES};
use timecoin::consensus::{SubmitError, TxStatusReport};
use timecoin::ledger::TxError;
use timecoin::mempool::TxStatus as MempoolStatus;
use timecoin::metrics::Metrics;
use timecoin::node::channels::NodeEvent;
use timecoin::node::channels::{ConsensusQuery, SubmitRefused, TxStatusAnswer};
use timecoin::node::StopReason;
use timecoin::rpc::auth::read_cookie;
use timecoin::rpc::client::{ClientError, RpcClient};
use timecoin::rpc::errors::*;
use timecoin::rpc::{RpcConfig, RpcContext, RpcError, RpcServer};
use timecoin::time::{Clock, ManualClock};
use timecoin::types::{Amount, Hash, OutPoint, SignatureBytes};

/// Blocks of [`chain`] and transfers per block.
const BLOCKS: usize = 3;
const TXS_PER_BLOCK: usize = 4;

/// An RPC server over the chain's store, and a client with its cookie.
struct Served {
    client: RpcClient,
    server: Option<RpcServer>,
    /// The consensus inbox: kept open; a test may answer it.
    inbox: Receiver<NodeEvent>,
    _stop: Receiver<StopReason>,
    datadir: std::path::PathBuf,
}

impl Served {
    fn call(&self, method: &str, params: Value) -> Value {
        self.client
            .call(method, params.clone())
            .unwrap_or_else(|e| panic!("{method} {params}: {e}"))
    }

    fn call_err(&self, method: &str, params: Value) -> RpcError {
        match self.client.call(method, params.clone()) {
            Err(ClientError::Rpc(e)) => e,
            other => panic!("{method} {params}: expected an RPC error, got {other:?}"),
        }
    }

    fn assert_error(&self, method: &str, params: Value, code: i32, needle: &str) {
        let e = self.call_err(method, params.clone());
        assert_eq!(e.code, code, "{method} {params}: {}", e.message);
        assert!(
            e.message.contains(needle),
            "{method} {params}: expected '{needle}' in '{}'",
            e.message
        );
    }

    /// `time-cli --datadir <store's datadir> ARGS…`.
    fn cli(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_time-cli"))
            .arg("--datadir")
            .arg(&self.datadir)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }
}

fn serve(chain: &ArchiveChain) -> Served {
    let (inbox, inbox_rx) = bounded(16);
    let (stop, stop_rx) = bounded(1);
    let clock = Arc::new(ManualClock::new(chain.now()));
    let ctx = RpcContext {
        store: Arc::clone(&chain.store),
        spec: chain.spec().clone(),
        inbox,
        metrics: Arc::new(Metrics::default()),
        stop,
        started_at: clock.mono(),
        clock,
        consensus_timeout: Duration::from_secs(1),
        net: None,
        waiters: Default::default(),
    };
    let datadir = chain.dir.path().to_path_buf();
    let server = RpcServer::start(RpcConfig::default(), &datadir, ctx).unwrap();
    let cookie = read_cookie(&datadir).unwrap();
    Served {
        client: RpcClient::new(server.local_addr(), cookie, Duration::from_secs(60)),
        server: Some(server),
        inbox: inbox_rx,
        _stop: stop_rx,
        datadir,
    }
}

/// [`BLOCKS`] blocks of [`TXS_PER_BLOCK`] transfers each.
fn chain(label: &str) -> (ArchiveChain, Vec<Block>) {
    let mut chain = ArchiveChain::new(label, 16);
    let blocks = chain.extend(BLOCKS, TXS_PER_BLOCK);
    (chain, blocks)
}

fn txids(block: &Block) -> Vec<Value> {
    block
        .entries
        .iter()
        .map(|e| json!(e.tx.txid().to_string()))
        .collect()
}

fn units(amount: &Value) -> u64 {
    amount["units"].as_u64().unwrap()
}

#[test]
fn chain_reads_follow_the_tip_in_bitcoin_shapes() {
    let (mut chain, blocks) = chain("rpc reads");
    chain.finalize(2);
    let node = serve(&chain);
    let tip = blocks.last().unwrap();
    let genesis = chain.spec().genesis_hash().to_string();

    assert_eq!(node.call("getblockcount", json!([])), BLOCKS);
    assert_eq!(
        node.call("getbestblockhash", json!([])),
        tip.hash().to_string()
    );
    assert_eq!(node.call("getblockhash", json!([0])), genesis);
    for block in &blocks {
        assert_eq!(
            node.call("getblockhash", json!([block.header.height])),
            block.hash().to_string()
        );
    }
    let info = node.call("getblockchaininfo", json!([]));
    assert_eq!(info["chain"], "devnet");
    assert_eq!(info["blocks"], BLOCKS);
    assert_eq!(info["bestblockhash"], tip.hash().to_string());
    assert_eq!(info["bestblockslot"], tip.header.slot);
    assert_eq!(info["time"], tip.header.slot * 5);
    assert_eq!(info["slots_behind"], 1);
    assert_eq!(info["genesis_hash"], genesis);
    assert_eq!(info["finalized_txs"], BLOCKS * TXS_PER_BLOCK + 2);
    assert_eq!(info["archived_txs"], BLOCKS * TXS_PER_BLOCK);
    assert_eq!(info["unarchived_txs"], 2);
}

#[test]
fn getblock_shows_each_verbosity_level() {
    let (chain, blocks) = chain("rpc getblock");
    let node = serve(&chain);
    let block = &blocks[1];
    let hash = block.hash().to_string();

    let hex_text = node.call("getblock", json!([hash, 0]));
    let bytes = hex::decode(hex_text.as_str().unwrap()).unwrap();
    assert_eq!(Block::decode(&bytes, bytes.len()).unwrap(), *block);

    let summary = node.call("getblock", json!([hash]));
    assert_eq!(
        summary,
        node.call("getblock", json!({"blockhash": hash, "verbosity": 1}))
    );
    assert_eq!(summary["hash"], hash);
    assert_eq!(summary["height"], 2);
    assert_eq!(summary["confirmations"], 2, "tip 3 - height 2 + 1");
    assert_eq!(summary["slot"], block.header.slot);
    assert_eq!(summary["timestamp_ms"], block.header.timestamp_ms);
    assert_eq!(summary["previousblockhash"], blocks[0].hash().to_string());
    assert_eq!(summary["nextblockhash"], blocks[2].hash().to_string());
    assert_eq!(summary["producer"], hex::encode(block.header.producer.0));
    assert_eq!(summary["size"], bytes.len());
    assert_eq!(summary["nTx"], TXS_PER_BLOCK);
    assert_eq!(summary["tx"], json!(txids(block)));
    let reward = &summary["reward"];
    assert_eq!(reward["txid"], block.reward.id().to_string());
    assert_eq!(
        reward["outputs"].as_array().unwrap().len(),
        block.reward.outputs.len()
    );
    assert_eq!(reward["matures_at_height"], 2 + 10);
    assert_eq!(reward["mature"], false);
    assert_eq!(reward["outputs"][0]["state"], "immature");

    let full = node.call("getblock", json!([hash, 2]));
    assert_eq!(full["height"], 2);
    let entries = full["tx"].as_array().unwrap();
    assert_eq!(entries.len(), TXS_PER_BLOCK);
    for (entry, proof) in entries.iter().zip(&block.entries) {
        assert_eq!(entry["txid"], proof.tx.txid().to_string());
        assert_eq!(entry["fee_units"], chain.funded.min_fee().units());
        assert!(entry["fee"].is_number(), "Bitcoin's fee is a number");
        assert_eq!(entry["proof"]["votes"], 3);
        assert_eq!(entry["proof"]["weight"], 30);
        assert_eq!(entry["proof"]["required_weight"], 27);
    }
    let fees = chain.funded.min_fee().units() * TXS_PER_BLOCK as u64;
    assert_eq!(units(&reward["total"]), block_reward(4).units() + fees);

    let genesis = node.call("getblock", json!([chain.spec().genesis_hash().to_string()]));
    assert_eq!(genesis["height"], 0);
    assert_eq!(genesis["confirmations"], BLOCKS + 1);
    assert_eq!(genesis["nextblockhash"], blocks[0].hash().to_string());
    assert_eq!(genesis["nTx"], 1);
    assert_eq!(
        genesis["tx"],
        json!([chain.spec().genesis_hash().to_string()])
    );
    // Verbosity 0: the canonical encoding the genesis hash is taken of.
    let bytes = hex::decode(
        node.call(
            "getblock",
            json!([chain.spec().genesis_hash().to_string(), 0]),
        )
        .as_str()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(genesis["size"], bytes.len());
    assert_eq!(Hash::digest(&bytes), chain.spec().genesis_hash());
}

#[test]
fn getrawtransaction_locates_archived_and_unarchived_txs() {
    let (mut chain, blocks) = chain("rpc location");
    let pending = chain.finalize(1).remove(0);
    let node = serve(&chain);
    let archived = &blocks[0].entries[0].tx;

    let found = node.call(
        "getrawtransaction",
        json!([archived.txid().to_string(), true]),
    );
    assert_eq!(found["txid"], archived.txid().to_string());
    assert_eq!(found["status"], "archived");
    assert_eq!(found["blockhash"], blocks[0].hash().to_string());
    assert_eq!(found["height"], 1);
    assert_eq!(found["confirmations"], BLOCKS);
    assert_eq!(found["hex"], hex::encode(archived.encode()));

    let found = node.call("getrawtransaction", json!([pending.txid().to_string(), 1]));
    assert_eq!(found["status"], "finalized");
    assert_eq!(found["location"], "finalized, not yet archived");
    assert_eq!(found["blockhash"], Value::Null);
    assert_eq!(found["confirmations"], 0);
    assert_eq!(
        node.call("getrawtransaction", json!([pending.txid().to_string()])),
        hex::encode(pending.encode())
    );
}

#[test]
fn getrewardinfo_reports_the_split_and_maturity() {
    let (chain, blocks) = chain("rpc rewards");
    let node = serve(&chain);
    let info = node.call("getrewardinfo", json!([]));
    // 100 TIME x (1 + ln 4).
    assert_eq!(units(&info["block_reward"]), 23_862_943_611);
    assert_eq!(units(&info["producer_reward"]), 2_386_294_361);
    assert_eq!(
        units(&info["producer_reward"]) + units(&info["validators_reward"]),
        23_862_943_611
    );
    assert_eq!(info["validators"], 4);
    assert_eq!(info["maturity_blocks"], 10);
    assert_eq!(info["tip_height"], BLOCKS);
    assert_eq!(
        info["block"]["height"], BLOCKS,
        "the tip's reward by default"
    );

    let first = node.call("getrewardinfo", json!([1]))["block"].clone();
    assert_eq!(first["blockhash"], blocks[0].hash().to_string());
    assert_eq!(first["txid"], blocks[0].reward.id().to_string());
    let paid: u64 = first["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| units(&o["value"]))
        .sum();
    assert_eq!(paid, units(&first["total"]));
    assert_eq!(first["mature"], false);
    assert_eq!(first["matures_at_height"], 11);
}

#[test]
fn getvalidators_lists_tiers_and_payout_addresses() {
    let (chain, _) = chain("rpc validators");
    let node = serve(&chain);
    let answer = node.call("getvalidators", json!([]));
    assert_eq!(answer["total_weight"], 40);
    assert_eq!(answer["required_weight"], 27);
    let listed = answer["validators"].as_array().unwrap();
    assert_eq!(listed.len(), 4);
    for (v, key) in listed.iter().zip(&chain.validators.ids) {
        assert_eq!(v["id"], hex::encode(key.public().0));
        assert_eq!(v["tier"], "bronze");
        assert_eq!(v["weight"], 10);
        let address = timecoin::types::Address::from_pubkey(&key.public());
        assert_eq!(
            v["payout_address"],
            address.to_text(chain.spec().config.network)
        );
    }
}

#[test]
fn bad_block_params_are_refused_with_clear_errors() {
    let (chain, blocks) = chain("rpc errors");
    let node = serve(&chain);
    let hash = blocks[0].hash().to_string();
    node.assert_error(
        "getblock",
        json!([]),
        INVALID_PARAMS,
        "'blockhash': missing",
    );
    node.assert_error("getblock", json!(["zz"]), INVALID_PARAMS, "'blockhash'");
    node.assert_error("getblock", json!([7]), INVALID_PARAMS, "expected a string");
    let unknown = Hash::digest(b"no such block").to_string();
    node.assert_error("getblock", json!([unknown]), NOT_FOUND, "not found");
    node.assert_error("getblock", json!([unknown, 0]), NOT_FOUND, "not found");
    node.assert_error("getblock", json!([hash, 3]), INVALID_PARAMS, "'verbosity'");
    node.assert_error("getblock", json!([hash, -1]), INVALID_PARAMS, "'verbosity'");
    node.assert_error(
        "getblock",
        json!([hash, "x"]),
        INVALID_PARAMS,
        "'verbosity'",
    );
    node.assert_error(
        "getblockhash",
        json!([4]),
        INVALID_PARAMETER,
        "out of range: 4 (the tip is at 3)",
    );
    node.assert_error("getblockhash", json!([-1]), INVALID_PARAMS, "'height'");
    node.assert_error("getblockcount", json!([1]), INVALID_PARAMS, "at most 0");
    node.assert_error("getrewardinfo", json!([0]), INVALID_PARAMS, "genesis");
    node.assert_error(
        "getrewardinfo",
        json!([9]),
        INVALID_PARAMETER,
        "out of range",
    );
    node.assert_error("getrewardinfo", json!(["x"]), INVALID_PARAMS, "'height'");
    node.assert_error("verifychain", json!([1]), INVALID_PARAMS, "at most 0");
    let unknown_tx = Hash::digest(b"no such tx").to_string();
    node.assert_error(
        "getrawtransaction",
        json!([unknown_tx]),
        NOT_FOUND,
        "no finalized",
    );
}

#[test]
fn verifychain_passes_a_good_chain() {
    let (mut chain, _) = chain("verify good");
    chain.finalize(2);
    let node = serve(&chain);
    let report = node.call("verifychain", json!([]));
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["failure"], Value::Null);
    assert_eq!(report["tip_height"], BLOCKS);
    assert_eq!(report["blocks"], BLOCKS);
    assert_eq!(report["txs"], BLOCKS * TXS_PER_BLOCK);
    assert_eq!(report["proofs"], BLOCKS * TXS_PER_BLOCK);
    // One batch per block, signed by the three validators of the quorum.
    assert_eq!(report["votes"], BLOCKS * 3);
    assert_eq!(report["tables"]["archived_txs"], BLOCKS * TXS_PER_BLOCK);
    assert_eq!(report["tables"]["unarchived_txs"], 2);

    let out = node.cli(&["verifychain"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"valid\": true"));
}

/// `verifychain`'s failure, after checking the chain is reported invalid.
fn failure(node: &Served) -> Value {
    let report = node.call("verifychain", json!([]));
    assert_eq!(report["valid"], false, "{report}");
    report["failure"].clone()
}

#[test]
fn verifychain_names_a_bad_proof_written_into_the_blocks_table() {
    let (chain, blocks) = chain("verify bad proof");
    // Proofs are outside the block hash: a damaged vote leaves every index intact.
    let mut damaged = blocks[1].clone();
    damaged.entries[2].votes[0].0.sig = SignatureBytes([7; 64]);
    let chain = chain.overwrite_block_bytes(&damaged.hash(), &damaged.encode());
    let node = serve(&chain);
    let failure = failure(&node);
    assert_eq!(failure["height"], 2);
    assert_eq!(failure["block"], damaged.hash().to_string());
    assert_eq!(failure["reason"], "invalid_proof");
    assert!(
        failure["message"].as_str().unwrap().contains("entry 2"),
        "{failure}"
    );
    assert_eq!(node.call("verifychain", json!([]))["blocks"], 1);

    let out = node.cli(&["verifychain"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("height 2") && stderr.contains("invalid_proof"),
        "{stderr}"
    );
}

#[test]
fn verifychain_names_undecodable_block_bytes() {
    let (chain, blocks) = chain("verify garbage");
    let chain = chain.overwrite_block_bytes(&blocks[0].hash(), b"not a block");
    let node = serve(&chain);
    let failure = failure(&node);
    assert_eq!(failure["height"], 1);
    assert_eq!(failure["reason"], "undecodable_block");
    node.assert_error(
        "getblock",
        json!([blocks[0].hash().to_string()]),
        STORE_ERROR,
        "run verifychain",
    );
}

#[test]
fn verifychain_names_a_wrong_reward() {
    let (chain, _) = chain("verify reward");
    let mut block = chain.build_next(1);
    // One unit moved between payees: the total is right, the split is not.
    block.reward.outputs[0].value = Amount(block.reward.outputs[0].value.units() - 1);
    block.reward.outputs[1].value = Amount(block.reward.outputs[1].value.units() + 1);
    chain_support::fix_root(&mut block);
    block.sign(&chain.validators.ids[1]);
    chain.apply(&block);
    let node = serve(&chain);
    let failure = failure(&node);
    assert_eq!(failure["height"], BLOCKS + 1);
    assert_eq!(failure["reason"], "wrong_reward");
}

#[test]
fn verifychain_names_a_block_that_does_not_link_to_its_parent() {
    let (chain, _) = chain("verify linkage");
    let tip = chain.tip();
    let elsewhere = ChainTip {
        hash: Hash::digest(b"a block of another fork"),
        ..tip
    };
    let block = chain.build_on(elsewhere, 2, chain.candidates(MAX_BLOCK_ENTRIES));
    chain.apply_claiming(&block, tip.hash);
    let node = serve(&chain);
    let failure = failure(&node);
    assert_eq!(failure["height"], BLOCKS + 1);
    assert_eq!(failure["reason"], "broken_link");
    assert!(failure["message"]
        .as_str()
        .unwrap()
        .contains(&tip.hash.to_string()));
}

#[test]
fn a_spend_of_a_pending_parent_is_minus_25_saying_to_wait_for_the_parent() {
    let (chain, blocks) = chain("rpc pending parent");
    let node = serve(&chain);
    let mut child = blocks[0].entries[0].tx.clone();
    child.outputs[0].value = Amount(child.outputs[0].value.units() - 1);
    let parent = Hash::digest(b"a parent still sampling");
    let outpoint = OutPoint {
        txid: parent,
        vout: 0,
    };
    // A stand-in consensus thread for one submission: the child's input is
    // unknown to the ledger, and the parent is pending in the engine.
    let inbox = node.inbox.clone();
    let consensus = std::thread::spawn(move || {
        for _ in 0..2 {
            match inbox.recv_timeout(Duration::from_secs(10)).unwrap() {
                NodeEvent::Submit { reply, .. } => {
                    let invalid = TxError::UnknownOutpoint { index: 0, outpoint };
                    let refused = SubmitRefused::Engine(SubmitError::Invalid(invalid));
                    reply.send(Err(refused)).unwrap();
                }
                NodeEvent::Query(ConsensusQuery::TxStatus { txid, reply }) => {
                    assert_eq!(txid, parent, "the RPC asks about the parent");
                    let report = TxStatusReport {
                        status: MempoolStatus::Sampling,
                        durable: false,
                        confidence: 0,
                        counter: 0,
                        polls_completed: 0,
                        polls_outstanding: 1,
                        proof_weight: 0,
                        proof_needed: 27,
                        first_seen: None,
                        locally_accepted_at: None,
                        finalized_at: None,
                        expires_at: None,
                    };
                    reply
                        .send(TxStatusAnswer {
                            report: Some(report),
                            timings: None,
                        })
                        .unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    });
    node.assert_error(
        "sendrawtransaction",
        json!([hex::encode(child.encode())]),
        VERIFY_ERROR,
        &format!("{parent}, which is still pending"),
    );
    consensus.join().unwrap();
}
