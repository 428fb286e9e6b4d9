//! Wallet-side code: building and signing transfers, and the key file.

pub mod builder;
pub mod keystore;

pub use builder::{build_transfer, sign_inputs, BuildError, Spendable};
pub use keystore::{check_label, LabelError, Wallet, WalletError, WalletKey};
