//! Every LMDB table name, key layout, stored record and size limit, in one
//! place. Keys are fixed-size and big-endian, so LMDB's byte order is the
//! logical order (all outputs of one txid are adjacent, vouts ascending; all
//! outputs of one address are adjacent). Values are canonical encodings
//! (`types::encoding`) and are always decoded with the limits below.
//!
//! This module only describes the layout; it never opens a transaction.
//!
//! # Tables
//!
//! | table        | key                                    | value                      |
//! |--------------|----------------------------------------|----------------------------|
//! | `meta`       | ASCII name (`META_*`)                  | encoded `u32`/`ChainId`/`Hash`/`u64` |
//! | `blocks`     | block hash (32)                        | encoded block, as given (opaque) |
//! | `block_records` | block hash (32)                     | encoded [`BlockRecord`]    |
//! | `heights`    | height `u64` BE (8)                    | block hash; 0 → genesis hash |
//! | `utxos`      | txid (32) ‖ vout `u32` BE (4)          | encoded `ledger::UtxoEntry` |
//! | `addr_utxos` | address (20) ‖ txid (32) ‖ vout BE (4) | empty; *unspent* outputs only |
//! | `txs`        | txid (32)                              | encoded [`TxRecord`]       |
//! | `proofs`     | `TxRecord::sequence` BE (8)            | finality proof bytes, as given |
//! | `mempool`    | admission seq `u64` BE (8) ‖ txid (32) | encoded `Tx`               |
//! | `accepted`   | seq `u64` BE (8) ‖ txid (32) ‖ vout BE (4) | encoded `Tx` spending it |
//! | `unarchived` | `TxRecord::sequence` BE (8) ‖ txid (32) | empty; finalized, in no block yet |
//! | `endorsed`   | height `u64` BE (8)                    | block hash this validator endorsed |
//! | `certificates` | height `u64` BE (8)                  | encoded [`CertificateRecord`] |
//! | `evidence`   | voter (32) ‖ height `u64` BE (8)       | encoded equivocation evidence, as given |
//! | `window_evidence` | voter (32) ‖ outpoint key (36)    | encoded window-vote equivocation evidence, as given |
//! | `safety_violations` | conflicting txid (32)           | encoded [`SafetyViolationRecord`] |
//! | `masternodes` | identity key (32)                     | encoded `masternode::Member` |
//! | `epochs`     | epoch `u64` BE (8)                     | encoded `masternode::Snapshot` |
//! | `bonds`      | outpoint (36)                          | encoded `ledger::Bond`       |
//!
//! `meta` `safety_halt` names the `safety_violations` entry that halts the
//! node until an operator clears it (`timed --clear-safety-halt`).
//!
//! # Checkpoint blocks
//!
//! The store keeps blocks as opaque bytes (their format belongs to `chain`)
//! beside the facts it must index and undo, in a [`BlockRecord`]: height,
//! slot, the tip it replaced, the txids it archives and its reward outputs.
//! `heights` maps `0..=tip` to hashes (0 is the genesis, which has no
//! `blocks` entry: it is the chain config); `meta` holds the tip as a
//! [`ChainTip`], so startup reads it in one lookup and never replays.
//! Applying or undoing the tip block is one write transaction covering
//! `blocks`, `block_records`, `heights`, the tip, each archived tx's
//! [`TxStatus`] and `unarchived` entry, and the reward outputs.
//!
//! `unarchived` lists every finalized tx that no block archives yet, in
//! finalization order (oldest first): what the block builder reads. `commit_batch` adds a tx when
//! it finalizes it; applying a block removes its txs, undoing it restores them.
//!
//! `mempool` (by admission) and `accepted` (by acceptance) are keyed in
//! order for the same reason; the store keeps their id → sequence maps in
//! memory (rebuilt from the keys at open), so a removal by txid or
//! outpoint needs no scan.
//!
//! Reward outputs are stored `Immature { matures_at }` (in `utxos` and the
//! address index, as unspent outputs) and keep that state: maturity is a
//! function of the tip and the final height, so undoing a block needs no
//! rewrite of older rewards. A reward of the block at `h` is spendable once
//! the tip is at `h + reward_maturity_blocks` AND a canonical block at or
//! above `h` is certified (DESIGN §6): `matures_at ≤ min(tip, final +
//! maturity)`, the *maturity height*.
//!
//! # The vote-safety record (`accepted`)
//!
//! A validator signs finality votes only for transactions it locally
//! accepted, and acceptance rejects every conflict; `accepted` makes that
//! memory survive a crash (slashing protection). Each input of a locally
//! accepted tx maps to that tx, so a restarted node restores it as
//! `LocallyAccepted` and never votes for another spend of those outpoints.
//! An outpoint holds one accepted spender: a second, different one is
//! refused. A record is deleted only in the write transaction that durably
//! spends its outpoint (by that tx or, after a conflict won elsewhere, by
//! the winner); it never expires.
//!
//! # Cost of one finalized transaction
//!
//! A finalized tx with `n` inputs and `m` outputs costs **2n + 2m + 3** LMDB
//! writes (puts + deletes) inside the batch's one write transaction:
//!
//! * each input: one overwrite of its `utxos` record to `Spent { by }` and one
//!   delete in `addr_utxos` (2n);
//! * each output: one put in `utxos` and one in `addr_utxos` (2m);
//! * one `txs` put, one `proofs` put and one `unarchived` put (3);
//! * one `mempool` delete if the tx was pending here (found in memory);
//! * one `accepted` delete per input this node had accepted a spender of
//!   (found in memory).
//!
//! Plus, once per batch, one `meta` put of the finalization counter. A
//! 2-in/2-out transfer thus costs 11 writes (12 if it was in our mempool,
//! 14 if we had also accepted it).
//!
//! # Cost of one checkpoint block
//!
//! A block archiving `a` txs with `r` reward outputs costs **2a + 2r + 4**
//! writes: per archived tx a `txs` rewrite (`Finalized` → `Archived`) and an
//! `unarchived` delete; per reward output a `utxos` and an `addr_utxos` put;
//! one put each in `blocks`, `block_records`, `heights` and `meta` (the tip).
//! Undoing it costs the same number of writes.
//! Reads: one `txs` lookup (the idempotency check) and one `utxos` lookup per
//! input. Spent outputs are kept (as `Spent { by }`) rather than deleted so a
//! late conflicting spend is answered with the txid that won.
//!
//! # Why `txs` and `proofs` stay separate
//!
//! Merging them would save one put per tx, but a proof is large (≈1.5 KB for
//! a realistic vote set, more with a large validator set) while a tx record
//! is a few hundred bytes. Separate, the `txs` B-tree stays dense: status
//! lookups and the idempotency check of every applied tx touch few pages, and
//! the archival step (a later issue) rewrites only the small record
//! (`Finalized` → `Archived` at a height) instead of copying the whole proof.
//! Proofs are written once, in finalization order (keyed by the tx record's
//! sequence, so they append), and read rarely (RPC, block building, sync).

use crate::types::encoding::MAX_DECODE_BYTES;
use crate::types::tx::MAX_TX_BYTES_HARD;
use crate::types::{Address, Hash, OutPoint, PublicKeyBytes, Tx};
use serde::{Deserialize, Serialize};

/// Version of this layout. Bump it on any change to a key or a stored record;
/// a datadir of another version is refused, never reinterpreted.
/// Version 2 added `accepted` (a version-1 build would ignore it and could
/// sign a conflict of a recorded acceptance). Version 3 added checkpoint
/// blocks: `block_records`, `unarchived`, the `tip` meta record,
/// `TxStatus::Archived` and immature reward outputs (a version-2 datadir
/// lacks the `unarchived` index of its finalized txs). Version 4 keys
/// `mempool`, `unarchived` and `accepted` by sequence first, and
/// `proofs` by `TxRecord::sequence` alone. Version 5 added certified
/// blocks: `endorsed` (a version-4 build would not know what this validator
/// endorsed and could endorse a conflicting block), `certificates`,
/// `evidence` and the `certified_tip` meta record. Version 6 added
/// `window_evidence`, `safety_violations` and the `safety_halt` meta record
/// (a version-5 build would ignore a persisted halt and finalize again).
/// Version 7 added the masternode registry: `masternodes`, `epochs` and
/// the `registry_height` and `latest_epoch` meta records; version 8 the
/// `bonds` of collateral outputs. Version 9 stores blocks that carry
/// heartbeats (a header field and a body list): a version-8 datadir's
/// blocks no longer decode.
pub const SCHEMA_VERSION: u32 = 9;

/// A named database and the largest value it may hold; every read of it is
/// decoded with that limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSpec {
    pub name: &'static str,
    pub max_value_bytes: usize,
}

/// Schema version, chain id, genesis hash, counters: all small.
pub const META: TableSpec = TableSpec {
    name: "meta",
    max_value_bytes: 64,
};
/// Encoded checkpoint blocks, bounded by the decode backstop.
pub const BLOCKS: TableSpec = TableSpec {
    name: "blocks",
    max_value_bytes: MAX_DECODE_BYTES,
};
/// A block's archived txids take 32 bytes each, so a record stays below
/// its block's size; the same backstop bounds it.
pub const BLOCK_RECORDS: TableSpec = TableSpec {
    name: "block_records",
    max_value_bytes: MAX_DECODE_BYTES,
};
/// A block hash (32 bytes).
pub const HEIGHTS: TableSpec = TableSpec {
    name: "heights",
    max_value_bytes: 64,
};
/// Output (36 bytes) plus the `Spent` tag and txid (44): 80, with room.
pub const UTXOS: TableSpec = TableSpec {
    name: "utxos",
    max_value_bytes: 128,
};
/// Index entries carry no value.
pub const ADDR_UTXOS: TableSpec = TableSpec {
    name: "addr_utxos",
    max_value_bytes: 0,
};
/// The tx plus a few fixed fields.
pub const TXS: TableSpec = TableSpec {
    name: "txs",
    max_value_bytes: MAX_TX_BYTES_HARD + 64,
};
/// One signed vote and one Merkle path per voter: 4 MiB allows thousands.
pub const PROOFS: TableSpec = TableSpec {
    name: "proofs",
    max_value_bytes: 4 * 1024 * 1024,
};
pub const MEMPOOL: TableSpec = TableSpec {
    name: "mempool",
    max_value_bytes: MAX_TX_BYTES_HARD,
};
/// The vote-safety record: outpoint → the tx this node accepted spending it.
pub const ACCEPTED: TableSpec = TableSpec {
    name: "accepted",
    max_value_bytes: MAX_TX_BYTES_HARD,
};

/// Finalized txids no block archives yet; entries carry no value.
pub const UNARCHIVED: TableSpec = TableSpec {
    name: "unarchived",
    max_value_bytes: 0,
};

/// The endorsement guard: height → the one block hash this validator signed.
pub const ENDORSED: TableSpec = TableSpec {
    name: "endorsed",
    max_value_bytes: 64,
};
/// Height → certificate (its votes, one per signer).
pub const CERTIFICATES: TableSpec = TableSpec {
    name: "certificates",
    max_value_bytes: 4 * 1024 * 1024,
};
/// Two conflicting endorsements of one voter.
pub const EVIDENCE: TableSpec = TableSpec {
    name: "evidence",
    max_value_bytes: 4096,
};

/// Two window votes of one voter covering conflicting spends, with both txs.
pub const WINDOW_EVIDENCE: TableSpec = TableSpec {
    name: "window_evidence",
    max_value_bytes: crate::finality::max_evidence_bytes(MAX_TX_BYTES_HARD),
};
/// Two valid proofs for conflicting txs (each up to a proof's size).
pub const SAFETY_VIOLATIONS: TableSpec = TableSpec {
    name: "safety_violations",
    max_value_bytes: 2 * PROOFS.max_value_bytes + 256,
};

/// A registered masternode: keys, addresses, status (a few hundred bytes).
pub const MASTERNODES: TableSpec = TableSpec {
    name: "masternodes",
    max_value_bytes: 1024,
};
/// An epoch's validator set: one member record each, thousands at most.
pub const EPOCHS: TableSpec = TableSpec {
    name: "epochs",
    max_value_bytes: 16 * 1024 * 1024,
};

/// An output bound to a masternode's collateral: an encoded `ledger::Bond`.
pub const BONDS: TableSpec = TableSpec {
    name: "bonds",
    max_value_bytes: 128,
};

/// Every named database, in creation order.
pub const TABLES: [TableSpec; 19] = [
    META,
    BLOCKS,
    BLOCK_RECORDS,
    HEIGHTS,
    UTXOS,
    ADDR_UTXOS,
    TXS,
    PROOFS,
    MEMPOOL,
    ACCEPTED,
    UNARCHIVED,
    ENDORSED,
    CERTIFICATES,
    EVIDENCE,
    WINDOW_EVIDENCE,
    SAFETY_VIOLATIONS,
    MASTERNODES,
    EPOCHS,
    BONDS,
];

/// `meta` keys.
pub const META_SCHEMA_VERSION: &[u8] = b"schema_version";
pub const META_CHAIN_ID: &[u8] = b"chain_id";
pub const META_GENESIS_HASH: &[u8] = b"genesis_hash";
/// How many transactions were ever finalized: the next `TxRecord::sequence`.
pub const META_FINALIZED_COUNT: &[u8] = b"finalized_count";
/// The tip block as a [`ChainTip`]; the genesis until a block is applied.
pub const META_TIP: &[u8] = b"tip";
/// The certified height the masternode registry applies next (`u64`;
/// absent: 1, nothing applied).
pub const META_REGISTRY_HEIGHT: &[u8] = b"registry_height";
/// The newest epoch in `epochs` (`u64`; absent until one is decided).
pub const META_LATEST_EPOCH: &[u8] = b"latest_epoch";
/// The highest certified `(height, hash)`; absent until a block is certified.
pub const META_CERTIFIED_TIP: &[u8] = b"certified_tip";
/// The highest height whose canonical block is certified (`u64`): it and
/// every block below are final, never undone; rewards mature under it.
pub const META_FINAL_HEIGHT: &[u8] = b"final_height";
/// The window-vote seq session of the latest start (`u32`; absent before
/// the first): each start takes the next one, durably, before it signs.
pub const META_WINDOW_SESSION: &[u8] = b"window_session";

pub const TXID_KEY_LEN: usize = 32;
pub const OUTPOINT_KEY_LEN: usize = 32 + 4;
pub const ADDR_UTXO_KEY_LEN: usize = 20 + OUTPOINT_KEY_LEN;

/// What the store knows about a finalized transaction.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TxRecord {
    pub status: TxStatus,
    /// Position in the order of finalization on this node (0, 1, 2, …).
    pub sequence: u64,
    /// When the proof was assembled or received, in Unix milliseconds.
    pub finalized_at_ms: u64,
    pub tx: Tx,
}

/// Durable status of a recorded transaction.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum TxStatus {
    /// Its finality proof is committed beside it; its outputs are spendable.
    Finalized,
    /// Finalized, and archived by the checkpoint block `block` at `height`
    /// (where `getrawtransaction` finds it). Undoing that block makes it
    /// `Finalized` again: blocks move archival state, never finality.
    Archived { height: u64, block: Hash },
}

/// The last block of the chain: what a new block must extend.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ChainTip {
    pub hash: Hash,
    pub height: u64,
    pub slot: u64,
}

/// What the store knows of a block beyond its bytes: enough to check it
/// against the other tables and to undo it without decoding the block.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BlockRecord {
    pub height: u64,
    pub slot: u64,
    /// The tip this block replaced (its `prev_hash`, at `height - 1`);
    /// undoing the block restores it.
    pub parent: ChainTip,
    /// Txid of the reward tx; its outputs are `reward_id:0..reward_outputs`.
    pub reward_id: Hash,
    pub reward_outputs: u32,
    /// The height from which the reward outputs may be spent.
    pub matures_at_height: u64,
    /// The txids the block archives, in the block's order.
    pub archived: Vec<Hash>,
}

/// A certified block: its hash, the signers' weight and the certificate's
/// encoding (opaque to the store; `chain::Certificate`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CertificateRecord {
    pub hash: Hash,
    pub weight: u64,
    pub certificate: Vec<u8>,
}

/// The conflicting txid of the safety violation that halts this node
/// (absent: not halted). Cleared only by an operator.
pub const META_SAFETY_HALT: &[u8] = b"safety_halt";

/// Two valid finality proofs for conflicting transactions (DESIGN §5
/// "Safety violation"), as this node saw them. The proof of `finalized` is
/// the stored one, absent if it was not durable yet when the second came.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SafetyViolationRecord {
    pub outpoint: OutPoint,
    pub finalized: Hash,
    pub conflicting: Hash,
    pub finalized_proof: Option<Vec<u8>>,
    pub conflicting_proof: Vec<u8>,
    pub detected_at_ms: u64,
}

/// `window_evidence` key: voter ‖ outpoint key.
pub fn window_evidence_key(
    voter: &PublicKeyBytes,
    outpoint: &OutPoint,
) -> [u8; 32 + OUTPOINT_KEY_LEN] {
    let mut key = [0u8; 32 + OUTPOINT_KEY_LEN];
    key[..32].copy_from_slice(&voter.0);
    key[32..].copy_from_slice(&outpoint_key(outpoint));
    key
}

/// `evidence` key: voter ‖ height big-endian.
pub fn evidence_key(voter: &PublicKeyBytes, height: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(&voter.0);
    key[32..].copy_from_slice(&height.to_be_bytes());
    key
}

/// `utxos` key (and the id in `accepted`): txid ‖ vout big-endian.
pub fn outpoint_key(outpoint: &OutPoint) -> [u8; OUTPOINT_KEY_LEN] {
    let mut key = [0u8; OUTPOINT_KEY_LEN];
    key[..32].copy_from_slice(&outpoint.txid.0);
    key[32..].copy_from_slice(&outpoint.vout.to_be_bytes());
    key
}

/// Inverse of [`outpoint_key`]; `None` if `key` has the wrong length.
pub fn outpoint_from_key(key: &[u8]) -> Option<OutPoint> {
    let key: &[u8; OUTPOINT_KEY_LEN] = key.try_into().ok()?;
    let (txid, vout) = key.split_at(32);
    Some(OutPoint {
        txid: Hash(txid.try_into().ok()?),
        vout: u32::from_be_bytes(vout.try_into().ok()?),
    })
}

/// `addr_utxos` key: address ‖ outpoint key.
pub fn addr_utxo_key(address: &Address, outpoint: &OutPoint) -> [u8; ADDR_UTXO_KEY_LEN] {
    let mut key = [0u8; ADDR_UTXO_KEY_LEN];
    key[..20].copy_from_slice(&address.0);
    key[20..].copy_from_slice(&outpoint_key(outpoint));
    key
}

/// Inverse of [`addr_utxo_key`]; `None` if `key` has the wrong length.
pub fn addr_utxo_from_key(key: &[u8]) -> Option<(Address, OutPoint)> {
    if key.len() != ADDR_UTXO_KEY_LEN {
        return None;
    }
    let (address, outpoint) = key.split_at(20);
    Some((
        Address(address.try_into().ok()?),
        outpoint_from_key(outpoint)?,
    ))
}

/// What follows the sequence number in a sequenced key: a txid
/// (`mempool`, `unarchived`) or an outpoint (`accepted`).
pub trait SequencedId: Copy + Eq + std::hash::Hash {
    fn id_bytes(&self) -> Vec<u8>;
    /// `None` if `bytes` is not an id of this kind.
    fn from_id_bytes(bytes: &[u8]) -> Option<Self>;
}

impl SequencedId for Hash {
    fn id_bytes(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    fn from_id_bytes(bytes: &[u8]) -> Option<Hash> {
        txid_from_key(bytes)
    }
}

impl SequencedId for OutPoint {
    fn id_bytes(&self) -> Vec<u8> {
        outpoint_key(self).to_vec()
    }

    fn from_id_bytes(bytes: &[u8]) -> Option<OutPoint> {
        outpoint_from_key(bytes)
    }
}

/// `mempool`, `unarchived` and `accepted` key: a sequence number big-endian
/// ‖ id. Sequence-first keys put new entries at the end of the B-tree and
/// old ones at its front, so a batch of puts (or of removals of old
/// entries) dirties one or two leaf pages instead of one random leaf per
/// tx: at saturation each random leaf is a 4 KiB page written and synced.
pub fn sequenced_key(sequence: u64, id: &impl SequencedId) -> Vec<u8> {
    let mut key = sequence.to_be_bytes().to_vec();
    key.extend_from_slice(&id.id_bytes());
    key
}

/// Inverse of [`sequenced_key`]; `None` if `key` is not sequence ‖ id.
pub fn sequenced_from_key<I: SequencedId>(key: &[u8]) -> Option<(u64, I)> {
    let (sequence, id) = key.split_at_checked(8)?;
    Some((
        u64::from_be_bytes(sequence.try_into().ok()?),
        I::from_id_bytes(id)?,
    ))
}

/// `proofs` key: the tx's `TxRecord::sequence`, big-endian. A proof is the
/// largest record (1.5–2 KB: one or two per page), so under random txid
/// keys nearly every put split a leaf; in finalization order they append
/// to the last page. A proof is found through its tx record.
pub fn proof_key(sequence: u64) -> [u8; 8] {
    sequence.to_be_bytes()
}

/// `txs` key: the txid itself.
pub fn txid_from_key(key: &[u8]) -> Option<Hash> {
    let key: [u8; TXID_KEY_LEN] = key.try_into().ok()?;
    Some(Hash(key))
}

/// `heights` key: height big-endian, so a cursor walks the chain in order.
pub fn height_key(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{UtxoEntry, UtxoState};
    use crate::types::{Amount, TxOut};

    #[test]
    fn outpoint_keys_sort_like_outpoints() {
        let a = OutPoint {
            txid: Hash([1; 32]),
            vout: 255,
        };
        let b = OutPoint {
            txid: Hash([1; 32]),
            vout: 256,
        };
        let c = OutPoint {
            txid: Hash([2; 32]),
            vout: 0,
        };
        assert!(a < b && b < c);
        assert!(outpoint_key(&a) < outpoint_key(&b));
        assert!(outpoint_key(&b) < outpoint_key(&c));
        assert_eq!(outpoint_from_key(&outpoint_key(&b)), Some(b));
        assert_eq!(outpoint_from_key(&[0; 35]), None);
    }

    #[test]
    fn addr_keys_round_trip_and_group_by_address() {
        let op = OutPoint {
            txid: Hash([9; 32]),
            vout: 7,
        };
        let low = addr_utxo_key(&Address([1; 20]), &op);
        let first = OutPoint {
            txid: Hash::ZERO,
            vout: 0,
        };
        let high = addr_utxo_key(&Address([2; 20]), &first);
        assert!(low < high);
        assert_eq!(addr_utxo_from_key(&low), Some((Address([1; 20]), op)));
        assert_eq!(addr_utxo_from_key(&low[1..]), None);
    }

    #[test]
    fn height_keys_sort_numerically() {
        assert!(height_key(255) < height_key(256));
        assert!(height_key(u64::MAX - 1) < height_key(u64::MAX));
    }

    #[test]
    fn chain_tip_fits_the_meta_limit() {
        let tip = ChainTip {
            hash: Hash([0xff; 32]),
            height: u64::MAX,
            slot: u64::MAX,
        };
        assert!(crate::types::encoding::encode(&tip).len() <= META.max_value_bytes);
        assert!(crate::types::encoding::encode(&tip.hash).len() <= HEIGHTS.max_value_bytes);
    }

    #[test]
    fn largest_utxo_entry_fits_its_limit() {
        let entry = UtxoEntry {
            output: TxOut {
                value: Amount(u64::MAX),
                address: Address([0xff; 20]),
            },
            state: UtxoState::Spent {
                by: Hash([0xff; 32]),
            },
        };
        assert!(crate::types::encoding::encode(&entry).len() <= UTXOS.max_value_bytes);
    }
}
