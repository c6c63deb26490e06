//! Webhook delivery, outside the HTTP crate: the feeder that turns the log
//! into deliveries, the dispatcher that sends them, Standard Webhooks
//! signing, the HTTP client with its SSRF guard, and the retry schedule.
//!
//! # Layout
//! - [`catalog`]: the public event types, their payloads and schemas.
//! - [`feed`]: the log to deliveries, fenced by a checkpoint row.
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
pub mod schedule;
pub mod sign;
pub mod ssrf;

use event_store::postgres::Migration;

/// The `delivery` schema's migrations (set `delivery`).
pub const MIGRATIONS: &[Migration] = &[Migration {
    name: "0001_delivery.sql",
    sql: include_str!("../migrations/0001_delivery.sql"),
}];
