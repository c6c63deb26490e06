//! The audit trail's server side: the checkpoint signer (the chain's head
//! signed with a key outside the database) and the request context sealed
//! into every person's command.
//!
//! # Layout
//! - [`key`]: the audit key, what it signs, the witness file.
//! - [`signer`]: checkpoints of the head, signed on an interval.
//! - [`client`]: a request's client address and user agent, and their
//!   sealed form.
//! - [`context`]: the layer that captures them, sealed per user.
//! - [`log`]: pages of checkpoints, for the audit trail's readers.

pub mod client;
pub mod context;
pub mod key;
pub mod log;
pub mod signer;
