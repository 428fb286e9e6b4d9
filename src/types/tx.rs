//! Transactions: `Tx { version, inputs: [{prev, pubkey, sig}], outputs: [{value, address}] }`,
//! and at version 2 a masternode [`Registration`] after the outputs.
//!
//! The txid hashes the body *without* signatures, so a signature cannot change
//! a txid (no malleability) and every input signs the same message.

use super::registration::{Registration, TX_VERSION_REGISTRATION};
use super::{encoding, Amount, Hash};
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
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

/// Encoded as `(version, inputs, outputs)`, plus the registration when
/// there is one: the version says which shape to decode, so every
/// version-1 encoding (stored, signed, on the wire) is what it always was.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Tx {
    pub version: u32,
    pub inputs: Vec<TxIn>,
    pub outputs: Vec<TxOut>,
    /// Present exactly when `version` is [`TX_VERSION_REGISTRATION`]
    /// (validation refuses anything else). Boxed: rare, and a plain
    /// transfer should not carry its size.
    pub registration: Option<Box<Registration>>,
}

/// What the txid commits to: everything but the signatures.
#[derive(Serialize)]
struct TxBody<'a> {
    version: u32,
    inputs: UnsignedInputs<'a>,
    outputs: &'a [TxOut],
}

/// A registration's txid also commits to its payload (not its signature).
#[derive(Serialize)]
struct RegistrationTxBody<'a> {
    body: TxBody<'a>,
    registration: super::registration::RegistrationBody<'a>,
}

impl Serialize for Tx {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(3 + usize::from(self.registration.is_some()))?;
        tuple.serialize_element(&self.version)?;
        tuple.serialize_element(&self.inputs)?;
        tuple.serialize_element(&self.outputs)?;
        if let Some(registration) = &self.registration {
            tuple.serialize_element(registration)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Tx {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Tx, D::Error> {
        deserializer.deserialize_tuple(4, TxVisitor)
    }
}

struct TxVisitor;

impl<'de> Visitor<'de> for TxVisitor {
    type Value = Tx;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a transaction")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tx, A::Error> {
        let missing = |i| de::Error::invalid_length(i, &"a transaction");
        let version: u32 = seq.next_element()?.ok_or_else(|| missing(0))?;
        let inputs = seq.next_element()?.ok_or_else(|| missing(1))?;
        let outputs = seq.next_element()?.ok_or_else(|| missing(2))?;
        let registration = if version == TX_VERSION_REGISTRATION {
            Some(seq.next_element()?.ok_or_else(|| missing(3))?)
        } else {
            None
        };
        Ok(Tx {
            version,
            inputs,
            outputs,
            registration,
        })
    }
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
        let body = TxBody {
            version: self.version,
            inputs: UnsignedInputs(&self.inputs),
            outputs: &self.outputs,
        };
        match &self.registration {
            None => Hash::of(&body),
            Some(registration) => Hash::of(&RegistrationTxBody {
                body,
                registration: registration.body(),
            }),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes a transaction of at most `max_len` bytes.
    pub fn decode(bytes: &[u8], max_len: usize) -> Result<Tx, encoding::DecodeError> {
        encoding::decode(bytes, max_len.min(MAX_TX_BYTES_HARD), "transaction")
    }

    pub fn encoded_len(&self) -> usize {
        // version + two length prefixes + fixed-size inputs and outputs,
        // then a registration (rare; its address has two sizes).
        4 + 8
            + 8
            + self.inputs.len() * TXIN_BYTES
            + self.outputs.len() * TXOUT_BYTES
            + self
                .registration
                .as_ref()
                .map_or(0, |r| encoding::encode(r).len())
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
            registration: None,
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
