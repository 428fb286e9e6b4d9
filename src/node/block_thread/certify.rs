//! Block certification in the block thread (DESIGN §6): endorsing the
//! adopted tip once per height, tallying peers' endorsements into
//! certificates, learning certificates from gossip and sync, catching
//! equivocation, and switching to a certified branch however deep.
//!
//! The endorsement guard is written to LMDB (one write) before the
//! signature leaves the node, so no crash can make this validator endorse
//! two blocks at one height. A validator endorses only once caught up, so
//! a node that wakes on a stale tip never endorses it. Only votes of the
//! set count; each distinct vote is verified once and relayed once.

use super::{BlockSettings, BlockThread, BlockThreadError};
use crate::chain::{
    BlockVote, Certificate, CertificateError, Equivocation, VoteContext, VoteOutcome,
};
use crate::consensus::NodeId;
use crate::finality::ValidatorSet;
use crate::net::{Message, NetCommand};
use crate::store::{CertificateRecord, EndorseGuard};
use crate::time::Clock;
use crate::types::Hash;

/// Heights on either side of the tip whose endorsements are kept.
pub(super) const VOTE_WINDOW_HEIGHTS: u64 = 16;
/// Most heights walked down to find the last certified canonical block.
const CERTIFIED_BASE_WALK_MAX: u64 = 100_000;

/// How endorsements of height `height` are judged: they name its epoch,
/// and the endorsers (the genesis set, `endorsers`) weigh them.
fn vote_context<'a>(
    settings: &BlockSettings,
    endorsers: &'a ValidatorSet,
    height: u64,
) -> Result<VoteContext<'a>, CertificateError> {
    VoteContext::at_height(
        (settings.chain_id, settings.genesis.hash),
        height,
        |h| settings.epoch_rules.epoch_of(h),
        |_| Some(endorsers),
    )
}

impl<C: Clock> BlockThread<C> {
    fn vote_context(&self, height: u64) -> Result<VoteContext<'_>, CertificateError> {
        vote_context(&self.settings, &self.validators, height)
    }

    /// Endorses the tip if this node is one of its endorsers, is caught
    /// up, and has not endorsed it yet; the guard is committed before the
    /// vote is sent.
    pub(super) fn endorse_tip(&mut self) -> Result<(), BlockThreadError> {
        let tip = self.fork_choice.tip();
        if tip.height == 0
            || self.endorsed_tip == Some(tip.hash)
            || self.catch_up.is_some()
            || self.sync.is_behind()
            || self.fork_choice.certified_above_tip().is_some()
        {
            return Ok(());
        }
        let Some(producer) = &self.producer else {
            return Ok(());
        };
        let Ok(context) = self.vote_context(tip.height) else {
            return Ok(());
        };
        let epoch = context.epoch;
        if !context.validators.contains(&producer.identity.public()) {
            return Ok(());
        }
        self.endorsed_tip = Some(tip.hash);
        match self.store.record_endorsement(tip.height, &tip.hash)? {
            EndorseGuard::Recorded | EndorseGuard::AlreadyEndorsed => {}
            EndorseGuard::Conflicts { endorsed } => {
                log::debug!(
                    "not endorsing block {} at height {}: we endorsed {endorsed} there",
                    tip.hash,
                    tip.height
                );
                return Ok(());
            }
        }
        let vote = BlockVote::sign(
            &producer.identity,
            self.settings.chain_id,
            self.settings.genesis.hash,
            epoch,
            tip.height,
            tip.hash,
        );
        self.on_block_vote(None, vote)
    }

    /// Counts a vote (ours when `from` is `None`), relays it once if new
    /// and valid, and acts on a certificate or evidence it completes.
    pub(super) fn on_block_vote(
        &mut self,
        from: Option<NodeId>,
        vote: BlockVote,
    ) -> Result<(), BlockThreadError> {
        let context = match vote_context(&self.settings, &self.validators, vote.height) {
            Ok(context) => context,
            Err(e) => {
                log::debug!("ignored a block vote: {e}");
                return Ok(());
            }
        };
        match self.endorsements.handle_vote(vote.clone(), &context) {
            VoteOutcome::Duplicate | VoteOutcome::Ignored => Ok(()),
            VoteOutcome::Invalid(e) => {
                match from {
                    Some(peer) if e.is_peer_fault() => {
                        log::warn!("refused a block vote from {peer:?}: {e}");
                        self.penalize(peer, "invalid block vote");
                    }
                    _ => log::debug!("ignored a block vote: {e}"),
                }
                Ok(())
            }
            VoteOutcome::Counted {
                certified,
                evidence,
            } => {
                self.broadcast(Message::BlockVote(Box::new(vote)), from);
                if let Some(evidence) = evidence {
                    self.keep_evidence(from, *evidence)?;
                }
                if let Some(certificate) = certified {
                    let weight = certificate.signers_weight(&self.validators);
                    self.on_certified(from, certificate, weight)?;
                }
                Ok(())
            }
        }
    }

    /// Certificates from gossip or sync: each for a height we hold none
    /// of is verified in full, then stored and followed.
    pub(super) fn on_certificates(
        &mut self,
        from: NodeId,
        certificates: Vec<Certificate>,
    ) -> Result<(), BlockThreadError> {
        for certificate in certificates {
            if self
                .store
                .read()?
                .certificate_at(certificate.height)?
                .is_some()
            {
                continue;
            }
            let verified = self
                .vote_context(certificate.height)
                .and_then(|context| certificate.verify(&context));
            match verified {
                Ok(weight) => self.on_certified(Some(from), certificate, weight)?,
                Err(e) if e.is_peer_fault() => {
                    log::warn!("refused a certificate from {from:?}: {e}");
                    self.penalize(from, "invalid certificate");
                    return Ok(());
                }
                Err(e) => log::debug!("ignored a certificate from {from:?}: {e}"),
            }
        }
        Ok(())
    }

    /// Evidence from a peer: verified once, stored, gossiped once.
    pub(super) fn on_evidence(
        &mut self,
        from: NodeId,
        evidence: Equivocation,
    ) -> Result<(), BlockThreadError> {
        let (voter, height) = evidence.key();
        if self.store.read()?.has_evidence(&voter, height)? {
            return Ok(());
        }
        match self
            .vote_context(height)
            .and_then(|context| evidence.verify(&context))
        {
            Ok(()) => self.keep_evidence(Some(from), evidence),
            Err(e) => {
                if e.is_peer_fault() {
                    log::warn!("refused equivocation evidence from {from:?}: {e}");
                    self.penalize(from, "invalid evidence");
                }
                Ok(())
            }
        }
    }

    fn keep_evidence(
        &mut self,
        from: Option<NodeId>,
        evidence: Equivocation,
    ) -> Result<(), BlockThreadError> {
        let (voter, height) = evidence.key();
        if self
            .store
            .put_evidence(&voter, height, &evidence.encode())?
        {
            log::warn!(
                "equivocation: validator {voter:?} endorsed both {} and {} at height {height}; \
                 evidence stored and gossiped",
                evidence.first.hash,
                evidence.second.hash
            );
            self.broadcast(Message::Evidence(Box::new(evidence)), from);
        }
        Ok(())
    }

    /// Stores a verified certificate (one write) and makes its block
    /// final; false if one for its height was held already.
    fn store_certificate(
        &mut self,
        certificate: &Certificate,
        weight: u64,
    ) -> Result<bool, BlockThreadError> {
        let (height, hash) = (certificate.height, certificate.hash);
        let record = CertificateRecord {
            hash,
            weight,
            certificate: certificate.encode(),
        };
        if !self.store.put_certificate(height, &record)? {
            return Ok(false);
        }
        self.endorsements.mark_certified(height, hash);
        self.fork_choice.certify(height, hash);
        Ok(true)
    }

    /// The parent's certificate an adopted block carries (verified with
    /// it): stored if new, so a syncing node's chain becomes final, and
    /// its registry decides the epochs' sets, as it adopts the blocks.
    pub(super) fn keep_carried_certificate(
        &mut self,
        certificate: &Certificate,
    ) -> Result<(), BlockThreadError> {
        let weight = certificate.signers_weight(&self.validators);
        self.store_certificate(certificate, weight).map(|_| ())
    }

    /// A verified certificate: stored once (one write), gossiped once, and
    /// followed if it certifies a block our chain does not hold.
    fn on_certified(
        &mut self,
        from: Option<NodeId>,
        certificate: Certificate,
        weight: u64,
    ) -> Result<(), BlockThreadError> {
        let (height, hash) = (certificate.height, certificate.hash);
        if !self.store_certificate(&certificate, weight)? {
            return Ok(());
        }
        log::info!(
            "block {hash} at height {height} certified: weight {weight} of {} by {} signers",
            self.validators.total_weight(),
            certificate.votes.len()
        );
        self.broadcast(
            Message::Certificates {
                certificates: vec![certificate],
            },
            from,
        );
        self.follow_certified(from, height, hash)
    }

    /// Our chain lacks the certified `hash` at `height`. Above our tip,
    /// sync fetches it (and a branch that does not link is handled by
    /// [`Self::switch_towards_certified`]); if our block there is another,
    /// our uncertified suffix is undone down to the last certified
    /// canonical block and the sender is asked for the blocks above it.
    fn follow_certified(
        &mut self,
        from: Option<NodeId>,
        height: u64,
        hash: Hash,
    ) -> Result<(), BlockThreadError> {
        let ours = self.store.block_hash_at(height)?;
        if ours == Some(hash) {
            return Ok(());
        }
        let Some(peer) = from else {
            return Ok(());
        };
        self.sync.on_peer_height(peer, height);
        if ours.is_none() {
            return Ok(());
        }
        let base = self.certified_base(height)?;
        log::info!(
            "certified block {hash} at height {height} is not ours: switching to its branch \
             from the last certified height {base}"
        );
        self.undo_to(base)?;
        self.sync.on_fork(peer, base.saturating_add(1));
        Ok(())
    }

    /// A block from a peer that does not link while a certified block
    /// above our tip is known: our chain forks from the certified one below
    /// the blocks fork choice keeps, so the uncertified suffix goes and
    /// sync refetches.
    pub(super) fn switch_towards_certified(
        &mut self,
        from: NodeId,
        block_height: u64,
    ) -> Result<bool, BlockThreadError> {
        let Some((height, hash)) = self.fork_choice.certified_above_tip() else {
            return Ok(false);
        };
        if block_height > height {
            return Ok(false);
        }
        let base = self.certified_base(height)?;
        if self.fork_choice.tip().height > base {
            log::info!(
                "block at height {block_height} from {from:?} forks from our chain towards \
                 certified block {hash} at height {height}: undoing to certified height {base}"
            );
            self.undo_to(base)?;
        }
        self.sync.on_fork(from, base.saturating_add(1));
        Ok(true)
    }

    /// The highest height below `height` whose canonical block is certified
    /// (0, the genesis, if none).
    fn certified_base(&self, height: u64) -> Result<u64, BlockThreadError> {
        let read = self.store.read()?;
        let top = height.saturating_sub(1).min(read.tip()?.height);
        let bottom = top.saturating_sub(CERTIFIED_BASE_WALK_MAX);
        for h in (bottom.max(1)..=top).rev() {
            let certified = read.certificate_at(h)?.map(|c| c.hash);
            if certified.is_some() && certified == read.block_hash_at(h)? {
                return Ok(h);
            }
        }
        Ok(0)
    }

    /// Undoes tip blocks (one write each) down to `height`, then reloads
    /// fork choice from the store. A refused undo stops there.
    fn undo_to(&mut self, height: u64) -> Result<(), BlockThreadError> {
        loop {
            let tip = self.store.tip()?;
            if tip.height <= height {
                break;
            }
            if let Err(e) = self.undo(tip.hash) {
                if !super::is_refusal(&e) {
                    return Err(e.into());
                }
                log::error!(
                    "cannot undo block {} towards a certified branch: {e}",
                    tip.hash
                );
                break;
            }
        }
        self.reload_fork_choice()
    }

    /// Sends the certificates of the heights `from..=to` we hold, after a
    /// `Blocks` answer that carried those heights.
    pub(super) fn serve_certificates(
        &self,
        peer: NodeId,
        from: u64,
        to: u64,
    ) -> Result<(), BlockThreadError> {
        let mut certificates = Vec::new();
        let budget = self.settings.max_block_bytes();
        let mut bytes = 0usize;
        {
            let read = self.store.read()?;
            for item in read.scan_certificates_from(from)? {
                let (height, record) = item?;
                bytes = bytes.saturating_add(record.certificate.len());
                if height > to
                    || bytes > budget
                    || certificates.len() >= self.settings.limits.max_blocks_per_message
                {
                    break;
                }
                match Certificate::decode(&record.certificate) {
                    Ok(c) => certificates.push(c),
                    Err(e) => log::warn!("stored certificate at height {height} is damaged: {e}"),
                }
            }
        }
        if !certificates.is_empty() {
            self.send(NetCommand::SendTo(
                peer,
                Message::Certificates { certificates },
            ));
        }
        Ok(())
    }

    /// Sends `msg` to every peer but `from`.
    pub(super) fn broadcast(&self, msg: Message, from: Option<NodeId>) {
        self.send(NetCommand::Broadcast {
            msg,
            skip: from.into_iter().collect(),
        });
    }
}
