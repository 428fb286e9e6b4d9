//! Properties of the canonical transaction encoding: it round-trips, it is
//! canonical (bytes that decode re-encode to themselves), the txid commits to
//! every byte but the signatures, and no single-byte change of a valid signed
//! transaction yields another valid transaction: it fails to decode or fails
//! validation, for the reason its field predicts.
//!
//! Seeded: proptest runs from a fixed seed, so any failure replays as is.

mod common;

use common::{tx_fields, Field, TestChain, WALLETS};
use proptest::array::uniform;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};
use std::sync::OnceLock;
use timecoin::ledger::{validate, MemUtxoSet, TxError};
use timecoin::types::amount::UNITS_PER_TIME;
use timecoin::types::tx::MAX_TX_BYTES_HARD;
use timecoin::types::{
    Address, Amount, Hash, OutPoint, PublicKeyBytes, Registration, SignatureBytes, Tier, Tx, TxIn,
    TxOut, VrfPublicBytes, TX_VERSION, TX_VERSION_REGISTRATION,
};

fn seeded(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x7153_e0c0),
        failure_persistence: None,
        ..Config::default()
    }
}

fn chain() -> &'static TestChain {
    static CHAIN: OnceLock<TestChain> = OnceLock::new();
    CHAIN.get_or_init(TestChain::devnet)
}

fn genesis_utxos() -> &'static MemUtxoSet {
    static UTXOS: OnceLock<MemUtxoSet> = OnceLock::new();
    UTXOS.get_or_init(|| chain().utxos())
}

/// Any masternode registration: arbitrary keys, tier, address and signature.
fn arbitrary_registration() -> impl Strategy<Value = Registration> {
    (
        prop::sample::select(Tier::ALL.to_vec()),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<std::net::SocketAddr>(),
        any::<[u8; 20]>(),
        uniform::<_, 64>(any::<u8>()),
    )
        .prop_map(|(tier, identity, vrf, addr, payout, sig)| Registration {
            tier,
            identity: PublicKeyBytes(identity),
            vrf_key: VrfPublicBytes(vrf),
            // The encoding keeps an IPv6 address's ip and port, not its flow
            // label or scope.
            listen_addr: std::net::SocketAddr::new(addr.ip(), addr.port()),
            payout: Address(payout),
            identity_sig: SignatureBytes(sig),
        })
}

/// Any transaction at all: arbitrary version and bytes, 0 to 7 inputs and
/// outputs, and a registration at the version that carries one.
fn arbitrary_tx() -> impl Strategy<Value = Tx> {
    let input = (
        any::<[u8; 32]>(),
        any::<u32>(),
        any::<[u8; 32]>(),
        uniform::<_, 64>(any::<u8>()),
    )
        .prop_map(|(txid, vout, pubkey, sig)| TxIn {
            prev: OutPoint {
                txid: Hash(txid),
                vout,
            },
            pubkey: PublicKeyBytes(pubkey),
            sig: SignatureBytes(sig),
        });
    let output = (any::<u64>(), any::<[u8; 20]>()).prop_map(|(value, address)| TxOut {
        value: Amount(value),
        address: Address(address),
    });
    let registration = prop_oneof![
        Just(None),
        arbitrary_registration().prop_map(|r| Some(Box::new(r)))
    ];
    (
        any::<u32>(),
        vec(input, 0..8),
        vec(output, 0..8),
        registration,
    )
        .prop_map(|(version, inputs, outputs, registration)| Tx {
            version: match registration {
                Some(_) => TX_VERSION_REGISTRATION,
                None if version == TX_VERSION_REGISTRATION => TX_VERSION,
                None => version,
            },
            inputs,
            outputs,
            registration,
        })
}

/// A valid signed transfer: 1 or 2 genesis inputs (each signature costs
/// ~7 ms to check in a debug build), up to 2 payments of up to 100 TIME to any
/// wallet, change, and a fee at or above the minimum.
fn signed_transfer() -> impl Strategy<Value = Tx> {
    let payment = (0..WALLETS, 1..=100 * UNITS_PER_TIME);
    (1..=2usize, vec(payment, 0..3), 0..UNITS_PER_TIME).prop_map(|(inputs, pays, extra_fee)| {
        let chain = chain();
        let pay: Vec<TxOut> = pays
            .into_iter()
            .map(|(wallet, units)| TxOut {
                value: Amount(units),
                address: chain.address(wallet),
            })
            .collect();
        let from: Vec<usize> = (0..inputs).collect();
        let fee = Amount(chain.min_fee().units() + extra_fee);
        chain.transfer(&from, &pay, fee)
    })
}

/// The smallest valid signed transaction: one input, its change as the one output.
fn one_in_one_out() -> Tx {
    chain().transfer(&[0], &[], chain().min_fee())
}

fn decode(bytes: &[u8]) -> Result<Tx, timecoin::types::DecodeError> {
    Tx::decode(bytes, MAX_TX_BYTES_HARD)
}

/// Checks that `bytes`, one changed byte at `at` away from the valid `tx`,
/// is refused for the reason the changed field predicts.
fn assert_change_rejected(tx: &Tx, bytes: &[u8], at: usize) {
    let chain = chain();
    let (field, _) = tx_fields(tx)
        .into_iter()
        .find(|(_, range)| range.contains(&at))
        .expect("position inside the encoding");
    let changed = format!("byte {at} ({field:?}) changed: {}", hex::encode(bytes));
    let verdict = decode(bytes).map(|t| validate(&t, genesis_utxos(), &chain.params()));
    match (field, verdict) {
        (Field::Count | Field::ArrayLen, Err(_)) => {}
        (Field::Version, Ok(Err(TxError::UnsupportedVersion(_)))) => {}
        // The registration version promises a payload the transfer lacks.
        (Field::Version, Err(_)) if bytes[..4] == TX_VERSION_REGISTRATION.to_le_bytes() => {}
        (Field::Body, Ok(Err(_))) => {}
        (Field::Signature(index), Ok(Err(TxError::BadSignature { index: i, .. }))) => {
            assert_eq!(i, index, "{changed}")
        }
        (_, verdict) => panic!("{changed}: {verdict:?}"),
    }
}

proptest! {
    #![proptest_config(seeded(512))]

    #[test]
    fn encode_then_decode_is_identity(tx in arbitrary_tx()) {
        let bytes = tx.encode();
        prop_assert_eq!(bytes.len(), tx.encoded_len());
        prop_assert_eq!(decode(&bytes), Ok(tx));
    }

    #[test]
    fn txid_ignores_signatures(tx in arbitrary_tx(), sig in uniform::<_, 64>(any::<u8>())) {
        let mut resigned = tx.clone();
        for input in &mut resigned.inputs {
            input.sig = SignatureBytes(sig);
        }
        if let Some(registration) = &mut resigned.registration {
            registration.identity_sig = SignatureBytes(sig);
        }
        prop_assert_eq!(resigned.txid(), tx.txid());
    }

    #[test]
    fn txid_commits_to_every_byte_but_signatures(
        tx in arbitrary_tx(),
        pick: Index,
        mask in 1..=u8::MAX,
    ) {
        let covered: Vec<usize> = tx_fields(&tx)
            .into_iter()
            .filter(|(field, _)| matches!(field, Field::Version | Field::Body))
            .flat_map(|(_, range)| range)
            .collect();
        let mut bytes = tx.encode();
        bytes[*pick.get(&covered)] ^= mask;
        let changed = decode(&bytes).expect("fixed-size content still decodes");
        prop_assert_ne!(changed.txid(), tx.txid());
    }

    #[test]
    fn decoded_bytes_reencode_to_themselves(
        tx in arbitrary_tx(),
        pick: Index,
        mask in 1..=u8::MAX,
        noise in vec(any::<u8>(), 0..400),
    ) {
        let mut changed = tx.encode();
        let at = pick.index(changed.len());
        changed[at] ^= mask;
        for bytes in [changed, noise] {
            if let Ok(decoded) = decode(&bytes) {
                prop_assert_eq!(decoded.encode(), bytes);
            }
        }
    }
}

proptest! {
    // Each case checks every byte of a signed transaction (up to 440).
    #![proptest_config(seeded(3))]

    #[test]
    fn any_single_byte_change_of_a_signed_tx_is_rejected(
        tx in signed_transfer(),
        masks in vec(1..=u8::MAX, 64),
    ) {
        prop_assert!(validate(&tx, genesis_utxos(), &chain().params()).is_ok());
        let bytes = tx.encode();
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= masks[at % masks.len()];
            assert_change_rejected(&tx, &changed, at);
        }
    }
}

#[test]
fn field_layout_matches_the_encoder() {
    for tx in chain().sample_transfers() {
        let fields = tx_fields(&tx);
        let end = fields.last().map(|(_, range)| range.end);
        assert_eq!(end, Some(tx.encode().len()));
    }
}

#[test]
fn every_bit_flip_of_a_signed_tx_is_rejected() {
    let tx = one_in_one_out();
    let bytes = tx.encode();
    for at in 0..bytes.len() {
        for bit in 0..8 {
            let mut changed = bytes.clone();
            changed[at] ^= 1 << bit;
            assert_change_rejected(&tx, &changed, at);
        }
    }
}

#[test]
fn every_byte_value_at_each_field_start_and_signature_end_is_rejected() {
    let tx = one_in_one_out();
    let bytes = tx.encode();
    let fields = tx_fields(&tx);
    let signature_end = fields
        .iter()
        .find(|(field, _)| matches!(field, Field::Signature(_)))
        .map(|(_, range)| range.end - 1);
    // The last signature byte is the top of S, where a non-canonical S + ℓ would show.
    let positions = fields
        .iter()
        .map(|(_, range)| range.start)
        .chain(signature_end);
    for at in positions {
        for value in (0..=u8::MAX).filter(|&v| v != bytes[at]) {
            let mut changed = bytes.clone();
            changed[at] = value;
            assert_change_rejected(&tx, &changed, at);
        }
    }
}
