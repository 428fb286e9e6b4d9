//! Validator key files: JSON `{"secret_key": "<64 hex>", "public_key": "<64 hex>"}`,
//! written owner-only (0600). Reading also accepts a bare 64-hex-digit line.
//!
//! The file is hostile input: its size is capped and every problem is a
//! [`KeyFileError`] naming the file. It never logs the secret.

use crate::crypto::Keypair;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A key file is a short JSON object.
const MAX_KEY_FILE_BYTES: u64 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read validator key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write validator key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("validator key {path} is {len} bytes; a key file is under {MAX_KEY_FILE_BYTES}")]
    TooLarge { path: PathBuf, len: u64 },
    #[error(
        "validator key {path}: expected {{\"secret_key\": \"<64 hex digits>\"}} or 64 hex digits"
    )]
    Malformed { path: PathBuf },
    #[error("validator key {path}: public_key does not match secret_key")]
    PublicKeyMismatch { path: PathBuf },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyFile {
    secret_key: String,
    #[serde(default)]
    public_key: Option<String>,
}

/// Writes `key` to a new file at `path` (0600); an existing file is kept
/// untouched and reported as an error.
pub fn write_key_file(path: &Path, key: &Keypair) -> Result<(), KeyFileError> {
    let error = |source| KeyFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let body = KeyFile {
        secret_key: hex::encode(key.secret()),
        public_key: Some(hex::encode(key.public().0)),
    };
    let text = serde_json::to_string_pretty(&body).map_err(|e| error(e.into()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(error)?;
    file.write_all(text.as_bytes()).map_err(error)?;
    file.write_all(b"\n").map_err(error)?;
    file.sync_all().map_err(error)
}

pub fn read_key_file(path: &Path) -> Result<Keypair, KeyFileError> {
    let read_error = |source| KeyFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let malformed = || KeyFileError::Malformed {
        path: path.to_path_buf(),
    };
    let len = std::fs::metadata(path).map_err(read_error)?.len();
    if len > MAX_KEY_FILE_BYTES {
        return Err(KeyFileError::TooLarge {
            path: path.to_path_buf(),
            len,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    let text = text.trim();
    let body = if text.starts_with('{') {
        serde_json::from_str(text).map_err(|_| malformed())?
    } else {
        KeyFile {
            secret_key: text.to_string(),
            public_key: None,
        }
    };
    let mut secret = [0u8; 32];
    hex::decode_to_slice(&body.secret_key, &mut secret).map_err(|_| malformed())?;
    let key = Keypair::from_secret(secret);
    if let Some(public) = body.public_key {
        if !public.eq_ignore_ascii_case(&hex::encode(key.public().0)) {
            return Err(KeyFileError::PublicKeyMismatch {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back_and_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.key");
        let key = Keypair::from_seed_label("key file test");
        write_key_file(&path, &key).unwrap();
        assert_eq!(read_key_file(&path).unwrap().public(), key.public());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn malformed_oversized_and_mismatched_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.key");
        for (text, expect) in [
            ("not hex".to_string(), "Malformed"),
            ("{\"secret_key\": 5}".to_string(), "Malformed"),
            ("a".repeat(2000), "TooLarge"),
            (
                format!(
                    "{{\"secret_key\": \"{}\", \"public_key\": \"{}\"}}",
                    "11".repeat(32),
                    "22".repeat(32)
                ),
                "PublicKeyMismatch",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:?}", read_key_file(&path).unwrap_err());
            assert!(err.starts_with(expect), "{err}");
        }
    }
}
