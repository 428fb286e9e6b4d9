//! `Tx::decode`: a decoded tx re-encodes to exactly its bytes, its
//! `encoded_len` is their length, the size cap holds, and structure
//! validation of it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin::ledger::{check_structure, ValidationParams};
use timecoin::types::tx::MAX_TX_BYTES_HARD;
use timecoin::types::{Amount, ChainId, Tx};

fuzz_target!(|data: &[u8]| {
    let max = 16 * 1024;
    match Tx::decode(data, max) {
        Ok(tx) => {
            assert!(data.len() <= max);
            assert_eq!(tx.encode(), data);
            assert_eq!(tx.encoded_len(), data.len());
            assert_eq!(Tx::decode(&tx.encode(), max).as_ref(), Ok(&tx));
            let _ = tx.txid();
            let params = ValidationParams {
                chain_id: ChainId(3),
                min_fee: Amount(1_000),
                max_tx_bytes: max,
            };
            let _ = check_structure(&tx, &params);
        }
        Err(_) => {
            // The hard cap never admits what the tight cap refused for size.
            let _ = Tx::decode(data, MAX_TX_BYTES_HARD);
        }
    }
});
