//! JSON views of protocol types (amounts, outpoints, transactions) as
//! `serde_json` values, shared by `time-cli` output and the RPC server.
//!
//! Views only: they are never parsed back, hashed or signed (the canonical
//! encoding in `encoding` is the only form that is). Amounts are never JSON
//! floats: a float cannot hold every unit count exactly. This is the one
//! `types` module that uses `crypto`, for the address text.

use super::{Address, Amount, Network, OutPoint, Registration, Tx, TxIn, TxOut};
use serde_json::{json, Value};

/// `{"time": "12.345", "units": 1234500000}`: exact decimal text for people,
/// the integer for programs.
pub fn amount(value: Amount) -> Value {
    json!({ "time": value.to_decimal(), "units": value.units() })
}

/// `"<txid>:<vout>"`, the form `time-cli createtx --input` takes.
pub fn outpoint(op: &OutPoint) -> Value {
    Value::String(op.to_string())
}

/// An input with the address its public key controls, so a reader can see
/// whose coins it spends without a UTXO lookup.
pub fn tx_input(input: &TxIn, network: Network) -> Value {
    json!({
        "prev": outpoint(&input.prev),
        "pubkey": hex::encode(input.pubkey.0),
        "address": Address::from_pubkey(&input.pubkey).to_text(network),
        "sig": hex::encode(input.sig.0),
    })
}

/// Output `vout` of a transaction.
pub fn tx_output(vout: usize, output: &TxOut, network: Network) -> Value {
    json!({
        "vout": vout,
        "value": amount(output.value),
        "address": output.address.to_text(network),
    })
}

/// A whole transaction. `output_total` is `null` when the outputs overflow
/// (possible in a hostile transaction, which this view must still show).
pub fn tx(tx: &Tx, network: Network) -> Value {
    let output_total = Amount::checked_sum(tx.outputs.iter().map(|o| o.value));
    json!({
        "txid": tx.txid().to_string(),
        "version": tx.version,
        "size": tx.encoded_len(),
        "inputs": tx.inputs.iter().map(|i| tx_input(i, network)).collect::<Vec<_>>(),
        "outputs": tx
            .outputs
            .iter()
            .enumerate()
            .map(|(vout, o)| tx_output(vout, o, network))
            .collect::<Vec<_>>(),
        "output_total": output_total.map(amount),
        "registration": tx.registration.as_ref().map(|r| registration(r, network)),
    })
}

/// A masternode registration: the collateral is the transaction's output 0.
pub fn registration(registration: &Registration, network: Network) -> Value {
    json!({
        "tier": registration.tier,
        "weight": registration.tier.weight(),
        "identity": hex::encode(registration.identity.0),
        "vrf_pubkey": hex::encode(registration.vrf_key.0),
        "listen_addr": registration.listen_addr.to_string(),
        "payout_address": registration.payout.to_text(network),
        "identity_sig": hex::encode(registration.identity_sig.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::types::{Hash, SignatureBytes, TX_VERSION};

    fn sample(values: &[u64]) -> Tx {
        let key = Keypair::from_seed_label("json");
        Tx {
            version: TX_VERSION,
            inputs: vec![TxIn {
                prev: OutPoint {
                    txid: Hash::digest(b"prev"),
                    vout: 7,
                },
                pubkey: key.public(),
                sig: SignatureBytes([9; 64]),
            }],
            outputs: values
                .iter()
                .map(|&v| TxOut {
                    value: Amount(v),
                    address: Address([1; 20]),
                })
                .collect(),
            registration: None,
        }
    }

    #[test]
    fn amount_is_exact_decimal_text_and_integer_units() {
        assert_eq!(
            amount(Amount(1_250_000_001)),
            json!({ "time": "12.50000001", "units": 1_250_000_001u64 })
        );
        assert_eq!(
            amount(Amount(u64::MAX))["units"].as_u64(),
            Some(u64::MAX),
            "no float rounding at the top of the range"
        );
    }

    #[test]
    fn tx_view_shows_txid_inputs_with_owner_address_and_outputs() {
        let t = sample(&[150_000_000]);
        let v = tx(&t, Network::Devnet);
        assert_eq!(v["txid"], t.txid().to_string());
        assert_eq!(v["size"], t.encode().len());
        let input = &v["inputs"][0];
        assert_eq!(input["prev"], format!("{}:7", Hash::digest(b"prev")));
        assert_eq!(
            input["address"],
            Address::from_pubkey(&t.inputs[0].pubkey).to_text(Network::Devnet)
        );
        assert_eq!(input["sig"], hex::encode([9u8; 64]));
        let output = &v["outputs"][0];
        assert_eq!(output["value"]["time"], "1.5");
        assert_eq!(output["address"], Address([1; 20]).to_text(Network::Devnet));
        assert_eq!(v["output_total"]["units"], 150_000_000u64);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys[0], "txid", "txid leads the view");
    }

    #[test]
    fn overflowing_outputs_show_a_null_total() {
        let v = tx(&sample(&[u64::MAX, 1]), Network::Devnet);
        assert!(v["output_total"].is_null());
    }
}
