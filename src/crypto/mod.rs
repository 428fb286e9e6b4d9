//! Keys, signing domains, address text and Merkle trees. Pure: no I/O.

pub mod address;
pub mod domain;
pub mod keys;
pub mod merkle;
pub mod vrf;

pub use address::AddressError;
pub use domain::{signing_message, Domain};
pub use keys::{verify, Keypair, PublicKey, SignatureError};
pub use vrf::VrfKeypair;
