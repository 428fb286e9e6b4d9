//! Wallet-side code: building and signing transfers, and the key file.

pub mod builder;
pub mod keystore;

pub use builder::{
    build_registration, build_transfer, sign_inputs, BuildError, MasternodeInfo, Spendable,
};
pub use keystore::{check_label, LabelError, Wallet, WalletError, WalletKey};
