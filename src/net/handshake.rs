//! The handshake (DESIGN §8): both sides send `Hello`; each answers the
//! other's with `HelloAck`, a signature in [`Domain::Handshake`] over
//! `H(their nonce ‖ their node_id)`. Binding the recipient's node id means a
//! man in the middle cannot relay one node's answer to impersonate it
//! elsewhere. Only after both the peer's `Hello` checks and its signature
//! verifies is its `node_id` trusted.
//!
//! Sans-IO: `now` and the nonce are passed in; it never reads a clock or RNG.

use super::message::{Hello, Message, PROTOCOL_VERSION};
use crate::consensus::messages::NodeId;
use crate::crypto::{signing_message, Domain, Keypair, PublicKey};
use crate::time::MonoTime;
use crate::types::{ChainId, Hash, SignatureBytes};

/// What this node requires of a peer and announces about itself.
#[derive(Clone, Debug)]
pub struct LocalHello {
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    pub node_id: NodeId,
    pub listen_addr: Option<std::net::SocketAddr>,
    pub tip_height: u64,
}

/// Why a handshake was refused. [`HandshakeError::deserves_ban`] says
/// whether the peer is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("peer is on chain {theirs}, we are on chain {ours}")]
    WrongChain { ours: ChainId, theirs: ChainId },
    #[error("peer has genesis {theirs}, ours is {ours}: another chain or other chain rules")]
    WrongGenesis { ours: Hash, theirs: Hash },
    #[error("peer speaks protocol version {theirs}, we speak {ours}")]
    WrongVersion { ours: u32, theirs: u32 },
    #[error("peer's node id is not a valid ed25519 key")]
    BadNodeId,
    #[error("connected to ourselves")]
    SelfConnection,
    #[error("peer's handshake signature does not verify for its node id")]
    BadSignature,
    #[error("peer sent {what} before completing the handshake")]
    OutOfOrder { what: &'static str },
    #[error("handshake not completed within {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
}

impl HandshakeError {
    /// Whether the peer is at fault. An honest peer may run another
    /// release (version) or be slow (timeout): disconnect, let it retry
    /// with backoff. A connection to ourselves is no one's fault. Another
    /// chain, a bad key or signature, or a message out of order is banned.
    pub fn deserves_ban(&self) -> bool {
        !matches!(
            self,
            HandshakeError::SelfConnection
                | HandshakeError::WrongVersion { .. }
                | HandshakeError::Timeout { .. }
        )
    }
}

/// The proven identity of a peer after a completed handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerHello {
    pub node_id: NodeId,
    pub listen_addr: Option<std::net::SocketAddr>,
    pub tip_height: u64,
}

/// One connection's handshake in progress.
#[derive(Debug)]
pub struct Handshake {
    local: LocalHello,
    our_nonce: Hash,
    deadline: MonoTime,
    timeout_ms: u64,
    /// The peer's checked `Hello`, once received.
    their_hello: Option<Hello>,
    /// Its signature arrived before its Hello (allowed: both are in flight at once).
    early_ack: Option<SignatureBytes>,
    verified: bool,
}

/// The message a node signs to answer a `Hello` carrying `nonce`, sent to `recipient`.
fn ack_message(chain_id: ChainId, nonce: &Hash, recipient: &NodeId) -> [u8; 52] {
    signing_message(Domain::Handshake, chain_id, &Hash::of(&(nonce, recipient)))
}

impl Handshake {
    /// Starts a handshake; returns it and the `Hello` to send at once.
    pub fn start(
        local: LocalHello,
        nonce: Hash,
        now: MonoTime,
        timeout_ms: u64,
    ) -> (Handshake, Message) {
        let hello = Hello {
            chain_id: local.chain_id,
            genesis_hash: local.genesis_hash,
            version: PROTOCOL_VERSION,
            node_id: local.node_id,
            listen_addr: local.listen_addr,
            tip_height: local.tip_height,
            nonce,
        };
        let hs = Handshake {
            local,
            our_nonce: nonce,
            deadline: now.plus_ms(timeout_ms),
            timeout_ms,
            their_hello: None,
            early_ack: None,
            verified: false,
        };
        (hs, Message::Hello(hello))
    }

    /// Checks the peer's `Hello`; returns our `HelloAck` to send.
    pub fn on_hello(
        &mut self,
        hello: Hello,
        identity: &Keypair,
    ) -> Result<Message, HandshakeError> {
        if self.their_hello.is_some() {
            return Err(HandshakeError::OutOfOrder {
                what: "a second Hello",
            });
        }
        let l = &self.local;
        if hello.chain_id != l.chain_id {
            return Err(HandshakeError::WrongChain {
                ours: l.chain_id,
                theirs: hello.chain_id,
            });
        }
        if hello.genesis_hash != l.genesis_hash {
            return Err(HandshakeError::WrongGenesis {
                ours: l.genesis_hash,
                theirs: hello.genesis_hash,
            });
        }
        if hello.version != PROTOCOL_VERSION {
            return Err(HandshakeError::WrongVersion {
                ours: PROTOCOL_VERSION,
                theirs: hello.version,
            });
        }
        if hello.node_id == l.node_id {
            return Err(HandshakeError::SelfConnection);
        }
        PublicKey::parse(&hello.node_id).map_err(|_| HandshakeError::BadNodeId)?;
        let signature = identity.sign(&ack_message(l.chain_id, &hello.nonce, &hello.node_id));
        self.their_hello = Some(hello);
        if let Some(sig) = self.early_ack.take() {
            self.verify_ack(&sig)?;
        }
        Ok(Message::HelloAck { signature })
    }

    /// Checks the peer's signature over our nonce.
    pub fn on_ack(&mut self, signature: SignatureBytes) -> Result<(), HandshakeError> {
        if self.verified || self.early_ack.is_some() {
            return Err(HandshakeError::OutOfOrder {
                what: "a second HelloAck",
            });
        }
        if self.their_hello.is_none() {
            self.early_ack = Some(signature);
            return Ok(());
        }
        self.verify_ack(&signature)
    }

    fn verify_ack(&mut self, signature: &SignatureBytes) -> Result<(), HandshakeError> {
        let Some(hello) = &self.their_hello else {
            return Err(HandshakeError::OutOfOrder { what: "a HelloAck" });
        };
        let key = PublicKey::parse(&hello.node_id).map_err(|_| HandshakeError::BadNodeId)?;
        let msg = ack_message(self.local.chain_id, &self.our_nonce, &self.local.node_id);
        key.verify(&msg, signature)
            .map_err(|_| HandshakeError::BadSignature)?;
        self.verified = true;
        Ok(())
    }

    /// `Err(Timeout)` once the deadline passed without completion.
    pub fn check_deadline(&self, now: MonoTime) -> Result<(), HandshakeError> {
        if !self.verified && now >= self.deadline {
            return Err(HandshakeError::Timeout {
                timeout_ms: self.timeout_ms,
            });
        }
        Ok(())
    }

    /// The peer's proven identity once both `Hello` and `HelloAck` checked out.
    pub fn completed(&self) -> Option<PeerHello> {
        let hello = self.their_hello.as_ref().filter(|_| self.verified)?;
        Some(PeerHello {
            node_id: hello.node_id,
            listen_addr: hello.listen_addr,
            tip_height: hello.tip_height,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: ChainId = ChainId(3);

    fn local(key: &Keypair) -> LocalHello {
        LocalHello {
            chain_id: CHAIN,
            genesis_hash: Hash::digest(b"genesis"),
            node_id: key.public(),
            listen_addr: None,
            tip_height: 0,
        }
    }

    fn hello_of(msg: Message) -> Hello {
        match msg {
            Message::Hello(h) => h,
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    fn ack_of(msg: Message) -> SignatureBytes {
        match msg {
            Message::HelloAck { signature } => signature,
            other => panic!("expected HelloAck, got {other:?}"),
        }
    }

    /// Alice's and Bob's handshakes and the Hellos they sent.
    fn pair() -> ((Keypair, Handshake, Hello), (Keypair, Handshake, Hello)) {
        let (ka, kb) = (
            Keypair::from_seed_label("alice"),
            Keypair::from_seed_label("bob"),
        );
        let (ha, ma) = Handshake::start(local(&ka), Hash::digest(b"na"), MonoTime(0), 1000);
        let (hb, mb) = Handshake::start(local(&kb), Hash::digest(b"nb"), MonoTime(0), 1000);
        ((ka, ha, hello_of(ma)), (kb, hb, hello_of(mb)))
    }

    #[test]
    fn both_sides_prove_their_keys_in_either_order() {
        let ((ka, mut ha, hello_a), (kb, mut hb, hello_b)) = pair();
        let ack_b = ack_of(hb.on_hello(hello_a, &kb).unwrap());
        // Alice gets Bob's ack before Bob's Hello: held until the Hello arrives.
        ha.on_ack(ack_b).unwrap();
        assert_eq!(ha.completed(), None);
        let ack_a = ack_of(ha.on_hello(hello_b, &ka).unwrap());
        assert_eq!(ha.completed().unwrap().node_id, kb.public());
        hb.on_ack(ack_a).unwrap();
        assert_eq!(hb.completed().unwrap().node_id, ka.public());
    }

    #[test]
    fn wrong_chain_genesis_or_version_is_refused_and_only_another_chain_is_banned() {
        let ((_, _, hello_a), (kb, _, _)) = pair();
        let cases = [
            (
                Hello {
                    chain_id: ChainId(1),
                    ..hello_a.clone()
                },
                "WrongChain",
            ),
            (
                Hello {
                    genesis_hash: Hash::ZERO,
                    ..hello_a.clone()
                },
                "WrongGenesis",
            ),
            (
                Hello {
                    version: 99,
                    ..hello_a.clone()
                },
                "WrongVersion",
            ),
        ];
        for (hello, want) in cases {
            let (mut hb, _) = Handshake::start(local(&kb), Hash::ZERO, MonoTime(0), 1000);
            let err = hb.on_hello(hello, &kb).unwrap_err();
            assert!(format!("{err:?}").starts_with(want), "{err:?}");
            // Another release of the software is not an attack.
            assert_eq!(err.deserves_ban(), want != "WrongVersion", "{err:?}");
        }
    }

    #[test]
    fn bad_signature_is_refused() {
        let ((ka, mut ha, _), (kb, _, hello_b)) = pair();
        ha.on_hello(hello_b, &ka).unwrap();
        // Bob's key signing the wrong thing, and Mallory signing the right thing.
        let wrong_payload = kb.sign(b"something else");
        assert_eq!(ha.on_ack(wrong_payload), Err(HandshakeError::BadSignature));
        assert_eq!(ha.completed(), None);
    }

    #[test]
    fn an_answer_relayed_from_another_connection_does_not_verify() {
        // Mallory relays Alice's nonce to Bob, then forwards Bob's answer to Alice.
        let ((ka, mut ha, hello_a), (kb, _, hello_b)) = pair();
        let mallory = Keypair::from_seed_label("mallory");
        let (mut hb, _) = Handshake::start(local(&kb), Hash::ZERO, MonoTime(0), 1000);
        let relayed = Hello {
            node_id: mallory.public(),
            ..hello_a
        };
        let bobs_answer = ack_of(hb.on_hello(relayed, &kb).unwrap());
        ha.on_hello(hello_b, &ka).unwrap();
        assert_eq!(ha.on_ack(bobs_answer), Err(HandshakeError::BadSignature));
    }

    #[test]
    fn self_connection_is_refused_without_ban() {
        let ((ka, mut ha, hello_a), _) = pair();
        let err = ha.on_hello(hello_a, &ka).unwrap_err();
        assert_eq!(err, HandshakeError::SelfConnection);
        assert!(!err.deserves_ban());
    }

    #[test]
    fn handshake_times_out_at_its_deadline() {
        let ((_, ha, _), _) = pair();
        assert_eq!(ha.check_deadline(MonoTime(999)), Ok(()));
        assert_eq!(
            ha.check_deadline(MonoTime(1000)),
            Err(HandshakeError::Timeout { timeout_ms: 1000 })
        );
        // A slow peer is disconnected, not banned.
        assert!(!HandshakeError::Timeout { timeout_ms: 1000 }.deserves_ban());
    }

    #[test]
    fn a_second_hello_is_out_of_order() {
        let ((ka, mut ha, _), (_, _, hello_b)) = pair();
        ha.on_hello(hello_b.clone(), &ka).unwrap();
        assert!(matches!(
            ha.on_hello(hello_b, &ka),
            Err(HandshakeError::OutOfOrder { .. })
        ));
    }
}
