//! # timecoin
//!
//! A TIME Coin node: leaderless transaction finality by stake-weighted
//! Avalanche Snowball sampling, objective finality proofs made of signed
//! votes, and checkpoint blocks archived in LMDB. Synchronous and
//! thread-based; no async runtime anywhere.
//!
//! ## Dependency direction (keep it true)
//! Pure (no mio, lmdb, crossbeam, clocks or global RNG):
//! `types` ← `crypto` ← `ledger`, `wallet`, `config`, `genesis`
//! ← `finality` ← `mempool` ← `consensus`, and `sim`, which drives them;
//! `chain` (checkpoint blocks, fork choice) sits beside `consensus` and
//! depends only on `types`, `crypto` and `finality`.
//! Time enters only as an injected `now`: monotonic `MonoTime` for timers,
//! wall-clock `Timestamp` for slots and dates; only `time::SystemClock` reads the OS clocks.
//! I/O: `store` (LMDB), `net` (sans-IO except `net::event_loop`, the one file
//! that uses `mio`), `rpc` (HTTP), `metrics` ← `node` (threads and wiring) ← binaries.
//!
//! ## Glossary
//! * **outpoint**: output `vout` of transaction `txid`.
//! * **conflict set**: every known transaction spending one outpoint.
//! * **validator**: a staked node whose weight counts in polls and proofs.
//! * **finality proof**: signed votes whose weight reaches ⌈0.67·total⌉.

pub mod chain;
pub mod config;
pub mod consensus;
pub mod crypto;
pub mod devnet;
pub mod finality;
pub mod genesis;
pub mod ledger;
pub mod masternode;
pub mod mempool;
pub mod metrics;
pub mod net;
pub mod node;
pub mod rpc;
pub mod sim;
pub mod store;
pub mod time;
pub mod types;
pub mod wallet;
