//! `net::Message::decode` of every tag, at the default limits and at tight
//! ones: a decoded message re-encodes to exactly its bytes (the encoding is
//! canonical), respects every count limit, and an error is a typed
//! `MessageError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin::consensus::ConsensusMessage;
use timecoin::finality::MAX_WINDOW_TXS;
use timecoin::net::{Message, MessageLimits, MAX_RECENT_PROOFS};

fn check(payload: &[u8], limits: &MessageLimits) {
    let Ok(msg) = Message::decode(payload, limits) else {
        return;
    };
    assert_eq!(msg.encode(), payload, "re-encoding differs: {msg:?}");
    assert!(payload.len() <= limits.max_frame_bytes.max(2));
    match &msg {
        Message::Peers { addrs } => assert!(addrs.len() <= limits.max_peer_addrs),
        Message::Blocks { blocks } => assert!(blocks.len() <= limits.max_blocks_per_message),
        Message::GetBlocks { max, .. } => {
            assert!(*max as usize <= limits.max_blocks_per_message)
        }
        Message::Certificates { certificates } => {
            assert!(certificates.len() <= limits.max_blocks_per_message)
        }
        Message::GetRecentProofs { max } => assert!(*max <= MAX_RECENT_PROOFS),
        Message::Consensus(c) => match c {
            ConsensusMessage::Tx(_) => assert!(payload.len() - 2 <= limits.max_tx_bytes),
            ConsensusMessage::GetTxs { txids } => {
                assert!(txids.len() <= limits.max_txs_per_query)
            }
            ConsensusMessage::Txs { txs } => assert!(txs.len() <= limits.max_txs_per_message),
            ConsensusMessage::Query { txids, .. } => {
                assert!(txids.len() <= limits.max_txs_per_query)
            }
            ConsensusMessage::Votes { verdicts, .. } => {
                assert!(verdicts.len() <= limits.max_txs_per_query)
            }
            ConsensusMessage::WindowVote(w) => assert!(w.txids.len() <= MAX_WINDOW_TXS),
            ConsensusMessage::GetWindowVote { .. }
            | ConsensusMessage::Proof(_)
            | ConsensusMessage::WindowEvidence(_) => {}
        },
        _ => {}
    }
    assert_eq!(Message::decode(&msg.encode(), limits).as_ref(), Ok(&msg));
}

fuzz_target!(|data: &[u8]| {
    check(data, &MessageLimits::default());
    let tight = MessageLimits {
        max_frame_bytes: 4096,
        max_tx_bytes: 512,
        max_txs_per_query: 4,
        max_txs_per_message: 4,
        max_peer_addrs: 4,
        max_blocks_per_message: 4,
    };
    check(data, &tight);
});
