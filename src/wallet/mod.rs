//! Wallet-side code: building and signing transfers, and the key file.

pub mod builder;

pub use builder::{build_transfer, sign_inputs, BuildError, Spendable};
