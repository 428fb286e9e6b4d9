//! Address text: bech32m (BIP-350) of `H(pubkey)[..20]` with the network's
//! prefix (`time1…`, `ttime1…`, `dtime1…`). Bech32m detects every
//! single-character typo, and the prefix stops cross-network sends.

use crate::types::{Address, Hash, Network, PublicKeyBytes};
use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32m, Hrp};

impl Address {
    pub fn from_pubkey(pubkey: &PublicKeyBytes) -> Address {
        let h = Hash::digest(&pubkey.0);
        let mut a = [0u8; 20];
        a.copy_from_slice(&h.0[..20]);
        Address(a)
    }

    /// Text form on `network`.
    pub fn to_text(&self, network: Network) -> String {
        // The prefixes are fixed valid HRPs and 20 bytes are far below the
        // bech32 length limit, so neither step can fail.
        let hrp = Hrp::parse_unchecked(network.address_prefix());
        bech32::encode::<Bech32m>(hrp, &self.0).unwrap_or_default()
    }

    /// Parses address text, requiring it to belong to `network`.
    pub fn parse(text: &str, network: Network) -> Result<Address, AddressError> {
        let (found, addr) = Address::parse_any(text)?;
        if found != network {
            return Err(AddressError::WrongNetwork {
                found,
                expected: network,
            });
        }
        Ok(addr)
    }

    /// Parses address text of any known network.
    pub fn parse_any(text: &str) -> Result<(Network, Address), AddressError> {
        let clipped = || text.chars().take(100).collect::<String>();
        let checked = CheckedHrpstring::new::<Bech32m>(text)
            .map_err(|_| AddressError::Checksum(clipped()))?;
        let prefix = checked.hrp().to_lowercase();
        let network = Network::ALL
            .into_iter()
            .find(|n| n.address_prefix() == prefix)
            .ok_or(AddressError::UnknownPrefix(prefix))?;
        let bytes: Vec<u8> = checked.byte_iter().collect();
        let addr: [u8; 20] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| AddressError::Length(b.len()))?;
        Ok((network, Address(addr)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("'{0}' is not a valid address: bad characters or checksum (check for a typo)")]
    Checksum(String),
    #[error("address prefix '{0}' is not a TIME network (expected time, ttime or dtime)")]
    UnknownPrefix(String),
    #[error("address holds {0} bytes, expected 20")]
    Length(usize),
    #[error("address is for {found}, but this is {expected}")]
    WrongNetwork { found: Network, expected: Network },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    #[test]
    fn round_trips_on_each_network() {
        let a = Address::from_pubkey(&Keypair::from_seed_label("a").public());
        for n in Network::ALL {
            let text = a.to_text(n);
            assert!(text.starts_with(n.address_prefix()));
            assert_eq!(Address::parse(&text, n), Ok(a));
        }
    }

    #[test]
    fn every_single_character_typo_is_rejected() {
        let text = Address([42; 20]).to_text(Network::Mainnet);
        let alphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
        for (i, orig) in text.char_indices().skip("time1".len()) {
            for c in alphabet.chars().filter(|&c| c != orig) {
                let mut typo = text.clone();
                typo.replace_range(i..i + 1, &c.to_string());
                assert!(
                    Address::parse(&typo, Network::Mainnet).is_err(),
                    "typo accepted: {typo}"
                );
            }
        }
    }

    #[test]
    fn other_network_is_a_clear_error() {
        let text = Address([1; 20]).to_text(Network::Testnet);
        assert_eq!(
            Address::parse(&text, Network::Mainnet),
            Err(AddressError::WrongNetwork {
                found: Network::Testnet,
                expected: Network::Mainnet
            })
        );
    }
}
