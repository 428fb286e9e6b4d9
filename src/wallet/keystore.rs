//! The wallet key file: a small JSON document (format version, network, keys
//! with hex secret, label and address) readable only by its owner (mode 0600).
//!
//! It owns the file's life: created atomically and never over an existing
//! file, rewritten by temp file + rename so a crash leaves the old or the new
//! wallet, never half of one. A loaded file is hostile input: size-limited,
//! version- and network-checked, every key re-derived and compared with its
//! stored address. It must never print, log or `Debug` a secret key, and it
//! never generates keys (callers pass them in, so tests stay deterministic).

use crate::crypto::Keypair;
use crate::types::{Address, Network};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The wallet file format this build reads and writes.
pub const WALLET_VERSION: u32 = 1;
/// Wallet files hold a few keys; anything larger is refused before parsing.
pub const MAX_WALLET_BYTES: u64 = 1024 * 1024;
/// Labels are shown in terminals: short, and no control characters.
pub const MAX_LABEL_CHARS: usize = 64;
/// Only the owner may read a file of secret keys.
const WALLET_FILE_MODE: u32 = 0o600;

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("wallet file {path} already exists; choose another wallet path or remove the file (nothing was written)")]
    AlreadyExists { path: PathBuf },
    #[error("cannot {action} wallet file {path}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    #[error("wallet file {path} is {len} bytes, over the limit of {MAX_WALLET_BYTES}: not a wallet file")]
    TooLarge { path: PathBuf, len: u64 },
    #[error("wallet file {path} is not a valid wallet: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("wallet file {path} has format version {found}, but this build reads version {WALLET_VERSION}; use a matching timecoin release")]
    UnsupportedVersion { path: PathBuf, found: u32 },
    #[error("wallet file {path} names network '{found}'; expected mainnet, testnet or devnet")]
    UnknownNetwork { path: PathBuf, found: String },
    #[error("wallet file {path} holds {found} keys, but {expected} was requested; use a {expected} wallet file or select {found}")]
    WrongNetwork {
        path: PathBuf,
        found: Network,
        expected: Network,
    },
    #[error("wallet file {path}, key {index}: secret must be 64 hex digits")]
    BadSecret { path: PathBuf, index: usize },
    #[error("wallet file {path}, key {index}: stored address '{stored}' does not belong to its secret key (file edited or damaged)")]
    AddressMismatch {
        path: PathBuf,
        index: usize,
        stored: String,
    },
    #[error("wallet file {path}, key {index}: label {problem}")]
    BadLabel {
        path: PathBuf,
        index: usize,
        problem: LabelError,
    },
    #[error("wallet file {path} already holds the key of {address}")]
    DuplicateKey { path: PathBuf, address: String },
    #[error("wallet file {path} would grow to {len} bytes, over the limit of {MAX_WALLET_BYTES}; start another wallet file")]
    Full { path: PathBuf, len: usize },
}

/// Why a key label is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("is longer than {MAX_LABEL_CHARS} characters")]
    TooLong,
    #[error("contains control characters (tabs, newlines, escapes)")]
    ControlCharacter,
}

/// Labels are printed in terminals and tab-separated lists.
pub fn check_label(label: &str) -> Result<(), LabelError> {
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(LabelError::TooLong);
    }
    if label.chars().any(char::is_control) {
        return Err(LabelError::ControlCharacter);
    }
    Ok(())
}

/// One key of the wallet. `Debug` shows only the public half.
#[derive(Debug)]
pub struct WalletKey {
    label: String,
    keypair: Keypair,
    address: Address,
}

impl WalletKey {
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    pub fn address(&self) -> Address {
        self.address
    }
}

/// A wallet file's keys, bound to its path and network.
#[derive(Debug)]
pub struct Wallet {
    path: PathBuf,
    network: Network,
    keys: Vec<WalletKey>,
}

/// The file's layout. No `Debug`: it holds secret hex.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletFile {
    version: u32,
    network: String,
    keys: Vec<KeyEntry>,
}

/// Read first, so a future format is reported as a version, not as bad JSON.
#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    label: String,
    /// Derivable from the secret; stored so a reader sees it and a damaged
    /// secret is caught on load.
    address: String,
    secret: String,
}

impl Wallet {
    /// Creates a wallet file with no keys at `path`, mode 0600, refusing to
    /// touch an existing file.
    pub fn create(path: &Path, network: Network) -> Result<Wallet, WalletError> {
        Wallet::empty(path, network).write_new_file()
    }

    /// Creates a wallet file holding one key in a single write, so a refused
    /// key or label leaves no empty wallet behind.
    pub fn create_with_key(
        path: &Path,
        network: Network,
        keypair: Keypair,
        label: &str,
    ) -> Result<Wallet, WalletError> {
        let mut wallet = Wallet::empty(path, network);
        wallet.push_key(keypair, label.to_string())?;
        wallet.write_new_file()
    }

    /// Loads and checks the wallet file at `path`, which must be for `network`.
    pub fn load(path: &Path, network: Network) -> Result<Wallet, WalletError> {
        let mut wallet = Wallet::empty(path, network);
        let text = wallet.read_limited()?;
        let malformed = |e: serde_json::Error| WalletError::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let found = serde_json::from_str::<VersionOnly>(&text)
            .map_err(malformed)?
            .version;
        if found != WALLET_VERSION {
            return Err(WalletError::UnsupportedVersion {
                path: path.to_path_buf(),
                found,
            });
        }
        let file: WalletFile = serde_json::from_str(&text).map_err(malformed)?;
        let file_network: Network =
            file.network
                .parse()
                .map_err(|_| WalletError::UnknownNetwork {
                    path: path.to_path_buf(),
                    found: file.network.chars().take(40).collect(),
                })?;
        if file_network != network {
            return Err(WalletError::WrongNetwork {
                path: path.to_path_buf(),
                found: file_network,
                expected: network,
            });
        }
        for (index, entry) in file.keys.into_iter().enumerate() {
            let mut secret = [0u8; 32];
            hex::decode_to_slice(&entry.secret, &mut secret).map_err(|_| {
                WalletError::BadSecret {
                    path: path.to_path_buf(),
                    index,
                }
            })?;
            let keypair = Keypair::from_secret(secret);
            if Address::from_pubkey(&keypair.public()).to_text(network) != entry.address {
                return Err(WalletError::AddressMismatch {
                    path: path.to_path_buf(),
                    index,
                    stored: entry.address.chars().take(100).collect(),
                });
            }
            wallet.push_key(keypair, entry.label)?;
        }
        Ok(wallet)
    }

    /// Adds `keypair` under `label` and rewrites the file (temp + rename,
    /// mode 0600). On any error the wallet, in memory and on disk, is unchanged.
    /// Returns the new key's address.
    pub fn add_key(&mut self, keypair: Keypair, label: &str) -> Result<Address, WalletError> {
        let address = Address::from_pubkey(&keypair.public());
        self.push_key(keypair, label.to_string())?;
        if let Err(e) = self.save() {
            self.keys.pop();
            return Err(e);
        }
        Ok(address)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn network(&self) -> Network {
        self.network
    }

    pub fn keys(&self) -> &[WalletKey] {
        &self.keys
    }

    pub fn addresses(&self) -> Vec<Address> {
        self.keys.iter().map(WalletKey::address).collect()
    }

    /// The key that controls `address`, if this wallet holds it.
    pub fn key_for(&self, address: &Address) -> Option<&Keypair> {
        self.keys
            .iter()
            .find(|k| k.address == *address)
            .map(|k| &k.keypair)
    }

    fn empty(path: &Path, network: Network) -> Wallet {
        Wallet {
            path: path.to_path_buf(),
            network,
            keys: Vec::new(),
        }
    }

    /// Writes the wallet to its path, which must not exist yet.
    fn write_new_file(self) -> Result<Wallet, WalletError> {
        let text = self.to_file_text()?;
        write_new_file(&self.path, text.as_bytes()).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                WalletError::AlreadyExists {
                    path: self.path.clone(),
                }
            } else {
                self.io_error("create", source)
            }
        })?;
        Ok(self)
    }

    /// Checks `label` and uniqueness, then appends in memory only.
    fn push_key(&mut self, keypair: Keypair, label: String) -> Result<(), WalletError> {
        check_label(&label).map_err(|problem| WalletError::BadLabel {
            path: self.path.clone(),
            index: self.keys.len(),
            problem,
        })?;
        let address = Address::from_pubkey(&keypair.public());
        if self.key_for(&address).is_some() {
            return Err(WalletError::DuplicateKey {
                path: self.path.clone(),
                address: address.to_text(self.network),
            });
        }
        self.keys.push(WalletKey {
            label,
            keypair,
            address,
        });
        Ok(())
    }

    /// The file's text, refused if it would be too large to load again.
    fn to_file_text(&self) -> Result<String, WalletError> {
        let file = WalletFile {
            version: WALLET_VERSION,
            network: self.network.name().to_string(),
            keys: self
                .keys
                .iter()
                .map(|k| KeyEntry {
                    label: k.label.clone(),
                    address: k.address.to_text(self.network),
                    secret: hex::encode(k.keypair.secret()),
                })
                .collect(),
        };
        // Plain strings and integers always serialize.
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        if text.len() as u64 > MAX_WALLET_BYTES {
            return Err(WalletError::Full {
                path: self.path.clone(),
                len: text.len(),
            });
        }
        Ok(text)
    }

    /// Writes a sibling temp file (0600), then renames it over the wallet.
    fn save(&self) -> Result<(), WalletError> {
        let text = self.to_file_text()?;
        let mut temp = self.path.clone().into_os_string();
        temp.push(format!(".tmp{}", std::process::id()));
        let temp = PathBuf::from(temp);
        let result = write_new_file(&temp, text.as_bytes())
            .map_err(|e| self.io_error("write a temporary copy of", e))
            .and_then(|()| {
                std::fs::rename(&temp, &self.path).map_err(|e| self.io_error("replace", e))
            });
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
            return result;
        }
        // Make the rename itself durable. The new wallet is already in place,
        // so a failure here is not worth reporting as a failed save.
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Reads the whole file, never more than `MAX_WALLET_BYTES` (+1 to detect).
    fn read_limited(&self) -> Result<String, WalletError> {
        let file = File::open(&self.path).map_err(|e| self.io_error("open", e))?;
        let mut bytes = Vec::new();
        file.take(MAX_WALLET_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.io_error("read", e))?;
        if bytes.len() as u64 > MAX_WALLET_BYTES {
            let len = std::fs::metadata(&self.path)
                .map(|m| m.len())
                .unwrap_or(bytes.len() as u64);
            return Err(WalletError::TooLarge {
                path: self.path.clone(),
                len,
            });
        }
        String::from_utf8(bytes).map_err(|_| WalletError::Malformed {
            path: self.path.clone(),
            reason: "not UTF-8 text".to_string(),
        })
    }

    fn io_error(&self, action: &'static str, source: io::Error) -> WalletError {
        WalletError::Io {
            path: self.path.clone(),
            action,
            source,
        }
    }
}

/// Creates `path` (which must not exist) with mode 0600 and writes `bytes`
/// durably. A partly written file is removed.
fn write_new_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(WALLET_FILE_MODE)
        .open(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// A devnet wallet at `<dir>/wallet.json` holding the key of `label`.
    fn wallet_with_key(dir: &tempfile::TempDir, label: &str) -> Wallet {
        let mut w = Wallet::create(&dir.path().join("wallet.json"), Network::Devnet).unwrap();
        w.add_key(Keypair::from_seed_label(label), label).unwrap();
        w
    }

    /// Loads a devnet wallet whose file text was edited by `edit`.
    fn load_edited(edit: impl Fn(String) -> String) -> (PathBuf, WalletError) {
        let dir = tempfile::tempdir().unwrap();
        let path = wallet_with_key(&dir, "a").path().to_path_buf();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(text)).unwrap();
        let err = Wallet::load(&path, Network::Devnet).unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "error names the file: {err}"
        );
        (path, err)
    }

    #[test]
    fn created_wallet_is_owner_only_and_loads_back_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = wallet_with_key(&dir, "a");
        assert_eq!(mode_of(w.path()), 0o600);
        w.add_key(Keypair::from_seed_label("b"), "second").unwrap();
        assert_eq!(mode_of(w.path()), 0o600, "rewrite keeps the mode");

        let loaded = Wallet::load(w.path(), Network::Devnet).unwrap();
        assert_eq!(loaded.addresses(), w.addresses());
        assert_eq!(loaded.keys()[1].label(), "second");
        let b = Keypair::from_seed_label("b");
        let found = loaded.key_for(&Address::from_pubkey(&b.public())).unwrap();
        assert_eq!(found.secret(), b.secret());
        assert!(loaded.key_for(&Address([0; 20])).is_none());
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temp file left behind");
    }

    #[test]
    fn create_never_overwrites_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        std::fs::write(&path, "precious").unwrap();
        let err = Wallet::create(&path, Network::Devnet).unwrap_err();
        assert!(matches!(err, WalletError::AlreadyExists { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    }

    #[test]
    fn refused_first_key_leaves_no_wallet_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        let long = "x".repeat(MAX_LABEL_CHARS + 1);
        let err =
            Wallet::create_with_key(&path, Network::Devnet, Keypair::from_seed_label("a"), &long)
                .unwrap_err();
        assert!(matches!(err, WalletError::BadLabel { .. }), "{err}");
        assert!(!path.exists());
        let w = Wallet::create_with_key(&path, Network::Devnet, Keypair::from_seed_label("a"), "a")
            .unwrap();
        assert_eq!(
            Wallet::load(&path, Network::Devnet).unwrap().addresses(),
            w.addresses()
        );
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn duplicate_key_is_refused_and_file_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = wallet_with_key(&dir, "a");
        let before = std::fs::read(w.path()).unwrap();
        let err = w
            .add_key(Keypair::from_seed_label("a"), "again")
            .unwrap_err();
        assert!(matches!(err, WalletError::DuplicateKey { .. }), "{err}");
        assert_eq!(w.keys().len(), 1);
        assert_eq!(std::fs::read(w.path()).unwrap(), before);
    }

    #[test]
    fn oversized_file_is_refused_before_parsing() {
        let (_, err) = load_edited(|t| t + &" ".repeat(MAX_WALLET_BYTES as usize));
        assert!(matches!(err, WalletError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn other_format_version_is_a_version_error() {
        let (_, err) = load_edited(|t| t.replace("\"version\": 1", "\"version\": 2"));
        assert!(
            matches!(err, WalletError::UnsupportedVersion { found: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn wallet_of_another_network_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let w = wallet_with_key(&dir, "a");
        let err = Wallet::load(w.path(), Network::Testnet).unwrap_err();
        assert!(
            matches!(
                err,
                WalletError::WrongNetwork {
                    found: Network::Devnet,
                    expected: Network::Testnet,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn bad_secret_hex_names_the_key() {
        let (_, err) = load_edited(|t| t.replace("\"secret\": \"", "\"secret\": \"zz"));
        assert!(
            matches!(err, WalletError::BadSecret { index: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn damaged_secret_is_caught_by_its_stored_address() {
        let key = Keypair::from_seed_label("a");
        let hex = hex::encode(key.secret());
        let flipped = format!("{}{}", if &hex[..1] == "0" { "1" } else { "0" }, &hex[1..]);
        let (_, err) = load_edited(|t| t.replace(&hex, &flipped));
        assert!(
            matches!(err, WalletError::AddressMismatch { index: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn garbage_and_hostile_labels_are_typed_errors() {
        let (_, err) = load_edited(|_| "{\"version\": 1, \"network\": ".to_string());
        assert!(matches!(err, WalletError::Malformed { .. }), "{err}");
        let (_, err) = load_edited(|t| t.replace("devnet", "moonnet"));
        assert!(matches!(err, WalletError::UnknownNetwork { .. }), "{err}");
        let (_, err) = load_edited(|t| t.replace("\"label\": \"a\"", "\"label\": \"\\u001b[2J\""));
        assert!(matches!(err, WalletError::BadLabel { .. }), "{err}");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let w = wallet_with_key(&dir, "a");
        let shown = format!("{w:?}");
        assert!(!shown.contains(&hex::encode(Keypair::from_seed_label("a").secret())));
    }
}
