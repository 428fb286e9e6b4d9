//! Building and signing transfers. Every input signs the same message
//! (domain, chain id, txid), and the txid excludes signatures, so inputs can be
//! signed in any order once the body is fixed.

use crate::crypto::{signing_message, Domain, Keypair};
use crate::types::{
    Address, Amount, ChainId, OutPoint, Registration, SignatureBytes, Tier, Tx, TxIn, TxOut,
    VrfPublicBytes, TX_VERSION, TX_VERSION_REGISTRATION,
};
use std::net::SocketAddr;

/// An unspent output the wallet can spend, with the key that owns it.
#[derive(Clone, Debug)]
pub struct Spendable<'a> {
    pub outpoint: OutPoint,
    pub value: Amount,
    pub key: &'a Keypair,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("nothing to spend: no inputs given")]
    NoInputs,
    #[error("inputs total {available}, but outputs plus fee need {needed}")]
    InsufficientFunds { available: Amount, needed: Amount },
    #[error("amounts overflow")]
    Overflow,
}

/// Signs every input of `tx` with the matching key (`keys[i]` signs input `i`).
pub fn sign_inputs(tx: &mut Tx, keys: &[&Keypair], chain_id: ChainId) {
    for (input, key) in tx.inputs.iter_mut().zip(keys) {
        input.pubkey = key.public();
    }
    let message = signing_message(Domain::Tx, chain_id, &tx.txid());
    for (input, key) in tx.inputs.iter_mut().zip(keys) {
        input.sig = key.sign(&message);
    }
}

/// Spends all of `inputs`, pays `outputs`, leaves `fee`, and returns any change
/// to `change`. The change output is omitted when it would be zero.
pub fn build_transfer(
    inputs: &[Spendable<'_>],
    outputs: &[TxOut],
    fee: Amount,
    change: Address,
    chain_id: ChainId,
) -> Result<Tx, BuildError> {
    let mut tx = unsigned(inputs, outputs, fee, change)?;
    sign_with(&mut tx, inputs, chain_id);
    Ok(tx)
}

/// What a masternode registers (DESIGN §7), besides its collateral.
#[derive(Clone, Debug)]
pub struct MasternodeInfo<'a> {
    pub tier: Tier,
    /// Signs the registration and, once active, every vote.
    pub identity: &'a Keypair,
    pub vrf_key: VrfPublicBytes,
    pub listen_addr: SocketAddr,
    pub payout: Address,
}

/// A registration: output 0 locks the tier's exact collateral at `owner`
/// (which must be the address of one of `inputs`' keys: the owner signs),
/// the rest is a transfer of `inputs` as in [`build_transfer`].
pub fn build_registration(
    inputs: &[Spendable<'_>],
    masternode: &MasternodeInfo<'_>,
    owner: Address,
    fee: Amount,
    change: Address,
    chain_id: ChainId,
) -> Result<Tx, BuildError> {
    let mut tx = unsigned(
        inputs,
        &[TxOut {
            value: masternode.tier.collateral(),
            address: owner,
        }],
        fee,
        change,
    )?;
    tx.version = TX_VERSION_REGISTRATION;
    tx.registration = Some(Box::new(Registration {
        tier: masternode.tier,
        identity: masternode.identity.public(),
        vrf_key: masternode.vrf_key,
        listen_addr: masternode.listen_addr,
        payout: masternode.payout,
        identity_sig: SignatureBytes([0; 64]),
    }));
    let message = signing_message(Domain::Registration, chain_id, &tx.txid());
    if let Some(registration) = &mut tx.registration {
        registration.identity_sig = masternode.identity.sign(&message);
    }
    sign_with(&mut tx, inputs, chain_id);
    Ok(tx)
}

/// Signs each input with its spendable's key.
fn sign_with(tx: &mut Tx, inputs: &[Spendable<'_>], chain_id: ChainId) {
    let keys: Vec<&Keypair> = inputs.iter().map(|s| s.key).collect();
    sign_inputs(tx, &keys, chain_id);
}

/// The unsigned version-1 transfer [`build_transfer`] describes.
fn unsigned(
    inputs: &[Spendable<'_>],
    outputs: &[TxOut],
    fee: Amount,
    change: Address,
) -> Result<Tx, BuildError> {
    if inputs.is_empty() {
        return Err(BuildError::NoInputs);
    }
    let available =
        Amount::checked_sum(inputs.iter().map(|s| s.value)).ok_or(BuildError::Overflow)?;
    let needed = Amount::checked_sum(outputs.iter().map(|o| o.value).chain([fee]))
        .ok_or(BuildError::Overflow)?;
    let change_value = available
        .checked_sub(needed)
        .ok_or(BuildError::InsufficientFunds { available, needed })?;
    let mut outs = outputs.to_vec();
    if change_value > Amount::ZERO {
        outs.push(TxOut {
            value: change_value,
            address: change,
        });
    }
    Ok(Tx {
        version: TX_VERSION,
        inputs: inputs
            .iter()
            .map(|s| TxIn {
                prev: s.outpoint,
                pubkey: s.key.public(),
                sig: SignatureBytes([0; 64]),
            })
            .collect(),
        outputs: outs,
        registration: None,
    })
}
