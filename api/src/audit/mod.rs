//! The audit trail's server side: the checkpoint signer (the chain's head
//! signed with a key outside the database) and the request context sealed
//! into every person's command.
//!
//! # Layout
//! - [`signer`]: the audit key, checkpoints, the witness file.
//! - [`context`]: client address and user agent, sealed per user.
//! - [`log`]: pages of checkpoints and the events behind entries, for the
//!   audit trail's readers.

pub mod context;
pub mod log;
pub mod signer;
