//! Operator tools over the Gatehouse log, behind the `gatehouse-replay`
//! binary.
//!
//! # Layout
//! - [`verify`]: the hash chain, stream versions and signed checkpoints.
//! - [`export`]: offline verification of an audit export.
//! - [`stats`]: the log's shape and the projections' lag.

pub mod export;
pub mod stats;
pub mod verify;

pub use stats::{stats, Count, ProjectionStat, Stats};
pub use verify::{verify, Anchors, BadPosition, VerifyError, VerifyReport};
