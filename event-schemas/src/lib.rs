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
//! - [`schemas`]: the JSON Schema of every type, and the compatibility check.
//! - [`sealed`]: the wire form of personal data sealed per subject.

/// Declares a family of events: the enum (serialised as the bare payload),
/// its stored type names, their schema versions, decoding, and the JSON
/// Schema of each type, from one list of
/// `Variant(Payload) = "family.verb_past"`. A type is at schema version 1
/// unless it says `@ v2 from upcaster`: then it writes version 2, and
/// `upcaster(old_version, payload)` turns a payload of any older version
/// into the current shape before it is decoded, so no stored event is ever
/// rewritten.
#[macro_export]
macro_rules! event_family {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($payload:ty) = $tag:literal $(@ v $ver:literal from $up:path)?, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize)]
        #[serde(untagged)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($payload), )+
        }

        impl $crate::DomainEvent for $name {
            fn schema_version(&self) -> u32 {
                match self {
                    $( $name::$variant(_) => $crate::event_family!(@version $($ver)?), )+
                }
            }

            fn event_type(&self) -> &'static str {
                match self {
                    $( $name::$variant(_) => $tag, )+
                }
            }
        }

        impl $name {
            /// Every type this family writes.
            pub const TYPES: &'static [&'static str] = &[$($tag),+];

            /// Decodes a recorded event of this family, upcasting an older
            /// schema version; `Ok(None)` for other families.
            pub fn decode(
                e: &$crate::RecordedEvent,
            ) -> Result<Option<Self>, $crate::SchemaError> {
                Ok(Some(match e.event_type.as_str() {
                    $( $tag => {
                        let current: u32 = $crate::event_family!(@version $($ver)?);
                        if e.schema_version == current {
                            $name::$variant(e.data_as()?)
                        } else {
                            $crate::event_family!(@upcast e, current, $name::$variant $(, $up)?)
                        }
                    } )+
                    _ => return Ok(None),
                }))
            }

            /// The JSON Schema of each type's current version.
            pub fn schemas() -> Vec<$crate::schemas::TypeSchema> {
                vec![$(
                    $crate::schemas::TypeSchema::of::<$payload>(
                        $tag,
                        $crate::event_family!(@version $($ver)?),
                        $crate::event_family!(@upcasts $($ver)?),
                    ),
                )+]
            }
        }
    };
    (@version) => { 1 };
    (@version $ver:literal) => { $ver };
    (@upcasts) => { false };
    (@upcasts $ver:literal) => { true };
    (@upcast $e:ident, $current:ident, $name:ident :: $variant:ident) => {
        return Err($crate::SchemaError::UnknownVersion {
            event_type: $e.event_type.clone(),
            schema_version: $e.schema_version,
        })
    };
    (@upcast $e:ident, $current:ident, $name:ident :: $variant:ident, $up:path) => {{
        if $e.schema_version == 0 || $e.schema_version > $current {
            return Err($crate::SchemaError::UnknownVersion {
                event_type: $e.event_type.clone(),
                schema_version: $e.schema_version,
            });
        }
        let old: serde_json::Value = $e.data_as()?;
        let new = $up($e.schema_version, old).map_err(|reason| $crate::SchemaError::Upcast {
            event_type: $e.event_type.clone(),
            schema_version: $e.schema_version,
            reason,
        })?;
        $name::$variant(serde_json::from_value(new).map_err(|source| {
            $crate::SchemaError::Payload {
                event_type: $e.event_type.clone(),
                schema_version: $e.schema_version,
                source,
            }
        })?)
    }};
}

pub mod app;
pub mod audit;
pub mod chain;
pub mod envelope;
pub mod key;
pub mod oauth;
pub mod org;
pub mod schemas;
pub mod sealed;
pub mod user;
pub mod webhook;

pub use chain::{event_hash, Hash, GENESIS_HASH};
pub use envelope::{
    Actor, ActorKind, DomainEvent, ExpectedVersion, Metadata, NewEvent, RecordedEvent, SchemaError,
};
