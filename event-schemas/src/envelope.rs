//! The envelope every event travels in, new (before append) and recorded
//! (with its global position, stream version and place in the hash chain).

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A signed-in user of the portal.
    User,
    /// A caller authenticated by an API key.
    ApiKey,
    /// Platform staff.
    Staff,
    /// Gatehouse itself (timers, dispatchers, migrations).
    System,
}

/// The actor recorded in every event's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Actor {
    /// What kind of principal acted.
    pub kind: ActorKind,
    /// Its id (user id, key id...); absent for anonymous or system actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Actor {
    /// The system actor, for events Gatehouse emits on its own.
    pub fn system() -> Self {
        Actor {
            kind: ActorKind::System,
            id: None,
        }
    }

    /// A user actor.
    pub fn user(id: Uuid) -> Self {
        Actor {
            kind: ActorKind::User,
            id: Some(id.to_string()),
        }
    }
}

/// Metadata carried by every event: who, for which organisation, and how it
/// relates to other events and to the request that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Metadata {
    /// Who acted.
    pub actor: Actor,
    /// The organisation the event belongs to, for audit filtering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<Uuid>,
    /// The id shared by every event of one business transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The event (or command) that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The HTTP request id Gatehouse gave the request, to join logs and
    /// history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The `X-Request-Id` the client sent, kept apart and as sent: a claim
    /// of the client's, not an id Gatehouse gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    /// The client's `Idempotency-Key`, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The request's client address and user agent (JSON `{"ip", "user_agent"}`),
    /// sealed under the acting user's key: personal data, erased with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<crate::sealed::Sealed>,
}

impl Metadata {
    /// Metadata with only an actor.
    pub fn by(actor: Actor) -> Self {
        Metadata {
            actor,
            org_id: None,
            correlation_id: None,
            client_request_id: None,
            causation_id: None,
            request_id: None,
            idempotency_key: None,
            context: None,
        }
    }
}

/// What the caller expects the stream's current version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version (1-based).
    Exact(u64),
}

/// An event ready to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Unique id (UUID v7); a retried append with the same ids is idempotent.
    pub event_id: Uuid,
    /// `family.verb_past`, e.g. `user.signed_up`.
    pub event_type: String,
    /// The version of the payload schema for this type.
    pub schema_version: u32,
    /// The payload, as JSON text.
    pub data: Box<RawValue>,
    /// Who, why and in which context.
    pub metadata: Metadata,
}

impl NewEvent {
    /// Builds a new event from a typed domain event.
    pub fn from_domain<E: DomainEvent>(event: &E, metadata: Metadata) -> Self {
        let data = serde_json::value::to_raw_value(event)
            .expect("domain events serialise to JSON: they are plain data with string keys");
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            data,
            metadata,
        }
    }

    /// Builds a new event from raw parts (tools, benchmarks, tests).
    pub fn raw(event_type: &str, data: serde_json::Value, metadata: Metadata) -> Self {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            schema_version: 1,
            data: serde_json::value::to_raw_value(&data)
                .expect("a serde_json::Value always serialises"),
            metadata,
        }
    }
}

/// An event as stored in the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Position in the global log: gap-free, in commit order, from 1.
    pub global_position: u64,
    /// The stream, `<category>-<id>`.
    pub stream_id: String,
    /// Version within the stream, from 1.
    pub stream_version: u64,
    /// Unique event id.
    pub event_id: Uuid,
    /// `family.verb_past`.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: u32,
    /// The payload, exactly as stored.
    pub data: Box<RawValue>,
    /// The metadata, exactly as stored.
    pub metadata: Box<RawValue>,
    /// Commit time, microsecond precision.
    pub recorded_at: DateTime<Utc>,
    /// The hash of the previous event in the global order.
    #[serde(with = "hex_bytes")]
    pub prev_hash: crate::Hash,
    /// `sha256(prev_hash || canonical bytes of this event)`.
    #[serde(with = "hex_bytes")]
    pub hash: crate::Hash,
}

impl PartialEq for NewEvent {
    fn eq(&self, other: &Self) -> bool {
        self.event_id == other.event_id
            && self.event_type == other.event_type
            && self.schema_version == other.schema_version
            && self.data.get() == other.data.get()
            && self.metadata == other.metadata
    }
}

impl PartialEq for RecordedEvent {
    fn eq(&self, o: &Self) -> bool {
        self.global_position == o.global_position
            && self.stream_id == o.stream_id
            && self.stream_version == o.stream_version
            && self.event_id == o.event_id
            && self.event_type == o.event_type
            && self.schema_version == o.schema_version
            && self.data.get() == o.data.get()
            && self.metadata.get() == o.metadata.get()
            && self.recorded_at == o.recorded_at
            && self.prev_hash == o.prev_hash
            && self.hash == o.hash
    }
}

impl RecordedEvent {
    /// The stream's category: the part of the id before the first `-`.
    pub fn category(&self) -> &str {
        category_of(&self.stream_id)
    }

    /// Parses the metadata.
    pub fn parsed_metadata(&self) -> Result<Metadata, SchemaError> {
        serde_json::from_str(self.metadata.get()).map_err(|source| SchemaError::Payload {
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            source,
        })
    }

    /// Decodes the payload as `T`, which must be the current schema version
    /// of this event type (use the family's `decode` for upcasting).
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, SchemaError> {
        serde_json::from_str(self.data.get()).map_err(|source| SchemaError::Payload {
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            source,
        })
    }

    /// Recomputes this event's hash from its fields and `prev_hash`.
    pub fn computed_hash(&self) -> crate::Hash {
        crate::chain::event_hash(&self.prev_hash, &crate::chain::CanonicalEvent::of(self))
    }
}

/// The category of a stream id: the part before the first `-`.
pub fn category_of(stream_id: &str) -> &str {
    stream_id.split_once('-').map_or(stream_id, |(c, _)| c)
}

/// A typed event of one family, with its stored name and schema version.
pub trait DomainEvent: Serialize {
    /// The schema version this code writes for this event's type.
    fn schema_version(&self) -> u32;
    /// The stored name, `family.verb_past`; never changes once written.
    fn event_type(&self) -> &'static str;
}

/// An event that cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The payload does not match the schema of its type and version.
    #[error("event {event_type} v{schema_version} has a payload that does not decode")]
    Payload {
        /// The stored type.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// An upcaster refused an old payload.
    #[error("event {event_type} v{schema_version} cannot be upcast: {reason}")]
    Upcast {
        /// The stored type.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// Why.
        reason: String,
    },
    /// This code knows the type but not the version (written by newer code).
    #[error("event {event_type} has unknown schema version {schema_version}")]
    UnknownVersion {
        /// The stored type.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
    },
}

mod hex_bytes {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(64);
        for b in bytes {
            out.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        if text.len() != 64 {
            return Err(D::Error::custom("a hash is 64 hex digits"));
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(D::Error::custom)?;
        }
        Ok(out)
    }
}
