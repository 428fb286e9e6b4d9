//! Every rule of `ledger::validate` / `check_structure` (DESIGN §3), one case
//! each: an otherwise valid signed transaction that breaks exactly that rule.
//! Each case asserts that the unbroken transaction passes, that the broken one
//! fails with exactly the expected `TxError` (so removing the rule fails the
//! test), the error's wallet-facing text, and whether a relaying peer is at fault.

mod common;

use common::{masternode_key, TestChain, WALLET_FUNDS};
use std::collections::BTreeSet;
use timecoin::crypto::Keypair;
use timecoin::crypto::{signing_message, Domain};
use timecoin::ledger::{
    check_structure, validate, Bond, BondState, MemUtxoSet, TxError, UtxoEntry, UtxoView,
    ValidationParams, ViewError,
};
use timecoin::types::{
    Address, Amount, Hash, Network, OutPoint, PublicKeyBytes, SignatureBytes, Tier, Tx, TxIn, TxOut,
};
use timecoin::wallet::{build_transfer, Spendable};

/// Where a case looks its inputs up: the ledger, the ledger with the
/// registry answering one state for every bond, or a store that fails.
#[derive(Clone)]
enum View {
    Ledger(MemUtxoSet),
    Bonds(MemUtxoSet, BondState),
    Failing,
}

impl View {
    fn ledger(&self) -> Result<&MemUtxoSet, ViewError> {
        match self {
            View::Ledger(set) | View::Bonds(set, _) => Ok(set),
            View::Failing => Err(ViewError("disk read failed".to_string())),
        }
    }
}

impl UtxoView for View {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<UtxoEntry>, ViewError> {
        self.ledger()?.utxo(outpoint)
    }

    fn tip_height(&self) -> Result<u64, ViewError> {
        self.ledger()?.tip_height()
    }

    fn registered_at(&self, identity: &PublicKeyBytes) -> Result<Option<u64>, ViewError> {
        self.ledger()?.registered_at(identity)
    }

    fn bond(&self, outpoint: &OutPoint) -> Result<Option<Bond>, ViewError> {
        self.ledger()?.bond(outpoint)
    }

    fn bond_state(&self, bond: &Bond) -> Result<BondState, ViewError> {
        match self {
            View::Bonds(_, state) => Ok(*state),
            _ => self.ledger()?.bond_state(bond),
        }
    }
}

/// One broken rule: `good` passes against `good_view`; `bad` differs from it
/// only by the rule it breaks and fails against `bad_view`.
struct Case {
    params: ValidationParams,
    good: Tx,
    good_view: View,
    bad: Tx,
    bad_view: View,
    expected: TxError,
    message: String,
    sender_fault: bool,
}

impl Case {
    /// A case whose transactions are both checked against the genesis ledger.
    fn on_genesis(chain: &TestChain, good: Tx, bad: Tx, expected: TxError, message: &str) -> Case {
        Case::on_ledger(
            chain,
            View::Ledger(chain.utxos()),
            good,
            bad,
            expected,
            message,
        )
    }

    /// A case whose transactions are both checked against `ledger`.
    fn on_ledger(
        chain: &TestChain,
        ledger: View,
        good: Tx,
        bad: Tx,
        expected: TxError,
        message: &str,
    ) -> Case {
        Case {
            params: chain.params(),
            good,
            good_view: ledger.clone(),
            bad,
            bad_view: ledger,
            sender_fault: expected.is_sender_fault(),
            expected,
            message: message.to_string(),
        }
    }

    fn with_bad_view(mut self, view: View) -> Case {
        self.bad_view = view;
        self
    }

    fn not_sender_fault(mut self) -> Case {
        self.sender_fault = false;
        self
    }

    /// Runs the case and returns the error it produced.
    fn check(self) -> TxError {
        let valid = validate(&self.good, &self.good_view, &self.params);
        assert!(valid.is_ok(), "the unbroken tx must pass: {valid:?}");
        let err = validate(&self.bad, &self.bad_view, &self.params)
            .expect_err("the broken tx must be rejected");
        assert_eq!(err, self.expected);
        assert_eq!(err.to_string(), self.message);
        assert_eq!(err.is_sender_fault(), self.sender_fault, "{err}");
        // Rules without lookups must also be caught by the lookup-free check.
        if is_structural(&err) {
            assert_eq!(check_structure(&self.good, &self.params), Ok(()));
            assert_eq!(check_structure(&self.bad, &self.params), Err(err.clone()));
        }
        err
    }
}

/// The rules `check_structure` owns (its doc: version, size, emptiness,
/// duplicates, zero outputs).
fn is_structural(err: &TxError) -> bool {
    matches!(
        err,
        TxError::UnsupportedVersion(_)
            | TxError::TooLarge { .. }
            | TxError::NoInputs
            | TxError::NoOutputs
            | TxError::DuplicateInput { .. }
            | TxError::ZeroValueOutput(_)
            | TxError::RegistrationTierFree(_)
            | TxError::WrongCollateral { .. }
            | TxError::CollateralOwnerNotSigner { .. }
            | TxError::UnroutableListenAddr(_)
    )
}

/// The rule an error reports. Exhaustive on purpose: a new `TxError` variant
/// does not compile until it is named here, and `every_rule_has_a_case` then
/// fails until a case breaks it.
fn rule(err: &TxError) -> &'static str {
    match err {
        TxError::UnsupportedVersion(_) => "UnsupportedVersion",
        TxError::TooLarge { .. } => "TooLarge",
        TxError::NoInputs => "NoInputs",
        TxError::NoOutputs => "NoOutputs",
        TxError::DuplicateInput { .. } => "DuplicateInput",
        TxError::ZeroValueOutput(_) => "ZeroValueOutput",
        TxError::OutputOverflow => "OutputOverflow",
        TxError::UnknownOutpoint { .. } => "UnknownOutpoint",
        TxError::AlreadySpent { .. } => "AlreadySpent",
        TxError::ImmatureReward { .. } => "ImmatureReward",
        TxError::KeyMismatch { .. } => "KeyMismatch",
        TxError::BadPublicKey { .. } => "BadPublicKey",
        TxError::BadSignature { .. } => "BadSignature",
        TxError::InputOverflow => "InputOverflow",
        TxError::Overspend { .. } => "Overspend",
        TxError::FeeTooLow { .. } => "FeeTooLow",
        TxError::View(_) => "View",
        TxError::RegistrationTierFree(_) => "RegistrationTierFree",
        TxError::WrongCollateral { .. } => "WrongCollateral",
        TxError::CollateralOwnerNotSigner { .. } => "CollateralOwnerNotSigner",
        TxError::UnroutableListenAddr(_) => "UnroutableListenAddr",
        TxError::BadIdentityKey => "BadIdentityKey",
        TxError::BadIdentitySignature { .. } => "BadIdentitySignature",
        TxError::AlreadyRegistered { .. } => "AlreadyRegistered",
        TxError::CollateralUnbonding { .. } => "CollateralUnbonding",
        TxError::CollateralBurned { .. } => "CollateralBurned",
    }
}

const ALL_RULES: [&str; 26] = [
    "UnsupportedVersion",
    "TooLarge",
    "NoInputs",
    "NoOutputs",
    "DuplicateInput",
    "ZeroValueOutput",
    "OutputOverflow",
    "UnknownOutpoint",
    "AlreadySpent",
    "ImmatureReward",
    "KeyMismatch",
    "BadPublicKey",
    "BadSignature",
    "InputOverflow",
    "Overspend",
    "FeeTooLow",
    "View",
    "RegistrationTierFree",
    "WrongCollateral",
    "CollateralOwnerNotSigner",
    "UnroutableListenAddr",
    "BadIdentityKey",
    "BadIdentitySignature",
    "AlreadyRegistered",
    "CollateralUnbonding",
    "CollateralBurned",
];

/// The devnet's chain id as `BadSignature` reports it.
fn devnet_bad_signature(index: usize) -> TxError {
    TxError::BadSignature {
        index,
        chain_id: Network::Devnet.chain_id(),
    }
}

fn bad_signature_text(index: usize) -> String {
    format!(
        "input {index}: signature does not verify for chain 3 (devnet): sign the txid \
         for this chain with the key that owns the input, and change nothing after signing"
    )
}

/// `tx` plus one more input, spending `outpoint` with the given key bytes.
fn with_extra_input(tx: &Tx, outpoint: OutPoint, pubkey: PublicKeyBytes) -> Tx {
    let mut tx = tx.clone();
    tx.inputs.push(TxIn {
        prev: outpoint,
        pubkey,
        sig: SignatureBytes([0; 64]),
    });
    tx
}

/// The genesis ledger plus one output `value` owned by `owner`.
fn ledger_with(chain: &TestChain, value: Amount, owner: Address) -> (View, OutPoint) {
    let mut set = chain.utxos();
    let txid = Hash::digest(b"extra funding");
    set.add_outputs(
        txid,
        &[TxOut {
            value,
            address: owner,
        }],
    );
    (View::Ledger(set), OutPoint { txid, vout: 0 })
}

fn unsupported_version() -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    bad.version = 2;
    chain.resign(&mut bad, &[0, 1]);
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::UnsupportedVersion(2),
        "transaction version 2 is not supported for this transaction: version 1 is a transfer, \
         version 2 carries a masternode registration",
    )
}

/// A registration with `change` applied, re-signed by the identity key and
/// both funding wallets, so only the changed rule can fail.
fn registration_case(change: impl FnOnce(&mut Tx), expected: TxError, message: &str) -> Case {
    let chain = TestChain::devnet();
    let good = chain.registration();
    let mut bad = good.clone();
    change(&mut bad);
    chain.resign_registration(&mut bad, &masternode_key());
    Case::on_genesis(&chain, good, bad, expected, message)
}

/// Changes the registration payload of `tx`.
fn registration_of(tx: &mut Tx) -> &mut timecoin::types::Registration {
    tx.registration.as_deref_mut().expect("a registration tx")
}

fn registration_tier_free() -> Case {
    registration_case(
        |tx| registration_of(tx).tier = Tier::Free,
        TxError::RegistrationTierFree(Tier::Free),
        "a masternode registration needs a tier with collateral (bronze, silver or gold); \
         Free carries no voting weight",
    )
}

fn wrong_collateral() -> Case {
    registration_case(
        |tx| {
            tx.outputs[0].value = Amount(tx.outputs[0].value.0 - 1);
            tx.outputs[1].value = Amount(tx.outputs[1].value.0 + 1);
        },
        TxError::WrongCollateral {
            tier: Tier::Bronze,
            expected: Tier::Bronze.collateral(),
            found: Amount(Tier::Bronze.collateral().0 - 1),
        },
        "a Bronze registration locks exactly 1000.0 TIME in output 0, but output 0 holds \
         999.99999999 TIME",
    )
}

fn collateral_owner_not_signer() -> Case {
    let owner = TestChain::devnet().address(2);
    registration_case(
        |tx| tx.outputs[0].address = owner,
        TxError::CollateralOwnerNotSigner { owner },
        &format!(
            "the collateral's owner {owner:?} (output 0) does not sign the registration: fund \
             it from an input of that address"
        ),
    )
}

fn unroutable_listen_addr() -> Case {
    let addr = "0.0.0.0:24200".parse().expect("literal address");
    registration_case(
        |tx| registration_of(tx).listen_addr = addr,
        TxError::UnroutableListenAddr(addr),
        "listen address 0.0.0.0:24200 cannot be dialled: give a concrete IP and a non-zero port",
    )
}

fn bad_identity_key() -> Case {
    registration_case(
        |tx| registration_of(tx).identity = small_order_key(),
        TxError::BadIdentityKey,
        "the registration's identity key is not a valid ed25519 key",
    )
}

/// A second registration of an identity the final chain registered.
fn already_registered() -> Case {
    let chain = TestChain::devnet();
    let tx = chain.registration();
    let mut registered = chain.utxos();
    registered.add_masternode(masternode_key().public(), 12);
    Case::on_ledger(
        &chain,
        View::Ledger(chain.utxos()),
        tx.clone(),
        tx,
        TxError::AlreadyRegistered {
            identity: masternode_key().public(),
            height: 12,
        },
        &format!(
            "masternode {:?} is already registered (final at height 12): an identity registers \
             once; register with a new identity key",
            masternode_key().public()
        ),
    )
    .with_bad_view(View::Ledger(registered))
}

/// The ledger after [`TestChain::registration`] and a deregistration
/// spending its collateral back to wallet 0: the collateral, the
/// deregistration, and a spend of the deregistration's output.
fn deregistered(chain: &TestChain) -> (MemUtxoSet, OutPoint, Tx, Tx) {
    let mut set = chain.utxos();
    let registration = chain.registration();
    set.apply(&registration);
    let collateral = registration.outpoint(0);
    let spend = |outpoint: OutPoint, value: Amount| {
        let input = Spendable {
            outpoint,
            value,
            key: &chain.wallets[0],
        };
        let back = TxOut {
            value: value.checked_sub(chain.min_fee()).unwrap(),
            address: chain.address(0),
        };
        build_transfer(
            &[input],
            &[back],
            chain.min_fee(),
            chain.address(0),
            chain.chain_id(),
        )
        .unwrap()
    };
    let deregistration = spend(collateral, Tier::Bronze.collateral());
    set.apply(&deregistration);
    let unbonding = spend(deregistration.outpoint(0), deregistration.outputs[0].value);
    (set, collateral, deregistration, unbonding)
}

/// Coins out of a collateral's spend, before and after the unbonding ends.
fn collateral_unbonding() -> Case {
    let chain = TestChain::devnet();
    let (set, _, deregistration, tx) = deregistered(&chain);
    let outpoint = deregistration.outpoint(0);
    let identity = masternode_key().public();
    Case::on_ledger(
        &chain,
        View::Bonds(set.clone(), BondState::Released),
        tx.clone(),
        tx,
        TxError::CollateralUnbonding {
            index: 0,
            outpoint,
            identity,
            until_epoch: Some(7),
        },
        &format!(
            "input 0 spends {outpoint}, an output of masternode {identity:?}'s collateral \
             spend: it stays locked until the masternode's unbonding ends (epoch 7). Retry then"
        ),
    )
    .with_bad_view(View::Bonds(set, BondState::Unbonding { until_epoch: 7 }))
}

/// The collateral of a registered masternode, and of a slashed one.
fn collateral_burned() -> Case {
    let chain = TestChain::devnet();
    let (_, collateral, tx, _) = deregistered(&chain);
    let mut set = chain.utxos();
    set.apply(&chain.registration());
    let identity = masternode_key().public();
    Case::on_ledger(
        &chain,
        View::Bonds(set.clone(), BondState::Bonded),
        tx.clone(),
        tx,
        TxError::CollateralBurned {
            index: 0,
            outpoint: collateral,
            identity,
        },
        &format!(
            "input 0 spends {collateral}, collateral of masternode {identity:?}, which was \
             slashed for equivocating: the coins are burned and never move again"
        ),
    )
    .with_bad_view(View::Bonds(set, BondState::Burned))
}

/// Every registry state against the collateral itself and against its
/// spend's output: a collateral moves unless burned; its spend's coins only
/// once released (a deregistration not yet final keeps them bound).
#[test]
fn bonds_hold_coins_exactly_as_the_registry_says() {
    let chain = TestChain::devnet();
    let (set, collateral, deregistration, unbonding) = deregistered(&chain);
    let mut registered = chain.utxos();
    registered.apply(&chain.registration());
    let states = [
        BondState::Bonded,
        BondState::Unbonding { until_epoch: 3 },
        BondState::Released,
        BondState::Burned,
    ];
    for state in states {
        let spent_collateral = validate(
            &deregistration,
            &View::Bonds(registered.clone(), state),
            &chain.params(),
        );
        assert_eq!(
            spent_collateral.is_ok(),
            state != BondState::Burned,
            "{state:?}"
        );
        let unbonded = validate(
            &unbonding,
            &View::Bonds(set.clone(), state),
            &chain.params(),
        );
        assert_eq!(unbonded.is_ok(), state == BondState::Released, "{state:?}");
    }
    // The model's registry never lets go: a fresh spend's coins stay bound.
    let err = validate(&unbonding, &set, &chain.params()).unwrap_err();
    assert!(
        matches!(
            err,
            TxError::CollateralUnbonding {
                until_epoch: None,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        set.bond(&collateral).unwrap().unwrap().collateral,
        collateral
    );
    assert!(set.bond(&unbonding.inputs[0].prev).unwrap().is_some());
}

/// Someone registering an identity whose key they do not hold.
fn bad_identity_signature() -> Case {
    let chain = TestChain::devnet();
    let good = chain.registration();
    let mut bad = good.clone();
    let thief = Keypair::from_seed_label("not the masternode");
    chain.resign_registration(&mut bad, &thief);
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::BadIdentitySignature {
            chain_id: Network::Devnet.chain_id(),
        },
        "the identity key's signature does not verify for chain 3: sign the txid with the \
         masternode's identity key (domain mnreg), and change nothing after signing",
    )
}

fn too_large() -> Case {
    let chain = TestChain::devnet();
    let max = chain.params().max_tx_bytes;
    // Two inputs and `n` outputs (change included) take 20 + 2·156 + 36·n bytes.
    let fits = (max - 20 - 2 * 156) / 36;
    let paying = |outputs: usize| {
        let pay = vec![chain.pay(2, 1); outputs - 1];
        chain.transfer(&[0, 1], &pay, chain.min_fee())
    };
    let good = paying(fits);
    let bad = paying(fits + 1);
    assert!(good.encoded_len() <= max && bad.encoded_len() > max);
    let size = bad.encoded_len();
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::TooLarge { size, max },
        &format!("transaction is {size} bytes, over the maximum of {max}"),
    )
}

fn no_inputs() -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    bad.inputs.clear();
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::NoInputs,
        "transaction has no inputs",
    )
}

fn no_outputs() -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    bad.outputs.clear();
    chain.resign(&mut bad, &[0, 1]);
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::NoOutputs,
        "transaction has no outputs",
    )
}

fn duplicate_input() -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    bad.inputs.push(good.inputs[0].clone());
    chain.resign(&mut bad, &[0, 1, 0]);
    let outpoint = chain.funding(0);
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::DuplicateInput {
            first: 0,
            second: 2,
            outpoint,
        },
        &format!("input 2 spends {outpoint}, already spent by input 0 of the same transaction"),
    )
}

fn zero_value_output() -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    bad.outputs.push(TxOut {
        value: Amount::ZERO,
        address: chain.address(3),
    });
    chain.resign(&mut bad, &[0, 1]);
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::ZeroValueOutput(2),
        "output 2 has value 0",
    )
}

fn output_overflow() -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    bad.outputs.push(TxOut {
        value: Amount(u64::MAX),
        address: chain.address(3),
    });
    chain.resign(&mut bad, &[0, 1]);
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::OutputOverflow,
        "output values overflow",
    )
}

fn unknown_outpoint() -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    let outpoint = OutPoint {
        txid: chain.spec.genesis_hash(),
        vout: 99,
    };
    bad.inputs[1].prev = outpoint;
    chain.resign(&mut bad, &[0, 1]);
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::UnknownOutpoint { index: 1, outpoint },
        &format!("input 1 spends unknown outpoint {outpoint}"),
    )
}

fn already_spent() -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut after = chain.utxos();
    after.apply(&good);
    // A double spend of wallet 0's funds, paying someone else.
    let bad = chain.transfer(&[0], &[chain.pay(3, 5)], chain.min_fee());
    let outpoint = chain.funding(0);
    let by = good.txid();
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::AlreadySpent {
            index: 0,
            outpoint,
            by,
        },
        &format!("input 0 spends {outpoint}, already spent by finalized transaction {by}"),
    )
    .with_bad_view(View::Ledger(after))
}

/// The same spend of a block reward, one block before and at maturity.
fn immature_reward() -> Case {
    let chain = TestChain::devnet();
    let (reward, matures_at) = (Hash::digest(b"a block's reward tx"), 10);
    let paid = chain.pay(0, 50);
    let outpoint = OutPoint {
        txid: reward,
        vout: 0,
    };
    let mut mature = chain.utxos();
    mature.add_reward_outputs(reward, &[paid], matures_at);
    let mut immature = mature.clone();
    mature.set_tip_height(matures_at);
    immature.set_tip_height(matures_at - 1);
    let input = Spendable {
        outpoint,
        value: paid.value,
        key: &chain.wallets[0],
    };
    let tx = build_transfer(
        &[input],
        &[chain.pay(1, 5)],
        chain.min_fee(),
        chain.address(0),
        chain.chain_id(),
    )
    .unwrap();
    Case::on_ledger(
        &chain,
        View::Ledger(mature),
        tx.clone(),
        tx,
        TxError::ImmatureReward {
            index: 0,
            outpoint,
            matures_at,
            tip: matures_at - 1,
        },
        &format!(
            "input 0 spends block reward output {outpoint}, which matures at height 10; \
             the tip is at height 9. Retry once the chain reaches height 10"
        ),
    )
    .with_bad_view(View::Ledger(immature))
}

fn key_mismatch() -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    // Wallet 3 signs validly with its own key for an output wallet 1 owns.
    chain.resign(&mut bad, &[0, 3]);
    let outpoint = chain.funding(1);
    let address = chain.address(1);
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::KeyMismatch {
            index: 1,
            outpoint,
            address,
        },
        &format!("input 1: public key does not match the address {address:?} that owns {outpoint}"),
    )
}

/// The identity point: a valid encoding of a small-order (weak) key.
fn small_order_key() -> PublicKeyBytes {
    let mut bytes = [0u8; 32];
    bytes[0] = 1;
    PublicKeyBytes(bytes)
}

/// Key bytes that decode to no curve point at all (y = 2 has no x).
fn off_curve_key() -> PublicKeyBytes {
    let mut bytes = [0u8; 32];
    bytes[0] = 2;
    PublicKeyBytes(bytes)
}

/// A third input whose output is owned by the address of `key`, which no
/// signature can be made for.
fn bad_public_key_case(key: PublicKeyBytes) -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let (ledger, outpoint) = ledger_with(&chain, WALLET_FUNDS, Address::from_pubkey(&key));
    let mut bad = with_extra_input(&good, outpoint, key);
    chain.resign(&mut bad, &[0, 1]);
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::BadPublicKey { index: 2 },
        "input 2: public key is not a valid ed25519 key",
    )
    .with_bad_view(ledger)
}

fn bad_public_key() -> Case {
    bad_public_key_case(small_order_key())
}

fn bad_signature_wrong_key() -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    let message = signing_message(Domain::Tx, chain.chain_id(), &good.txid());
    bad.inputs[0].sig = chain.wallets[3].sign(&message);
    Case::on_genesis(
        &chain,
        good,
        bad,
        devnet_bad_signature(0),
        &bad_signature_text(0),
    )
}

fn input_overflow() -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    // 2 × 1,000 TIME from genesis plus this overflow a u64.
    let huge = Amount(u64::MAX - WALLET_FUNDS.units());
    let (ledger, outpoint) = ledger_with(&chain, huge, chain.address(2));
    let mut bad = with_extra_input(&good, outpoint, chain.wallets[2].public());
    chain.resign(&mut bad, &[0, 1, 2]);
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::InputOverflow,
        "input values overflow",
    )
    .with_bad_view(ledger)
}

fn overspend() -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    // Change takes the whole fee and one unit more.
    bad.outputs[1].value = Amount(bad.outputs[1].value.units() + chain.min_fee().units() + 1);
    chain.resign(&mut bad, &[0, 1]);
    let inputs = Amount(2 * WALLET_FUNDS.units());
    let outputs = Amount(inputs.units() + 1);
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::Overspend { inputs, outputs },
        "outputs (2000.00000001 TIME) exceed inputs (2000.0 TIME)",
    )
}

fn fee_too_low() -> Case {
    let chain = TestChain::devnet();
    // The minimum itself passes; a tenth of it does not.
    let good = chain.two_in_two_out();
    let fee = Amount(chain.min_fee().units() / 10);
    let bad = chain.transfer(&[0, 1], &[chain.pay(2, 10)], fee);
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::FeeTooLow {
            fee,
            min: chain.min_fee(),
        },
        "fee 0.0001 TIME below minimum 0.001 TIME",
    )
}

fn view_failure() -> Case {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let bad = good.clone();
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::View(ViewError("disk read failed".to_string())),
        "reading the UTXO set failed: disk read failed",
    )
    .with_bad_view(View::Failing)
    .not_sender_fault()
}

/// One case per rule; the variations of a rule have their own tests below.
const CASES: [fn() -> Case; 26] = [
    unsupported_version,
    too_large,
    no_inputs,
    no_outputs,
    duplicate_input,
    zero_value_output,
    output_overflow,
    unknown_outpoint,
    already_spent,
    immature_reward,
    key_mismatch,
    bad_public_key,
    bad_signature_wrong_key,
    input_overflow,
    overspend,
    fee_too_low,
    view_failure,
    registration_tier_free,
    wrong_collateral,
    collateral_owner_not_signer,
    unroutable_listen_addr,
    bad_identity_key,
    bad_identity_signature,
    already_registered,
    collateral_unbonding,
    collateral_burned,
];

#[test]
fn every_rule_has_a_case() {
    let covered: BTreeSet<&str> = CASES.iter().map(|case| rule(&case().check())).collect();
    let all: BTreeSet<&str> = ALL_RULES.into_iter().collect();
    assert_eq!(covered, all);
}

#[test]
fn reward_spent_before_maturity_is_rejected() {
    immature_reward().check();
}

#[test]
fn unsupported_version_is_rejected() {
    unsupported_version().check();
}

#[test]
fn masternode_registration_is_valid() {
    let chain = TestChain::devnet();
    let tx = chain.registration();
    assert_eq!(tx.outputs[0].value, Tier::Bronze.collateral());
    assert!(validate(&tx, &chain.utxos(), &chain.params()).is_ok());
    assert_eq!(Tx::decode(&tx.encode(), 16_384), Ok(tx));
}

#[test]
fn registration_rules_each_refuse_their_break() {
    for case in [
        registration_tier_free,
        wrong_collateral,
        collateral_owner_not_signer,
        unroutable_listen_addr,
        bad_identity_key,
        bad_identity_signature,
    ] {
        case().check();
    }
}

#[test]
fn registration_payload_on_a_version_1_tx_is_refused() {
    let chain = TestChain::devnet();
    let good = chain.registration();
    let mut bad = good.clone();
    bad.version = 1;
    chain.resign_registration(&mut bad, &masternode_key());
    Case::on_genesis(
        &chain,
        good,
        bad,
        TxError::UnsupportedVersion(1),
        "transaction version 1 is not supported for this transaction: version 1 is a transfer, \
         version 2 carries a masternode registration",
    )
    .check();
}

#[test]
fn registration_payload_changed_after_signing_is_refused() {
    let chain = TestChain::devnet();
    let good = chain.registration();
    let mut bad = good.clone();
    registration_of(&mut bad).listen_addr = "127.0.0.2:24200".parse().expect("literal");
    Case::on_genesis(
        &chain,
        good,
        bad,
        devnet_bad_signature(0),
        &bad_signature_text(0),
    )
    .check();
}

#[test]
fn tx_one_output_over_max_bytes_is_rejected() {
    too_large().check();
}

#[test]
fn tx_without_inputs_is_rejected() {
    no_inputs().check();
}

#[test]
fn tx_without_outputs_is_rejected() {
    no_outputs().check();
}

#[test]
fn outpoint_spent_twice_in_one_tx_is_rejected() {
    duplicate_input().check();
}

#[test]
fn zero_value_output_is_rejected() {
    zero_value_output().check();
}

#[test]
fn output_sum_overflow_is_rejected() {
    output_overflow().check();
}

#[test]
fn unknown_outpoint_is_rejected_without_blame() {
    unknown_outpoint().check();
}

#[test]
fn spend_of_applied_tx_input_is_rejected_without_blame() {
    already_spent().check();
}

#[test]
fn key_not_owning_the_output_is_rejected() {
    key_mismatch().check();
}

#[test]
fn small_order_public_key_is_rejected() {
    bad_public_key().check();
}

#[test]
fn off_curve_public_key_is_rejected() {
    bad_public_key_case(off_curve_key()).check();
}

#[test]
fn signature_by_another_key_is_rejected() {
    bad_signature_wrong_key().check();
}

#[test]
fn signature_made_for_testnet_is_rejected_on_devnet() {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    let testnet_sig = signing_message(Domain::Tx, Network::Testnet.chain_id(), &good.txid());
    bad.inputs[0].sig = chain.wallets[0].sign(&testnet_sig);
    bad.inputs[1].sig = chain.wallets[1].sign(&testnet_sig);
    Case::on_genesis(
        &chain,
        good,
        bad,
        devnet_bad_signature(0),
        &bad_signature_text(0),
    )
    .check();
}

#[test]
fn payment_redirected_after_signing_is_rejected() {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    bad.outputs[0].address = chain.address(3);
    Case::on_genesis(
        &chain,
        good,
        bad,
        devnet_bad_signature(0),
        &bad_signature_text(0),
    )
    .check();
}

#[test]
fn amount_lowered_after_signing_is_rejected() {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    bad.outputs[0].value = Amount(bad.outputs[0].value.units() - 1);
    Case::on_genesis(
        &chain,
        good,
        bad,
        devnet_bad_signature(0),
        &bad_signature_text(0),
    )
    .check();
}

#[test]
fn bad_signature_names_the_failing_input() {
    let chain = TestChain::devnet();
    let good = chain.two_in_two_out();
    let mut bad = good.clone();
    bad.inputs[1].sig = good.inputs[0].sig;
    Case::on_genesis(
        &chain,
        good,
        bad,
        devnet_bad_signature(1),
        &bad_signature_text(1),
    )
    .check();
}

/// Wallet 0 spends its genesis output and a second output of the same
/// address: both inputs carry the same key and (deterministic ed25519) the
/// same signature, which validation checks once.
fn consolidation(chain: &TestChain) -> (View, Tx) {
    let (ledger, second) = ledger_with(chain, WALLET_FUNDS, chain.address(0));
    let inputs = [
        chain.spendable(0),
        Spendable {
            outpoint: second,
            ..chain.spendable(0)
        },
    ];
    let tx = build_transfer(
        &inputs,
        &[chain.pay(2, 10)],
        chain.min_fee(),
        chain.address(0),
        chain.chain_id(),
    )
    .unwrap();
    assert_eq!(tx.inputs[0].sig, tx.inputs[1].sig);
    (ledger, tx)
}

#[test]
fn repeated_key_with_altered_signature_is_rejected() {
    let chain = TestChain::devnet();
    let (ledger, good) = consolidation(&chain);
    let mut bad = good.clone();
    bad.inputs[1].sig.0[0] ^= 1;
    Case::on_ledger(
        &chain,
        ledger,
        good,
        bad,
        devnet_bad_signature(1),
        &bad_signature_text(1),
    )
    .check();
}

#[test]
fn input_sum_overflow_is_rejected() {
    input_overflow().check();
}

#[test]
fn outputs_above_inputs_are_rejected() {
    overspend().check();
}

#[test]
fn fee_below_minimum_is_rejected_and_minimum_passes() {
    fee_too_low().check();
}

#[test]
fn failing_utxo_store_is_not_the_senders_fault() {
    view_failure().check();
}

#[test]
fn valid_tx_reports_its_txid_and_fee() {
    let chain = TestChain::devnet();
    let fee = Amount::from_time(3).unwrap();
    let tx = chain.transfer(&[0, 1], &[chain.pay(2, 10)], fee);
    let valid = validate(&tx, &chain.utxos(), &chain.params()).unwrap();
    assert_eq!(valid.txid, tx.txid());
    assert_eq!(valid.fee, fee);
}
