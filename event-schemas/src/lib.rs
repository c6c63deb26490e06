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
//! - [`app`]: apps, their versions and installs, API products and access.
//! - [`key`]: API keys and their usage.
//! - [`oauth`]: OAuth client credentials and the token signing keys.
//! - [`webhook`]: webhook endpoints, published messages, payload retention.
//! - [`audit`]: signed checkpoints of the chain.
//! - [`sealed`]: the wire form of personal data sealed per subject.

/// Declares a family of events: the enum (serialised as the bare payload),
/// its stored type names, and decoding, from one list of
/// `Variant(Payload) = "family.verb_past"`. Every type is at schema version 1;
/// a family whose types move on writes its own decoding with upcasters.
macro_rules! event_family {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($payload:ty) = $tag:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize)]
        #[serde(untagged)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($payload), )+
        }

        impl $crate::DomainEvent for $name {
            const SCHEMA_VERSION: u32 = 1;

            fn event_type(&self) -> &'static str {
                match self {
                    $( $name::$variant(_) => $tag, )+
                }
            }
        }

        impl $name {
            /// Every type this family writes.
            pub const TYPES: &'static [&'static str] = &[$($tag),+];

            /// Decodes a recorded event of this family; `Ok(None)` for others.
            pub fn decode(
                e: &$crate::RecordedEvent,
            ) -> Result<Option<Self>, $crate::SchemaError> {
                if !Self::TYPES.contains(&e.event_type.as_str()) {
                    return Ok(None);
                }
                if e.schema_version != 1 {
                    return Err($crate::SchemaError::UnknownVersion {
                        event_type: e.event_type.clone(),
                        schema_version: e.schema_version,
                    });
                }
                Ok(Some(match e.event_type.as_str() {
                    $( $tag => $name::$variant(e.data_as()?), )+
                    _ => return Ok(None),
                }))
            }
        }
    };
}

pub mod app;
pub mod audit;
pub mod chain;
pub mod envelope;
pub mod key;
pub mod oauth;
pub mod org;
pub mod sealed;
pub mod user;
pub mod webhook;

pub use chain::{event_hash, Hash, GENESIS_HASH};
pub use envelope::{
    Actor, ActorKind, DomainEvent, ExpectedVersion, Metadata, NewEvent, RecordedEvent, SchemaError,
};
