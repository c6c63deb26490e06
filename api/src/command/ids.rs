//! The ids a command mints: event ids and the ids of what it creates
//! (an app, an invitation, a link).
//!
//! Without an `Idempotency-Key` they are fresh UUIDv7s. With one, they are
//! derived from the caller and the key (the [`CommandSeed`] the idempotency
//! layer puts on the request), so a client that retries after an append of
//! unknown outcome (a timeout, a 5xx) makes the *same* events: the store
//! finds their ids already recorded and the command is not run twice.

use event_schemas::{DomainEvent, Metadata, NewEvent};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A keyed hash of the caller and its `Idempotency-Key`; never the key
/// itself, so two callers using the same key get unrelated ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSeed(pub [u8; 32]);

/// Mints the ids of one command.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandIds {
    seed: Option<CommandSeed>,
}

impl CommandIds {
    /// Ids derived from `seed`, or fresh ones without it.
    pub fn new(seed: Option<CommandSeed>) -> Self {
        CommandIds { seed }
    }

    /// Whether the ids repeat when the request is retried.
    pub fn is_deterministic(&self) -> bool {
        self.seed.is_some()
    }

    fn derive(&self, parts: &[&[u8]]) -> Option<Uuid> {
        let seed = self.seed?;
        let mut h = Sha256::new();
        h.update(seed.0);
        for p in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        let digest = h.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        // RFC 9562 version 8 (custom): the version and variant bits set
        // over hashed bytes, like a name-based UUID.
        Some(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }

    /// The id of the entity a command creates, named by `label` (`"app"`,
    /// `"invitation"`) so that one command can create several.
    pub fn entity(&self, label: &str) -> Uuid {
        self.derive(&[b"entity", label.as_bytes()])
            .unwrap_or_else(Uuid::now_v7)
    }

    /// 32 random bytes for a secret the command issues (an install token),
    /// derived from the seed when there is one, so a retried request
    /// answers the secret whose hash the first attempt recorded. Without a
    /// seed, from the operating system's generator.
    pub fn secret(&self, label: &str) -> [u8; 32] {
        match self.seed {
            Some(seed) => {
                let mut h = Sha256::new();
                h.update(seed.0);
                h.update(b"secret");
                h.update(label.as_bytes());
                h.finalize().into()
            }
            None => {
                use rand::RngCore;
                let mut bytes = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                bytes
            }
        }
    }

    /// The id of the `index`-th event the command appends to `stream`.
    pub fn event(&self, stream: &str, index: usize) -> Uuid {
        self.derive(&[b"event", stream.as_bytes(), &(index as u64).to_be_bytes()])
            .unwrap_or_else(Uuid::now_v7)
    }

    /// A command's domain events for `stream`, with its metadata and ids.
    pub fn new_events<E: DomainEvent>(
        &self,
        stream: &str,
        events: &[E],
        metadata: &Metadata,
    ) -> Vec<NewEvent> {
        events
            .iter()
            .enumerate()
            .map(|(i, e)| NewEvent {
                event_id: self.event(stream, i),
                ..NewEvent::from_domain(e, metadata.clone())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_ids_repeat_and_differ_by_stream_index_and_seed() {
        let a = CommandIds::new(Some(CommandSeed([1; 32])));
        let b = CommandIds::new(Some(CommandSeed([2; 32])));
        assert_eq!(a.event("app-1", 0), a.event("app-1", 0));
        assert_ne!(a.event("app-1", 0), a.event("app-1", 1));
        assert_ne!(a.event("app-1", 0), a.event("app-2", 0));
        assert_ne!(a.event("app-1", 0), b.event("app-1", 0));
        assert_eq!(a.entity("app"), a.entity("app"));
        assert_ne!(a.entity("app"), a.entity("link"));
    }

    #[test]
    fn unseeded_ids_are_fresh() {
        let ids = CommandIds::default();
        assert_ne!(ids.event("s", 0), ids.event("s", 0));
        assert_ne!(ids.entity("app"), ids.entity("app"));
    }
}
