//! Webhooks beside their routes: the deployment's settings, the publish
//! quota every node keeps, and the payload retention job. The endpoints'
//! and messages' HTTP surface is `routes::webhooks`; what webhooks seal is
//! in `vault::webhooks`; the dispatcher is the `delivery` crate.
//!
//! # Layout
//! - [`WebhookSettings`]: which destinations endpoints may name.
//! - [`quota`]: messages and payload bytes an organisation may publish.
//! - [`retention`]: purging the payloads of days past their retention.

pub mod quota;
pub mod retention;

/// Webhook settings of this deployment.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookSettings {
    /// Which destinations endpoints may name.
    pub policy: delivery::ssrf::Policy,
}
