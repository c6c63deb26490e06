//! The tamper-evident hash chain over the global order.
//!
//! `hash = sha256(prev_hash || canonical bytes)`, where the canonical bytes
//! are every stored field, each length-prefixed so that no two different
//! events share an encoding. The payload and metadata enter as the exact JSON
//! text stored, so sealed personal data is covered as ciphertext and erasing
//! a subject's key leaves the chain verifiable.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The `prev_hash` of the first event in the log.
pub const GENESIS_HASH: Hash = [0u8; 32];

/// The fields of an event that the chain covers.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalEvent<'a> {
    /// Global position.
    pub global_position: u64,
    /// Stream id.
    pub stream_id: &'a str,
    /// Stream version.
    pub stream_version: u64,
    /// Event id.
    pub event_id: Uuid,
    /// Event type.
    pub event_type: &'a str,
    /// Schema version.
    pub schema_version: u32,
    /// Payload JSON text.
    pub data: &'a str,
    /// Metadata JSON text.
    pub metadata: &'a str,
    /// Commit time; only microseconds count, as PostgreSQL stores them.
    pub recorded_at: DateTime<Utc>,
}

impl<'a> CanonicalEvent<'a> {
    /// The canonical view of a recorded event.
    pub fn of(e: &'a crate::RecordedEvent) -> Self {
        CanonicalEvent {
            global_position: e.global_position,
            stream_id: &e.stream_id,
            stream_version: e.stream_version,
            event_id: e.event_id,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            data: e.data.get(),
            metadata: e.metadata.get(),
            recorded_at: e.recorded_at,
        }
    }
}

/// The hash of an event following `prev`.
pub fn event_hash(prev: &Hash, e: &CanonicalEvent<'_>) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(b"gatehouse-event-v1");
    h.update(e.global_position.to_be_bytes());
    field(&mut h, e.stream_id.as_bytes());
    h.update(e.stream_version.to_be_bytes());
    h.update(e.event_id.as_bytes());
    field(&mut h, e.event_type.as_bytes());
    h.update(e.schema_version.to_be_bytes());
    field(&mut h, e.data.as_bytes());
    field(&mut h, e.metadata.as_bytes());
    h.update(e.recorded_at.timestamp_micros().to_be_bytes());
    h.finalize().into()
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CanonicalEvent<'static> {
        CanonicalEvent {
            global_position: 1,
            stream_id: "user-1",
            stream_version: 1,
            event_id: Uuid::nil(),
            event_type: "user.signed_up",
            schema_version: 1,
            data: "{}",
            metadata: "{}",
            recorded_at: DateTime::from_timestamp_micros(1_700_000_000_000_000)
                .expect("a valid instant"),
        }
    }

    #[test]
    fn any_field_change_changes_the_hash() {
        let base = event_hash(&GENESIS_HASH, &sample());
        let mut e = sample();
        e.data = "{ }";
        assert_ne!(base, event_hash(&GENESIS_HASH, &e));
        let mut e = sample();
        e.stream_version = 2;
        assert_ne!(base, event_hash(&GENESIS_HASH, &e));
        assert_ne!(base, event_hash(&[1u8; 32], &sample()));
    }

    #[test]
    fn length_prefixes_keep_field_boundaries() {
        let mut a = sample();
        a.stream_id = "ab";
        a.event_type = "c";
        let mut b = sample();
        b.stream_id = "a";
        b.event_type = "bc";
        assert_ne!(event_hash(&GENESIS_HASH, &a), event_hash(&GENESIS_HASH, &b));
    }
}
