//! Writes seed inputs built from real encodings into `corpus/<target>/`
//! (`seed-*` files): every wire message, a signed tx, a block with a proof,
//! a proof, frames of messages, both built-in chain configs and JSON-RPC
//! requests of every method. Run from `fuzz/`:
//! `cargo +nightly run --release --example seed_corpora`, then `cargo fuzz cmin`.

use std::path::Path;
use std::sync::Arc;
use timecoin::chain::{
    Block, BlockHeader, BlockVote, Certificate, Equivocation, Heartbeat, RewardTx,
    SlashingEvidence,
};
use timecoin::config::{DEVNET_TOML, TESTNET_TOML};
use timecoin::consensus::{ConsensusMessage, Verdict};
use timecoin::crypto::{merkle, Keypair};
use timecoin::finality::{FinalityProof, FinalityVote, VoteScope, WindowVote};
use timecoin::genesis::validator_vrf_key;
use timecoin::net::frame::encode_frame;
use timecoin::net::{Hello, Message, PROTOCOL_VERSION};
use timecoin::types::validator::{VrfOutputBytes, VrfProofBytes};
use timecoin::types::{encoding, Address, Amount, ChainId, Hash, OutPoint, Tier, Tx, TxOut};
use timecoin::wallet::{build_registration, build_transfer, MasternodeInfo, Spendable};

const CHAIN: ChainId = ChainId(3);

/// What every seed vote is bound to: chain 3, a fixed genesis hash, epoch 0
/// (the fuzz targets verify against the same).
fn scope() -> VoteScope {
    VoteScope {
        chain_id: CHAIN,
        genesis_hash: Hash::digest(b"fuzz genesis"),
        epoch: 0,
    }
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed file");
}

fn tx() -> Tx {
    let owner = Keypair::from_seed_label("fuzz wallet");
    build_transfer(
        &[Spendable {
            outpoint: OutPoint {
                txid: Hash::digest(b"fuzz genesis"),
                vout: 0,
            },
            value: Amount(10_000_000_000),
            key: &owner,
        }],
        &[TxOut {
            value: Amount(5_000_000_000),
            address: Address::from_pubkey(&Keypair::from_seed_label("payee 0").public()),
        }],
        Amount(1_000),
        Address::from_pubkey(&owner.public()),
        CHAIN,
    )
    .expect("seed transfer")
}

/// A masternode registration (a version-2 tx: the payload after the outputs).
fn registration() -> Tx {
    let owner = Keypair::from_seed_label("fuzz wallet");
    let identity = Keypair::from_seed_label("fuzz masternode");
    let info = MasternodeInfo {
        tier: Tier::Bronze,
        identity: &identity,
        vrf_key: validator_vrf_key(&identity).public(),
        listen_addr: "127.0.0.1:24100".parse().expect("literal address"),
        payout: Address::from_pubkey(&owner.public()),
    };
    build_registration(
        &[Spendable {
            outpoint: OutPoint {
                txid: Hash::digest(b"fuzz genesis"),
                vout: 1,
            },
            value: Amount(200_000_000_000),
            key: &owner,
        }],
        &info,
        Address::from_pubkey(&owner.public()),
        Amount(1_000),
        Address::from_pubkey(&owner.public()),
        CHAIN,
    )
    .expect("seed registration")
}

fn keys() -> Vec<Keypair> {
    (0..4)
        .map(|i| Keypair::from_seed_label(&format!("fuzz validator {i}")))
        .collect()
}

fn proof(tx: &Tx) -> FinalityProof {
    let leaves = [tx.txid()];
    let (_, path) = merkle::root_and_path(&leaves, 0).expect("one leaf");
    FinalityProof {
        tx: tx.clone(),
        votes: keys()
            .iter()
            .skip(1)
            .map(|k| (FinalityVote::sign(k, scope(), 200, &leaves), path.clone()))
            .collect(),
    }
}

fn block(tx: &Tx) -> Block {
    let reward = RewardTx {
        height: 5,
        outputs: vec![tx.outputs[0]],
    };
    let entries = vec![proof(tx)];
    let root = timecoin::chain::block::entries_root(&[tx.txid()], reward.id());
    let key = &keys()[1];
    let [first, second] = [b"one", b"two"]
        .map(|salt| BlockVote::sign(key, CHAIN, Hash::digest(b"g"), 0, 4, Hash::digest(salt)));
    let evidence = vec![SlashingEvidence::Endorsement(Equivocation {
        first,
        second,
    })];
    let heartbeats = vec![Heartbeat::sign(key, (CHAIN, Hash::digest(b"g")), 0)];
    let mut block = Block {
        header: BlockHeader {
            version: 1,
            chain_id: CHAIN,
            height: 5,
            slot: 9,
            prev_hash: Hash::digest(b"prev"),
            producer: keys()[0].public(),
            vrf_output: VrfOutputBytes([7; 32]),
            vrf_proof: VrfProofBytes([9; 64]),
            entries_root: root,
            parent_certificate: Hash::ZERO,
            evidence: timecoin::chain::evidence_digest(&evidence),
            heartbeats: timecoin::chain::heartbeats_digest(&heartbeats),
            timestamp_ms: 45_000,
        },
        producer_sig: keys()[0].sign(b"placeholder"),
        entries,
        reward,
        parent_certificate: None,
        evidence,
        heartbeats,
    };
    block.sign(&keys()[0]);
    block
}

fn messages(tx: &Tx, block: &Block) -> Vec<Message> {
    let key = &keys()[1];
    let txid = tx.txid();
    let window = WindowVote::sign(key, scope(), 200, vec![txid, Hash::ZERO]);
    let block_vote = BlockVote::sign(key, CHAIN, Hash::digest(b"g"), 0, 5, block.hash());
    let other_vote = BlockVote::sign(key, CHAIN, Hash::digest(b"g"), 0, 5, Hash::digest(b"x"));
    vec![
        Message::Hello(Hello {
            chain_id: CHAIN,
            genesis_hash: Hash::digest(b"fuzz genesis"),
            version: PROTOCOL_VERSION,
            node_id: key.public(),
            listen_addr: Some("127.0.0.1:24100".parse().expect("addr")),
            tip_height: 5,
            nonce: Hash::digest(b"n"),
        }),
        Message::HelloAck {
            signature: key.sign(b"x"),
        },
        Message::Ping { nonce: 1 },
        Message::Pong { nonce: 2 },
        Message::GetPeers,
        Message::Peers {
            addrs: vec![
                "127.0.0.1:1".parse().expect("addr"),
                "[::1]:65535".parse().expect("addr"),
            ],
        },
        Message::Consensus(ConsensusMessage::Tx(tx.clone())),
        Message::Consensus(ConsensusMessage::GetTxs {
            txids: vec![txid; 2],
        }),
        Message::Consensus(ConsensusMessage::Txs {
            txs: vec![tx.clone(); 2],
        }),
        Message::Consensus(ConsensusMessage::Query {
            request_id: 9,
            txids: vec![txid],
        }),
        Message::Consensus(ConsensusMessage::Votes {
            request_id: 9,
            verdicts: vec![(txid, Verdict::Valid), (Hash::ZERO, Verdict::Unknown)],
        }),
        Message::Consensus(ConsensusMessage::WindowVote(Arc::new(window))),
        Message::Consensus(ConsensusMessage::GetWindowVote {
            voter: key.public(),
            seq: 200,
        }),
        Message::Consensus(ConsensusMessage::Proof(proof(tx))),
        Message::BlockAnnounce {
            height: 5,
            hash: block.hash(),
        },
        Message::GetBlocks { from: 1, max: 16 },
        Message::Blocks {
            blocks: vec![block.encode()],
        },
        Message::BlockVote(Box::new(block_vote.clone())),
        Message::Certificates {
            certificates: vec![Certificate {
                height: 5,
                hash: block.hash(),
                votes: vec![block_vote.clone()],
            }],
        },
        Message::Evidence(Box::new(Equivocation {
            first: block_vote,
            second: other_vote,
        })),
        Message::Heartbeat(Box::new(Heartbeat::sign(
            key,
            (CHAIN, Hash::digest(b"g")),
            1,
        ))),
        Message::GetRecentProofs { max: 2_000 },
    ]
}

fn main() {
    let tx = tx();
    let block = block(&tx);
    let msgs = messages(&tx, &block);
    let mut stream = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let payload = m.encode();
        write(
            "wire_message",
            &format!("{i:02}-{}", m.tag().name()),
            &payload,
        );
        let frame = encode_frame(&payload, 1 << 20).expect("frame");
        stream.extend_from_slice(&frame);
    }
    // frame_reader: cap byte (x16) and chunk size, then a stream of frames.
    let mut framed = vec![255, 7];
    framed.extend_from_slice(&stream[..stream.len().min(8192)]);
    write("frame_reader", "messages", &framed);
    write("frame_reader", "one-small", &[1, 3, 3, 0, 0, 0, 1, 2, 3]);
    write("tx_decode", "transfer", &tx.encode());
    write("tx_decode", "registration", &registration().encode());
    write("block_decode", "one-entry", &block.encode());
    write(
        "proof_decode",
        "three-votes",
        &encoding::encode(&proof(&tx)),
    );
    write("config_parse", "devnet", DEVNET_TOML.as_bytes());
    write("config_parse", "testnet", TESTNET_TOML.as_bytes());
    let txid = tx.txid();
    let hex_tx = hex_encode(&tx.encode());
    let requests = [
        r#"{"jsonrpc":"2.0","id":1,"method":"getblockchaininfo","params":[]}"#.to_string(),
        r#"{"jsonrpc":"2.0","id":"a","method":"getblockhash","params":[3]}"#.to_string(),
        format!(r#"{{"jsonrpc":"2.0","id":2,"method":"getblock","params":["{txid}",2]}}"#),
        format!(r#"{{"jsonrpc":"2.0","id":3,"method":"getrawtransaction","params":{{"txid":"{txid}","verbose":true}}}}"#),
        format!(r#"{{"jsonrpc":"2.0","id":4,"method":"sendrawtransaction","params":["{hex_tx}"]}}"#),
        format!(r#"{{"jsonrpc":"2.0","id":5,"method":"gettxout","params":["{txid}",0]}}"#),
        r#"{"jsonrpc":"2.0","id":6,"method":"getbalance","params":["dtime1deauj9r4mkukqz58ypac4zce3ypm87pm9hfr90"]}"#.to_string(),
        r#"{"jsonrpc":"2.0","id":7,"method":"getrewardinfo","params":{"height":null}}"#.to_string(),
        format!(r#"[{{"jsonrpc":"2.0","id":1,"method":"gettxstatus","params":["{txid}"]}},{{"jsonrpc":"2.0","id":2,"method":"listunspent","params":["dtime1deauj9r4mkukqz58ypac4zce3ypm87pm9hfr90"]}},{{"jsonrpc":"2.0","id":3,"method":"getfinalityproof","params":["{txid}"]}}]"#),
    ];
    for (i, r) in requests.iter().enumerate() {
        write("rpc_request", &format!("{i:02}"), r.as_bytes());
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
