//! Checkpoint blocks (DESIGN §6): the VRF lottery, block validity (one test
//! per `BlockRejection`), rewards, slashing evidence (§7), and fork choice
//! among rival candidates.

mod chain_support;
mod consensus_support;

use chain_support::*;
use consensus_support::{CHAIN, COIN, FEE};
use proptest::prelude::*;
use timecoin::chain::fixed_point::ln_q60;
use timecoin::chain::{
    block_reward, build_block, evidence_digest, heartbeats_digest, producing_epoch,
    publish_delay_ms, select_evidence, split_reward, validate_block, Block, BlockRejection,
    BlockSummary, BlockVote, BuildError, Certificate, CertificateError, ChainAction, ChainView,
    Equivocation, ForkChoice, ForkChoiceConfig, ForkChoiceError, Heartbeat, IgnoreReason,
    InvalidEvidence, Placement, SlashingEvidence, Standing, Ticket, ValidBlock, MAX_BLOCK_BYTES,
    MAX_BLOCK_ENTRIES, MAX_BLOCK_EVIDENCE, MAX_BLOCK_HEARTBEATS,
};
use timecoin::crypto::vrf::{verify_slot, SortitionInput, SortitionScore, VrfError, VrfKeypair};
use timecoin::crypto::Keypair;
use timecoin::finality::{
    EvidenceError, ProofError, SignedSpend, ValidatorSet, VoteScope, WindowEquivocation, WindowTree,
};
use timecoin::masternode::{BlockEffects, EpochRules, MemberStatus, Registry};
use timecoin::rpc::archive::apply_final_block;
use timecoin::time::Timestamp;
use timecoin::types::amount::UNITS_PER_TIME;
use timecoin::types::{
    Address, Amount, ChainId, Hash, OutPoint, PublicKeyBytes, Tx, TxOut, Validator, VrfPublicBytes,
};

const NEXT: u64 = GENESIS_SLOT + 1;

fn reject(f: &Fixture, block: Block) -> BlockRejection {
    validate_block(block, &f.chain).unwrap_err()
}

/// A valid block at `NEXT` by validator 0 archiving `n` payments.
fn block_with(f: &Fixture, n: usize) -> Block {
    f.build(0, NEXT, &f.payments(0..n))
}

// ---------------------------------------------------------------- VRF

fn sortition_input() -> SortitionInput {
    SortitionInput {
        chain_id: CHAIN,
        prev_hash: Hash::digest(b"parent"),
        slot: NEXT,
    }
}

#[test]
fn vrf_ticket_verifies_with_its_key_and_input() {
    let key = VrfKeypair::from_seed_label("producer");
    let (output, proof) = key.sign_slot(&sortition_input());
    assert_eq!(
        verify_slot(&key.public(), &sortition_input(), &output, &proof),
        Ok(())
    );
}

#[test]
fn vrf_ticket_fails_for_another_slot_parent_chain_or_key() {
    let key = VrfKeypair::from_seed_label("producer");
    let input = sortition_input();
    let (output, proof) = key.sign_slot(&input);
    let others = [
        SortitionInput {
            slot: input.slot + 1,
            ..input
        },
        SortitionInput {
            prev_hash: Hash::digest(b"other parent"),
            ..input
        },
        SortitionInput {
            chain_id: ChainId(1),
            ..input
        },
    ];
    for other in others {
        assert_eq!(
            verify_slot(&key.public(), &other, &output, &proof),
            Err(VrfError::BadProof),
            "{other:?}"
        );
    }
    let stranger = VrfKeypair::from_seed_label("stranger");
    assert_eq!(
        verify_slot(&stranger.public(), &input, &output, &proof),
        Err(VrfError::BadProof)
    );
    // Another key's valid ticket does not verify as ours either.
    let (their_output, their_proof) = stranger.sign_slot(&input);
    assert_eq!(
        verify_slot(&key.public(), &input, &their_output, &their_proof),
        Err(VrfError::BadProof)
    );
}

// ---------------------------------------------------------------- validity

#[test]
fn built_block_with_entries_is_valid_and_round_trips() {
    let f = Fixture::new(8);
    let block = block_with(&f, 8);
    assert_eq!(block.entries.len(), 8);
    let bytes = block.encode();
    assert_eq!(Block::decode(&bytes, MAX_BLOCK_BYTES).unwrap(), block);
    let valid = f.validate(block.clone());
    assert_eq!(valid.hash(), block.hash());
}

#[test]
fn wrong_version_is_refused() {
    let f = Fixture::new(1);
    let mut block = block_with(&f, 1);
    block.header.version = 2;
    assert_eq!(
        reject(&f, block),
        BlockRejection::WrongVersion {
            found: 2,
            expected: 1
        }
    );
}

#[test]
fn block_of_another_chain_is_refused() {
    let f = Fixture::new(1);
    let mut block = block_with(&f, 1);
    block.header.chain_id = ChainId(1);
    assert_eq!(
        reject(&f, block),
        BlockRejection::WrongChain {
            found: ChainId(1),
            expected: CHAIN
        }
    );
}

#[test]
fn block_not_on_the_tip_is_refused_without_penalty() {
    let f = Fixture::new(1);
    let mut block = block_with(&f, 1);
    block.header.prev_hash = Hash::digest(b"elsewhere");
    let rejection = reject(&f, block);
    assert!(matches!(rejection, BlockRejection::PrevNotTip { .. }));
    assert!(!rejection.is_peer_fault());
}

#[test]
fn height_must_follow_the_parent() {
    let f = Fixture::new(1);
    let mut block = block_with(&f, 1);
    block.header.height = 5;
    assert_eq!(
        reject(&f, block),
        BlockRejection::WrongHeight {
            found: 5,
            expected: 1
        }
    );
}

#[test]
fn slot_must_be_after_the_parents_slot() {
    let f = Fixture::new(1);
    let mut block = block_with(&f, 1);
    block.header.slot = GENESIS_SLOT;
    assert_eq!(
        reject(&f, block),
        BlockRejection::SlotNotAfterParent {
            slot: GENESIS_SLOT,
            parent_slot: GENESIS_SLOT
        }
    );
}

#[test]
fn block_for_a_future_slot_beyond_the_skew_is_refused_until_its_time() {
    let mut f = Fixture::new(1);
    let later = NEXT + 2;
    let block = f.build(0, later, &f.payments(0..1));
    f.chain.now = Timestamp(slot_clock().slot_start_ms(later) - MAX_SKEW_MS - 1);
    let rejection = reject(&f, block.clone());
    assert!(matches!(rejection, BlockRejection::FutureSlot { slot, .. } if slot == later));
    assert!(!rejection.is_peer_fault());
    // Within the skew it is accepted.
    f.chain.now = Timestamp(slot_clock().slot_start_ms(later) - MAX_SKEW_MS);
    f.validate(block);
}

#[test]
fn timestamp_outside_its_slot_is_refused() {
    let f = Fixture::new(1);
    let mut block = block_with(&f, 1);
    block.header.timestamp_ms = slot_clock().slot_start_ms(NEXT) - MAX_SKEW_MS - 1;
    assert!(matches!(
        reject(&f, block),
        BlockRejection::TimestampOutsideSlot { slot: NEXT, .. }
    ));
}

#[test]
fn timestamp_ahead_of_our_clock_beyond_the_skew_is_refused() {
    let f = Fixture::new(1);
    let mut block = block_with(&f, 1);
    // Inside the slot's window, but later than now + skew.
    block.header.timestamp_ms = f.chain.now.as_millis() + MAX_SKEW_MS + 1;
    assert!(matches!(
        reject(&f, block),
        BlockRejection::FutureTimestamp { .. }
    ));
}

#[test]
fn a_block_of_an_undecided_epoch_is_refused_but_not_the_senders_fault() {
    let mut f = Fixture::new(1);
    let block = block_with(&f, 1);
    // Height 1 is epoch 1's, whose set this chain has not decided.
    f.chain.epoch_blocks = 1;
    let rejection = reject(&f, block);
    assert_eq!(rejection, BlockRejection::UnknownValidatorSet { height: 1 });
    assert!(!rejection.is_peer_fault());
}

#[test]
fn producer_outside_the_validator_set_is_refused() {
    let f = Fixture::new(1);
    let mut block = block_with(&f, 1);
    let outsider = Keypair::from_seed_label("outsider").public();
    block.header.producer = outsider;
    assert_eq!(
        reject(&f, block),
        BlockRejection::NotAValidator {
            producer: outsider,
            slot: NEXT
        }
    );
}

#[test]
fn more_entries_than_the_limit_are_refused() {
    let f = Fixture::new(1);
    let mut block = block_with(&f, 1);
    let entry = block.entries[0].clone();
    block.entries = vec![entry; MAX_BLOCK_ENTRIES + 1];
    assert_eq!(
        reject(&f, block),
        BlockRejection::TooManyEntries {
            count: MAX_BLOCK_ENTRIES + 1,
            max: MAX_BLOCK_ENTRIES
        }
    );
}

#[test]
fn block_over_the_byte_limit_is_refused() {
    let f = Fixture::new(1);
    let mut block = block_with(&f, 1);
    let mut fat = block.entries[0].clone();
    fat.tx.outputs = vec![fat.tx.outputs[0]; 1_000];
    let entries = MAX_BLOCK_BYTES / (fat.tx.encoded_len() - 1_000) + 1;
    block.entries = vec![fat; entries];
    assert!(matches!(
        reject(&f, block),
        BlockRejection::TooLarge { bytes, max: MAX_BLOCK_BYTES } if bytes > MAX_BLOCK_BYTES
    ));
}

#[test]
fn unsorted_entries_are_refused() {
    let f = Fixture::new(3);
    let mut block = block_with(&f, 3);
    block.entries.swap(1, 2);
    let txid = block.entries[2].tx.txid();
    assert_eq!(
        reject(&f, block),
        BlockRejection::EntriesNotSorted { index: 2, txid }
    );
}

#[test]
fn duplicate_entries_are_refused_as_unsorted() {
    let f = Fixture::new(2);
    let mut block = block_with(&f, 2);
    block.entries.insert(1, block.entries[0].clone());
    fix_root(&mut block);
    assert!(matches!(
        reject(&f, block),
        BlockRejection::EntriesNotSorted { index: 1, .. }
    ));
}

#[test]
fn entries_root_must_match_the_body() {
    let f = Fixture::new(2);
    let mut block = block_with(&f, 2);
    block.entries.pop();
    assert!(matches!(
        reject(&f, block),
        BlockRejection::EntriesRootMismatch { .. }
    ));
}

#[test]
fn two_entries_spending_one_outpoint_are_refused() {
    let f = Fixture::new(2);
    let mut block = block_with(&f, 2);
    // A conflicting spend of coin 0 (a safety violation elsewhere, but a
    // hostile block may still carry it).
    let rival = f.wallet.pay(0, "someone else");
    let rival_proof = f.validators.proofs(&[rival], GENESIS_SLOT).remove(0);
    block.entries.push(rival_proof);
    block.entries.sort_by_key(|e| e.tx.txid());
    fix_root(&mut block);
    let spends_coin0: Vec<usize> = (0..3)
        .filter(|&i| block.entries[i].tx.inputs[0].prev == f.wallet.coins[0])
        .collect();
    assert_eq!(
        reject(&f, block),
        BlockRejection::ConflictingEntries {
            first: spends_coin0[0],
            second: spends_coin0[1],
            outpoint: f.wallet.coins[0]
        }
    );
}

#[test]
fn entry_archived_by_an_earlier_block_is_refused() {
    let mut f = Fixture::new(2);
    let first = block_with(&f, 1);
    f.chain.apply(&f.validate(first).into_block());
    let again = f.payments(0..2);
    let block = f.build(1, NEXT + 1, &again);
    f.chain.now = slot_start(NEXT + 1);
    let index = block
        .entries
        .iter()
        .position(|e| e.tx.txid() == again[0].txid())
        .unwrap();
    assert_eq!(
        reject(&f, block),
        BlockRejection::AlreadyArchived {
            index,
            txid: again[0].txid()
        }
    );
}

#[test]
fn entry_with_unknown_inputs_has_no_fee_and_is_refused_without_penalty() {
    let f = Fixture::new(1);
    let stray = OutPoint {
        txid: Hash::digest(b"not in our utxo set"),
        vout: 0,
    };
    let tx = f.wallet.spend(stray, COIN, "payee");
    let proofs = f.validators.proofs(std::slice::from_ref(&tx), GENESIS_SLOT);
    let block = build_block(
        &f.chain.template(NEXT),
        &f.validators.vrfs[0],
        &f.validators.ids[0],
        proofs.into_iter().map(|p| (p, FEE)),
    )
    .unwrap();
    let rejection = reject(&f, block);
    assert_eq!(
        rejection,
        BlockRejection::UnknownFee {
            index: 0,
            txid: tx.txid()
        }
    );
    assert!(!rejection.is_peer_fault());
}

#[test]
fn fees_that_overflow_are_refused() {
    let mut f = Fixture::new(1);
    // Our view says the spent coin is worth u64::MAX: its fee overflows the reward.
    let huge = Hash::digest(b"huge coin");
    f.chain.utxos.add_outputs(
        huge,
        &[TxOut {
            value: Amount(u64::MAX),
            address: Address([0; 20]),
        }],
    );
    let tx = f.wallet.spend(
        OutPoint {
            txid: huge,
            vout: 0,
        },
        COIN,
        "payee",
    );
    let proofs = f.validators.proofs(&[tx], GENESIS_SLOT);
    let block = build_block(
        &f.chain.template(NEXT),
        &f.validators.vrfs[0],
        &f.validators.ids[0],
        proofs.into_iter().map(|p| (p, FEE)),
    )
    .unwrap();
    assert_eq!(reject(&f, block), BlockRejection::FeeOverflow);
}

#[test]
fn reward_for_another_height_is_refused() {
    let f = Fixture::new(1);
    let mut block = block_with(&f, 1);
    block.reward.height = 2;
    fix_root(&mut block);
    assert_eq!(
        reject(&f, block),
        BlockRejection::WrongRewardHeight {
            found: 2,
            expected: 1
        }
    );
}

#[test]
fn reward_with_a_wrong_amount_or_split_is_refused() {
    let f = Fixture::new(2);
    let valid = block_with(&f, 2);
    let expected_total = block_reward(4).checked_add(Amount(2 * FEE.0)).unwrap();
    // One unit too many.
    let mut block = valid.clone();
    block.reward.outputs[0].value.0 += 1;
    fix_root(&mut block);
    assert_eq!(
        reject(&f, block),
        BlockRejection::WrongReward {
            found_total: Amount(expected_total.0 + 1),
            found_outputs: 4,
            expected_total,
            expected_outputs: 4,
        }
    );
    // The right total, split wrongly: one unit moved between validators.
    let mut block = valid;
    block.reward.outputs[0].value.0 += 1;
    block.reward.outputs[1].value.0 -= 1;
    fix_root(&mut block);
    assert!(matches!(
        reject(&f, block),
        BlockRejection::WrongReward { found_total, .. } if found_total == expected_total
    ));
}

#[test]
fn tampered_vrf_ticket_is_refused() {
    let f = Fixture::new(1);
    let mut block = block_with(&f, 1);
    let producer = block.header.producer;
    // Another validator's ticket for the same input is valid, but not ours.
    let (output, proof) = f.validators.vrfs[1].sign_slot(&block.header.sortition_input());
    block.header.vrf_output = output;
    block.header.vrf_proof = proof;
    assert_eq!(
        reject(&f, block.clone()),
        BlockRejection::BadVrf {
            producer,
            source: VrfError::BadProof
        }
    );
    // A ticket drawn for another slot does not move to this one.
    let mut block = block_with(&f, 1);
    let other_slot = SortitionInput {
        slot: NEXT + 1,
        ..block.header.sortition_input()
    };
    let (output, proof) = f.validators.vrfs[0].sign_slot(&other_slot);
    block.header.vrf_output = output;
    block.header.vrf_proof = proof;
    assert!(matches!(reject(&f, block), BlockRejection::BadVrf { .. }));
}

#[test]
fn bad_producer_signature_is_refused() {
    let f = Fixture::new(1);
    let mut block = block_with(&f, 1);
    block.producer_sig.0[0] ^= 1;
    assert!(matches!(
        reject(&f, block),
        BlockRejection::BadProducerSignature { .. }
    ));
}

#[test]
fn winning_ticket_cannot_be_reused_with_another_body() {
    // Someone copies validator 0's winning header onto a body of their own
    // and signs it with their key: the header still names validator 0.
    let f = Fixture::new(2);
    let mut block = block_with(&f, 1);
    block.entries = f.validators.proofs(&f.payments(1..2), GENESIS_SLOT);
    let fees = Amount(FEE.0);
    let producer = block.header.producer;
    block.reward = timecoin::chain::expected_reward(1, &producer, &f.chain.set, fees, at_identity)
        .unwrap()
        .unwrap();
    fix_root(&mut block);
    block.sign(&Keypair::from_seed_label("thief"));
    assert!(matches!(
        reject(&f, block),
        BlockRejection::BadProducerSignature { .. }
    ));
}

#[test]
fn short_proof_is_refused_with_its_index_and_txid() {
    let f = Fixture::new(3);
    let mut block = block_with(&f, 3);
    block.entries[1].votes.truncate(1);
    let txid = block.entries[1].tx.txid();
    assert_eq!(
        reject(&f, block),
        BlockRejection::InvalidProof {
            index: 1,
            txid,
            source: ProofError::ShortWeight { have: 10, need: 27 }
        }
    );
}

/// Block 1 on the fixture's chain, applied, and validator 1's block for
/// the next slot carrying `certificate` as its parent's.
fn child_carrying(
    f: &mut Fixture,
    certificate: impl FnOnce(&Fixture, &Block) -> Certificate,
) -> Block {
    let first = block_with(f, 0);
    f.chain.apply(&first);
    f.chain.now = slot_start(NEXT + 1);
    let certificate = certificate(f, &first);
    let mut template = f.chain.template(NEXT + 1);
    template.parent_certificate = Some(&certificate);
    build_block(
        &template,
        &f.validators.vrfs[1],
        &f.validators.ids[1],
        Vec::new(),
    )
    .unwrap()
}

/// Validators `signers`' endorsements of `block`, as a certificate.
fn certificate_by(f: &Fixture, block: &Block, signers: &[usize]) -> Certificate {
    let epoch = f.chain.epoch_of(block.header.height);
    certificate_naming(f, block, signers, epoch)
}

/// [`certificate_by`] with votes that name `epoch`.
fn certificate_naming(f: &Fixture, block: &Block, signers: &[usize], epoch: u64) -> Certificate {
    let mut votes: Vec<BlockVote> = signers
        .iter()
        .map(|&i| {
            BlockVote::sign(
                &f.validators.ids[i],
                CHAIN,
                chain_genesis_hash(),
                epoch,
                block.header.height,
                block.hash(),
            )
        })
        .collect();
    votes.sort_by_key(|v| v.voter);
    Certificate {
        height: block.header.height,
        hash: block.hash(),
        votes,
    }
}

#[test]
fn a_block_carries_its_parents_certificate_and_the_header_commits_to_it() {
    let mut f = Fixture::new(0);
    let block = child_carrying(&mut f, |f, parent| certificate_by(f, parent, &[0, 1, 2]));
    assert_ne!(block.header.parent_certificate, Hash::ZERO);
    let bytes = block.encode();
    assert_eq!(Block::decode(&bytes, MAX_BLOCK_BYTES).unwrap(), block);
    f.validate(block.clone());
    // Stripping (or swapping) the certificate after signing breaks the digest.
    let mut stripped = block;
    stripped.parent_certificate = None;
    assert!(matches!(
        reject(&f, stripped),
        BlockRejection::CertificateDigestMismatch { .. }
    ));
}

#[test]
fn a_carried_certificate_of_another_block_is_refused() {
    let mut f = Fixture::new(0);
    let block = child_carrying(&mut f, |f, parent| {
        let mut other = parent.clone();
        other.header.timestamp_ms += 1;
        certificate_by(f, &other, &[0, 1, 2])
    });
    assert!(matches!(
        reject(&f, block),
        BlockRejection::CertificateNotOfParent { height: 1, .. }
    ));
}

#[test]
fn a_carried_certificate_below_quorum_or_forged_is_refused() {
    let mut f = Fixture::new(0);
    let short = child_carrying(&mut f, |f, parent| certificate_by(f, parent, &[0, 1]));
    let rejection = reject(&f, short);
    assert_eq!(
        rejection,
        BlockRejection::InvalidParentCertificate(CertificateError::InsufficientWeight {
            weight: 20,
            required: 27
        })
    );
    assert!(rejection.is_peer_fault());

    let mut f = Fixture::new(0);
    let forged = child_carrying(&mut f, |f, parent| {
        let mut certificate = certificate_by(f, parent, &[0, 1, 2]);
        certificate.votes[1].sig.0[0] ^= 1;
        certificate
    });
    assert!(matches!(
        reject(&f, forged),
        BlockRejection::InvalidParentCertificate(CertificateError::BadSignature { .. })
    ));
}

/// Validators' set without validator `left`, as an epoch decided it.
fn set_without(f: &Fixture, left: usize) -> ValidatorSet {
    let gone = f.validators.ids[left].public();
    let members = f.validators.set.validators().iter();
    ValidatorSet::new(members.filter(|v| v.id != gone).copied().collect()).unwrap()
}

#[test]
fn a_carried_certificates_votes_name_the_parents_epoch_and_the_genesis_set_weighs_them() {
    // One block per epoch: the parent (height 1) is epoch 1's, which
    // validator 3 left; the child (height 2) is epoch 2's.
    let epoch_chain = |f: &mut Fixture| {
        f.chain.epoch_blocks = 1;
        let later = set_without(f, 3);
        f.chain.epoch_sets = [(1, later.clone()), (2, later)].into();
    };
    let mut f = Fixture::new(0);
    epoch_chain(&mut f);
    let block = child_carrying(&mut f, |f, parent| certificate_by(f, parent, &[0, 1, 2]));
    f.validate(block);

    let mut f = Fixture::new(0);
    epoch_chain(&mut f);
    let genesis_epoch = child_carrying(&mut f, |f, parent| {
        certificate_naming(f, parent, &[0, 1, 2], 0)
    });
    let rejection = reject(&f, genesis_epoch);
    assert!(matches!(
        rejection,
        BlockRejection::InvalidParentCertificate(CertificateError::WrongEpoch {
            found: 0,
            expected: 1,
            ..
        })
    ));
    assert!(rejection.is_peer_fault());

    // Validator 3 left epoch 1's set, but endorses as a genesis member.
    let mut f = Fixture::new(0);
    epoch_chain(&mut f);
    let left = child_carrying(&mut f, |f, parent| certificate_by(f, parent, &[0, 1, 3]));
    f.validate(left);
}

#[test]
fn a_branch_that_cannot_certify_keeps_producing_under_the_last_set_it_decided() {
    let epoch_of = |h: u64| h / 10;
    // Certified through height 9, the end of epoch 0: epoch 2's set is decided.
    assert_eq!(producing_epoch(25, 9, epoch_of), 2);
    // Only through 8 (a partition since): epoch 2 is undecided, however
    // long the branch grows, and it keeps epoch 1's set.
    assert_eq!(producing_epoch(25, 8, epoch_of), 1);
    assert_eq!(producing_epoch(95, 8, epoch_of), 1);
    // A block's own epoch whenever the certified prefix decided it.
    assert_eq!(producing_epoch(5, 0, epoch_of), 0);
    assert_eq!(producing_epoch(15, 0, epoch_of), 1);
    assert_eq!(producing_epoch(55, 39, epoch_of), 5);
    assert_eq!(producing_epoch(65, 39, epoch_of), 5);
}

#[test]
fn a_block_is_produced_and_paid_by_its_own_epochs_set() {
    let mut f = Fixture::new(0);
    let id = |f: &Fixture, i: usize| f.validators.ids[i].public();
    // Built while height 1 is still the genesis set's.
    let by_leaver = f.build(0, NEXT, &[]);
    let by_old_rules = f.build(1, NEXT, &[]);
    // Height 1 opens epoch 1, decided without validator 0, with validator
    // 1 at triple weight and validator 2 paid at the address it registered.
    f.chain.epoch_blocks = 1;
    let (tripled, registered) = (id(&f, 1), Address([7; 20]));
    let stayed = set_without(&f, 0);
    let members = stayed.validators().iter().map(|v| Validator {
        weight: if v.id == tripled {
            3 * v.weight
        } else {
            v.weight
        },
        ..*v
    });
    let epoch_set = ValidatorSet::new(members.collect()).unwrap();
    let paid_there = id(&f, 2);
    f.chain.payouts = timecoin::chain::Payouts::of(&epoch_set, |m| {
        Ok::<_, ()>(if *m == paid_there {
            registered
        } else {
            Address::from_pubkey(m)
        })
    })
    .unwrap();
    f.chain.epoch_sets = [(1, epoch_set.clone())].into();

    assert_eq!(
        reject(&f, by_leaver),
        BlockRejection::NotAValidator {
            producer: id(&f, 0),
            slot: NEXT
        }
    );
    assert!(matches!(
        reject(&f, by_old_rules),
        BlockRejection::WrongReward { .. }
    ));
    let block = f.validate(f.build(1, NEXT, &[])).into_block();
    let total = block_reward(epoch_set.len()).0;
    let pool = total - total / 10;
    let outputs = &block.reward.outputs;
    // Weights 30 + 10 + 10: validator 2's fifth of the pool goes to its
    // payout address, validator 3's to its identity, the rest (its 3/5,
    // the producer's tenth, the dust) to the producer.
    assert_eq!(paid_to_address(outputs, registered), pool / 5);
    assert_eq!(paid_to(outputs, &paid_there), 0);
    assert_eq!(paid_to(outputs, &id(&f, 3)), pool / 5);
    assert_eq!(paid_to(outputs, &id(&f, 0)), 0);
    assert_eq!(paid_to(outputs, &tripled), total - 2 * (pool / 5));
}

#[test]
fn the_registry_credits_only_what_a_block_holds_producer_endorsers_and_voters() {
    let mut f = Fixture::with_weights(&[10, 10, 10, 10, 1], 0);
    let block = child_carrying(&mut f, |f, parent| certificate_by(f, parent, &[0, 2, 3]));
    f.validate(block.clone());
    // Applied as height 10, the first of epoch 1: the producer (validator
    // 1) and the carried certificate's signers (0, 2 and 3) are seen
    // there; validator 4, in neither, is not.
    assert_eq!(last_seen_after(&f, &block), [1, 1, 1, 1, 0]);
}

/// Each validator's `last_seen_epoch` once `block` is applied as height
/// 10, the first of epoch 1 (10-block epochs), after nine empty blocks.
fn last_seen_after(f: &Fixture, block: &Block) -> Vec<u64> {
    let rules = EpochRules::new(10, 2, 3).unwrap();
    let mut registry =
        Registry::genesis(rules, f.validators.set.validators(), |_| Address([0; 20]));
    for height in 1..10 {
        let nothing = BlockEffects {
            height,
            txs: &[],
            signers: &[],
            slashed: &[],
        };
        registry.apply(&nothing).unwrap();
    }
    apply_final_block(&mut registry, 10, block).unwrap();
    f.validators
        .ids
        .iter()
        .map(|id| registry.member(&id.public()).unwrap().last_seen_epoch)
        .collect()
}

// ---------------------------------------------------------------- heartbeats

/// Validator `i`'s heartbeat for `epoch` on this chain.
fn heartbeat(f: &Fixture, i: usize, epoch: u64) -> Heartbeat {
    Heartbeat::sign(&f.validators.ids[i], (CHAIN, chain_genesis_hash()), epoch)
}

/// `block` with its body's heartbeats replaced, committed and signed
/// again, so the rule under test is the one that fires.
fn with_heartbeats(f: &Fixture, mut block: Block, heartbeats: Vec<Heartbeat>) -> Block {
    block.header.heartbeats = heartbeats_digest(&heartbeats);
    block.heartbeats = heartbeats;
    block.sign(&f.validators.ids[0]);
    block
}

#[test]
fn a_block_carries_its_members_heartbeats_and_the_registry_sees_them_live() {
    let f = Fixture::with_weights(&[10, 10, 10, 10, 1], 0);
    // Unsorted, with a repeat: the builder orders and dedups them.
    let offered = [
        heartbeat(&f, 4, 0),
        heartbeat(&f, 3, 0),
        heartbeat(&f, 4, 0),
    ];
    let mut template = f.chain.template(NEXT);
    template.heartbeats = &offered;
    let block = build_block(
        &template,
        &f.validators.vrfs[0],
        &f.validators.ids[0],
        Vec::new(),
    )
    .unwrap();
    assert_eq!(block.heartbeats.len(), 2);
    assert_eq!(
        block.header.heartbeats,
        heartbeats_digest(&block.heartbeats)
    );
    let bytes = block.encode();
    assert_eq!(Block::decode(&bytes, MAX_BLOCK_BYTES).unwrap(), block);
    f.validate(block.clone());

    // Applied as height 10, the first of epoch 1: the producer (0) and
    // the heartbeats' validators (3 and 4) are seen there; 1 and 2 not.
    assert_eq!(last_seen_after(&f, &block), [1, 0, 0, 1, 1]);
}

#[test]
fn heartbeats_must_be_of_the_blocks_epoch_by_its_members_signed_sorted_and_committed() {
    let f = Fixture::with_weights(&[10, 10, 10, 10, 1], 0);
    let block = block_with(&f, 0);
    let valid = |i| heartbeat(&f, i, 0);
    let carrying = |heartbeats| with_heartbeats(&f, block.clone(), heartbeats);
    let mut ascending = vec![valid(1), valid(2), valid(4)];
    ascending.sort_by_key(|h| h.validator);
    f.validate(carrying(ascending.clone()));

    let rejections = [
        reject(&f, carrying(vec![heartbeat(&f, 1, 1)])),
        reject(&f, {
            let stranger = Keypair::from_seed_label("not a member");
            carrying(vec![Heartbeat::sign(
                &stranger,
                (CHAIN, chain_genesis_hash()),
                0,
            )])
        }),
        reject(&f, {
            let mut forged = valid(2);
            forged.sig = valid(3).sig;
            carrying(vec![forged])
        }),
        reject(&f, {
            let other_chain = (ChainId(CHAIN.0 + 1), chain_genesis_hash());
            carrying(vec![Heartbeat::sign(&f.validators.ids[2], other_chain, 0)])
        }),
        reject(&f, carrying(ascending.iter().rev().cloned().collect())),
        reject(&f, carrying(vec![valid(2), valid(2)])),
        reject(&f, {
            let mut block = carrying(ascending.clone());
            block.heartbeats.pop();
            block.sign(&f.validators.ids[0]);
            block
        }),
        reject(&f, carrying(vec![valid(2); MAX_BLOCK_HEARTBEATS + 1])),
    ];
    let expected = [
        "HeartbeatWrongEpoch",
        "HeartbeatNotAMember",
        "BadHeartbeatSignature",
        "BadHeartbeatSignature",
        "HeartbeatsNotSorted",
        "HeartbeatsNotSorted",
        "HeartbeatsDigestMismatch",
        "TooManyHeartbeats",
    ];
    for (rejection, name) in rejections.iter().zip(expected) {
        assert!(
            format!("{rejection:?}").starts_with(name),
            "{name}: {rejection:?}"
        );
        // A stranger may be registered in a block not final at the receiver.
        let fault = name != "HeartbeatNotAMember";
        assert_eq!(rejection.is_peer_fault(), fault, "{rejection:?}");
    }
}

#[test]
fn a_member_dropped_from_the_set_may_carry_a_heartbeat_to_return_unless_slashed() {
    // One block per epoch: height 1 is epoch 1's, whose set dropped
    // validator 3 (inactive), still registered.
    let mut f = Fixture::new(0);
    f.chain.epoch_blocks = 1;
    f.chain.epoch_sets = [(1, set_without(&f, 3))].into();
    let block = |f: &Fixture| with_heartbeats(f, f.build(0, NEXT, &[]), vec![heartbeat(f, 3, 1)]);
    f.validate(block(&f));
    // Slashed, it never returns.
    f.chain.slashed.insert(f.validators.ids[3].public(), 1);
    let rejection = reject(&f, block(&f));
    assert!(
        matches!(
            rejection,
            BlockRejection::HeartbeatNotAMember { index: 0, .. }
        ),
        "{rejection:?}"
    );
}

// ---------------------------------------------------------------- slashing

/// `key`'s two window votes of `scope`'s epoch covering two payments of
/// wallet coin 0 (the fixture needs one coin).
fn window_equivocation(f: &Fixture, key: &Keypair, scope: VoteScope) -> SlashingEvidence {
    let txs: [Tx; 2] = [f.wallet.pay(0, "alice"), f.wallet.pay(0, "bob")];
    let [first, second] = [0, 1].map(|i| {
        let window = WindowTree::sign(key, scope, 1_000 + i as u64, vec![txs[i].txid()]);
        SignedSpend::from_window(&window, txs[i].clone()).unwrap()
    });
    SlashingEvidence::Window(WindowEquivocation { first, second })
}

/// `key`'s endorsements of two different blocks at height 1.
fn endorsement_equivocation(key: &Keypair) -> SlashingEvidence {
    let [first, second] = [b"one", b"two"]
        .map(|salt| BlockVote::sign(key, CHAIN, chain_genesis_hash(), 0, 1, Hash::digest(salt)));
    SlashingEvidence::Endorsement(Equivocation { first, second })
}

/// Validator `i`'s window equivocation on this chain.
fn caught(f: &Fixture, i: usize) -> SlashingEvidence {
    window_equivocation(f, &f.validators.ids[i], f.validators.vote_scope())
}

/// Validator 0's block for the slot after the tip's carrying `evidence`
/// (the chain's clock must have reached that slot).
fn block_carrying(f: &Fixture, evidence: &[SlashingEvidence]) -> Block {
    let slot = f.chain.tip().slot + 1;
    let mut template = f.chain.template(slot);
    template.evidence = evidence;
    build_block(
        &template,
        &f.validators.vrfs[0],
        &f.validators.ids[0],
        Vec::new(),
    )
    .unwrap()
}

/// `block` with its body's evidence replaced, committed and signed again,
/// so the rule under test is the one that fires.
fn with_evidence(f: &Fixture, mut block: Block, evidence: Vec<SlashingEvidence>) -> Block {
    block.header.evidence = evidence_digest(&evidence);
    block.evidence = evidence;
    block.sign(&f.validators.ids[0]);
    block
}

#[test]
fn a_block_carrying_evidence_slashes_the_offender_and_its_effective_epoch_drops_it() {
    let mut f = Fixture::new(1);
    let evidence = [
        caught(&f, 3),
        endorsement_equivocation(&f.validators.ids[2]),
    ];
    let block = block_carrying(&f, &evidence);
    assert_eq!(block.evidence.len(), 2);
    assert_ne!(block.header.evidence, Hash::ZERO);
    let bytes = block.encode();
    assert_eq!(Block::decode(&bytes, MAX_BLOCK_BYTES).unwrap(), block);
    f.validate(block.clone());

    // Final at height 1 (epoch 0): both leave from epoch 2, decided when
    // epoch 0 ends, though they keep signing; the others stay.
    let rules = EpochRules::new(10, 2, 3).unwrap();
    let mut registry =
        Registry::genesis(rules, f.validators.set.validators(), |_| Address([0; 20]));
    let applied = apply_final_block(&mut registry, 1, &block).unwrap();
    assert_eq!(
        applied.changed.len(),
        4,
        "the first step stores every member"
    );
    let ids: Vec<PublicKeyBytes> = f.validators.ids.iter().map(|k| k.public()).collect();
    for offender in [ids[2], ids[3]] {
        let member = registry.member(&offender).unwrap();
        assert_eq!(member.status, MemberStatus::Slashed { height: 1 });
        assert_eq!(member.leaves_at(registry.rules()), Some(2));
        assert_eq!(
            registry.standing(&offender, 1),
            Standing::Slashed { height: 1 }
        );
        assert_eq!(registry.standing(&offender, 0), Standing::Member);
    }
    assert!(registry
        .latest()
        .members
        .iter()
        .any(|m| m.validator.id == ids[3]));
    let mut decided = Vec::new();
    for height in 2..10 {
        let everyone = BlockEffects {
            height,
            txs: &[],
            signers: &ids,
            slashed: &[],
        };
        decided.extend(registry.apply(&everyone).unwrap().snapshot);
    }
    let set: Vec<PublicKeyBytes> = decided[0].members.iter().map(|m| m.validator.id).collect();
    assert_eq!((decided[0].epoch, set), (2, vec![ids[0], ids[1]]));

    // The chain itself knows them slashed from that block on: the producer
    // selects nothing more against them.
    f.chain.apply(&block);
    let again = select_evidence(evidence.to_vec(), &f.chain, |v| {
        v.verify_signature().is_ok()
    });
    assert_eq!(again, Ok(Vec::new()));
}

#[test]
fn the_header_commits_to_the_evidence() {
    let f = Fixture::new(1);
    let block = block_carrying(&f, &[caught(&f, 1)]);
    let mut stripped = block.clone();
    stripped.evidence.clear();
    assert!(matches!(
        reject(&f, stripped),
        BlockRejection::EvidenceDigestMismatch { .. }
    ));
    let mut smuggled = block_carrying(&f, &[]);
    assert_eq!(smuggled.header.evidence, Hash::ZERO);
    smuggled.evidence = block.evidence;
    let rejection = reject(&f, smuggled);
    assert!(
        matches!(rejection, BlockRejection::EvidenceDigestMismatch { found, .. } if found == Hash::ZERO)
    );
    assert!(rejection.is_peer_fault());
}

#[test]
fn forged_or_unproving_evidence_is_refused() {
    let f = Fixture::new(1);
    let SlashingEvidence::Window(mut forged) = caught(&f, 1) else {
        unreachable!()
    };
    forged.second.vote.sig.0[0] ^= 1;
    let rejection = reject(&f, block_carrying(&f, &[SlashingEvidence::Window(forged)]));
    assert_eq!(
        rejection,
        BlockRejection::InvalidEvidence {
            index: 0,
            offender: f.validators.ids[1].public(),
            source: InvalidEvidence::Window(EvidenceError::BadSignature(
                f.validators.ids[1].public()
            )),
        }
    );
    assert!(rejection.is_peer_fault());

    // Two endorsements of one block prove nothing.
    let key = &f.validators.ids[2];
    let vote = BlockVote::sign(key, CHAIN, chain_genesis_hash(), 0, 1, Hash::digest(b"one"));
    let same = SlashingEvidence::Endorsement(Equivocation {
        first: vote.clone(),
        second: vote,
    });
    assert!(matches!(
        reject(&f, block_carrying(&f, &[same])),
        BlockRejection::InvalidEvidence {
            source: InvalidEvidence::Endorsement(CertificateError::NotConflicting),
            ..
        }
    ));

    // Votes of an epoch whose set is not decided here: not the sender's fault.
    let scope = VoteScope {
        epoch: 5,
        ..f.validators.vote_scope()
    };
    let early = window_equivocation(&f, &f.validators.ids[1], scope);
    let rejection = reject(&f, block_carrying(&f, &[early]));
    assert!(matches!(
        rejection,
        BlockRejection::InvalidEvidence {
            source: InvalidEvidence::Window(EvidenceError::UnknownEpoch(5)),
            ..
        }
    ));
    assert!(!rejection.is_peer_fault());
}

#[test]
fn evidence_against_a_non_member_or_an_already_slashed_member_is_refused() {
    let mut f = Fixture::new(1);
    let outsider = Keypair::from_seed_label("not a masternode");
    let scope = f.validators.vote_scope();
    let against_outsider = window_equivocation(&f, &outsider, scope);
    let rejection = reject(&f, block_carrying(&f, &[against_outsider]));
    assert_eq!(
        rejection,
        BlockRejection::OffenderNotAMember {
            index: 0,
            offender: outsider.public()
        }
    );
    // Its registration may be in a block not final here yet.
    assert!(!rejection.is_peer_fault());

    let first = block_carrying(&f, &[caught(&f, 2)]);
    f.chain.apply(&f.validate(first).into_block());
    f.chain.now = slot_start(NEXT + 1);
    // Other evidence against the same offender, in a later block.
    let again = endorsement_equivocation(&f.validators.ids[2]);
    let rejection = reject(&f, block_carrying(&f, &[again]));
    assert_eq!(
        rejection,
        BlockRejection::OffenderAlreadySlashed {
            index: 0,
            offender: f.validators.ids[2].public(),
            height: 1
        }
    );
    assert!(rejection.is_peer_fault());
}

#[test]
fn evidence_must_be_one_piece_per_offender_ascending() {
    let f = Fixture::new(1);
    let one = caught(&f, 1);
    let two = endorsement_equivocation(&f.validators.ids[1]);
    // The builder keeps one piece per offender.
    let block = block_carrying(&f, &[one.clone(), two.clone()]);
    assert_eq!(block.evidence, std::slice::from_ref(&one));
    let offender = one.offender();
    let doubled = with_evidence(&f, block.clone(), vec![one.clone(), one.clone()]);
    assert_eq!(
        reject(&f, doubled),
        BlockRejection::DuplicateEvidence { index: 1, offender }
    );
    let twice = with_evidence(&f, block.clone(), vec![one, two]);
    assert_eq!(
        reject(&f, twice),
        BlockRejection::DuplicateEvidence { index: 1, offender }
    );

    let mut pieces = vec![caught(&f, 2), caught(&f, 3)];
    pieces.sort_by_key(|e| std::cmp::Reverse(e.offender()));
    let low = pieces[1].offender();
    let unsorted = with_evidence(&f, block, pieces);
    assert_eq!(
        reject(&f, unsorted),
        BlockRejection::EvidenceNotSorted {
            index: 1,
            offender: low
        }
    );
}

#[test]
fn evidence_beyond_the_block_limits_is_refused() {
    let f = Fixture::new(1);
    let block = block_carrying(&f, &[]);
    // Counted before anything is verified: offenders need not be members.
    let mut many: Vec<SlashingEvidence> = (0..=MAX_BLOCK_EVIDENCE)
        .map(|i| endorsement_equivocation(&Keypair::from_seed_label(&format!("crowd {i}"))))
        .collect();
    many.sort_by_key(|e| e.offender());
    assert_eq!(
        reject(&f, with_evidence(&f, block.clone(), many)),
        BlockRejection::TooMuchEvidence {
            count: MAX_BLOCK_EVIDENCE + 1,
            max: MAX_BLOCK_EVIDENCE
        }
    );

    // Two pieces whose transactions are near the hard size limit.
    let bulky = |i: u8| {
        let key = Keypair::from_seed_label(&format!("bulky {i}"));
        let SlashingEvidence::Window(mut e) = caught(&f, 1) else {
            unreachable!()
        };
        for side in [&mut e.first, &mut e.second] {
            let out = side.tx.outputs[0];
            side.tx.outputs = vec![out; 30_000];
        }
        e.first.vote.voter = key.public();
        e.second.vote.voter = key.public();
        SlashingEvidence::Window(e)
    };
    let mut large = vec![bulky(1), bulky(2)];
    large.sort_by_key(|e| e.offender());
    assert!(matches!(
        reject(&f, with_evidence(&f, block, large)),
        BlockRejection::EvidenceTooLarge { .. }
    ));
}

#[test]
fn proof_with_a_forged_vote_is_refused() {
    let f = Fixture::new(2);
    let mut block = block_with(&f, 2);
    block.entries[0].votes[2].0.sig.0[0] ^= 1;
    assert!(matches!(
        reject(&f, block),
        BlockRejection::InvalidProof {
            index: 0,
            source: ProofError::BadSignature { index: 2, .. },
            ..
        }
    ));
}

#[test]
fn cached_vote_check_skips_verified_votes() {
    let f = Fixture::new(2);
    let mut block = block_with(&f, 2);
    block.entries[0].votes[2].0.sig.0[0] ^= 1;
    // A cache that vouches for every vote accepts the forged one: the cache
    // must only hold votes that were verified.
    let mut asked = 0;
    timecoin::chain::validate_block_with(block, &f.chain, |_| {
        asked += 1;
        true
    })
    .unwrap();
    assert_eq!(asked, 2 * 3);
}

#[test]
fn a_proof_held_byte_for_byte_is_not_checked_again_another_is() {
    let mut f = Fixture::new(2);
    let block = block_with(&f, 2);
    let held = block.entries[0].clone();
    f.chain.held_proofs.insert(held.tx.txid(), held.clone());
    let mut asked = 0;
    timecoin::chain::validate_block_with(block.clone(), &f.chain, |v| {
        asked += 1;
        v.verify_signature().is_ok()
    })
    .unwrap();
    // Only the second entry's three votes were checked.
    assert_eq!(asked, 3);
    // Held for that txid, but not this proof: checked (and refused).
    let mut forged = block;
    forged.entries[0].votes[2].0.sig.0[0] ^= 1;
    let err =
        timecoin::chain::validate_block_with(forged, &f.chain, |v| v.verify_signature().is_ok())
            .unwrap_err();
    assert!(matches!(err, BlockRejection::InvalidProof { index: 0, .. }));
}

// ---------------------------------------------------------------- builder

#[test]
fn builder_takes_lowest_txids_first_and_skips_conflicts() {
    let f = Fixture::new(5);
    let mut txs = f.payments(0..5);
    txs.push(f.wallet.pay(0, "double spend"));
    let block = f.build(0, NEXT, &txs);
    let txids: Vec<Hash> = block.entries.iter().map(|e| e.tx.txid()).collect();
    assert_eq!(txids.len(), 5);
    assert!(txids.windows(2).all(|w| w[0] < w[1]));
    let first_of_coin0 = [txs[0].txid(), txs[5].txid()].into_iter().min().unwrap();
    assert!(txids.contains(&first_of_coin0));
    f.validate(block);
}

#[test]
fn builder_respects_the_byte_budget() {
    let f = Fixture::new(20);
    let mut template = f.chain.template(NEXT);
    let full = f.build(0, NEXT, &f.payments(0..20));
    template.max_block_bytes = full.encoded_len() - 1;
    let block = build_block(
        &template,
        &f.validators.vrfs[0],
        &f.validators.ids[0],
        f.finalized(&f.payments(0..20)),
    )
    .unwrap();
    assert_eq!(block.entries.len(), 19);
    assert!(block.encoded_len() <= template.max_block_bytes);
    assert_eq!(block.entries[..], full.entries[..19]);
    f.validate(block);
}

#[test]
fn builder_refuses_a_non_validator_or_a_foreign_vrf_key() {
    let f = Fixture::new(1);
    let template = f.chain.template(NEXT);
    let outsider = Keypair::from_seed_label("outsider");
    assert_eq!(
        build_block(&template, &f.validators.vrfs[0], &outsider, vec![]),
        Err(BuildError::NotAValidator { slot: NEXT })
    );
    assert_eq!(
        build_block(
            &template,
            &f.validators.vrfs[1],
            &f.validators.ids[0],
            vec![]
        ),
        Err(BuildError::WrongVrfKey)
    );
}

#[test]
fn best_possible_ticket_publishes_at_once() {
    let f = Fixture::new(0);
    let set = &f.validators.set;
    let id = f.validators.ids[0].public();
    let best = Ticket::new(SortitionScore([0; 32]), &id, set);
    let worst = Ticket::new(SortitionScore([0xff; 32]), &id, set);
    assert_eq!(publish_delay_ms(&best, set, 100, 60_000), 0);
    assert_eq!(
        publish_delay_ms(&worst, set, 100, 60_000),
        set.len() as u64 * 100 - 1,
        "the worst ticket waits until just before the last rank's turn ends"
    );
}

// ---------------------------------------------------------------- rewards

#[test]
fn integer_ln_reward_matches_f64_within_one_unit() {
    for n in 1..=10_000usize {
        let exact = 100.0 * UNITS_PER_TIME as f64 * (1.0 + (n as f64).ln());
        let ours = block_reward(n).units() as f64;
        assert!(
            (ours - exact.floor()).abs() <= 1.0,
            "N={n}: {ours} vs {exact}"
        );
    }
    // ln itself, in Q.60, against f64 over a wider range.
    for n in [3u64, 10, 1_000_003, u32::MAX as u64, u64::MAX] {
        let ours = ln_q60(n) as f64 / (1u128 << 60) as f64;
        assert!((ours - (n as f64).ln()).abs() < 1e-12, "ln {n}");
    }
}

fn set_of(weights: &[u64]) -> ValidatorSet {
    ValidatorSet::new(
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Validator {
                id: PublicKeyBytes(*Hash::digest(&(i as u64).to_le_bytes()).as_bytes()),
                vrf_key: VrfPublicBytes([0; 32]),
                weight,
            })
            .collect(),
    )
    .unwrap()
}

/// The genesis members' payout: their identity's address.
fn at_identity(id: &PublicKeyBytes) -> Result<Address, std::convert::Infallible> {
    Ok(Address::from_pubkey(id))
}

fn split(total: u64, producer: &PublicKeyBytes, set: &ValidatorSet) -> Vec<TxOut> {
    split_reward(Amount(total), producer, set, at_identity).unwrap()
}

fn paid_to(outputs: &[TxOut], id: &PublicKeyBytes) -> u64 {
    paid_to_address(outputs, Address::from_pubkey(id))
}

fn paid_to_address(outputs: &[TxOut], address: Address) -> u64 {
    outputs
        .iter()
        .filter(|o| o.address == address)
        .map(|o| o.value.0)
        .sum()
}

#[test]
fn split_pays_producer_a_tenth_plus_dust_and_the_rest_by_weight() {
    let set = set_of(&[1, 1, 1]);
    let ids: Vec<PublicKeyBytes> = set.validators().iter().map(|v| v.id).collect();
    // 1000 units: producer 100; pool 900 → 300 each; no dust.
    let outputs = split(1_000, &ids[0], &set);
    assert_eq!(paid_to(&outputs, &ids[0]), 400);
    assert_eq!(paid_to(&outputs, &ids[1]), 300);
    // 1001 units: producer 100; pool 901 → 300 each, dust 1 to the producer.
    let outputs = split(1_001, &ids[2], &set);
    assert_eq!(paid_to(&outputs, &ids[2]), 100 + 300 + 1);
    assert_eq!(paid_to(&outputs, &ids[0]), 300);
    // One output per address, ascending, no zero outputs.
    assert_eq!(outputs.len(), 3);
    assert!(outputs.windows(2).all(|w| w[0].address < w[1].address));
    // 2 units: nobody's floor reaches 1; the dust is the producer's, and no
    // zero outputs are written.
    let tiny = split(2, &ids[0], &set);
    assert_eq!(
        tiny,
        vec![TxOut {
            value: Amount(2),
            address: Address::from_pubkey(&ids[0])
        }]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn split_always_sums_to_the_total(
        weights in prop::collection::vec(1u64..1_000_000, 1..50),
        total in 0u64..u64::MAX / 2,
        producer in 0usize..50,
    ) {
        let set = set_of(&weights);
        let producer = set.validators()[producer % weights.len()].id;
        let outputs = split(total, &producer, &set);
        prop_assert_eq!(outputs.iter().map(|o| o.value.0 as u128).sum::<u128>(), total as u128);
        prop_assert!(outputs.iter().all(|o| o.value.0 > 0));
        prop_assert!(outputs.windows(2).all(|w| w[0].address < w[1].address));
        prop_assert!(paid_to(&outputs, &producer) >= total / 10);
    }
}

// ---------------------------------------------------------------- fork choice

/// Uncertified blocks kept above the last final one (a small number, so
/// the memory bound shows within a short test).
const MAX_UNCERTIFIED: u64 = 8;
/// Slots after which the old rule refused any rival.
const OLD_SWITCH_WINDOW: u64 = 3;

fn fork_choice(f: &Fixture) -> ForkChoice {
    let config = ForkChoiceConfig::new(slot_clock(), MAX_UNCERTIFIED).unwrap();
    ForkChoice::new(config, [f.chain.genesis_summary()]).unwrap()
}

/// Each validator's candidate for `slot` on the current tip, validated.
fn candidates(f: &Fixture, slot: u64) -> Vec<ValidBlock> {
    (0..f.validators.ids.len())
        .map(|v| f.validate(f.build(v, slot, &f.payments(0..2))))
        .collect()
}

fn best_of(blocks: &[ValidBlock]) -> Hash {
    blocks
        .iter()
        .min_by_key(|b| (b.ticket(), b.hash()))
        .unwrap()
        .hash()
}

/// Applies fork-choice actions to a stack of block hashes, as a store would.
fn perform(stack: &mut Vec<Hash>, actions: &[ChainAction]) {
    for action in actions {
        match action {
            ChainAction::Undo(hash) => assert_eq!(stack.pop(), Some(*hash)),
            ChainAction::Apply(block) => stack.push(block.hash()),
            ChainAction::Announce(_) | ChainAction::Ignore(_) => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn rivals_resolve_to_the_lowest_vrf_score_in_any_arrival_order(
        order in Just((0..4usize).collect::<Vec<_>>()).prop_shuffle()
    ) {
        let f = Fixture::new(2);
        let blocks = candidates(&f, NEXT);
        let mut fc = fork_choice(&f);
        let mut stack = vec![f.chain.tip().hash];
        for &i in &order {
            perform(&mut stack, &fc.handle_block(slot_start(NEXT), blocks[i].clone()));
        }
        prop_assert_eq!(fc.tip().hash, best_of(&blocks));
        prop_assert_eq!(stack, vec![f.chain.tip().hash, best_of(&blocks)]);
    }
}

#[test]
fn equal_tickets_resolve_to_the_lowest_block_hash() {
    // One producer, two bodies for the same slot: same ticket, different hashes.
    let f = Fixture::new(2);
    let a = f.validate(f.build(0, NEXT, &f.payments(0..1)));
    let b = f.validate(f.build(0, NEXT, &f.payments(0..2)));
    assert_eq!(a.ticket(), b.ticket());
    let lowest = a.hash().min(b.hash());
    for pair in [[a.clone(), b.clone()], [b, a]] {
        let mut fc = fork_choice(&f);
        for block in pair {
            let _ = fc.handle_block(slot_start(NEXT), block);
        }
        assert_eq!(fc.tip().hash, lowest);
    }
}

/// Two candidates for `NEXT`, worse first.
fn worse_and_better(f: &Fixture) -> (ValidBlock, ValidBlock) {
    let mut blocks = candidates(f, NEXT);
    blocks.sort_by_key(|b| (b.ticket(), b.hash()));
    let better = blocks.remove(0);
    (blocks.pop().unwrap(), better)
}

#[test]
fn better_rival_undoes_exactly_the_worse_block() {
    let f = Fixture::new(2);
    let (worse, better) = worse_and_better(&f);
    let mut fc = fork_choice(&f);
    let actions = fc.handle_block(slot_start(NEXT), worse.clone());
    assert_eq!(
        actions,
        vec![
            ChainAction::Apply(Box::new(worse.clone())),
            ChainAction::Announce(worse.hash())
        ]
    );
    let now = slot_start(NEXT + OLD_SWITCH_WINDOW);
    assert_eq!(
        fc.place(&better.block().header, Some(&f.validators.set)),
        Ok(Placement::Replaces {
            parent: f.chain.tip(),
            rival: worse.hash()
        })
    );
    let actions = fc.handle_block(now, better.clone());
    assert_eq!(
        actions,
        vec![
            ChainAction::Undo(worse.hash()),
            ChainAction::Apply(Box::new(better.clone())),
            ChainAction::Announce(better.hash())
        ]
    );
    // The worse block, arriving again, is not better than the held one.
    assert_eq!(
        fc.handle_block(now, worse),
        vec![ChainAction::Ignore(IgnoreReason::NotBetter {
            held: better.hash()
        })]
    );
}

/// `block` is ignored for `reason`, by `place` and `handle_block` alike.
fn assert_ignored(fc: &mut ForkChoice, f: &Fixture, block: ValidBlock, reason: IgnoreReason) {
    let header = &block.block().header;
    assert_eq!(fc.place(header, Some(&f.validators.set)), Err(reason));
    assert_eq!(
        fc.handle_block(slot_start(NEXT), block),
        vec![ChainAction::Ignore(reason)]
    );
}

#[test]
fn a_certified_block_is_never_undone_by_a_better_rival() {
    let f = Fixture::new(2);
    let (worse, better) = worse_and_better(&f);
    let mut fc = fork_choice(&f);
    let _ = fc.handle_block(slot_start(NEXT), worse.clone());
    fc.certify(worse.block().header.height, worse.hash());
    assert_eq!(fc.final_height(), worse.block().header.height);
    let expected = IgnoreReason::Certified {
        held: worse.hash(),
        height: worse.block().header.height,
    };
    assert_ignored(&mut fc, &f, better, expected);
    assert_eq!(fc.tip().hash, worse.hash());
}

#[test]
fn a_certified_rival_replaces_a_better_ranked_block() {
    let f = Fixture::new(2);
    let (worse, better) = worse_and_better(&f);
    let mut fc = fork_choice(&f);
    let _ = fc.handle_block(slot_start(NEXT), better.clone());
    // The network certified the worse-ranked block: it wins, however late.
    fc.certify(worse.block().header.height, worse.hash());
    let late = slot_start(NEXT + OLD_SWITCH_WINDOW + 5);
    assert_eq!(
        fc.handle_block(late, worse.clone()),
        vec![
            ChainAction::Undo(better.hash()),
            ChainAction::Apply(Box::new(worse.clone())),
            ChainAction::Announce(worse.hash())
        ]
    );
    assert_eq!(fc.final_height(), worse.block().header.height);
}

#[test]
fn a_rival_of_a_certified_block_is_ignored_and_certified_blocks_above_the_tip_are_known() {
    let f = Fixture::new(2);
    let (worse, better) = worse_and_better(&f);
    let mut fc = fork_choice(&f);
    let _ = fc.handle_block(slot_start(NEXT), worse.clone());
    let elsewhere = Hash::digest(b"certified elsewhere");
    fc.certify(worse.block().header.height, elsewhere);
    assert_eq!(
        fc.place(&better.block().header, Some(&f.validators.set)),
        Err(IgnoreReason::ConflictsWithCertified {
            hash: better.hash(),
            height: better.block().header.height,
            certified: elsewhere,
        })
    );
    assert_eq!(fc.final_height(), 0, "our block is not the certified one");
    assert_eq!(fc.certified_above_tip(), None);
    fc.certify(9, elsewhere);
    assert_eq!(fc.certified_above_tip(), Some((9, elsewhere)));
}

#[test]
fn a_rival_of_a_block_certified_before_it_arrived_is_refused_even_on_the_tip() {
    // The votes certifying a block can reach a node before the block does.
    let f = Fixture::new(2);
    let (worse, better) = worse_and_better(&f);
    let mut fc = fork_choice(&f);
    fc.certify(worse.block().header.height, worse.hash());
    let expected = IgnoreReason::ConflictsWithCertified {
        hash: better.hash(),
        height: better.block().header.height,
        certified: worse.hash(),
    };
    assert_ignored(&mut fc, &f, better, expected);
    let _ = fc.handle_block(slot_start(NEXT), worse.clone());
    assert_eq!(fc.tip().hash, worse.hash());
    assert_eq!(fc.final_height(), worse.block().header.height);
}

#[test]
fn switch_undoes_the_descendants_of_the_worse_block_too() {
    let mut f = Fixture::new(2);
    let (worse, better) = worse_and_better(&f);
    let mut fc = fork_choice(&f);
    let _ = fc.handle_block(slot_start(NEXT), worse.clone());
    f.chain.apply(worse.block());
    f.chain.now = slot_start(NEXT + 1);
    let child = f.validate(f.build(0, NEXT + 1, &[]));
    let _ = fc.handle_block(slot_start(NEXT + 1), child.clone());
    let actions = fc.handle_block(slot_start(NEXT + 1), better.clone());
    assert_eq!(
        actions,
        vec![
            ChainAction::Undo(child.hash()),
            ChainAction::Undo(worse.hash()),
            ChainAction::Apply(Box::new(better.clone())),
            ChainAction::Announce(better.hash())
        ]
    );
}

#[test]
fn late_block_for_a_skipped_slot_displaces_its_successor() {
    // Both build on the genesis; the block for the earlier slot arrives last.
    let mut f = Fixture::new(2);
    let early = f.validate(f.build(0, NEXT, &[]));
    f.chain.now = slot_start(NEXT + 1);
    let successor = f.validate(f.build(1, NEXT + 1, &[]));
    let mut fc = fork_choice(&f);
    let _ = fc.handle_block(slot_start(NEXT + 1), successor.clone());
    assert_eq!(
        fc.handle_block(slot_start(NEXT + 1), early.clone()),
        vec![
            ChainAction::Undo(successor.hash()),
            ChainAction::Apply(Box::new(early.clone())),
            ChainAction::Announce(early.hash())
        ]
    );
}

#[test]
fn a_better_rival_replaces_an_uncertified_block_however_late_it_arrives() {
    let f = Fixture::new(2);
    let (worse, better) = worse_and_better(&f);
    let mut fc = fork_choice(&f);
    let _ = fc.handle_block(slot_start(NEXT), worse.clone());
    let late = slot_start(NEXT + 100 * OLD_SWITCH_WINDOW);
    assert_eq!(
        fc.handle_block(late, better.clone()),
        vec![
            ChainAction::Undo(worse.hash()),
            ChainAction::Apply(Box::new(better.clone())),
            ChainAction::Announce(better.hash())
        ]
    );
}

/// `len` empty blocks by `producer` on the genesis, one per slot from NEXT.
fn branch(f: &mut Fixture, producer: usize, len: u64) -> Vec<ValidBlock> {
    f.chain.tips.truncate(1);
    (NEXT..NEXT + len)
        .map(|slot| {
            f.chain.now = slot_start(slot);
            let block = f.validate(f.build(producer, slot, &[]));
            f.chain.apply(block.block());
            block
        })
        .collect()
}

/// Feeds `first` then `second` to a fresh fork choice, long after their
/// slots (as after a partition heals); returns the tip and the store's stack.
fn heal(f: &Fixture, first: &[ValidBlock], second: &[ValidBlock]) -> (Hash, Vec<Hash>) {
    let mut fc = fork_choice(f);
    let mut stack = vec![f.chain.tips[0].hash];
    let late = slot_start(NEXT + 1_000);
    for block in first.iter().chain(second) {
        perform(&mut stack, &fc.handle_block(late, block.clone()));
    }
    assert_eq!(fc.tip().hash, *stack.last().unwrap());
    (fc.tip().hash, stack)
}

#[test]
fn two_partitioned_branches_converge_in_either_order_however_long_they_grew() {
    // Each side of a 2|2 split built its own branch on the last final block
    // (the genesis here); after the heal both sides see both branches.
    let mut f = Fixture::new(0);
    let a = branch(&mut f, 0, 6);
    let b = branch(&mut f, 1, 5);
    let winner = if a[0].ticket() < b[0].ticket() {
        &a
    } else {
        &b
    };
    let (tip_ab, stack_ab) = heal(&f, &a, &b);
    let (tip_ba, stack_ba) = heal(&f, &b, &a);
    assert_eq!(tip_ab, winner.last().unwrap().hash());
    assert_eq!(tip_ab, tip_ba);
    assert_eq!(stack_ab, stack_ba);
    assert_eq!(stack_ab.len(), winner.len() + 1);
}

#[test]
fn a_rival_beside_a_certified_block_is_refused_however_good() {
    let mut f = Fixture::new(0);
    let a = branch(&mut f, 0, 3);
    let b = branch(&mut f, 1, 3);
    let (loser, winner) = if a[0].ticket() < b[0].ticket() {
        (&b, &a)
    } else {
        (&a, &b)
    };
    let mut fc = fork_choice(&f);
    let late = slot_start(NEXT + 1_000);
    for block in loser {
        let _ = fc.handle_block(late, block.clone());
    }
    fc.certify(2, loser[1].hash());
    assert_eq!(fc.final_height(), 2);
    assert_eq!(fc.oldest_switchable(), 3);
    assert_eq!(
        fc.handle_block(late, winner[0].clone()),
        vec![ChainAction::Ignore(IgnoreReason::UnknownParent {
            prev_hash: f.chain.tips[0].hash
        })]
    );
    assert_eq!(fc.tip().hash, loser[2].hash());
}

#[test]
fn block_on_an_unknown_parent_is_ignored() {
    let mut f = Fixture::new(2);
    let first = f.validate(f.build(0, NEXT, &[]));
    f.chain.apply(first.block());
    f.chain.now = slot_start(NEXT + 1);
    let orphan = f.validate(f.build(0, NEXT + 1, &[]));
    let mut fc = fork_choice(&f);
    assert_eq!(
        fc.handle_block(slot_start(NEXT + 1), orphan),
        vec![ChainAction::Ignore(IgnoreReason::UnknownParent {
            prev_hash: first.hash()
        })]
    );
}

#[test]
fn fork_choice_memory_stays_bounded_over_many_slots() {
    let mut f = Fixture::new(0);
    let mut fc = fork_choice(&f);
    for slot in NEXT..NEXT + 20 {
        f.chain.now = slot_start(slot);
        let block = f.validate(f.build((slot % 4) as usize, slot, &[]));
        f.chain.apply(block.block());
        let actions = fc.handle_block(slot_start(slot), block);
        assert!(matches!(actions[0], ChainAction::Apply(_)));
        assert!(fc.canonical().count() <= MAX_UNCERTIFIED as usize + 2);
        assert!(fc.tracked_slots() <= 5);
    }
    assert_eq!(fc.tip().hash, f.chain.tip().hash);
    assert_eq!(fc.tip().height, 20);
}

#[test]
fn producer_stays_silent_when_a_better_ticket_is_held() {
    let f = Fixture::new(2);
    let (worse, better) = worse_and_better(&f);
    let mut fc = fork_choice(&f);
    assert!(fc.should_publish(NEXT, &worse.ticket()));
    let _ = fc.handle_block(slot_start(NEXT), better.clone());
    assert!(!fc.should_publish(NEXT, &worse.ticket()));
    assert!(!fc.should_publish(NEXT, &better.ticket()));
    assert!(fc.should_publish(NEXT, &Ticket::BEST));
    assert!(fc.should_publish(NEXT + 1, &worse.ticket()));
}

#[test]
fn fork_choice_needs_room_for_an_uncertified_block_and_a_linked_chain() {
    assert_eq!(
        ForkChoiceConfig::new(slot_clock(), 0),
        Err(ForkChoiceError::NoUncertifiedRoom)
    );
    let config = ForkChoiceConfig::new(slot_clock(), 2).unwrap();
    let genesis = BlockSummary::genesis(Hash::digest(b"g"), 0);
    let unlinked = BlockSummary {
        height: 1,
        ..BlockSummary::genesis(Hash::digest(b"x"), 1)
    };
    assert_eq!(
        ForkChoice::new(config, [genesis, unlinked]).unwrap_err(),
        ForkChoiceError::NotLinked { index: 1 }
    );
    assert_eq!(
        ForkChoice::new(config, []).unwrap_err(),
        ForkChoiceError::NoTip
    );
}
