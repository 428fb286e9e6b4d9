//! Plain data of the protocol and its one canonical encoding. Pure: no I/O.

pub mod amount;
pub mod encoding;
pub mod hash;
pub mod json;
pub mod network;
pub mod registration;
pub mod tx;
pub mod validator;

pub use amount::Amount;
pub use encoding::DecodeError;
pub use hash::Hash;
pub use network::{ChainId, Network};
pub use registration::{Registration, TX_VERSION_REGISTRATION};
pub use tx::{Address, OutPoint, PublicKeyBytes, SignatureBytes, Tx, TxIn, TxOut, TX_VERSION};
pub use validator::{Tier, Validator, VrfPublicBytes};
