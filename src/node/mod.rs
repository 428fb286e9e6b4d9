//! A running node: opens the store, restores its local acceptances and
//! reloads the persisted mempool, spawns
//! the named threads (consensus, ledger, block, RPC workers) and stops them
//! in order: stop accepting RPC, stop the block thread between two writes,
//! drain consensus, final ledger commit, join, remove the cookie.
//!
//! ```text
//!  time-cli ──HTTP──▶ rpc workers ──NodeEvent──▶ consensus ──LedgerCommand──▶ ledger ──▶ LMDB
//!                        │ reads                    ▲  │                             │
//!                        └────────── LMDB ◀─────────┘  └◀──────── Durable ───────────┘
//!  peers ◀──TCP──▶ net thread ──NetEvent (consensus outbox)──▶ consensus
//!                      │ ▲────────── NetCommand (NetSink) ───────────┘
//!                      │ └────────── NetCommand ──────────┐
//!                      ├──NetEvent (block outbox)──▶ block thread ──apply/undo──▶ LMDB
//!                      │                                  └──PeerProof──▶ consensus
//!                      └──NetEvent (catch-up outbox)──▶ catchup thread ◀── LMDB (proofs)
//! ```
//!
//! Stop order: RPC, block, consensus (hands its backlog to the ledger), net
//! (the catch-up thread ends with its outbox), ledger.
//!
//! This module wires; it holds no protocol logic. It must never leave a
//! thread running or a cookie behind after `stop`.

pub mod block_thread;
pub mod catch_up;
pub mod chain_view;
pub mod channels;
pub mod consensus_thread;
pub mod heap_trim;
pub mod key_file;
pub mod ledger_thread;
pub mod net_link;
pub mod signals;
pub mod thread;
pub mod tx_notify;

use self::block_thread::{BlockChannels, BlockSettings, BlockThread, BlockThreadError, Producer};
use self::catch_up::CatchUpThread;
use self::channels::{
    NetSink, NoNet, NodeEvent, CONSENSUS_INBOX_CAPACITY, DURABLE_CAPACITY, LEDGER_CAPACITY,
};
use self::consensus_thread::{ConsensusChannels, ConsensusThread};
use self::ledger_thread::LedgerThread;
use self::thread::ThreadExit;
use crate::config::{ChainConfig, ChainSpec};
use crate::consensus::{Engine, EngineConfig};
use crate::crypto::Keypair;
use crate::finality::{ValidatorSet, ValidatorSetError};
use crate::genesis::{devnet_validator_keys, local_chain_toml, DEVNET_BLOCK_INTERVAL_SECS};
use crate::metrics::Metrics;
use crate::net::{spawn_net, MessageLimits, NetConfig, NetHandle};
use crate::rpc::notify::Waiters;
use crate::rpc::{RpcConfig, RpcContext, RpcServer, RpcStartError};
use crate::store::{Store, StoreError, StoreOptions};
use crate::time::{Clock, SystemClock};
use crate::types::Network;
use crossbeam_channel::{bounded, select, Receiver, Sender};
// Seeds the engine's sampler and a node secret: the node's seeding points.
#[allow(clippy::disallowed_types)]
use rand_core::OsRng;
use rand_core::RngCore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Everything `Node::start` needs.
pub struct NodeConfig {
    pub datadir: PathBuf,
    pub spec: ChainSpec,
    /// Our validator key; `None` runs a non-voting node.
    pub identity: Option<Keypair>,
    pub rpc: RpcConfig,
    /// Peers to talk to; `None` runs without a network (`timed --dev`).
    pub net: Option<NetConfig>,
    /// Shell command run per durable-final tx, `%s` = txid (`--txfinal-notify`).
    pub tx_final_notify: Option<String>,
    /// The operator has dealt with a persisted safety violation: clear the
    /// halt before starting (`--clear-safety-halt`; the evidence stays).
    pub clear_safety_halt: bool,
}

/// Why the node is stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Signal(i32),
    /// The `stop` RPC.
    Rpc,
    /// A thread ended on its own (it logged why).
    ThreadEnded(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create datadir {path}: {source}")]
    Datadir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the chain's validator set is unusable: {0}")]
    Validators(#[from] ValidatorSetError),
    #[error("cannot start the block thread: {0}")]
    Blocks(#[from] BlockThreadError),
    #[error("cannot reload the persisted mempool: {0}")]
    Reload(#[from] consensus_thread::ConsensusThreadError),
    #[error("cannot start thread {name}: {source}")]
    Spawn {
        name: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Rpc(#[from] RpcStartError),
    #[error("cannot start the network on {addr}: {source}; is another node using that port?")]
    Net {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A node whose threads are running.
pub struct Node {
    rpc: RpcServer,
    inbox: Sender<NodeEvent>,
    consensus: JoinHandle<()>,
    ledger: JoinHandle<()>,
    block: JoinHandle<()>,
    /// Dropped to stop the block thread.
    block_stop: Sender<()>,
    net: Option<NetHandle>,
    /// Ends when the net thread does.
    catch_up: Option<JoinHandle<()>>,
    exits: Receiver<ThreadExit>,
    stops: Receiver<StopReason>,
    stop_sender: Sender<StopReason>,
}

/// The `timed --dev` chain: the devnet rules with validator 0 alone and the
/// demo wallet funded, like a regtest. Its genesis differs from the built-in
/// devnet's, so their datadirs never mix.
pub fn dev_chain_spec() -> ChainSpec {
    let text = local_chain_toml(Network::Devnet, 1, 24100, DEVNET_BLOCK_INTERVAL_SECS);
    // The generator's output is a valid config by construction (tested).
    ChainConfig::parse(&text, "timed --dev")
        .unwrap_or_else(|e| unreachable!("the generated --dev chain config is invalid: {e}"))
}

/// The `--dev` chain's only validator key (public and well known).
pub fn dev_validator_key() -> Keypair {
    devnet_validator_keys(0).0
}

/// Whether a persisted safety violation keeps this node halted: cleared
/// first if the operator said so, reported loudly otherwise (DESIGN §5).
fn restore_safety_halt(store: &Store, clear: bool) -> Result<bool, StoreError> {
    if clear {
        if store.clear_safety_halt()? {
            log::warn!(
                "safety halt cleared by the operator (--clear-safety-halt); finalizing again"
            );
        }
        return Ok(false);
    }
    let Some(halt) = store.safety_halt()? else {
        return Ok(false);
    };
    log::error!(
        "SAFETY HALT: finality proofs for conflicting txs {} and {} (both spend {}) were seen \
         at {} ms; this node finalizes nothing until an operator restarts it with \
         --clear-safety-halt (see README, operator section)",
        halt.finalized,
        halt.conflicting,
        halt.outpoint,
        halt.detected_at_ms
    );
    Ok(true)
}

impl Node {
    /// Opens `<datadir>/chain`, reloads pending transactions, and starts the
    /// consensus, ledger, net (if configured) and RPC threads.
    pub fn start(config: NodeConfig) -> Result<Node, StartError> {
        let NodeConfig {
            datadir,
            spec,
            identity,
            rpc,
            net: net_config,
            tx_final_notify,
            clear_safety_halt,
        } = config;
        std::fs::create_dir_all(&datadir).map_err(|source| StartError::Datadir {
            path: datadir.clone(),
            source,
        })?;
        let store = Arc::new(Store::open(&datadir, &spec, StoreOptions::default())?);
        let clock = SystemClock;
        let metrics = Arc::new(Metrics::default());
        let validators = ValidatorSet::new(spec.validators.clone())?;
        let is_validator = identity
            .as_ref()
            .is_some_and(|k| validators.contains(&k.public()));
        // Sampling randomness need not replay in production; the simulator seeds its own.
        let mut engine_config = EngineConfig::from_spec(&spec, OsRng.next_u64());
        engine_config.window_session = store.next_window_session()?;
        let message_limits = net_config
            .as_ref()
            .map_or_else(MessageLimits::default, |c| c.messages);
        let block_settings = BlockSettings::from_spec(&spec, message_limits)?;
        let net = match net_config {
            Some(mut net_config) => {
                net_config.tip_height = store.tip()?.height;
                // A non-validator still needs a node id for the handshake.
                let net_identity = identity
                    .clone()
                    .unwrap_or_else(|| Keypair::from_secret(random_secret()));
                let addr = net_config.listen_addr;
                let handle = spawn_net(
                    net_config,
                    net_identity,
                    spec.chain_id(),
                    spec.genesis_hash(),
                )
                .map_err(|source| StartError::Net { addr, source })?;
                log::info!("listening for peers on {}", handle.local_addr());
                Some(handle)
            }
            None => None,
        };
        let producer = identity.as_ref().map(|id| Producer::new(id, &validators));
        // Finality is decided by the committee of the epoch the final chain
        // is in (DESIGN §7); blocks by their own epoch's sets.
        let (current, next) = block_thread::epoch_committees(&store, &spec, &validators)?;
        engine_config.scope.epoch = current.epoch;
        let validator_ids = validators.validators().iter().map(|v| v.id).collect();
        let block_validators = validators;
        let mut engine = Engine::new(engine_config, current.committee, identity, clock.mono());
        if let Some(next) = next {
            // The one after the current epoch, by construction.
            let _ = engine.learn_next_epoch(next);
        }
        if restore_safety_halt(&store, clear_safety_halt)? {
            engine.restore_halt();
            metrics.finality_halted.store(1, Relaxed);
        }

        let (inbox, inbox_rx) = bounded(CONSENSUS_INBOX_CAPACITY);
        let (ledger_tx, ledger_rx) = bounded(LEDGER_CAPACITY);
        let (durable_tx, durable_rx) = bounded(DURABLE_CAPACITY);
        let (exits_tx, exits) = bounded(8);
        let (stop_sender, stops) = bounded(4);

        let channels = ConsensusChannels {
            inbox: inbox_rx,
            durable: durable_rx,
            ledger: ledger_tx,
            net_events: net
                .as_ref()
                .map_or_else(crossbeam_channel::never, |n| n.consensus_events.clone()),
        };
        let max_txs = spec.config.consensus.mempool_max_txs as usize;
        let accepted = store.accepted_load(max_txs)?;
        let pending = store.mempool_load(max_txs)?;
        let net_client = net.as_ref().map(NetHandle::client);
        let sink: Box<dyn NetSink> = match net_client.clone() {
            Some(client) => Box::new(client),
            None => Box::new(NoNet),
        };
        let mut thread = ConsensusThread::new(
            engine,
            Arc::clone(&store),
            channels,
            sink,
            Arc::clone(&metrics),
            clock,
        );
        thread.reload_mempool(accepted, pending)?;
        let consensus = spawn_consensus(thread, exits_tx.clone())?;

        let waiters = Arc::new(Waiters::default());
        let notify = match tx_final_notify {
            Some(command) => {
                let (notify, runner) = tx_notify::channel(command);
                // Not joined at stop: a slow command must not hold the shutdown.
                thread::spawn("txnotify", exits_tx.clone(), move || runner.run()).map_err(
                    |source| StartError::Spawn {
                        name: "txnotify",
                        source,
                    },
                )?;
                Some(notify)
            }
            None => None,
        };
        let ledger = LedgerThread {
            notify,
            waiters: Arc::clone(&waiters),
            store: Arc::clone(&store),
            commands: ledger_rx,
            durable: durable_tx,
            metrics: Arc::clone(&metrics),
            clock,
        };
        let spawn_error = |name| move |source| StartError::Spawn { name, source };
        let ledger = thread::spawn("ledger", exits_tx.clone(), move || ledger.run())
            .map_err(spawn_error("ledger"))?;
        let (block_stop, block_stop_rx) = bounded(1);
        let block_thread = BlockThread::new(
            block_settings,
            Arc::clone(&store),
            block_validators,
            producer,
            net_client.clone(),
            BlockChannels {
                net_events: net
                    .as_ref()
                    .map_or_else(crossbeam_channel::never, |n| n.block_events.clone()),
                consensus: inbox.clone(),
                stop: block_stop_rx,
                metrics: Arc::clone(&metrics),
                waiters: Arc::clone(&waiters),
            },
            clock,
        )?;
        let block = thread::spawn("block", exits_tx.clone(), move || block_thread.run())
            .map_err(spawn_error("block"))?;
        let catch_up = match (&net, &net_client) {
            (Some(net), Some(client)) => {
                let catch_up = CatchUpThread::new(
                    Arc::clone(&store),
                    net.catch_up_events.clone(),
                    client.clone(),
                    validator_ids,
                    Arc::clone(&metrics),
                    clock,
                );
                let handle = thread::spawn("catchup", exits_tx, move || catch_up.run())
                    .map_err(spawn_error("catchup"))?;
                Some(handle)
            }
            _ => None,
        };
        log::info!(
            "node started: {} chain {} genesis {}, datadir {}, {}",
            spec.config.network,
            spec.chain_id(),
            spec.genesis_hash(),
            datadir.display(),
            if is_validator {
                "validator"
            } else {
                "not a validator"
            }
        );
        let context = RpcContext {
            store,
            spec,
            inbox: inbox.clone(),
            metrics,
            stop: stop_sender.clone(),
            started_at: clock.mono(),
            clock: Arc::new(clock),
            consensus_timeout: rpc.consensus_timeout,
            net: net_client,
            waiters,
        };
        let rpc = RpcServer::start(rpc, &datadir, context)?;
        Ok(Node {
            rpc,
            inbox,
            consensus,
            ledger,
            block,
            block_stop,
            net,
            catch_up,
            exits,
            stops,
            stop_sender,
        })
    }

    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc.local_addr()
    }

    /// Where signals (or anything else) ask the node to stop.
    pub fn stop_sender(&self) -> Sender<StopReason> {
        self.stop_sender.clone()
    }

    /// Blocks until a stop is requested or a thread ends, then stops in
    /// order. `Ok(reason)` if every thread ended cleanly.
    pub fn run_until_stopped(self) -> Result<StopReason, StopError> {
        let reason = select! {
            recv(self.stops) -> reason => reason.unwrap_or(StopReason::Rpc),
            recv(self.exits) -> exit => StopReason::ThreadEnded(exit.map_or("unknown", |e| e.name)),
        };
        log::info!("stopping: {reason:?}");
        let unclean = matches!(reason, StopReason::ThreadEnded(_));
        self.stop()?;
        if unclean {
            return Err(StopError::ThreadFailed);
        }
        Ok(reason)
    }

    /// Stops accepting RPC, stops the block thread, lets consensus hand
    /// everything pending to the ledger, waits for the ledger's final
    /// commit, joins every thread and removes the cookie.
    pub fn stop(self) -> Result<(), StopError> {
        let Node {
            rpc,
            inbox,
            consensus,
            ledger,
            block,
            block_stop,
            net,
            catch_up,
            exits,
            ..
        } = self;
        rpc.stop();
        // The block thread stops between two writes: its last block is whole.
        drop(block_stop);
        let block_joined = block.join().is_ok();
        // A consensus thread that died already has dropped its inbox.
        let _ = inbox.send(NodeEvent::Shutdown);
        drop(inbox);
        let consensus_joined = consensus.join().is_ok();
        if let Some(net) = net {
            net.shutdown();
        }
        // Its outbox disconnected with the net thread.
        let catch_up_joined = catch_up.map_or(true, |c| c.join().is_ok());
        let ledger_joined = ledger.join().is_ok();
        let clean = block_joined
            && consensus_joined
            && catch_up_joined
            && ledger_joined
            && exits.try_iter().all(|e| e.clean);
        log::info!("node stopped");
        if clean {
            Ok(())
        } else {
            Err(StopError::ThreadFailed)
        }
    }
}

fn spawn_consensus<C, N>(
    thread: ConsensusThread<C, N>,
    exits: Sender<ThreadExit>,
) -> Result<JoinHandle<()>, StartError>
where
    C: Clock + Send + 'static,
    N: channels::NetSink + 'static,
{
    thread::spawn("consensus", exits, move || thread.run()).map_err(|source| StartError::Spawn {
        name: "consensus",
        source,
    })
}

fn random_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    secret
}

#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error(
        "a node thread failed (see the log above); the datadir holds the last committed state"
    )]
    ThreadFailed,
}

#[cfg(test)]
mod tests {
    #[test]
    fn dev_chain_has_one_validator_that_is_the_dev_key() {
        let spec = super::dev_chain_spec();
        assert_eq!(spec.validators.len(), 1);
        assert_eq!(spec.validators[0].id, super::dev_validator_key().public());
    }
}
