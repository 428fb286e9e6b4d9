//! Objective finality (DESIGN §5): validator-set snapshots, signed window
//! votes, and proofs that anyone can verify against a snapshot.
//!
//! Pure: no clocks, no I/O, no sampling. It must never take a weight or a
//! membership from a message: both come from the [`ValidatorSet`] snapshot.

pub mod committee;
pub mod evidence;
pub mod member_bits;
pub mod proof;
pub mod validator_set;
pub mod vote;
pub mod window;

pub use committee::{draw_committee, epoch_seed};
pub use evidence::{
    max_evidence_bytes, EvidenceError, SignedSpend, WindowEquivocation,
    MAX_WINDOW_EVIDENCE_PER_VOTER,
};
pub use member_bits::MemberBits;
pub use proof::{
    verify_proof, verify_proof_parts_with, verify_proof_with, FinalityProof, ProofBuilder,
    ProofError, VoteAdded, MAX_PROOF_VOTES,
};
pub use validator_set::{required_weight, ValidatorSet, ValidatorSetError};
pub use vote::{FinalityVote, VoteScope};
pub use window::{WindowError, WindowTree, WindowVote, MAX_WINDOW_TXS};
