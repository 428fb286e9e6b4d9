//! Masternode registration (DESIGN §7): the payload a version-2 transaction
//! carries to lock its output 0 as a tier's collateral. The ledger rules
//! for it are in `ledger::validation`; what it does to the validator set
//! is `masternode::Registry`'s.

use super::{Address, PublicKeyBytes, SignatureBytes, Tier, VrfPublicBytes};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The transaction version that carries a [`Registration`] (and only it).
pub const TX_VERSION_REGISTRATION: u32 = 2;

/// Who the masternode is and where it listens, bound to its collateral by
/// the txid (which commits to everything here but the signature).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Registration {
    pub tier: Tier,
    /// The ed25519 key it votes, endorses and handshakes with.
    pub identity: PublicKeyBytes,
    /// Its block-sortition key.
    pub vrf_key: VrfPublicBytes,
    pub listen_addr: SocketAddr,
    /// Where its share of block rewards goes.
    pub payout: Address,
    /// The identity key's signature over the txid: the operator holds the
    /// key it registers, so nobody can register someone else's identity.
    pub identity_sig: SignatureBytes,
}

/// What the txid commits to: the registration without its signature.
#[derive(Serialize)]
pub(super) struct RegistrationBody<'a> {
    tier: Tier,
    identity: &'a PublicKeyBytes,
    vrf_key: &'a VrfPublicBytes,
    listen_addr: &'a SocketAddr,
    payout: &'a Address,
}

impl Registration {
    pub(super) fn body(&self) -> RegistrationBody<'_> {
        RegistrationBody {
            tier: self.tier,
            identity: &self.identity,
            vrf_key: &self.vrf_key,
            listen_addr: &self.listen_addr,
            payout: &self.payout,
        }
    }
}
