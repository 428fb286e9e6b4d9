//! RPC credentials, like bitcoind: a cookie file `<datadir>/.cookie` holding
//! `__cookie__:<random secret>`, created owner-only (0600) at start and
//! removed at stop, and optionally a configured user/password. Clients send
//! HTTP Basic auth.
//!
//! It never logs a secret and compares credentials in constant time.

// The cookie is a secret: it must come from the OS CSPRNG, never a seed.
#[allow(clippy::disallowed_types)]
use rand_core::OsRng;
use rand_core::RngCore;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const COOKIE_FILE: &str = ".cookie";
pub const COOKIE_USER: &str = "__cookie__";
/// A cookie file is one short line; anything longer is not ours.
const MAX_COOKIE_BYTES: u64 = 1024;

/// The `Authorization` header values this server accepts.
#[derive(Clone)]
pub struct Credentials {
    accepted: Vec<String>,
}

impl Credentials {
    /// Accepts `user:password` pairs.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Credentials {
        Credentials {
            accepted: pairs
                .into_iter()
                .map(|(user, password)| basic_header(user, password))
                .collect(),
        }
    }

    /// Whether `header` (the whole `Authorization` value) is accepted.
    pub fn check(&self, header: Option<&str>) -> bool {
        let Some(header) = header else {
            return false;
        };
        // Every candidate is compared, so timing does not tell which matched.
        self.accepted.iter().fold(false, |ok, good| {
            ok | constant_time_eq(good.as_bytes(), header.as_bytes())
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Basic base64(user:password)`.
pub fn basic_header(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Standard base64 with padding (RFC 4648), as HTTP Basic auth needs.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The cookie of a running node.
pub struct Cookie {
    path: PathBuf,
    secret: String,
}

impl Cookie {
    /// Writes a fresh cookie (0600), replacing one a crashed node left.
    pub fn create(datadir: &Path) -> io::Result<Cookie> {
        let path = datadir.join(COOKIE_FILE);
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let secret = hex::encode(bytes);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(format!("{COOKIE_USER}:{secret}").as_bytes())?;
        file.sync_all()?;
        Ok(Cookie { path, secret })
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn remove(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            log::warn!("cannot remove cookie file {}: {e}", self.path.display());
        }
    }
}

/// Reads `<datadir>/.cookie` and returns the `Authorization` header it grants.
pub fn read_cookie(datadir: &Path) -> io::Result<String> {
    let path = datadir.join(COOKIE_FILE);
    let len = std::fs::metadata(&path)?.len();
    if len > MAX_COOKIE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is {len} bytes, not a cookie", path.display()),
        ));
    }
    let text = std::fs::read_to_string(&path)?;
    let (user, password) = text.trim().split_once(':').ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not of the form user:secret", path.display()),
        )
    })?;
    Ok(basic_header(user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn cookie_is_owner_only_and_grants_access() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cookie = Cookie::create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(COOKIE_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let creds = Credentials::new([(COOKIE_USER, cookie.secret())]);
        assert!(creds.check(Some(&read_cookie(dir.path()).unwrap())));
        assert!(!creds.check(Some(&basic_header(COOKIE_USER, "wrong"))));
        assert!(!creds.check(None));
        cookie.remove();
        assert!(!dir.path().join(COOKIE_FILE).exists());
    }
}
