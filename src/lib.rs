//! # timecoin
//!
//! A TIME Coin node: leaderless transaction finality by stake-weighted
//! Avalanche Snowball sampling, objective finality proofs made of signed
//! votes, and checkpoint blocks archived in LMDB. Synchronous and
//! thread-based; no async runtime anywhere.
//!
//! ## Dependency direction (keep it true)
//! `types` ← `crypto` ← `ledger`, `wallet`, `config`, `genesis` (pure: no mio, lmdb,
//! crossbeam, clocks or global RNG) ← `store` (I/O) ← binaries.
//! Consensus, all pure: `time`, `ledger` ← `finality` ← `mempool` ← `consensus`
//! (time only as an injected `now`; only `time::SystemClock` reads the OS clock).
//! `consensus`, `ledger` ← `sim` (the deterministic simulator: virtual time,
//! seeded RNG, no I/O; it drives the real engine and is used only by tests,
//! benches and examples).
//!
//! ## Glossary
//! * **outpoint**: output `vout` of transaction `txid`.
//! * **conflict set**: every known transaction spending one outpoint.
//! * **validator**: a staked node whose weight counts in polls and proofs.
//! * **finality proof**: signed votes whose weight reaches ⌈0.67·total⌉.

pub mod config;
pub mod consensus;
pub mod crypto;
pub mod finality;
pub mod genesis;
pub mod ledger;
pub mod mempool;
pub mod sim;
pub mod store;
pub mod time;
pub mod types;
pub mod wallet;
