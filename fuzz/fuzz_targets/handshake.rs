//! `net::handshake::Handshake` fed arbitrary steps: raw frame payloads
//! (decoded as the event loop does, at the pre-handshake cap) and
//! structured `Hello`/`HelloAck`s from a few deterministic keys, right or
//! wrong in each field. The connection stops at the first error, as the
//! event loop closes it. Asserts: a completed handshake names a peer whose
//! `Hello` was accepted and who really signed our nonce and node id; an
//! error that is not the peer's fault is never a ban; no panic.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use timecoin::crypto::{signing_message, Domain, Keypair};
use timecoin::net::handshake::{Handshake, HandshakeError, LocalHello};
use timecoin::net::{Hello, Message, MessageLimits, PROTOCOL_VERSION};
use timecoin::time::MonoTime;
use timecoin::types::{ChainId, Hash, PublicKeyBytes, SignatureBytes};

const CHAIN: ChainId = ChainId(3);
const TIMEOUT_MS: u64 = 5_000;

fn keys() -> &'static [Keypair] {
    static KEYS: OnceLock<Vec<Keypair>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..3)
            .map(|i| Keypair::from_seed_label(&format!("fuzz peer {i}")))
            .collect()
    })
}

fn genesis() -> Hash {
    Hash::digest(b"fuzz genesis")
}

/// Key 0 is ours; 1 and 2 are peers.
fn key(i: u8) -> &'static Keypair {
    let k = keys();
    &k[usize::from(i) % k.len()]
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// A frame payload, decoded at the pre-handshake cap.
    Raw(Vec<u8>),
    Hello {
        from: u8,
        /// Bytes instead of a real key (not necessarily a curve point).
        bogus_id: Option<[u8; 32]>,
        wrong_chain: bool,
        wrong_genesis: bool,
        version_delta: u8,
        tip_height: u64,
        nonce: [u8; 32],
    },
    Ack {
        signer: u8,
        /// Sign the right nonce and recipient, or tamper with one.
        tamper: u8,
    },
    Tick {
        ms: u16,
    },
}

fn ack_signature(
    signer: &Keypair,
    nonce: &Hash,
    recipient: &PublicKeyBytes,
    tamper: u8,
) -> SignatureBytes {
    let (chain, nonce, recipient) = match tamper % 4 {
        0 => (CHAIN, *nonce, *recipient),
        1 => (ChainId(4), *nonce, *recipient),
        2 => (CHAIN, Hash::digest(b"other nonce"), *recipient),
        _ => (CHAIN, *nonce, signer.public()),
    };
    signer.sign(&signing_message(
        Domain::Handshake,
        chain,
        &Hash::of(&(nonce, recipient)),
    ))
}

fuzz_target!(|steps: Vec<Step>| {
    let me = key(0);
    let our_nonce = Hash::digest(b"our nonce");
    let local = LocalHello {
        chain_id: CHAIN,
        genesis_hash: genesis(),
        node_id: me.public(),
        listen_addr: None,
        tip_height: 7,
    };
    let mut now = MonoTime(1_000_000);
    let (mut hs, hello) = Handshake::start(local, our_nonce, now, TIMEOUT_MS);
    assert!(matches!(hello, Message::Hello(ref h) if h.nonce == our_nonce));
    let limits = MessageLimits {
        max_frame_bytes: 4096,
        ..MessageLimits::default()
    };
    // Who sent a correct ack (by key), and whose Hello was accepted.
    let mut good_acks: Vec<PublicKeyBytes> = Vec::new();
    let mut accepted: Option<PublicKeyBytes> = None;

    for step in steps.into_iter().take(64) {
        let msg = match step {
            Step::Raw(bytes) => match Message::decode(&bytes, &limits) {
                Ok(msg) => msg,
                Err(_) => return,
            },
            Step::Hello {
                from,
                bogus_id,
                wrong_chain,
                wrong_genesis,
                version_delta,
                tip_height,
                nonce,
            } => Message::Hello(Hello {
                chain_id: if wrong_chain { ChainId(4) } else { CHAIN },
                genesis_hash: if wrong_genesis { Hash::ZERO } else { genesis() },
                version: PROTOCOL_VERSION.wrapping_add(u32::from(version_delta % 3)),
                node_id: bogus_id.map(PublicKeyBytes).unwrap_or(key(from).public()),
                listen_addr: None,
                tip_height,
                nonce: Hash(nonce),
            }),
            Step::Ack { signer, tamper } => {
                let signer = key(signer);
                let signature = ack_signature(signer, &our_nonce, &me.public(), tamper);
                if tamper % 4 == 0 {
                    good_acks.push(signer.public());
                }
                Message::HelloAck { signature }
            }
            Step::Tick { ms } => {
                now = now.plus_ms(u64::from(ms));
                match hs.check_deadline(now) {
                    Ok(()) => continue,
                    Err(e) => {
                        assert!(matches!(e, HandshakeError::Timeout { .. }));
                        assert!(!e.deserves_ban());
                        assert!(hs.completed().is_none());
                        return;
                    }
                }
            }
        };
        let result = match msg {
            Message::Hello(hello) => {
                let id = hello.node_id;
                let r = hs.on_hello(hello, me).map(|_| ());
                if r.is_ok() {
                    accepted = Some(id);
                }
                r
            }
            Message::HelloAck { signature } => hs.on_ack(signature),
            // The event loop refuses anything else before completion.
            _ => return,
        };
        if let Err(e) = result {
            if matches!(
                e,
                HandshakeError::SelfConnection | HandshakeError::WrongVersion { .. }
            ) {
                assert!(!e.deserves_ban());
            }
            return;
        }
        if let Some(peer) = hs.completed() {
            assert_eq!(Some(peer.node_id), accepted);
            assert!(
                good_acks.contains(&peer.node_id),
                "completed without a real signature from {:?}",
                peer.node_id
            );
            assert_ne!(peer.node_id, me.public());
        }
    }
});
