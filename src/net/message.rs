//! The wire `Message` (DESIGN §8) and its explicit type tags.
//!
//! A frame payload is `tag: u16 LE | body`, the body in the canonical
//! encoding, decoded with a per-type byte limit. The tag is a documented
//! protocol constant, not bincode's enum index, so variants can be added,
//! reordered or retired without breaking old peers. Counts inside bodies are
//! checked against [`MessageLimits`] after decoding (decoding itself never
//! allocates more than the bytes received). This module never touches a socket.

use crate::chain::certificate::{BlockVote, Certificate, Equivocation, MAX_CERTIFICATE_VOTES};
use crate::chain::heartbeat::Heartbeat;
use crate::consensus::messages::{ConsensusMessage, NodeId, Verdict};
use crate::finality::{
    max_evidence_bytes, FinalityProof, WindowVote, MAX_PROOF_VOTES, MAX_WINDOW_TXS,
};
use crate::types::encoding::{self, DecodeError};
use crate::types::{ChainId, Hash, SignatureBytes, Tx};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

/// The wire protocol version sent in `Hello`; a peer with another is refused.
/// 2: window votes replace per-request finality votes (DESIGN §5).
pub const PROTOCOL_VERSION: u32 = 2;
/// Bytes of the type tag in front of every body.
pub const TAG_BYTES: usize = 2;

/// Message-type tags. The numbers are the protocol: never reuse one.
/// `0x00xx` session, `0x01xx` transactions and consensus, `0x02xx` blocks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[repr(u16)]
pub enum MessageTag {
    Hello = 0x0001,
    HelloAck = 0x0002,
    Ping = 0x0003,
    Pong = 0x0004,
    GetPeers = 0x0005,
    Peers = 0x0006,
    Tx = 0x0101,
    GetTxs = 0x0102,
    Txs = 0x0103,
    Query = 0x0104,
    Votes = 0x0105,
    Proof = 0x0106,
    WindowVote = 0x0107,
    GetWindowVote = 0x0108,
    WindowEvidence = 0x0109,
    GetRecentProofs = 0x010A,
    BlockAnnounce = 0x0201,
    GetBlocks = 0x0202,
    Blocks = 0x0203,
    BlockVote = 0x0204,
    Certificates = 0x0205,
    Evidence = 0x0206,
    Heartbeat = 0x0207,
}

impl MessageTag {
    pub const ALL: [MessageTag; 23] = [
        MessageTag::Hello,
        MessageTag::HelloAck,
        MessageTag::Ping,
        MessageTag::Pong,
        MessageTag::GetPeers,
        MessageTag::Peers,
        MessageTag::Tx,
        MessageTag::GetTxs,
        MessageTag::Txs,
        MessageTag::Query,
        MessageTag::Votes,
        MessageTag::Proof,
        MessageTag::WindowVote,
        MessageTag::GetWindowVote,
        MessageTag::WindowEvidence,
        MessageTag::GetRecentProofs,
        MessageTag::BlockAnnounce,
        MessageTag::GetBlocks,
        MessageTag::Blocks,
        MessageTag::BlockVote,
        MessageTag::Certificates,
        MessageTag::Evidence,
        MessageTag::Heartbeat,
    ];

    pub fn from_u16(tag: u16) -> Option<MessageTag> {
        MessageTag::ALL.into_iter().find(|t| *t as u16 == tag)
    }

    /// Position in [`MessageTag::ALL`], for per-type metrics arrays.
    pub fn index(self) -> usize {
        MessageTag::ALL
            .iter()
            .position(|t| *t == self)
            .unwrap_or_default()
    }

    pub fn name(self) -> &'static str {
        match self {
            MessageTag::Hello => "hello",
            MessageTag::HelloAck => "hello_ack",
            MessageTag::Ping => "ping",
            MessageTag::Pong => "pong",
            MessageTag::GetPeers => "getpeers",
            MessageTag::Peers => "peers",
            MessageTag::Tx => "tx",
            MessageTag::GetTxs => "gettxs",
            MessageTag::Txs => "txs",
            MessageTag::Query => "query",
            MessageTag::Votes => "votes",
            MessageTag::Proof => "proof",
            MessageTag::WindowVote => "windowvote",
            MessageTag::GetWindowVote => "getwindowvote",
            MessageTag::WindowEvidence => "windowevidence",
            MessageTag::GetRecentProofs => "getrecentproofs",
            MessageTag::BlockAnnounce => "blockannounce",
            MessageTag::GetBlocks => "getblocks",
            MessageTag::Blocks => "blocks",
            MessageTag::BlockVote => "blockvote",
            MessageTag::Certificates => "certificates",
            MessageTag::Evidence => "evidence",
            MessageTag::Heartbeat => "heartbeat",
        }
    }

    /// Relayed to every peer once and deduplicated by hash (`Tx`, `Proof`,
    /// `WindowVote`).
    pub fn is_gossip(self) -> bool {
        matches!(
            self,
            MessageTag::Tx | MessageTag::Proof | MessageTag::WindowVote
        )
    }

    /// Which rate-limit bucket and which outbox the message belongs to.
    pub fn class(self) -> MessageClass {
        match self {
            MessageTag::Hello
            | MessageTag::HelloAck
            | MessageTag::Ping
            | MessageTag::Pong
            | MessageTag::GetPeers
            | MessageTag::Peers
            | MessageTag::GetRecentProofs => MessageClass::Session,
            MessageTag::Tx
            | MessageTag::GetTxs
            | MessageTag::Txs
            | MessageTag::Proof
            | MessageTag::WindowVote
            | MessageTag::GetWindowVote
            | MessageTag::WindowEvidence => MessageClass::TxGossip,
            MessageTag::Query | MessageTag::Votes => MessageClass::Poll,
            MessageTag::BlockAnnounce
            | MessageTag::GetBlocks
            | MessageTag::Blocks
            | MessageTag::BlockVote
            | MessageTag::Certificates
            | MessageTag::Evidence
            | MessageTag::Heartbeat => MessageClass::Block,
        }
    }
}

/// Message classes, each with its own rate limit. `TxGossip` and `Poll` go to
/// the consensus inbox, `Block` to the block inbox; `Session` stays in net,
/// but for `GetRecentProofs`, which goes to the catch-up thread.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MessageClass {
    Session,
    TxGossip,
    Poll,
    Block,
}

impl MessageClass {
    pub const ALL: [MessageClass; 4] = [
        MessageClass::Session,
        MessageClass::TxGossip,
        MessageClass::Poll,
        MessageClass::Block,
    ];

    /// Position in [`MessageClass::ALL`], for per-class buckets and metrics.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            MessageClass::Session => "session",
            MessageClass::TxGossip => "tx_gossip",
            MessageClass::Poll => "poll",
            MessageClass::Block => "block",
        }
    }
}

/// The first message on every connection, sent by both sides.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Hello {
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    pub version: u32,
    /// The sender's identity key; proven by its `HelloAck`.
    pub node_id: NodeId,
    /// Where the sender accepts connections, if it does.
    pub listen_addr: Option<SocketAddr>,
    pub tip_height: u64,
    /// Fresh randomness the other side must sign.
    pub nonce: Hash,
}

/// Every message of the wire protocol.
///
/// The block messages are tagged and framed now but their bodies are opaque
/// bytes until the block layer defines them (`Blocks` carries each block's
/// canonical encoding).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    Hello(Hello),
    /// Signature over the other side's `Hello` nonce (see `handshake`).
    HelloAck {
        signature: SignatureBytes,
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    GetPeers,
    Peers {
        addrs: Vec<SocketAddr>,
    },
    Consensus(ConsensusMessage),
    BlockAnnounce {
        height: u64,
        hash: Hash,
    },
    GetBlocks {
        from: u64,
        max: u32,
    },
    Blocks {
        blocks: Vec<Vec<u8>>,
    },
    /// A validator's endorsement of one block (DESIGN §6); relayed once.
    BlockVote(Box<BlockVote>),
    /// Certificates of blocks: one, gossiped once it forms; or those of
    /// the heights a `Blocks` answer carries, sent right after it in sync.
    Certificates {
        certificates: Vec<Certificate>,
    },
    /// Two endorsements of different blocks at one height by one voter.
    Evidence(Box<Equivocation>),
    /// A member's heartbeat for an epoch (DESIGN §7); relayed once.
    Heartbeat(Box<Heartbeat>),
    /// Asks for the finality proofs of the latest `max` (at most
    /// [`MAX_RECENT_PROOFS`]) transactions finalized at the receiver,
    /// oldest first: catch-up after a restart or a partition. Served
    /// paced, once per request, off the consensus thread.
    GetRecentProofs {
        max: u32,
    },
}

/// Most proofs one `GetRecentProofs` may ask for: a node down longer than
/// this many transactions catches up by block sync.
pub const MAX_RECENT_PROOFS: u32 = 2_000;

/// Size and count limits applied to every received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageLimits {
    /// Whole frame payload, tag included.
    pub max_frame_bytes: usize,
    pub max_tx_bytes: usize,
    /// txids per `Query`, `GetTxs`, and verdicts per `Votes`.
    pub max_txs_per_query: usize,
    /// Transactions per `Txs`.
    pub max_txs_per_message: usize,
    /// Addresses per `Peers`.
    pub max_peer_addrs: usize,
    /// Blocks per `Blocks`, and the most a `GetBlocks` may ask for. The
    /// frame cap bounds their bytes; the count lets sync of small blocks
    /// go far per request under the block rate limit (20 requests/s).
    pub max_blocks_per_message: usize,
}

impl Default for MessageLimits {
    fn default() -> MessageLimits {
        MessageLimits {
            max_frame_bytes: 8 * 1024 * 1024,
            max_tx_bytes: 16 * 1024,
            max_txs_per_query: 64,
            max_txs_per_message: 256,
            max_peer_addrs: 64,
            max_blocks_per_message: 64,
        }
    }
}

/// Why a frame payload is not an acceptable message. Always the sender's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("frame of {len} bytes is too short to hold a message tag")]
    MissingTag { len: usize },
    #[error("unknown message tag {tag:#06x}")]
    UnknownTag { tag: u16 },
    #[error("{tag:?} body: {source}")]
    Body {
        tag: MessageTag,
        #[source]
        source: DecodeError,
    },
    #[error("{tag:?} carries {count} {what}, over the limit of {max}")]
    TooMany {
        tag: MessageTag,
        what: &'static str,
        count: usize,
        max: usize,
    },
}

type QueryBody = (u64, Vec<Hash>);
type VotesBody = (u64, Vec<(Hash, Verdict)>);

/// Encoded bytes of one `Hash` (serde_bytes length prefix + 32).
const HASH_BYTES: usize = 8 + 32;
/// Upper bound of one encoded socket address (enum index + IPv6 + port).
const ADDR_BYTES_MAX: usize = 4 + 16 + 2;
/// Upper bound of one encoded `(Hash, Verdict)`.
const VERDICT_BYTES_MAX: usize = HASH_BYTES + 4;
/// Upper bound of an encoded `FinalityVote` (fields, generous).
const VOTE_BYTES_MAX: usize = 320;
/// Upper bound of an encoded `BlockVote` (about 230 bytes, generous).
const BLOCK_VOTE_BYTES_MAX: usize = 512;
/// Upper bound of an encoded `Heartbeat` (120 bytes, generous).
const HEARTBEAT_BYTES_MAX: usize = 256;

impl Message {
    pub fn tag(&self) -> MessageTag {
        match self {
            Message::Hello(_) => MessageTag::Hello,
            Message::HelloAck { .. } => MessageTag::HelloAck,
            Message::Ping { .. } => MessageTag::Ping,
            Message::Pong { .. } => MessageTag::Pong,
            Message::GetPeers => MessageTag::GetPeers,
            Message::Peers { .. } => MessageTag::Peers,
            Message::Consensus(c) => match c {
                ConsensusMessage::Tx(_) => MessageTag::Tx,
                ConsensusMessage::GetTxs { .. } => MessageTag::GetTxs,
                ConsensusMessage::Txs { .. } => MessageTag::Txs,
                ConsensusMessage::Query { .. } => MessageTag::Query,
                ConsensusMessage::Votes { .. } => MessageTag::Votes,
                ConsensusMessage::Proof(_) => MessageTag::Proof,
                ConsensusMessage::WindowVote(_) => MessageTag::WindowVote,
                ConsensusMessage::GetWindowVote { .. } => MessageTag::GetWindowVote,
                ConsensusMessage::WindowEvidence(_) => MessageTag::WindowEvidence,
            },
            Message::BlockAnnounce { .. } => MessageTag::BlockAnnounce,
            Message::GetBlocks { .. } => MessageTag::GetBlocks,
            Message::Blocks { .. } => MessageTag::Blocks,
            Message::BlockVote(_) => MessageTag::BlockVote,
            Message::Certificates { .. } => MessageTag::Certificates,
            Message::Evidence(_) => MessageTag::Evidence,
            Message::Heartbeat(_) => MessageTag::Heartbeat,
            Message::GetRecentProofs { .. } => MessageTag::GetRecentProofs,
        }
    }

    /// Frame payload: `tag | body`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&(self.tag() as u16).to_le_bytes());
        match self {
            Message::Hello(h) => encoding::encode_into(h, &mut out),
            Message::HelloAck { signature } => encoding::encode_into(signature, &mut out),
            Message::Ping { nonce } | Message::Pong { nonce } => {
                encoding::encode_into(nonce, &mut out)
            }
            Message::GetPeers => {}
            Message::Peers { addrs } => encoding::encode_into(addrs, &mut out),
            Message::Consensus(c) => match c {
                ConsensusMessage::Tx(tx) => encoding::encode_into(tx, &mut out),
                ConsensusMessage::GetTxs { txids } => encoding::encode_into(txids, &mut out),
                ConsensusMessage::Txs { txs } => encoding::encode_into(txs, &mut out),
                ConsensusMessage::Query { request_id, txids } => {
                    encoding::encode_into(&(request_id, txids), &mut out)
                }
                ConsensusMessage::Votes {
                    request_id,
                    verdicts,
                } => encoding::encode_into(&(request_id, verdicts), &mut out),
                ConsensusMessage::Proof(p) => encoding::encode_into(p, &mut out),
                ConsensusMessage::WindowVote(w) => encoding::encode_into(w, &mut out),
                ConsensusMessage::GetWindowVote { voter, seq } => {
                    encoding::encode_into(&(voter, seq), &mut out)
                }
                ConsensusMessage::WindowEvidence(e) => encoding::encode_into(e, &mut out),
            },
            Message::BlockAnnounce { height, hash } => {
                encoding::encode_into(&(height, hash), &mut out)
            }
            Message::GetBlocks { from, max } => encoding::encode_into(&(from, max), &mut out),
            Message::Blocks { blocks } => {
                let blobs: Vec<&serde_bytes::Bytes> =
                    blocks.iter().map(|b| serde_bytes::Bytes::new(b)).collect();
                encoding::encode_into(&blobs, &mut out)
            }
            Message::BlockVote(vote) => encoding::encode_into(vote, &mut out),
            Message::Certificates { certificates } => encoding::encode_into(certificates, &mut out),
            Message::Evidence(evidence) => encoding::encode_into(evidence, &mut out),
            Message::Heartbeat(heartbeat) => encoding::encode_into(heartbeat, &mut out),
            Message::GetRecentProofs { max } => encoding::encode_into(max, &mut out),
        }
        out
    }

    /// Decodes a frame payload, enforcing the per-type byte limit and every count limit.
    pub fn decode(payload: &[u8], limits: &MessageLimits) -> Result<Message, MessageError> {
        let (tag_bytes, body) = payload
            .split_first_chunk::<TAG_BYTES>()
            .ok_or(MessageError::MissingTag { len: payload.len() })?;
        let raw = u16::from_le_bytes(*tag_bytes);
        let tag = MessageTag::from_u16(raw).ok_or(MessageError::UnknownTag { tag: raw })?;
        let max = body_limit(tag, limits);
        let body_err = |source| MessageError::Body { tag, source };
        let count = |what, count: usize, max: usize| {
            if count > max {
                Err(MessageError::TooMany {
                    tag,
                    what,
                    count,
                    max,
                })
            } else {
                Ok(())
            }
        };
        let name = tag.name();
        let msg = match tag {
            MessageTag::Hello => {
                Message::Hello(encoding::decode(body, max, name).map_err(body_err)?)
            }
            MessageTag::HelloAck => Message::HelloAck {
                signature: encoding::decode(body, max, name).map_err(body_err)?,
            },
            MessageTag::Ping => Message::Ping {
                nonce: encoding::decode(body, max, name).map_err(body_err)?,
            },
            MessageTag::Pong => Message::Pong {
                nonce: encoding::decode(body, max, name).map_err(body_err)?,
            },
            MessageTag::GetPeers => {
                encoding::decode::<()>(body, max, name).map_err(body_err)?;
                Message::GetPeers
            }
            MessageTag::Peers => {
                let addrs: Vec<SocketAddr> = encoding::decode(body, max, name).map_err(body_err)?;
                count("addresses", addrs.len(), limits.max_peer_addrs)?;
                Message::Peers { addrs }
            }
            MessageTag::Tx => Message::Consensus(ConsensusMessage::Tx(
                encoding::decode(body, max, name).map_err(body_err)?,
            )),
            MessageTag::GetTxs => {
                let txids: Vec<Hash> = encoding::decode(body, max, name).map_err(body_err)?;
                count("txids", txids.len(), limits.max_txs_per_query)?;
                Message::Consensus(ConsensusMessage::GetTxs { txids })
            }
            MessageTag::Txs => {
                let txs: Vec<Tx> = encoding::decode(body, max, name).map_err(body_err)?;
                count("transactions", txs.len(), limits.max_txs_per_message)?;
                Message::Consensus(ConsensusMessage::Txs { txs })
            }
            MessageTag::Query => {
                let (request_id, txids): QueryBody =
                    encoding::decode(body, max, name).map_err(body_err)?;
                count("txids", txids.len(), limits.max_txs_per_query)?;
                Message::Consensus(ConsensusMessage::Query { request_id, txids })
            }
            MessageTag::Votes => {
                let (request_id, verdicts): VotesBody =
                    encoding::decode(body, max, name).map_err(body_err)?;
                count("verdicts", verdicts.len(), limits.max_txs_per_query)?;
                Message::Consensus(ConsensusMessage::Votes {
                    request_id,
                    verdicts,
                })
            }
            MessageTag::Proof => {
                let proof: FinalityProof = encoding::decode(body, max, name).map_err(body_err)?;
                count("votes", proof.votes.len(), MAX_PROOF_VOTES)?;
                Message::Consensus(ConsensusMessage::Proof(proof))
            }
            MessageTag::WindowVote => {
                let window: WindowVote = encoding::decode(body, max, name).map_err(body_err)?;
                count("txids", window.txids.len(), MAX_WINDOW_TXS)?;
                Message::Consensus(ConsensusMessage::WindowVote(Arc::new(window)))
            }
            MessageTag::GetWindowVote => {
                let (voter, seq) = encoding::decode(body, max, name).map_err(body_err)?;
                Message::Consensus(ConsensusMessage::GetWindowVote { voter, seq })
            }
            MessageTag::WindowEvidence => Message::Consensus(ConsensusMessage::WindowEvidence(
                encoding::decode(body, max, name).map_err(body_err)?,
            )),
            MessageTag::BlockAnnounce => {
                let (height, hash) = encoding::decode(body, max, name).map_err(body_err)?;
                Message::BlockAnnounce { height, hash }
            }
            MessageTag::GetBlocks => {
                let (from, max_blocks): (u64, u32) =
                    encoding::decode(body, max, name).map_err(body_err)?;
                count(
                    "blocks requested",
                    max_blocks as usize,
                    limits.max_blocks_per_message,
                )?;
                Message::GetBlocks {
                    from,
                    max: max_blocks,
                }
            }
            MessageTag::Blocks => {
                // As byte blobs: one copy per block, where `Vec<u8>`'s
                // serde impl visits (and grows by) megabytes one byte at a
                // time. Same bytes on the wire: a length, then the bytes.
                let blocks: Vec<serde_bytes::ByteBuf> =
                    encoding::decode(body, max, name).map_err(body_err)?;
                count("blocks", blocks.len(), limits.max_blocks_per_message)?;
                Message::Blocks {
                    blocks: blocks
                        .into_iter()
                        .map(serde_bytes::ByteBuf::into_vec)
                        .collect(),
                }
            }
            MessageTag::BlockVote => {
                Message::BlockVote(encoding::decode(body, max, name).map_err(body_err)?)
            }
            MessageTag::Certificates => {
                let certificates: Vec<Certificate> =
                    encoding::decode(body, max, name).map_err(body_err)?;
                count(
                    "certificates",
                    certificates.len(),
                    limits.max_blocks_per_message,
                )?;
                for c in &certificates {
                    count("votes", c.votes.len(), MAX_CERTIFICATE_VOTES)?;
                }
                Message::Certificates { certificates }
            }
            MessageTag::Evidence => {
                Message::Evidence(encoding::decode(body, max, name).map_err(body_err)?)
            }
            MessageTag::Heartbeat => {
                Message::Heartbeat(encoding::decode(body, max, name).map_err(body_err)?)
            }
            MessageTag::GetRecentProofs => {
                let wanted: u32 = encoding::decode(body, max, name).map_err(body_err)?;
                count(
                    "proofs requested",
                    wanted as usize,
                    MAX_RECENT_PROOFS as usize,
                )?;
                Message::GetRecentProofs { max: wanted }
            }
        };
        Ok(msg)
    }
}

/// Most body bytes a message of type `tag` may have: tight for fixed-size
/// messages, derived from the count limits for lists, the frame otherwise.
fn body_limit(tag: MessageTag, limits: &MessageLimits) -> usize {
    let frame = limits.max_frame_bytes.saturating_sub(TAG_BYTES);
    let list = |n: usize, each: usize| n.saturating_mul(each).saturating_add(8);
    let limit = match tag {
        MessageTag::Hello => 512,
        MessageTag::HelloAck => 8 + 64,
        MessageTag::Ping | MessageTag::Pong => 8,
        MessageTag::GetPeers => 0,
        MessageTag::Peers => list(limits.max_peer_addrs, ADDR_BYTES_MAX),
        MessageTag::Tx => limits.max_tx_bytes,
        MessageTag::GetTxs => list(limits.max_txs_per_query, HASH_BYTES),
        MessageTag::Query => list(limits.max_txs_per_query, HASH_BYTES) + 8,
        MessageTag::Votes => list(limits.max_txs_per_query, VERDICT_BYTES_MAX) + 8,
        MessageTag::WindowVote => VOTE_BYTES_MAX + list(MAX_WINDOW_TXS, HASH_BYTES),
        MessageTag::GetWindowVote => HASH_BYTES + 8,
        MessageTag::WindowEvidence => max_evidence_bytes(limits.max_tx_bytes),
        MessageTag::BlockAnnounce => 8 + HASH_BYTES,
        MessageTag::GetBlocks => 8 + 4,
        MessageTag::GetRecentProofs => 4,
        MessageTag::BlockVote => BLOCK_VOTE_BYTES_MAX,
        MessageTag::Evidence => 2 * BLOCK_VOTE_BYTES_MAX,
        MessageTag::Heartbeat => HEARTBEAT_BYTES_MAX,
        MessageTag::Txs | MessageTag::Proof | MessageTag::Blocks | MessageTag::Certificates => {
            frame
        }
    };
    limit.min(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::types::TX_VERSION;

    fn limits() -> MessageLimits {
        MessageLimits::default()
    }

    fn tx() -> Tx {
        Tx {
            version: TX_VERSION,
            inputs: vec![],
            outputs: vec![],
            registration: None,
        }
    }

    pub(crate) fn one_of_each() -> Vec<Message> {
        let key = Keypair::from_seed_label("m");
        let scope = crate::finality::VoteScope {
            chain_id: ChainId(3),
            genesis_hash: Hash::digest(b"g"),
            epoch: 0,
        };
        let window = WindowVote::sign(&key, scope, 7, vec![Hash::digest(b"t"); 3]);
        let spend = crate::finality::SignedSpend {
            vote: window.vote.clone(),
            path: crate::crypto::merkle::MerkleTree::new(&window.txids)
                .path(0)
                .unwrap(),
            tx: tx(),
        };
        let block_vote = BlockVote::sign(&key, ChainId(3), Hash::digest(b"g"), 0, 4, Hash::ZERO);
        vec![
            Message::Hello(Hello {
                chain_id: ChainId(3),
                genesis_hash: Hash::digest(b"g"),
                version: PROTOCOL_VERSION,
                node_id: key.public(),
                listen_addr: Some("[::1]:65535".parse().unwrap()),
                tip_height: u64::MAX,
                nonce: Hash::digest(b"n"),
            }),
            Message::HelloAck {
                signature: key.sign(b"x"),
            },
            Message::Ping { nonce: 1 },
            Message::Pong { nonce: 2 },
            Message::GetPeers,
            Message::Peers {
                addrs: vec!["127.0.0.1:1".parse().unwrap(); limits().max_peer_addrs],
            },
            Message::Consensus(ConsensusMessage::Tx(tx())),
            Message::Consensus(ConsensusMessage::GetTxs {
                txids: vec![Hash::digest(b"t"); 64],
            }),
            Message::Consensus(ConsensusMessage::Txs { txs: vec![tx(); 3] }),
            Message::Consensus(ConsensusMessage::Query {
                request_id: 9,
                txids: vec![Hash::digest(b"t"); 64],
            }),
            Message::Consensus(ConsensusMessage::Votes {
                request_id: 9,
                verdicts: vec![(Hash::digest(b"t"), Verdict::Unknown); 64],
            }),
            Message::Consensus(ConsensusMessage::Proof(FinalityProof {
                tx: tx(),
                votes: vec![],
            })),
            Message::Consensus(ConsensusMessage::WindowVote(Arc::new(window))),
            Message::Consensus(ConsensusMessage::GetWindowVote {
                voter: key.public(),
                seq: u64::MAX,
            }),
            Message::Consensus(ConsensusMessage::WindowEvidence(Box::new(
                crate::finality::WindowEquivocation {
                    first: spend.clone(),
                    second: spend,
                },
            ))),
            Message::BlockAnnounce {
                height: 4,
                hash: Hash::digest(b"b"),
            },
            Message::GetBlocks { from: 1, max: 16 },
            Message::Blocks {
                blocks: vec![vec![1, 2, 3]],
            },
            Message::BlockVote(Box::new(block_vote.clone())),
            Message::Heartbeat(Box::new(Heartbeat::sign(&key, (ChainId(3), Hash::ZERO), 2))),
            Message::Certificates {
                certificates: vec![Certificate {
                    height: 4,
                    hash: Hash::digest(b"b"),
                    votes: vec![block_vote.clone()],
                }],
            },
            Message::Evidence(Box::new(Equivocation {
                first: block_vote.clone(),
                second: block_vote,
            })),
            Message::GetRecentProofs {
                max: MAX_RECENT_PROOFS,
            },
        ]
    }

    #[test]
    fn every_message_round_trips_at_its_limits() {
        let all = one_of_each();
        assert_eq!(all.len(), MessageTag::ALL.len());
        for msg in all {
            let bytes = msg.encode();
            assert_eq!(
                Message::decode(&bytes, &limits()),
                Ok(msg.clone()),
                "{msg:?}"
            );
        }
    }

    #[test]
    fn blocks_are_byte_blobs_on_the_wire() {
        let blocks = vec![vec![7u8; 300], vec![], vec![1, 2, 3]];
        let bytes = Message::Blocks {
            blocks: blocks.clone(),
        }
        .encode();
        // Tag, then exactly what a plain `Vec<Vec<u8>>` encodes to.
        assert_eq!(&bytes[..2], &[0x03, 0x02]);
        assert_eq!(bytes[2..], encoding::encode(&blocks));
        let decoded = Message::decode(&bytes, &limits());
        assert_eq!(decoded, Ok(Message::Blocks { blocks }));
    }

    #[test]
    fn tags_are_the_documented_numbers() {
        let bytes = Message::Consensus(ConsensusMessage::Tx(tx())).encode();
        assert_eq!(&bytes[..2], &[0x01, 0x01]);
        assert_eq!(&Message::GetPeers.encode(), &[0x05, 0x00]);
        assert_eq!(MessageTag::from_u16(0x0203), Some(MessageTag::Blocks));
    }

    #[test]
    fn unknown_tag_is_a_typed_error() {
        assert_eq!(
            Message::decode(&[0xff, 0x7f, 1, 2], &limits()),
            Err(MessageError::UnknownTag { tag: 0x7fff })
        );
        assert_eq!(
            Message::decode(&[1], &limits()),
            Err(MessageError::MissingTag { len: 1 })
        );
    }

    #[test]
    fn oversized_counts_are_refused() {
        let over = |msg: Message| Message::decode(&msg.encode(), &limits());
        let too_many_txids = over(Message::Consensus(ConsensusMessage::Query {
            request_id: 1,
            txids: vec![Hash::ZERO; 65],
        }));
        assert!(matches!(
            too_many_txids,
            Err(MessageError::Body { .. } | MessageError::TooMany { .. })
        ));
        let too_many_addrs = over(Message::Peers {
            addrs: vec!["127.0.0.1:1".parse().unwrap(); 65],
        });
        assert!(matches!(
            too_many_addrs,
            Err(MessageError::Body { .. } | MessageError::TooMany { .. })
        ));
        assert!(matches!(
            over(Message::Consensus(ConsensusMessage::Txs {
                txs: vec![tx(); 257]
            })),
            Err(MessageError::TooMany {
                count: 257,
                max: 256,
                ..
            })
        ));
        assert!(matches!(
            over(Message::GetBlocks { from: 0, max: 65 }),
            Err(MessageError::TooMany { count: 65, .. })
        ));
        assert!(matches!(
            over(Message::GetRecentProofs {
                max: MAX_RECENT_PROOFS + 1
            }),
            Err(MessageError::TooMany { .. })
        ));
    }

    #[test]
    fn trailing_bytes_and_truncated_bodies_are_refused() {
        let mut bytes = Message::Ping { nonce: 5 }.encode();
        bytes.push(0);
        assert!(matches!(
            Message::decode(&bytes, &limits()),
            Err(MessageError::Body { .. })
        ));
        let hello = one_of_each().remove(0).encode();
        assert!(matches!(
            Message::decode(&hello[..hello.len() - 1], &limits()),
            Err(MessageError::Body { .. })
        ));
    }
}
