//! Faults between real `timed` processes (issue 12): network partitions
//! through a fault proxy, and pauses and restarts under load. They share
//! one test binary so the long partition sequence, which mostly waits out
//! its splits, runs beside the others.

#[path = "../devnet_support/mod.rs"]
mod devnet_support;
#[path = "../fault_support/mod.rs"]
mod fault_support;

mod partition;
mod pause_restart;
