//! The `webhook.*` family: an app's webhook endpoints (`webhook-<id>`),
//! the messages other services publish to an app (each in its own stream, `webhook_message-<id>`, since an app's messages grow with use)
//! and the deployment's payload retention (`webhook_retention`).
//!
//! No event carries a signing secret in the clear: secrets are sealed with
//! AES-256-GCM under the key-encryption key, named by `kek_id`, so a KEK
//! rotation can reseal them. A published payload is sealed under a
//! retention key of its day: destroying that key when the retention ends
//! purges the payload from every copy of the log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A signing secret as it is stored: sealed under the KEK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SealedSecret {
    /// Base64 of `nonce || ciphertext || tag`: the `whsec_`/`whsk_` secret.
    pub sealed: String,
    /// Which key-encryption key sealed it.
    pub kek_id: String,
    /// For `v1a`: the public key, `whpk_<base64>`, always readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// What a subscriber chose: where, which types, how fast.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EndpointSettings {
    /// The destination, `https://` (or `http://` where configuration
    /// allows it).
    pub url: String,
    /// Exact types or families (`app.*`); empty: every type.
    pub event_types: Vec<String>,
    /// Free text.
    pub description: String,
    /// Messages per second at most, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
}

/// `webhook.endpoint_created` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EndpointCreated {
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Its app.
    pub app_id: Uuid,
    /// The app's organisation.
    pub org_id: Uuid,
    /// `live` or `test`: the mode of the messages it receives.
    pub mode: String,
    /// `v1` (HMAC-SHA256) or `v1a` (Ed25519).
    pub signature: String,
    /// Where, which types, how fast.
    #[serde(flatten)]
    pub settings: EndpointSettings,
    /// The signing secret.
    pub secret: SealedSecret,
}

/// `webhook.audit_stream_created` v1: an organisation's audit log stream,
/// an endpoint of no app that receives every entry of the organisation's
/// audit history (type `audit.entry`) recorded after this event, signed
/// and retried like any webhook. It shares the endpoint's other events
/// (disabled, enabled, deleted, secret rotated and resealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditStreamCreated {
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The organisation whose history it streams.
    pub org_id: Uuid,
    /// Where entries go (a SIEM's collector).
    pub url: String,
    /// Free text.
    pub description: String,
    /// The signing secret (`v1`, HMAC-SHA256).
    pub secret: SealedSecret,
}

/// `webhook.endpoint_updated` v1: the settings as they now are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EndpointUpdated {
    /// Where, which types, how fast.
    #[serde(flatten)]
    pub settings: EndpointSettings,
}

/// `webhook.endpoint_disabled` v1: nothing is delivered until enabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EndpointDisabled {
    /// `manual`, `gone` (it answered 410) or `failing` (every attempt
    /// failed since `failing_since`).
    pub reason: String,
    /// When the failures began, for `failing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
}

/// `webhook.endpoint_enabled` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EndpointEnabled {}

/// `webhook.endpoint_deleted` v1: irreversible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EndpointDeleted {}

/// `webhook.secret_rotated` v1: a new secret; the previous one still signs
/// (beside it) until `previous_expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SecretRotated {
    /// The new secret.
    pub secret: SealedSecret,
    /// When the previous secret stops signing.
    pub previous_expires_at: DateTime<Utc>,
}

/// `webhook.secrets_resealed` v1: the same secrets, sealed under a new
/// key-encryption key (current first, then the previous if still signing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SecretsResealed {
    /// The current secret.
    pub secret: SealedSecret,
    /// The previous secret, while it still signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<SealedSecret>,
}

/// `webhook.message_exhausted` v1: every attempt of a message failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MessageExhausted {
    /// The message (its `webhook-id`).
    pub message_id: Uuid,
    /// Its type.
    pub message_type: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's status code, if it got an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
}

/// `webhook.replay_requested` v1: messages sent again to this endpoint,
/// by id, or every failed one in a window (`recover`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReplayRequested {
    /// The replay.
    pub replay_id: Uuid,
    /// The messages chosen by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message_ids: Vec<Uuid>,
    /// For `recover`: failed messages created at or after this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// For `recover`: and before this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

event_family! {
    /// An endpoint's stream, `webhook-<endpoint_id>`.
    pub enum WebhookEvent {
        /// `webhook.endpoint_created`
        Created(EndpointCreated) = "webhook.endpoint_created",
        /// `webhook.audit_stream_created`
        AuditStreamCreated(AuditStreamCreated) = "webhook.audit_stream_created",
        /// `webhook.endpoint_updated`
        Updated(EndpointUpdated) = "webhook.endpoint_updated",
        /// `webhook.endpoint_disabled`
        Disabled(EndpointDisabled) = "webhook.endpoint_disabled",
        /// `webhook.endpoint_enabled`
        Enabled(EndpointEnabled) = "webhook.endpoint_enabled",
        /// `webhook.endpoint_deleted`
        Deleted(EndpointDeleted) = "webhook.endpoint_deleted",
        /// `webhook.secret_rotated`
        SecretRotated(SecretRotated) = "webhook.secret_rotated",
        /// `webhook.secrets_resealed`
        SecretsResealed(SecretsResealed) = "webhook.secrets_resealed",
        /// `webhook.message_exhausted`
        MessageExhausted(MessageExhausted) = "webhook.message_exhausted",
        /// `webhook.replay_requested`
        ReplayRequested(ReplayRequested) = "webhook.replay_requested",
    }
}

/// `webhook.message_published` v1: a message another service published to
/// an app (`POST /v1/apps/{app}/events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MessagePublished {
    /// The message: its `webhook-id` on every delivery.
    pub message_id: Uuid,
    /// The app it is for.
    pub app_id: Uuid,
    /// The app's organisation.
    pub org_id: Uuid,
    /// Its type, `family.name`.
    pub message_type: String,
    /// `live` or `test` endpoints only; none: both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The retention key (a subject of the vault) the payload is sealed
    /// under; destroyed when the payload's retention ends.
    pub retention_key: Uuid,
    /// The JSON payload, sealed under the retention key.
    pub payload: String,
}

event_family! {
    /// A message published to an app, `webhook_message-<message_id>`.
    pub enum MessageEvent {
        /// `webhook.message_published`
        Published(MessagePublished) = "webhook.message_published",
    }
}

/// `webhook.payloads_purged` v1: the retention job destroyed the keys of
/// the payloads published before `before`; the delivery log keeps their
/// metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PayloadsPurged {
    /// Payloads published before this are gone.
    pub before: DateTime<Utc>,
    /// Retention keys destroyed.
    pub keys: u64,
    /// Messages whose payload went.
    pub messages: u64,
}

event_family! {
    /// The deployment's payload retention, `webhook_retention`.
    pub enum RetentionEvent {
        /// `webhook.payloads_purged`
        Purged(PayloadsPurged) = "webhook.payloads_purged",
    }
}

/// The stream of an endpoint.
pub fn webhook_stream(endpoint_id: Uuid) -> String {
    format!("webhook-{endpoint_id}")
}

/// The type of the messages an audit stream receives.
pub const AUDIT_ENTRY_TYPE: &str = "audit.entry";

/// The stream of one published message.
pub fn message_stream(message_id: Uuid) -> String {
    format!("webhook_message-{message_id}")
}

/// The stream of the retention job.
pub const RETENTION_STREAM: &str = "webhook_retention";
