//! The catch-up thread (DESIGN §8): asks every peer that connects for its
//! latest finality proofs, and serves peers' `GetRecentProofs` from the
//! store's `proofs` table (finalization order), paced by [`Pacer`]: once
//! per request, oldest first, a bounded number of reads per tick per peer
//! and for all strangers together, validators on their own budget.
//!
//! A node back from a crash or a partition learns what was finalized while
//! it was away (up to [`MAX_RECENT_PROOFS`]; more is block sync's), and a
//! reconnect storm costs this thread, never the consensus thread, at most
//! the strangers' budget of reads. It only reads the store; it never
//! decides anything: the proofs it sends are checked by the receiver.

pub mod pacer;

use self::pacer::{CatchUpLimits, Grant, Pacer};
use crate::consensus::{ConsensusMessage, NodeId};
use crate::finality::FinalityProof;
use crate::metrics::Metrics;
use crate::net::{Message, NetClient, NetCommand, NetEvent, MAX_RECENT_PROOFS};
use crate::store::schema::PROOFS;
use crate::store::{Store, StoreError};
use crate::time::Clock;
use crate::types::encoding::decode;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error("cannot read finality proofs for catch-up: {0}")]
    Store(#[from] StoreError),
}

pub struct CatchUpThread<C: Clock> {
    store: Arc<Store>,
    /// The net thread's catch-up outbox: `GetRecentProofs` and peer lifecycle.
    events: Receiver<NetEvent>,
    net: NetClient,
    /// The validator set's ids: served from their own budget.
    validators: HashSet<NodeId>,
    pacer: Pacer,
    metrics: Arc<Metrics>,
    clock: C,
}

impl<C: Clock> CatchUpThread<C> {
    pub fn new(
        store: Arc<Store>,
        events: Receiver<NetEvent>,
        net: NetClient,
        validators: HashSet<NodeId>,
        metrics: Arc<Metrics>,
        clock: C,
    ) -> CatchUpThread<C> {
        CatchUpThread {
            store,
            events,
            net,
            validators,
            pacer: Pacer::new(CatchUpLimits::default()),
            metrics,
            clock,
        }
    }

    /// Runs until the net thread stops (its outbox disconnects).
    pub fn run(mut self) -> Result<(), CatchUpError> {
        loop {
            let now = self.clock.mono();
            let first = match self.pacer.poll_timeout() {
                Some(at) => match self.events.recv_timeout(at.saturating_since(now)) {
                    Ok(event) => Some(event),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                },
                None => match self.events.recv() {
                    Ok(event) => Some(event),
                    Err(_) => return Ok(()),
                },
            };
            let ready = self.events.len();
            let batch: Vec<NetEvent> = first
                .into_iter()
                .chain(self.events.try_iter().take(ready))
                .collect();
            for event in batch {
                self.on_event(event)?;
            }
            let grants = self.pacer.due(self.clock.mono());
            if !grants.is_empty() {
                self.serve(&grants)?;
            }
        }
    }

    fn on_event(&mut self, event: NetEvent) -> Result<(), CatchUpError> {
        match event {
            NetEvent::PeerConnected { node_id, .. } => {
                let ask = Message::GetRecentProofs {
                    max: MAX_RECENT_PROOFS,
                };
                self.send(NetCommand::SendTo(node_id, ask));
            }
            NetEvent::PeerDisconnected { node_id } => self.pacer.disconnected(&node_id),
            NetEvent::Message {
                from,
                msg: Message::GetRecentProofs { max },
            } => {
                let now = self.clock.mono();
                let validator = self.validators.contains(&from);
                let store = &self.store;
                let outcome = self.pacer.request(now, from, validator, max, || {
                    store.read()?.finalized_count()
                })?;
                match outcome {
                    Ok(()) => {
                        self.metrics.catch_up_requests_served.fetch_add(1, Relaxed);
                        log::debug!("serving recent finality proofs to {from:?}");
                    }
                    Err(refusal) => {
                        self.metrics.catch_up_requests_refused.fetch_add(1, Relaxed);
                        log::debug!("not serving recent proofs to {from:?}: {refusal}");
                    }
                }
            }
            NetEvent::Message { from, msg } => {
                log::debug!("catch-up ignores {:?} from {from:?}", msg.tag());
            }
        }
        Ok(())
    }

    /// Reads and sends this tick's grants in one snapshot, each peer's
    /// proofs oldest first.
    fn serve(&mut self, grants: &[Grant]) -> Result<(), CatchUpError> {
        let store = Arc::clone(&self.store);
        let view = store.read()?;
        for grant in grants {
            let to = grant.from.saturating_add(u64::from(grant.count));
            let proofs = view.proofs_in(grant.from, to, grant.count as usize)?;
            self.metrics
                .catch_up_proofs_read
                .fetch_add(proofs.len() as u64, Relaxed);
            for (sequence, bytes) in proofs {
                match decode::<FinalityProof>(&bytes, PROOFS.max_value_bytes, "finality proof") {
                    Ok(proof) => {
                        let msg = Message::Consensus(ConsensusMessage::Proof(proof));
                        self.send(NetCommand::SendTo(grant.peer, msg));
                    }
                    Err(e) => log::error!("stored proof at sequence {sequence} is corrupt: {e}"),
                }
            }
        }
        Ok(())
    }

    /// Non-blocking: a full net channel drops the message (counted by the
    /// net layer); the receiver still has block sync.
    fn send(&self, command: NetCommand) {
        if let Err(e) = self.net.send(command) {
            log::debug!("catch-up message not sent: {e}");
        }
    }
}
