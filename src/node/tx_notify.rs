//! `timed --txfinal-notify CMD`, like bitcoind's `-walletnotify`: runs CMD
//! through `sh -c` once per durable-final transaction, with every `%s`
//! replaced by its txid (64 hex digits, nothing a shell interprets).
//!
//! Commands run one at a time on their own thread (`txnotify`), fed by a
//! bounded channel the ledger thread never blocks on: when the command falls
//! behind, txids are dropped and counted in the log, never queued without
//! bound. At shutdown the thread is not waited for.

use crate::types::Hash;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::process::{Command, Stdio};

/// Txids waiting for the command; past this they are dropped.
pub const NOTIFY_QUEUE: usize = 4_096;

/// The ledger thread's end: hands over txids without ever blocking.
pub struct TxFinalNotify {
    txids: Sender<Hash>,
}

/// The `txnotify` thread's end.
pub struct NotifyRunner {
    command: String,
    txids: Receiver<Hash>,
}

/// A sender for the ledger thread and the runner for its own thread.
pub fn channel(command: String) -> (TxFinalNotify, NotifyRunner) {
    let (txids, receiver) = bounded(NOTIFY_QUEUE);
    (
        TxFinalNotify { txids },
        NotifyRunner {
            command,
            txids: receiver,
        },
    )
}

impl TxFinalNotify {
    /// Queues `txids`; logs how many were dropped because the command lags.
    pub fn publish(&self, txids: &[Hash]) {
        let mut dropped = 0usize;
        for txid in txids {
            match self.txids.try_send(*txid) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => dropped += 1,
            }
        }
        if dropped > 0 {
            log::warn!("--txfinal-notify is {NOTIFY_QUEUE} txs behind: {dropped} not notified");
        }
    }
}

/// The command line for one txid.
pub fn command_for(template: &str, txid: &Hash) -> String {
    template.replace("%s", &txid.to_string())
}

impl NotifyRunner {
    /// Runs the command for each txid until the ledger thread is gone.
    pub fn run(self) -> Result<(), std::io::Error> {
        for txid in self.txids {
            let line = command_for(&self.command, &txid);
            match Command::new("sh")
                .arg("-c")
                .arg(&line)
                .stdin(Stdio::null())
                .status()
            {
                Ok(status) if status.success() => {}
                Ok(status) => log::warn!("--txfinal-notify command for {txid} ended {status}"),
                Err(e) => log::warn!("--txfinal-notify cannot run sh: {e}"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_percent_s_becomes_the_txid() {
        let txid = Hash([0xab; 32]);
        assert_eq!(
            command_for("echo %s >> f; echo %s", &txid),
            format!("echo {txid} >> f; echo {txid}")
        );
    }

    #[test]
    fn a_full_queue_drops_rather_than_blocks() {
        let (notify, runner) = channel("true".into());
        let txids = vec![Hash([1; 32]); NOTIFY_QUEUE + 10];
        notify.publish(&txids);
        assert_eq!(runner.txids.len(), NOTIFY_QUEUE);
    }
}
