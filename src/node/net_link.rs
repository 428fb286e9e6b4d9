//! The consensus thread's link to the net thread: outgoing consensus
//! messages become non-blocking [`NetCommand`]s, and the settings a node
//! gives the net layer.
//!
//! It never blocks: a full command channel drops the message (counted in the
//! net's `command_drops`); Snowball tolerates lost messages by design.

use super::channels::NetSink;
use crate::consensus::{ConsensusMessage, NodeId};
use crate::net::{Message, NetClient, NetCommand, NetSendError};

impl NetSink for NetClient {
    fn send(&mut self, to: NodeId, msg: ConsensusMessage) {
        deliver(self, NetCommand::SendTo(to, Message::Consensus(msg)));
    }

    fn broadcast(&mut self, msg: ConsensusMessage, skip: Vec<NodeId>) {
        let msg = Message::Consensus(msg);
        deliver(self, NetCommand::Broadcast { msg, skip });
    }

    fn penalize(&mut self, node_id: NodeId, points: u32, reason: &'static str) {
        deliver(
            self,
            NetCommand::Penalize {
                node_id,
                points,
                reason,
            },
        );
    }

    fn relay_to_observers(&mut self, msg: ConsensusMessage, skip: Vec<NodeId>) {
        let msg = Message::Consensus(msg);
        deliver(self, NetCommand::RelayToObservers { msg, skip });
    }
}

fn deliver(net: &NetClient, command: NetCommand) {
    match net.send(command) {
        Ok(()) => {}
        // Counted by the net layer; logging each would flood under load.
        Err(NetSendError::Full) => {}
        Err(NetSendError::Stopped) => log::debug!("net thread stopped: message dropped"),
    }
}
