//! Transactions: `Tx { version, inputs: [{prev, pubkey, sig}], outputs: [{value, address}] }`.
//!
//! The txid hashes the body *without* signatures, so a signature cannot change
//! a txid (no malleability) and every input signs the same message.

use super::{encoding, Amount, Hash};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The only transaction version this node creates and accepts.
pub const TX_VERSION: u32 = 1;
/// Hard ceiling for a transaction's encoding, above any configurable `max_tx_bytes`.
pub const MAX_TX_BYTES_HARD: usize = 1024 * 1024;

/// 20-byte address digest: `H(pubkey)[..20]`. Its text form is in `crypto::address`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address(#[serde(with = "serde_bytes")] pub [u8; 20]);

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "addr:{}", hex::encode(self.0))
    }
}

/// Raw ed25519 public key bytes as carried in a transaction input.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKeyBytes(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl fmt::Debug for PublicKeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pk:{}", &hex::encode(self.0)[..16])
    }
}

/// Raw ed25519 signature bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignatureBytes(#[serde(with = "serde_bytes")] pub [u8; 64]);

impl fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sig:{}", &hex::encode(self.0)[..16])
    }
}

/// A reference to output `vout` of transaction `txid`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OutPoint {
    pub txid: Hash,
    pub vout: u32,
}

impl fmt::Display for OutPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.txid, self.vout)
    }
}

impl fmt::Debug for OutPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}:{}", self.txid, self.vout)
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TxIn {
    pub prev: OutPoint,
    pub pubkey: PublicKeyBytes,
    pub sig: SignatureBytes,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TxOut {
    pub value: Amount,
    pub address: Address,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Tx {
    pub version: u32,
    pub inputs: Vec<TxIn>,
    pub outputs: Vec<TxOut>,
}

/// What the txid commits to: everything but the signatures.
#[derive(Serialize)]
struct TxBody<'a> {
    version: u32,
    inputs: UnsignedInputs<'a>,
    outputs: &'a [TxOut],
}

/// The inputs as `(prev, pubkey)` pairs, streamed from the transaction
/// without collecting them first (the txid is on the validation hot path).
struct UnsignedInputs<'a>(&'a [TxIn]);

impl Serialize for UnsignedInputs<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|i| (&i.prev, &i.pubkey)))
    }
}

impl Tx {
    pub fn txid(&self) -> Hash {
        Hash::of(&TxBody {
            version: self.version,
            inputs: UnsignedInputs(&self.inputs),
            outputs: &self.outputs,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes a transaction of at most `max_len` bytes.
    pub fn decode(bytes: &[u8], max_len: usize) -> Result<Tx, encoding::DecodeError> {
        encoding::decode(bytes, max_len.min(MAX_TX_BYTES_HARD), "transaction")
    }

    pub fn encoded_len(&self) -> usize {
        // version + two length prefixes + fixed-size inputs and outputs.
        4 + 8 + 8 + self.inputs.len() * TXIN_BYTES + self.outputs.len() * TXOUT_BYTES
    }

    pub fn outpoint(&self, vout: u32) -> OutPoint {
        OutPoint {
            txid: self.txid(),
            vout,
        }
    }
}

/// Encoded sizes: byte arrays carry an 8-byte length prefix (serde_bytes).
const TXIN_BYTES: usize = (8 + 32 + 4) + (8 + 32) + (8 + 64);
const TXOUT_BYTES: usize = 8 + (8 + 20);

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tx {
        Tx {
            version: TX_VERSION,
            inputs: vec![TxIn {
                prev: OutPoint {
                    txid: Hash::digest(b"a"),
                    vout: 3,
                },
                pubkey: PublicKeyBytes([7; 32]),
                sig: SignatureBytes([9; 64]),
            }],
            outputs: vec![TxOut {
                value: Amount(5),
                address: Address([1; 20]),
            }],
        }
    }

    #[test]
    fn txid_ignores_signatures() {
        let a = sample();
        let mut b = a.clone();
        b.inputs[0].sig = SignatureBytes([0; 64]);
        assert_eq!(a.txid(), b.txid());
        b.outputs[0].value = Amount(6);
        assert_ne!(a.txid(), b.txid());
    }

    #[test]
    fn encoded_len_matches_encoding() {
        let tx = sample();
        assert_eq!(tx.encoded_len(), tx.encode().len());
        assert_eq!(Tx::decode(&tx.encode(), 10_000), Ok(tx));
    }
}
