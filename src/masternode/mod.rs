//! The open masternode network (DESIGN §7): who may vote in which epoch.
//!
//! Pure: the validator set of every epoch is a function of the genesis and
//! of the certified blocks, applied in height order ([`Registry`]). Nothing
//! here reads a clock, a store or a peer; the block thread feeds it certified
//! blocks and stores the snapshots it returns.

mod committees;
mod epochs;
mod registry;

pub use committees::{CommitteeBook, CommitteeRules, EpochSets, COMMITTEES_KEPT};
pub use epochs::{EpochRules, EpochRulesError};
pub use registry::{
    Applied, BlockEffects, Member, MemberStatus, Registry, RegistryError, Snapshot,
};
