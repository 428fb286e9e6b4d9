//! The UTXO ledger's rules: outpoint states, the read interface, validation.
//! Pure: knows nothing of peers, threads or disks.

pub mod bond;
pub mod utxo;
pub mod validation;

pub use bond::{bonds_created, Bond, BondState};
pub use utxo::{MemUtxoSet, UtxoEntry, UtxoState, UtxoView, ViewError};
pub use validation::{
    check_structure, validate, validate_with, verify_signatures, TxError, ValidTx, ValidationParams,
};
