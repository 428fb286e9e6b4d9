//! JSON-RPC error objects: the standard codes of the JSON-RPC 2.0 spec and
//! Bitcoin Core's application codes where the meaning is the same, so
//! wallets written for bitcoind read them naturally. Every message says what
//! was wrong and, where it helps, what to do.

use crate::consensus::SubmitError;
use crate::ledger::TxError;
use crate::mempool::MempoolError;
use crate::node::channels::SubmitRefused;
use serde_json::{json, Value};

/// Invalid JSON was received.
pub const PARSE_ERROR: i32 = -32700;
/// The JSON is not a valid request object.
pub const INVALID_REQUEST: i32 = -32600;
pub const METHOD_NOT_FOUND: i32 = -32601;
/// A parameter is missing, of the wrong type or out of range (message names it).
pub const INVALID_PARAMS: i32 = -32602;
pub const INTERNAL_ERROR: i32 = -32603;
/// A parameter out of range, e.g. a height above the tip (bitcoind `RPC_INVALID_PARAMETER`).
pub const INVALID_PARAMETER: i32 = -8;
/// No such transaction, block or output (bitcoind `RPC_INVALID_ADDRESS_OR_KEY`).
pub const NOT_FOUND: i32 = -5;
/// Bad hex or an undecodable transaction (bitcoind `RPC_DESERIALIZATION_ERROR`).
pub const DESERIALIZATION_ERROR: i32 = -22;
/// An input is missing: unknown, or its tx still pending (bitcoind
/// `RPC_VERIFY_ERROR`, "bad-txns-inputs-missingorspent").
pub const VERIFY_ERROR: i32 = -25;
/// The transaction breaks a validation rule (bad signature, fee, …), is a
/// double spend of a pending or finalized tx, or was rejected by the
/// network (bitcoind `RPC_VERIFY_REJECTED`).
pub const VERIFY_REJECTED: i32 = -26;
/// Already finalized (bitcoind `RPC_VERIFY_ALREADY_IN_CHAIN`).
pub const ALREADY_FINALIZED: i32 = -27;
/// The mempool is full; retry after some transactions settle.
pub const MEMPOOL_FULL: i32 = -31;
/// The node is busy or shutting down; retry later.
pub const NODE_BUSY: i32 = -32;
/// The store failed (disk, corruption); see the node's log.
pub const STORE_ERROR: i32 = -33;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    pub code: i32,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i32, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// `param` names the parameter (`"txid"`, or its position).
    pub fn invalid_param(param: &str, problem: impl std::fmt::Display) -> RpcError {
        RpcError::new(
            INVALID_PARAMS,
            format!("invalid parameter '{param}': {problem}"),
        )
    }

    pub fn busy(what: impl std::fmt::Display) -> RpcError {
        RpcError::new(NODE_BUSY, format!("node busy: {what}; retry shortly"))
    }

    pub fn to_json(&self) -> Value {
        json!({ "code": self.code, "message": self.message })
    }
}

impl From<SubmitRefused> for RpcError {
    fn from(refused: SubmitRefused) -> RpcError {
        let code = match &refused {
            SubmitRefused::Engine(e) => match e {
                // Spending what a finalized tx spent is a double spend, not a malformed tx.
                SubmitError::Invalid(TxError::UnknownOutpoint { .. }) => VERIFY_ERROR,
                SubmitError::Invalid(TxError::View(_)) => STORE_ERROR,
                // As bitcoind: every other rule broken (signature, fee, double spend).
                SubmitError::Invalid(_) => VERIFY_REJECTED,
                SubmitError::Mempool(MempoolError::Full { .. })
                | SubmitError::UnprovenBacklog { .. } => MEMPOOL_FULL,
                SubmitError::Mempool(_)
                | SubmitError::OutpointLocked { .. }
                | SubmitError::ConflictDecided { .. }
                | SubmitError::Rejected(_)
                | SubmitError::RecentlyExpired(_) => VERIFY_REJECTED,
                SubmitError::AlreadyFinalized(_) => ALREADY_FINALIZED,
                SubmitError::OverBudget => NODE_BUSY,
            },
            SubmitRefused::LedgerBehind { .. } | SubmitRefused::Halted => NODE_BUSY,
        };
        RpcError::new(code, refused.to_string())
    }
}

impl From<crate::store::StoreError> for RpcError {
    fn from(e: crate::store::StoreError) -> RpcError {
        log::error!("RPC read failed: {e}");
        RpcError::new(STORE_ERROR, format!("chain state read failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Hash, OutPoint};

    fn code_of(e: SubmitError) -> i32 {
        RpcError::from(SubmitRefused::Engine(e)).code
    }

    #[test]
    fn submit_refusals_map_to_their_codes() {
        let outpoint = OutPoint {
            txid: Hash::ZERO,
            vout: 0,
        };
        let by = Hash([1; 32]);
        assert_eq!(code_of(MempoolError::Full { max: 1 }.into()), MEMPOOL_FULL);
        assert_eq!(
            code_of(SubmitError::OutpointLocked { outpoint, by }),
            VERIFY_REJECTED
        );
        assert_eq!(
            code_of(SubmitError::ConflictDecided {
                outpoint,
                winner: by
            }),
            VERIFY_REJECTED
        );
        assert_eq!(
            code_of(
                TxError::AlreadySpent {
                    index: 0,
                    outpoint,
                    by
                }
                .into()
            ),
            VERIFY_REJECTED
        );
        assert_eq!(code_of(TxError::NoInputs.into()), VERIFY_REJECTED);
        assert_eq!(
            code_of(TxError::UnknownOutpoint { index: 0, outpoint }.into()),
            VERIFY_ERROR
        );
        assert_eq!(
            code_of(SubmitError::AlreadyFinalized(by)),
            ALREADY_FINALIZED
        );
        let busy = RpcError::from(SubmitRefused::LedgerBehind { backlog: 9 });
        assert_eq!(busy.code, NODE_BUSY);
        assert!(busy.message.contains("retry"));
    }
}
