//! `Block::decode` and `Block::decode_header`: a decoded block re-encodes to
//! exactly its bytes, its header is what `decode_header` reads from them,
//! and `encoded_len` is their length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin::chain::block::{Block, MAX_BLOCK_BYTES};

fuzz_target!(|data: &[u8]| {
    let header = Block::decode_header(data);
    if let Ok(block) = Block::decode(data, MAX_BLOCK_BYTES) {
        assert_eq!(block.encode(), data);
        assert_eq!(block.encoded_len(), data.len());
        assert_eq!(header.as_ref(), Ok(&block.header));
        let _ = block.hash();
        let _ = block.header.signing_message();
        let txids: Vec<_> = block.entries.iter().map(|e| e.tx.txid()).collect();
        let _ = timecoin::chain::block::entries_root(&txids, block.reward.id());
    }
    // A tight limit refuses, never panics.
    let _ = Block::decode(data, 64);
});
