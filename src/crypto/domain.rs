//! Signing domains. Every signed message is `tag ‖ chain_id ‖ payload`, so a
//! signature made for one purpose or one chain is useless for any other.

use crate::types::{ChainId, Hash};

/// What a signature is for. The tag strings are part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Transaction input authorization, payload = txid.
    Tx,
    /// A validator's finality vote, payload = hash of the vote body.
    FinalityVote,
    /// Handshake proof of identity, payload = the peer's nonce.
    Handshake,
    /// Block producer signature, payload = header hash.
    Block,
    /// A validator's block endorsement, payload = hash of the vote body.
    BlockVote,
    /// A masternode identity key binding itself to a registration, payload = txid.
    Registration,
    /// A masternode's per-epoch heartbeat, payload = hash of its body.
    Heartbeat,
}

impl Domain {
    fn tag(self) -> &'static [u8; 16] {
        match self {
            Domain::Tx => b"timecoin/tx/v1\0\0",
            Domain::FinalityVote => b"timecoin/vote/v1",
            Domain::Handshake => b"timecoin/hello/1",
            Domain::Block => b"timecoin/block/1",
            Domain::BlockVote => b"timecoin/bvote/1",
            Domain::Registration => b"timecoin/mnreg/1",
            Domain::Heartbeat => b"timecoin/beat/v1",
        }
    }
}

/// The exact bytes signed for `payload` in `domain` on `chain`.
pub fn signing_message(domain: Domain, chain: ChainId, payload: &Hash) -> [u8; 52] {
    let mut msg = [0u8; 52];
    msg[..16].copy_from_slice(domain.tag());
    msg[16..20].copy_from_slice(&chain.0.to_le_bytes());
    msg[20..].copy_from_slice(payload.as_bytes());
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_chains_give_distinct_messages() {
        let h = Hash::digest(b"x");
        let a = signing_message(Domain::Tx, ChainId(1), &h);
        assert_ne!(a, signing_message(Domain::FinalityVote, ChainId(1), &h));
        assert_ne!(a, signing_message(Domain::Tx, ChainId(2), &h));
    }
}
