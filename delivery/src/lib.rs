//! Webhook delivery, outside the HTTP crate: the feeder that turns the log
//! into deliveries, the dispatcher that sends them, Standard Webhooks
//! signing, the HTTP client with its SSRF guard, and the retry schedule.
//!
//! # Layout
//! - [`catalog`]: the public event types, their payloads and schemas.
//! - [`feed`]: the log to deliveries, fenced by a checkpoint row; and the
//!   audit read model to the deliveries of organisations' audit streams.
//! - [`dispatch`]: endpoint leases, lanes, attempts and their record.
//! - [`sign`]: `v1` (HMAC-SHA256) and `v1a` (Ed25519) signatures, secrets.
//! - [`ssrf`]: which destinations may be reached, checked at creation and
//!   at connect time.
//! - [`schedule`]: retry delays with jitter, `Retry-After`.
//! - [`keyring`]: what delivery needs opened by the key-encryption key.

pub mod catalog;
pub mod dispatch;
pub mod feed;
pub mod keyring;
pub mod read;
pub mod schedule;
pub mod sign;
pub mod ssrf;

use event_store::postgres::Migration;

/// The `delivery` schema's migrations (set `delivery`).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_delivery.sql",
        sql: include_str!("../migrations/0001_delivery.sql"),
    },
    Migration {
        name: "0002_audit_streams.sql",
        sql: include_str!("../migrations/0002_audit_streams.sql"),
    },
];

/// The time as delivery sees it: when an attempt was made, and so how long
/// an endpoint has been failing. The system clock, or one a test moves.
#[derive(Clone)]
pub struct Clock(std::sync::Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>);

impl Clock {
    /// A clock reading `now`.
    pub fn new(now: impl Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync + 'static) -> Self {
        Clock(std::sync::Arc::new(now))
    }

    /// The time now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new(chrono::Utc::now)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

/// An id that is the same every time the same fact is recorded.
pub(crate) fn derived_id(parts: &[&[u8]]) -> uuid::Uuid {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let bytes: [u8; 16] = h.finalize()[..16].try_into().expect("16 of 32 bytes");
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
