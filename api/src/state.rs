//! The state every handler shares.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use event_store::SharedStore;
use projections::read_models::ReadModels;
use projections::Statuses;

use crate::vault::Vault;

/// Shared, cheaply cloned application state.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    /// The event log of record: PostgreSQL's, or KurrentDB's (whose
    /// mirror in PostgreSQL the read models then follow).
    pub store: SharedStore,
    /// How often followers of the log poll, besides their wake-ups.
    pub log_poll: Duration,
    /// This node's memory of how far the log reached (see
    /// `event_store::guard`).
    pub log_guard: Arc<event_store::guard::RewindGuard>,
    /// The command service: every command goes through it.
    pub commands: crate::command::Executor,
    /// Connections for writes beside the log (the vault, tokens, mail,
    /// idempotency) and the dispatcher's tables.
    pub pool: Pool,
    /// Published projection checkpoints, for read-your-writes.
    pub statuses: Statuses,
    /// The read side: connections to the read models and the wait for a
    /// position (the same pool and statuses).
    pub read_models: ReadModels,
    /// Keys and sealing.
    pub vault: Vault,
    /// Longest wait for `Gatehouse-Min-Position`.
    pub read_wait: Duration,
    /// Sign-in session lifetime.
    pub session_ttl: chrono::Duration,
    /// A session unused this long ends.
    pub session_idle: chrono::Duration,
    /// How long an invitation can be accepted.
    pub invitation_ttl: chrono::Duration,
    /// Grant sandbox requests at once.
    pub auto_grant_sandbox: bool,
    /// Failed sign-ins per client address and account.
    pub sign_in_throttle: crate::accounts::throttle::SignInThrottle,
    /// Sign-ups per client address.
    pub sign_up_rate: crate::accounts::throttle::Rate,
    /// Mail of one kind to one address (by keyed hash).
    pub mail_rate: crate::accounts::throttle::Rate,
    /// Password hashing, bounded.
    pub hasher: crate::accounts::hashing::Hasher,
    /// Wakes this node's mail sender when mail is queued.
    pub mail_wake: Arc<tokio::sync::Notify>,
    /// Where people reach this deployment (links in mail), no trailing `/`.
    pub public_url: String,
    /// The key-verification index, fed by the log.
    pub index: Arc<verifier::Index>,
    /// SHA-256 of each accepted gateway token.
    pub gateway_tokens: Vec<[u8; 32]>,
    /// Messages and payload bytes an organisation may publish a minute.
    pub publish_quota: crate::webhooks::quota::PublishQuota,
    /// How access tokens are issued.
    pub oauth: crate::oauth::settings::TokenSettings,
    /// Webhook settings (the SSRF policy).
    pub webhooks: crate::webhooks::WebhookSettings,
    /// Recent webhook payload retention keys.
    pub webhook_keys: Arc<crate::vault::webhooks::RetentionKeys>,
    /// Token signing keys this node has opened.
    pub signing_seeds: crate::vault::signing::SigningSeeds,
    /// The key that signs checkpoints of the chain (never in the database).
    pub audit_key: crate::audit::key::AuditKey,
    /// The header naming the client's address, behind a trusted proxy.
    pub client_ip_header: Option<axum::http::HeaderName>,
    /// GitHub secret scanning's keys and policy.
    pub secret_scanning: crate::secret_scanning::SecretScanning,
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }

    /// An absolute link to `path_and_query` for mail.
    pub fn link(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.public_url)
    }

    /// Waits (at most `read_wait`) until this node's verification index
    /// holds `position`, so a key or client just written verifies, or is
    /// refused, on the next call to this node. Past the wait the write
    /// still stands; other nodes follow the log within milliseconds.
    pub async fn verifiable(&self, position: u64) {
        if !self.index.reached(position, self.read_wait).await {
            tracing::warn!(position, "the verification index is behind the write");
        }
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
