//! The key-verification index: every API key's hash with what a verdict
//! needs (its app, mode, scopes, expiry, revocation, rate limit), the apps'
//! status and granted scopes, and the organisations' quotas, in memory and
//! fed by the log. [`Index::verify`] never touches a database; it counts
//! what it answers, and [`Index::drain_usage`] turns the counts into
//! aggregated `usage.recorded` events (one per key per interval).
//!
//! A node loads the index from the `keys` read model ([`load`]), then
//! follows the log from that read model's checkpoint ([`follow`]); until
//! then [`Index::is_ready`] is false and the API answers 503, never a wrong
//! `unknown`.
//!
//! # Layout
//! - [`clock`]: the injectable clock.
//! - `state`: the entries and their memory layout.
//! - `feed`: applying the log's events.
//! - `verify`: the hot path.
//! - `meter`: usage counts and their flush.
//! - [`token`]: the OAuth access tokens (JWTs) it also verifies.
//! - [`load`], [`follow`]: starting from the read model, following the log.

pub mod clock;
mod feed;
pub mod follow;
pub mod load;
mod meter;
mod state;
pub mod token;
mod verify;

pub use clock::{Clock, ManualClock, SystemClock};
pub use feed::{FeedError, LoadedKey};
pub use meter::Drained;
pub use state::{Index, IndexStats};
pub use verify::{Reason, Verdict};
