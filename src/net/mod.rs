//! The peer-to-peer network layer (DESIGN §1 "net", §8).
//!
//! Everything here is sans-IO and unit-tested except [`event_loop`], the one
//! file that uses `mio`: it owns the listener and every socket, reads the
//! monotonic clock through `time::SystemClock`, and drives the pure parts:
//! [`frame`] (length-prefixed frames), [`message`] (tagged wire messages),
//! [`handshake`], [`peer`] (one connection), [`rate_limit`] (what a peer
//! may ask of us), [`admission`] (who holds an inbound slot, whose buffers
//! go over the memory budget), [`peer_book`] (addresses, dialing, bans, one connection
//! per node pair) and [`gossip`] (dedup).
//! It must never touch disk or block on anything but `poll`.

pub mod admission;
pub mod event_loop;
pub mod frame;
pub mod gossip;
pub mod handshake;
pub mod message;
pub mod metrics;
pub mod peer;
pub mod peer_book;
pub mod rate_limit;

pub use admission::{AdmissionLimits, Refusal};
pub use event_loop::{
    spawn_net, NetClient, NetCommand, NetConfig, NetEvent, NetHandle, NetSendError, PeerInfo,
};
pub use message::{Hello, Message, MessageLimits, MessageTag, MAX_RECENT_PROOFS, PROTOCOL_VERSION};
pub use metrics::{NetMetrics, NetMetricsSnapshot};
pub use rate_limit::{PollLoad, RateLimit, RateLimits};
