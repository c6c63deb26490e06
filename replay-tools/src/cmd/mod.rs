//! The subcommands of `gatehouse-replay`, one module per group.

pub mod anchors;
pub mod log;
pub mod rebuild;
pub mod schemas;
pub mod stats;
pub mod verify;
