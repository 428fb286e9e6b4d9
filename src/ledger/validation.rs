//! Transaction validity (DESIGN §3). One typed error per rule, each with a
//! message a wallet developer can act on and a verdict on whether the sender
//! is at fault. Cheap structural checks run first, signatures last.

use super::bond::{Bond, BondState};
use super::utxo::{UtxoState, UtxoView, ViewError};
use crate::crypto::{signing_message, Domain, PublicKey};
use crate::types::{
    Address, Amount, ChainId, Hash, Network, OutPoint, PublicKeyBytes, Registration,
    SignatureBytes, Tier, Tx, TX_VERSION, TX_VERSION_REGISTRATION,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// The chain rules validation depends on (from the chain config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidationParams {
    pub chain_id: ChainId,
    pub min_fee: Amount,
    pub max_tx_bytes: usize,
}

/// A transaction that passed every rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidTx {
    pub txid: Hash,
    pub fee: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error(
        "transaction version {0} is not supported for this transaction: version {TX_VERSION} \
         is a transfer, version {TX_VERSION_REGISTRATION} carries a masternode registration"
    )]
    UnsupportedVersion(u32),
    #[error(
        "a masternode registration needs a tier with collateral (bronze, silver or gold); \
         {0:?} carries no voting weight"
    )]
    RegistrationTierFree(Tier),
    #[error(
        "a {tier:?} registration locks exactly {expected} in output 0, but output 0 holds {found}"
    )]
    WrongCollateral {
        tier: Tier,
        expected: Amount,
        found: Amount,
    },
    #[error(
        "the collateral's owner {owner:?} (output 0) does not sign the registration: \
         fund it from an input of that address"
    )]
    CollateralOwnerNotSigner { owner: Address },
    #[error("listen address {0} cannot be dialled: give a concrete IP and a non-zero port")]
    UnroutableListenAddr(SocketAddr),
    #[error(
        "masternode {identity:?} is already registered (final at height {height}): an \
         identity registers once; register with a new identity key"
    )]
    AlreadyRegistered {
        identity: PublicKeyBytes,
        height: u64,
    },
    #[error("the registration's identity key is not a valid ed25519 key")]
    BadIdentityKey,
    #[error(
        "the identity key's signature does not verify for chain {chain_id}: sign the txid \
         with the masternode's identity key (domain mnreg), and change nothing after signing"
    )]
    BadIdentitySignature { chain_id: ChainId },
    #[error("transaction is {size} bytes, over the maximum of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("transaction has no inputs")]
    NoInputs,
    #[error("transaction has no outputs")]
    NoOutputs,
    #[error(
        "input {second} spends {outpoint}, already spent by input {first} of the same transaction"
    )]
    DuplicateInput {
        first: usize,
        second: usize,
        outpoint: OutPoint,
    },
    #[error("output {0} has value 0")]
    ZeroValueOutput(usize),
    #[error("output values overflow")]
    OutputOverflow,
    #[error("input {index} spends unknown outpoint {outpoint}")]
    UnknownOutpoint { index: usize, outpoint: OutPoint },
    #[error("input {index} spends {outpoint}, already spent by finalized transaction {by}")]
    AlreadySpent {
        index: usize,
        outpoint: OutPoint,
        by: Hash,
    },
    #[error(
        "input {index} spends block reward output {outpoint}, which matures at height \
         {matures_at}; the tip is at height {tip}. Retry once the chain reaches height {matures_at}"
    )]
    ImmatureReward {
        index: usize,
        outpoint: OutPoint,
        matures_at: u64,
        tip: u64,
    },
    #[error(
        "input {index} spends {outpoint}, an output of masternode {identity:?}'s collateral \
         spend: it stays locked until the masternode's unbonding ends ({}). Retry then",
        until_epoch.map_or("its deregistration is not final yet".to_string(), |e| format!("epoch {e}"))
    )]
    CollateralUnbonding {
        index: usize,
        outpoint: OutPoint,
        identity: PublicKeyBytes,
        until_epoch: Option<u64>,
    },
    #[error(
        "input {index} spends {outpoint}, collateral of masternode {identity:?}, which was \
         slashed for equivocating: the coins are burned and never move again"
    )]
    CollateralBurned {
        index: usize,
        outpoint: OutPoint,
        identity: PublicKeyBytes,
    },
    #[error(
        "input {index}: public key does not match the address {address:?} that owns {outpoint}"
    )]
    KeyMismatch {
        index: usize,
        outpoint: OutPoint,
        address: Address,
    },
    #[error("input {index}: public key is not a valid ed25519 key")]
    BadPublicKey { index: usize },
    #[error(
        "input {index}: signature does not verify for chain {chain_id} ({}): sign the txid \
         for this chain with the key that owns the input, and change nothing after signing",
        network_name(*.chain_id)
    )]
    BadSignature { index: usize, chain_id: ChainId },
    #[error("input values overflow")]
    InputOverflow,
    #[error("outputs ({outputs}) exceed inputs ({inputs})")]
    Overspend { inputs: Amount, outputs: Amount },
    #[error("fee {fee} below minimum {min}")]
    FeeTooLow { fee: Amount, min: Amount },
    #[error(transparent)]
    View(#[from] ViewError),
}

/// The network a chain id belongs to, for messages.
fn network_name(chain_id: ChainId) -> &'static str {
    Network::from_chain_id(chain_id).map_or("unknown network", Network::name)
}

impl TxError {
    /// Whether a peer that relayed this transaction deserves a penalty. Unknown,
    /// already-spent or immature inputs can be honest races (we may be
    /// behind), so they don't.
    pub fn is_sender_fault(&self) -> bool {
        !matches!(
            self,
            TxError::UnknownOutpoint { .. }
                | TxError::AlreadySpent { .. }
                | TxError::ImmatureReward { .. }
                | TxError::CollateralUnbonding { .. }
                | TxError::CollateralBurned { .. }
                | TxError::AlreadyRegistered { .. }
                | TxError::View(_)
        )
    }
}

/// Checks `tx` against every rule of DESIGN §3 using `view` for its inputs.
pub fn validate(
    tx: &Tx,
    view: &impl UtxoView,
    params: &ValidationParams,
) -> Result<ValidTx, TxError> {
    validate_with(tx, view, params, verify_signatures)
}

/// [`validate`] with the signature check (last, as [`verify_signatures`]
/// runs it) supplied by the caller: the simulator's engines share one
/// verdict per distinct signed tx.
pub fn validate_with(
    tx: &Tx,
    view: &impl UtxoView,
    params: &ValidationParams,
    signatures: impl FnOnce(&Tx, &Hash, ChainId) -> Result<(), TxError>,
) -> Result<ValidTx, TxError> {
    check_structure(tx, params)?;
    let outputs =
        Amount::checked_sum(tx.outputs.iter().map(|o| o.value)).ok_or(TxError::OutputOverflow)?;

    let txid = tx.txid();
    let mut inputs = Amount::ZERO;
    for (index, input) in tx.inputs.iter().enumerate() {
        let outpoint = input.prev;
        let entry = view
            .utxo(&outpoint)?
            .ok_or(TxError::UnknownOutpoint { index, outpoint })?;
        match entry.state {
            UtxoState::Unspent => {}
            UtxoState::Spent { by } => {
                return Err(TxError::AlreadySpent {
                    index,
                    outpoint,
                    by,
                })
            }
            UtxoState::Immature { matures_at } => {
                let tip = view.tip_height()?;
                if tip < matures_at {
                    return Err(TxError::ImmatureReward {
                        index,
                        outpoint,
                        matures_at,
                        tip,
                    });
                }
            }
        }
        if let Some(bond) = view.bond(&outpoint)? {
            check_bond(index, outpoint, &bond, view.bond_state(&bond)?)?;
        }
        if Address::from_pubkey(&input.pubkey) != entry.output.address {
            return Err(TxError::KeyMismatch {
                index,
                outpoint,
                address: entry.output.address,
            });
        }
        inputs = inputs
            .checked_add(entry.output.value)
            .ok_or(TxError::InputOverflow)?;
    }
    let fee = inputs
        .checked_sub(outputs)
        .ok_or(TxError::Overspend { inputs, outputs })?;
    if fee < params.min_fee {
        return Err(TxError::FeeTooLow {
            fee,
            min: params.min_fee,
        });
    }

    if let Some(registration) = &tx.registration {
        if let Some(height) = view.registered_at(&registration.identity)? {
            return Err(TxError::AlreadyRegistered {
                identity: registration.identity,
                height,
            });
        }
    }
    signatures(tx, &txid, params.chain_id)?;
    Ok(ValidTx { txid, fee })
}

/// A bound input moves only as its bond allows (DESIGN §7): a collateral
/// unless burned (spending it deregisters), its spend's outputs once the
/// member's unbonding is over.
fn check_bond(
    index: usize,
    outpoint: OutPoint,
    bond: &Bond,
    state: BondState,
) -> Result<(), TxError> {
    let identity = bond.identity;
    let until_epoch = match state {
        BondState::Burned => {
            return Err(TxError::CollateralBurned {
                index,
                outpoint,
                identity,
            })
        }
        BondState::Released => return Ok(()),
        _ if bond.is_collateral(&outpoint) => return Ok(()),
        BondState::Bonded => None,
        BondState::Unbonding { until_epoch } => Some(until_epoch),
    };
    Err(TxError::CollateralUnbonding {
        index,
        outpoint,
        identity,
        until_epoch,
    })
}

/// The registered identity key signed this txid: the operator holds it.
fn verify_identity(
    registration: &Registration,
    txid: &Hash,
    chain_id: ChainId,
) -> Result<(), TxError> {
    let key = PublicKey::parse(&registration.identity).map_err(|_| TxError::BadIdentityKey)?;
    key.verify(
        &signing_message(Domain::Registration, chain_id, txid),
        &registration.identity_sig,
    )
    .map_err(|_| TxError::BadIdentitySignature { chain_id })
}

/// Registration rules that need no lookups (DESIGN §7): a tier with
/// collateral, exactly its amount in output 0, owned by a signer, and an
/// address peers can dial.
fn check_registration(tx: &Tx, registration: &Registration) -> Result<(), TxError> {
    let tier = registration.tier;
    if tier == Tier::Free {
        return Err(TxError::RegistrationTierFree(tier));
    }
    // Structure checked the outputs are not empty.
    let Some(collateral) = tx.outputs.first() else {
        return Err(TxError::NoOutputs);
    };
    if collateral.value != tier.collateral() {
        return Err(TxError::WrongCollateral {
            tier,
            expected: tier.collateral(),
            found: collateral.value,
        });
    }
    let owner = collateral.address;
    if !tx
        .inputs
        .iter()
        .any(|input| Address::from_pubkey(&input.pubkey) == owner)
    {
        return Err(TxError::CollateralOwnerNotSigner { owner });
    }
    let addr = registration.listen_addr;
    if addr.port() == 0 || addr.ip().is_unspecified() || addr.ip().is_multicast() {
        return Err(TxError::UnroutableListenAddr(addr));
    }
    Ok(())
}

/// Verifies every input's signature over (domain, chain id, txid), and a
/// registration's identity signature.
///
/// Every input signs the same message, so an input that repeats an earlier
/// input's key and signature (a wallet spending several outputs of one
/// address) verifies exactly as that one did: each key is parsed once and
/// each distinct (key, signature) pair is verified once.
pub fn verify_signatures(tx: &Tx, txid: &Hash, chain_id: ChainId) -> Result<(), TxError> {
    let message = signing_message(Domain::Tx, chain_id, txid);
    let mut verified: BTreeMap<&PublicKeyBytes, (PublicKey, &SignatureBytes)> = BTreeMap::new();
    for (index, input) in tx.inputs.iter().enumerate() {
        let key = match verified.get(&input.pubkey) {
            Some((_, sig)) if **sig == input.sig => continue,
            Some((key, _)) => *key,
            None => PublicKey::parse(&input.pubkey).map_err(|_| TxError::BadPublicKey { index })?,
        };
        key.verify(&message, &input.sig)
            .map_err(|_| TxError::BadSignature { index, chain_id })?;
        verified.entry(&input.pubkey).or_insert((key, &input.sig));
    }
    match &tx.registration {
        Some(registration) => verify_identity(registration, txid, chain_id),
        None => Ok(()),
    }
}

/// Rules that need no UTXO lookups: version, size, emptiness, duplicates,
/// zero outputs, a registration's own rules.
pub fn check_structure(tx: &Tx, params: &ValidationParams) -> Result<(), TxError> {
    let registration = match (tx.version, &tx.registration) {
        (TX_VERSION, None) => None,
        (TX_VERSION_REGISTRATION, Some(registration)) => Some(registration),
        (version, _) => return Err(TxError::UnsupportedVersion(version)),
    };
    let size = tx.encoded_len();
    if size > params.max_tx_bytes {
        return Err(TxError::TooLarge {
            size,
            max: params.max_tx_bytes,
        });
    }
    if tx.inputs.is_empty() {
        return Err(TxError::NoInputs);
    }
    if tx.outputs.is_empty() {
        return Err(TxError::NoOutputs);
    }
    // Ordered, not hashed: no per-process random hash keys in a pure rule.
    let mut seen: BTreeSet<&OutPoint> = BTreeSet::new();
    for (second, input) in tx.inputs.iter().enumerate() {
        if !seen.insert(&input.prev) {
            let first = tx
                .inputs
                .iter()
                .position(|i| i.prev == input.prev)
                .unwrap_or(0);
            return Err(TxError::DuplicateInput {
                first,
                second,
                outpoint: input.prev,
            });
        }
    }
    if let Some(index) = tx.outputs.iter().position(|o| o.value == Amount::ZERO) {
        return Err(TxError::ZeroValueOutput(index));
    }
    registration.map_or(Ok(()), |registration| check_registration(tx, registration))
}
