//! The one canonical encoding: bincode 2 (serde), fixed-width little-endian
//! integers, decoded only with a byte limit and with trailing bytes refused.
//!
//! Fixed-width integers make the encoding injective (no two byte strings decode
//! to the same value), so hashes and signatures over it are canonical. Never
//! call `bincode` anywhere else: every hashed, signed, stored or wire object
//! goes through [`encode`] / [`decode`].
//!
//! Decoding never allocates on the word of a length prefix (see
//! `untrusted_len`): memory follows the bytes actually received.

mod untrusted_len;

use serde::{de::DeserializeOwned, Serialize};
use std::marker::PhantomData;
use untrusted_len::Untrusted;

/// Absolute backstop for any single decode; callers pass tighter limits.
pub const MAX_DECODE_BYTES: usize = 64 * 1024 * 1024;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<MAX_DECODE_BYTES>,
>;

const CONFIG: Config = bincode::config::standard()
    .with_little_endian()
    .with_fixed_int_encoding()
    .with_limit::<MAX_DECODE_BYTES>();

/// Why bytes did not decode into the expected object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what} is {len} bytes, over the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what} has {extra} trailing bytes after its end")]
    TrailingBytes { what: &'static str, extra: usize },
    #[error("{what} is malformed: {reason}")]
    Malformed { what: &'static str, reason: String },
}

/// Canonical bytes of `value`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Serializing our own plain data types cannot fail: no maps with
    // non-string keys, no unsized sequences, no custom errors.
    bincode::serde::encode_to_vec(value, CONFIG).unwrap_or_default()
}

/// Feeds the canonical bytes of `value` into `writer` (a hasher, a buffer)
/// without an intermediate allocation.
pub fn encode_into<T: Serialize + ?Sized, W: std::io::Write>(value: &T, writer: &mut W) {
    // Writing into an in-memory hasher or Vec cannot fail (see `encode`).
    let _ = bincode::serde::encode_into_std_write(value, writer, CONFIG);
}

/// Decodes exactly one `T` from `bytes`, refusing more than `max_len` bytes
/// and any trailing bytes. `what` names the object in the error message.
pub fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    max_len: usize,
    what: &'static str,
) -> Result<T, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::TooLarge {
            what,
            len: bytes.len(),
            max: max_len,
        });
    }
    let (value, used) = decode_prefix(bytes, what)?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            what,
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

/// Decodes a `T` from the start of `bytes` and returns how many bytes it
/// took; the rest is not read (e.g. a block's header, to skip a block
/// already held without decoding its body). `T`'s own limits still apply.
pub fn decode_prefix<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<(T, usize), DecodeError> {
    let seed = Untrusted(PhantomData::<T>);
    bincode::serde::seed_decode_from_slice(seed, bytes, CONFIG).map_err(|e| {
        DecodeError::Malformed {
            what,
            reason: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_oversize_and_trailing_bytes() {
        let bytes = encode(&(7u32, 9u64));
        assert_eq!(decode::<(u32, u64)>(&bytes, 64, "pair"), Ok((7, 9)));
        assert!(matches!(
            decode::<(u32, u64)>(&bytes, 4, "pair"),
            Err(DecodeError::TooLarge { .. })
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode_prefix::<(u32, u64)>(&longer, "pair"),
            Ok(((7, 9), bytes.len()))
        );
        assert!(matches!(
            decode::<(u32, u64)>(&longer, 64, "pair"),
            Err(DecodeError::TrailingBytes { extra: 1, .. })
        ));
    }

    #[test]
    fn huge_length_prefix_does_not_allocate() {
        // A Vec claiming u64::MAX elements must fail on the short input, not allocate.
        let mut bytes = u64::MAX.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        assert!(decode::<Vec<u64>>(&bytes, 1024, "vec").is_err());
    }
}
