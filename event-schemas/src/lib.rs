//! The contract of the Gatehouse log: the event envelope, the hash chain, and
//! every event type with its schema version.
//!
//! Both the domain and the event store build on this crate; the store never
//! sees a domain type, only [`NewEvent`] and [`RecordedEvent`].
//!
//! # Layout
//! - [`envelope`]: metadata, new and recorded events, stream ids and versions.
//! - [`chain`]: the canonical bytes of an event and the SHA-256 hash chain.
//! - [`user`]: the `user.*` and `session.*` families.
//! - [`org`]: organisations, members, invitations, developer terms.
//! - [`sealed`]: the wire form of personal data sealed per subject.

pub mod chain;
pub mod envelope;
pub mod org;
pub mod sealed;
pub mod user;

pub use chain::{event_hash, Hash, GENESIS_HASH};
pub use envelope::{
    Actor, ActorKind, DomainEvent, ExpectedVersion, Metadata, NewEvent, RecordedEvent, SchemaError,
};
