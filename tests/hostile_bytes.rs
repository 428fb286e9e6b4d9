//! Hostile bytes: 100,000 seeded random and mutated buffers, decoded as every
//! protocol type that has a decoder today (plus a string and a byte buffer,
//! the field kinds wire messages will add), never panic and never make the
//! decoder allocate more than the byte limit it was given (plus a small
//! constant), nor more than a few bytes per byte actually received.
//!
//! A counting global allocator measures, per thread and per decode, the
//! largest single allocation and the peak of live bytes. Seeded: a failure
//! names the case index and prints the buffer, so it replays exactly.

mod common;

use common::{tx_length_prefixes, TestChain};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_bytes::ByteBuf;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use timecoin::crypto::merkle::{root_and_path, MerklePath, MAX_DEPTH};
use timecoin::types::{encoding, Hash, Tx, Validator};

/// Counts the allocations of the thread that asked for it (tests in this
/// binary run on parallel threads; each measures only its own decodes).
struct CountingAllocator;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    live: isize,
    peak_live: isize,
    largest: usize,
}

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static USAGE: Cell<Usage> = const { Cell::new(Usage { live: 0, peak_live: 0, largest: 0 }) };
}

/// Books a change of `delta` live bytes, `size` being the block just obtained.
fn book(delta: isize, size: usize) {
    // `try_with`: allocations during thread teardown must not panic.
    let _ = MEASURING.try_with(|measuring| {
        if measuring.get() {
            let _ = USAGE.try_with(|usage| {
                let mut u = usage.get();
                u.live += delta;
                u.peak_live = u.peak_live.max(u.live);
                u.largest = u.largest.max(size);
                usage.set(u);
            });
        }
    });
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        book(layout.size() as isize, layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        book(layout.size() as isize, layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        book(-(layout.size() as isize), 0);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        book(new_size as isize - layout.size() as isize, new_size);
        System.realloc(ptr, layout, new_size)
    }
}

/// Runs `f` (dropping its result inside) and reports what it allocated.
fn measure<R>(f: impl FnOnce() -> R) -> Usage {
    USAGE.with(|u| u.set(Usage::default()));
    MEASURING.with(|m| m.set(true));
    drop(f());
    MEASURING.with(|m| m.set(false));
    USAGE.with(Cell::get)
}

/// Bookkeeping of a failed decode (its error message) on top of the data.
const SLACK_BYTES: usize = 1024;
/// The most heap one received byte may cost: an empty `Tx` is 20 bytes on the
/// wire and 56 in memory, and a `Vec` may hold twice the elements it has.
const BYTES_PER_INPUT_BYTE: usize = 6;

/// A decodable protocol type and the limit its callers decode it with.
struct Target {
    name: &'static str,
    limit: usize,
    decode: fn(&[u8], usize) -> bool,
}

fn decodes<T: serde::de::DeserializeOwned>(bytes: &[u8], limit: usize) -> bool {
    encoding::decode::<T>(bytes, limit, "hostile buffer").is_ok()
}

/// Encoded size of a Merkle path at the deepest level allowed.
const MERKLE_PATH_MAX_BYTES: usize = 4 + 4 + 8 + MAX_DEPTH * (8 + 32);

fn targets(chain: &TestChain) -> [Target; 6] {
    [
        Target {
            name: "Tx",
            limit: chain.params().max_tx_bytes,
            decode: |bytes, limit| Tx::decode(bytes, limit).is_ok(),
        },
        Target {
            // A batch of transactions, as a `Txs` message or a block body carries.
            name: "Vec<Tx>",
            limit: 64 * 1024,
            decode: decodes::<Vec<Tx>>,
        },
        Target {
            name: "MerklePath",
            limit: MERKLE_PATH_MAX_BYTES,
            decode: decodes::<MerklePath>,
        },
        Target {
            name: "Validator",
            limit: 256,
            decode: decodes::<Validator>,
        },
        Target {
            name: "String",
            limit: 256,
            decode: decodes::<String>,
        },
        Target {
            name: "ByteBuf",
            limit: 4096,
            decode: decodes::<ByteBuf>,
        },
    ]
}

/// Decodes `bytes` as `target`, asserting no panic and bounded allocation.
fn assert_decodes_safely(target: &Target, bytes: &[u8], case: usize) -> bool {
    let mut decoded = false;
    let usage = catch_unwind(AssertUnwindSafe(|| {
        measure(|| decoded = (target.decode)(bytes, target.limit))
    }))
    .unwrap_or_else(|_| {
        panic!(
            "case {case}: decoding as {} panicked on {}",
            target.name,
            hex::encode(bytes)
        )
    });
    let by_limit = target.limit + SLACK_BYTES;
    let by_input = BYTES_PER_INPUT_BYTE * bytes.len() + SLACK_BYTES;
    for (what, bytes_used) in [
        ("peak live bytes", usage.peak_live.max(0) as usize),
        ("largest allocation", usage.largest),
    ] {
        assert!(
            bytes_used <= by_limit.min(by_input),
            "case {case}: {} {what} {bytes_used} over min(limit {} + {SLACK_BYTES}, \
             {BYTES_PER_INPUT_BYTE} × {} input bytes + {SLACK_BYTES}) on {}",
            target.name,
            target.limit,
            bytes.len(),
            hex::encode(bytes),
        );
    }
    decoded
}

/// A valid encoding of the target named `of`, and the offsets of its 8-byte
/// length prefixes.
struct Base {
    of: &'static str,
    bytes: Vec<u8>,
    prefixes: Vec<usize>,
}

fn bases(chain: &TestChain) -> Vec<Base> {
    let txs = chain.sample_transfers();
    let mut bases: Vec<Base> = txs
        .iter()
        .map(|tx| Base {
            of: "Tx",
            bytes: tx.encode(),
            prefixes: tx_length_prefixes(tx),
        })
        .collect();
    for count in [1, 3, txs.len()] {
        let batch = &txs[..count];
        let mut prefixes = vec![0];
        let mut at = 8;
        for tx in batch {
            prefixes.extend(tx_length_prefixes(tx).into_iter().map(|p| at + p));
            at += tx.encoded_len();
        }
        bases.push(Base {
            of: "Vec<Tx>",
            bytes: encoding::encode(batch),
            prefixes,
        });
    }
    for leaves in [2usize, 5, 33, 1000] {
        let leaf_hashes: Vec<Hash> = (0..leaves as u32)
            .map(|i| Hash::digest(&i.to_le_bytes()))
            .collect();
        let (_, path) = root_and_path(&leaf_hashes, leaves / 2).expect("index in range");
        let mut prefixes = vec![8];
        prefixes.extend((0..path.siblings.len()).map(|k| 16 + k * 40));
        bases.push(Base {
            of: "MerklePath",
            bytes: encoding::encode(&path),
            prefixes,
        });
    }
    let validator = chain.spec.validators[0];
    bases.push(Base {
        of: "Validator",
        bytes: encoding::encode(&validator),
        prefixes: vec![0, 40],
    });
    bases.push(Base {
        of: "String",
        bytes: encoding::encode("timecoin/0.1.0 (devnet)"),
        prefixes: vec![0],
    });
    bases.push(Base {
        of: "ByteBuf",
        bytes: encoding::encode(&ByteBuf::from(vec![7u8; 300])),
        prefixes: vec![0],
    });
    bases
}

/// Values a hostile length prefix claims.
const HUGE_LENGTHS: [u64; 7] = [
    u64::MAX,
    1 << 63,
    1 << 32,
    (1 << 32) - 1,
    1 << 20,
    64 * 1024 * 1024,
    33,
];

fn below(rng: &mut ChaCha20Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

/// One hostile buffer: random bytes, or a valid encoding with flipped bytes,
/// cut short, with bytes inserted, or with a length prefix made huge.
fn hostile_buffer(rng: &mut ChaCha20Rng, bases: &[Base]) -> Vec<u8> {
    let base = &bases[below(rng, bases.len())];
    let mut bytes = base.bytes.clone();
    match below(rng, 5) {
        0 => {
            bytes = vec![0; below(rng, 4096)];
            rng.fill_bytes(&mut bytes);
        }
        1 => {
            for _ in 0..1 + below(rng, 4) {
                let at = below(rng, bytes.len());
                bytes[at] ^= 1 + below(rng, 255) as u8;
            }
        }
        2 => bytes.truncate(below(rng, bytes.len())),
        3 => {
            let at = below(rng, bytes.len() + 1);
            let mut extra = vec![0; 1 + below(rng, 16)];
            rng.fill_bytes(&mut extra);
            bytes.splice(at..at, extra);
        }
        _ => {
            let at = base.prefixes[below(rng, base.prefixes.len())];
            let claim = HUGE_LENGTHS[below(rng, HUGE_LENGTHS.len())];
            bytes[at..at + 8].copy_from_slice(&claim.to_le_bytes());
        }
    }
    bytes
}

#[test]
fn hostile_buffers_never_panic_nor_overallocate() {
    const CASES: usize = 100_000;
    const SEED: u64 = 0x7153_0001;
    let chain = TestChain::devnet();
    let targets = targets(&chain);
    let bases = bases(&chain);
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let mut decoded = [0usize; 6];
    for case in 0..CASES {
        let bytes = hostile_buffer(&mut rng, &bases);
        for (target, count) in targets.iter().zip(&mut decoded) {
            *count += assert_decodes_safely(target, &bytes, case) as usize;
        }
    }
    // Mutations that keep a valid shape (e.g. a flipped signature byte) do
    // decode: the run must exercise the success path, not only early errors.
    for (target, count) in targets.iter().zip(decoded) {
        assert!(
            count > 100,
            "only {count} buffers decoded as {}",
            target.name
        );
    }
}

#[test]
fn valid_encodings_decode_within_bounds() {
    let chain = TestChain::devnet();
    let targets = targets(&chain);
    for (case, base) in bases(&chain).iter().enumerate() {
        for target in &targets {
            let decoded = assert_decodes_safely(target, &base.bytes, case);
            if target.name == base.of {
                assert!(decoded, "base {case} does not decode as {}", base.of);
            }
        }
    }
}

#[test]
fn huge_length_prefixes_reserve_nothing_up_front() {
    let chain = TestChain::devnet();
    let targets = targets(&chain);
    for (case, base) in bases(&chain).iter().enumerate() {
        for &at in &base.prefixes {
            for claim in HUGE_LENGTHS {
                let mut bytes = base.bytes.clone();
                bytes[at..at + 8].copy_from_slice(&claim.to_le_bytes());
                for target in &targets {
                    assert_decodes_safely(target, &bytes, case);
                }
            }
        }
    }
}
