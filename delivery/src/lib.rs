//! Webhook delivery, outside the HTTP crate: Standard Webhooks signing,
//! the HTTP client with its SSRF guard, and the retry schedule. The
//! dispatcher that leases attempts from PostgreSQL builds on these.
//!
//! # Layout
//! - [`sign`]: `v1` (HMAC-SHA256) and `v1a` (Ed25519) signatures, secrets.
//! - [`ssrf`]: which destinations may be reached, checked at creation and
//!   at connect time.
//! - [`schedule`]: retry delays with jitter, `Retry-After`.

pub mod schedule;
pub mod sign;
pub mod ssrf;
