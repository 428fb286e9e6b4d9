//! Bitcoin Core's JSON shapes for the methods that carry Bitcoin's names,
//! so code written for bitcoind (`python-bitcoinrpc`, explorers, exchange
//! back ends) reads TIME's answers unchanged. TIME's own facts ride along
//! as extra keys; a Bitcoin key is never renamed or given another type.
//!
//! Amounts are JSON numbers with 8 decimals, exactly as bitcoind prints
//! them (`12.50000000`). They are written from the integer units as decimal
//! text (serde_json's `arbitrary_precision`), never through a float, and the
//! exact units ride beside them in `*_units` keys.

use crate::store::{TxRecord, TxStatus};
use crate::types::amount::UNITS_PER_TIME;
use crate::types::{Address, Amount, Network, Tx};
use serde_json::{json, Map, Number, Value};

/// `12.50000000` as a JSON number (8 decimals, no float in between).
pub fn amount(value: Amount) -> Value {
    let text = format!(
        "{}.{:08}",
        value.units() / UNITS_PER_TIME,
        value.units() % UNITS_PER_TIME
    );
    // Digits, a point and digits always parse as a JSON number.
    text.parse::<Number>()
        .map_or_else(|_| json!(value.units()), Value::Number)
}

/// Bitcoin's `scriptPubKey` object. TIME outputs pay an address, not a
/// script: `hex` is the 20-byte address hash and `type` says so.
pub fn script_pubkey(address: &Address, network: Network) -> Value {
    json!({
        "asm": "",
        "hex": hex::encode(address.0),
        "address": address.to_text(network),
        "type": "time_address",
    })
}

/// A transaction as `decoderawtransaction` shows it: `txid`, `hash`,
/// `version`, `size`, `vsize`, `weight`, `locktime`, `vin`, `vout`.
pub fn tx(tx: &Tx, network: Network) -> Map<String, Value> {
    let size = tx.encoded_len();
    let vin: Vec<Value> = tx
        .inputs
        .iter()
        .map(|input| {
            json!({
                "txid": input.prev.txid.to_string(),
                "vout": input.prev.vout,
                "scriptSig": { "asm": "", "hex": hex::encode(input.sig.0) },
                "sequence": u32::MAX,
                // TIME: the signing key and the address it controls.
                "pubkey": hex::encode(input.pubkey.0),
                "address": Address::from_pubkey(&input.pubkey).to_text(network),
            })
        })
        .collect();
    let vout: Vec<Value> = tx
        .outputs
        .iter()
        .enumerate()
        .map(|(n, output)| {
            json!({
                "value": amount(output.value),
                "n": n,
                "scriptPubKey": script_pubkey(&output.address, network),
                "value_units": output.value.units(),
            })
        })
        .collect();
    let mut map = Map::new();
    map.insert("txid".into(), json!(tx.txid().to_string()));
    map.insert("hash".into(), json!(tx.txid().to_string()));
    map.insert("version".into(), json!(tx.version));
    map.insert("size".into(), json!(size));
    map.insert("vsize".into(), json!(size));
    map.insert("weight".into(), json!(size.saturating_mul(4)));
    map.insert("locktime".into(), json!(0));
    map.insert("vin".into(), Value::Array(vin));
    map.insert("vout".into(), Value::Array(vout));
    map.insert("hex".into(), json!(hex::encode(tx.encode())));
    map
}

/// TIME's `finality` object: a finalized tx is final at once; the block
/// that archives it comes later and only adds confirmations.
pub fn finality(record: &TxRecord) -> Value {
    json!({
        "status": "final",
        "durable": true,
        "finalized_at_ms": record.finalized_at_ms,
        "sequence": record.sequence,
        "archived": matches!(record.status, TxStatus::Archived { .. }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_numbers_with_eight_decimals_and_no_float_rounding() {
        assert_eq!(amount(Amount(1_250_000_000)).to_string(), "12.50000000");
        assert_eq!(amount(Amount(1)).to_string(), "0.00000001");
        assert_eq!(
            amount(Amount(u64::MAX)).to_string(),
            "184467440737.09551615",
            "exact at the top of the range"
        );
        assert!(amount(Amount(7)).is_number());
    }
}
