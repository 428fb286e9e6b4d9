//! Outputs bound to a masternode's collateral (DESIGN §7 "Unbonding").
//!
//! Spending a collateral deregisters its masternode, but the votes it signed
//! stay valid evidence for one more epoch, so the coins must not leave before
//! they could be slashed: every output of the tx that spends a collateral is
//! bound to it, and stays locked until the member's unbonding ends (or burns
//! if the member is slashed). The binding is fixed when the spend finalizes,
//! from the tx alone; the final chain's registry says when it lets go.

use crate::types::{OutPoint, PublicKeyBytes, Tx};
use serde::{Deserialize, Serialize};

/// What binds an output: the masternode `identity` whose `collateral` it
/// is, or which that collateral's spend created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bond {
    pub identity: PublicKeyBytes,
    pub collateral: OutPoint,
}

impl Bond {
    /// Whether `outpoint` is the collateral itself (spending it deregisters)
    /// rather than an output of its spend (spending it waits for unbonding).
    pub fn is_collateral(&self, outpoint: &OutPoint) -> bool {
        self.collateral == *outpoint
    }
}

/// Where a bond stands in the final chain's registry, as of its tip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BondState {
    /// The member is registered, or its registration is not final yet.
    Bonded,
    /// Deregistered; its coins move from epoch `until_epoch` on.
    Unbonding { until_epoch: u64 },
    /// Unbonded, or the collateral of a registration the registry refused
    /// (an identity registered twice): the coins are free.
    Released,
    /// The member was slashed: the coins never move again.
    Burned,
}

/// The bonds `tx`'s outputs are under, by output index: output 0 of a
/// registration is its collateral, and every output of a tx spending a
/// collateral (`collateral_of` answers for an input) is bound to it.
pub fn bonds_created<E>(
    tx: &Tx,
    mut collateral_of: impl FnMut(&OutPoint) -> Result<Option<Bond>, E>,
) -> Result<Vec<(u32, Bond)>, E> {
    let mut spent = None;
    for input in &tx.inputs {
        if let Some(bond) = collateral_of(&input.prev)? {
            spent = Some(bond);
            break;
        }
    }
    let mut bonds = Vec::new();
    for vout in 0..tx.outputs.len() as u32 {
        let registration = tx.registration.as_ref().filter(|_| vout == 0);
        let bond = match (registration, spent) {
            (Some(registration), _) => Some(Bond {
                identity: registration.identity,
                collateral: tx.outpoint(0),
            }),
            (None, spent) => spent,
        };
        bonds.extend(bond.map(|bond| (vout, bond)));
    }
    Ok(bonds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{
        Address, Amount, Hash, Registration, SignatureBytes, Tier, TxIn, TxOut, VrfPublicBytes,
        TX_VERSION, TX_VERSION_REGISTRATION,
    };
    use std::convert::Infallible;

    fn tx(inputs: &[OutPoint], outputs: usize, registration: Option<u8>) -> Tx {
        Tx {
            version: registration.map_or(TX_VERSION, |_| TX_VERSION_REGISTRATION),
            inputs: inputs
                .iter()
                .map(|prev| TxIn {
                    prev: *prev,
                    pubkey: PublicKeyBytes([0; 32]),
                    sig: SignatureBytes([0; 64]),
                })
                .collect(),
            outputs: vec![
                TxOut {
                    value: Amount(1),
                    address: Address([0; 20]),
                };
                outputs
            ],
            registration: registration.map(|id| {
                Box::new(Registration {
                    tier: Tier::Bronze,
                    identity: PublicKeyBytes([id; 32]),
                    vrf_key: VrfPublicBytes([0; 32]),
                    listen_addr: "127.0.0.1:1".parse().unwrap(),
                    payout: Address([0; 20]),
                    identity_sig: SignatureBytes([0; 64]),
                })
            }),
        }
    }

    fn op(n: u8) -> OutPoint {
        OutPoint {
            txid: Hash([n; 32]),
            vout: 0,
        }
    }

    /// Bonds of `tx` where only `collateral` (bound to identity 9) is one.
    fn bonds(tx: &Tx, collateral: OutPoint) -> Vec<(u32, Bond)> {
        let bond = Bond {
            identity: PublicKeyBytes([9; 32]),
            collateral,
        };
        let lookup = |o: &OutPoint| Ok::<_, Infallible>((*o == collateral).then_some(bond));
        let Ok(bonds) = bonds_created(tx, lookup);
        bonds
    }

    #[test]
    fn a_registration_binds_its_output_0_and_a_collaterals_spend_binds_every_output() {
        let registration = tx(&[op(1)], 2, Some(7));
        let collateral = registration.outpoint(0);
        let expected = Bond {
            identity: PublicKeyBytes([7; 32]),
            collateral,
        };
        assert_eq!(bonds(&registration, op(200)), [(0, expected)]);
        let deregistration = tx(&[op(2), collateral], 2, None);
        let bound = bonds(&deregistration, collateral);
        assert_eq!(bound.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [0, 1]);
        assert!(bound.iter().all(|(_, b)| b.collateral == collateral));
        assert!(!bound[0].1.is_collateral(&deregistration.outpoint(0)));
        // Spending the unbonded coins binds nothing: one level only.
        let after = tx(&[deregistration.outpoint(0)], 1, None);
        assert_eq!(bonds(&after, collateral), []);
    }
}
