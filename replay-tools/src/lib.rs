//! Operator tools over the Gatehouse log, behind the `gatehouse-replay`
//! binary.
//!
//! # Layout
//! - [`verify`]: the hash chain, stream versions and signed checkpoints.
//! - [`export`]: offline verification of an audit export.
//! - [`read_models`]: every read model compared with a fresh rebuild.
//! - [`log`]: selecting events for `export` and `tail`.
//! - [`state_at`]: an aggregate's state at a time or position.
//! - [`stats`]: the log's shape and the projections' lag.

pub mod export;
pub mod log;
pub mod read_models;
pub mod state_at;
pub mod stats;
pub mod verify;

pub use stats::{stats, Count, ProjectionStat, Stats};
pub use verify::{verify, Anchors, BadPosition, VerifyError, VerifyReport};
