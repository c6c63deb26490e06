//! The `oauth_client.*` and `signing_key.*` families: an app's OAuth
//! client credentials (`oauth_client-<client_id>`), and the keys the
//! deployment signs access tokens with (`signing_keys`, one platform
//! stream). No event carries a client secret (only its SHA-256) or a
//! private key (a random seed, sealed in the database).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `oauth_client.created` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OAuthClientCreated {
    /// The client id.
    pub client_id: Uuid,
    /// The app it belongs to.
    pub app_id: Uuid,
    /// The app's organisation.
    pub org_id: Uuid,
    /// Display name.
    pub name: String,
    /// `live` or `test`.
    pub mode: String,
    /// Scopes its tokens may carry (empty: all its app's approved ones).
    pub scopes: Vec<String>,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
}

/// `oauth_client.secret_rotated` v1: a new secret; the previous one works
/// until `previous_stops_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OAuthSecretRotated {
    /// SHA-256 of the new secret, hex.
    pub secret_hash: String,
    /// When the previous secret stops working.
    pub previous_stops_at: DateTime<Utc>,
}

/// `oauth_client.revoked` v1: irreversible; its tokens stop verifying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OAuthClientRevoked {
    /// Why, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `oauth_client.leak_reported` v1: a secret scanner found the client's
/// secret in public. The secret is ended with it (`revoked`) for a test
/// client, and for a live one when the deployment says so; otherwise its
/// owners are told to rotate it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OAuthClientLeakReported {
    /// The client's app, whose owners are told.
    pub app_id: Uuid,
    /// Where it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// What found it (`content`, `commit`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Whether the client was revoked for it.
    pub revoked: bool,
}

event_family! {
    /// An OAuth client's stream, `oauth_client-<client_id>`.
    pub enum OAuthClientEvent {
        /// `oauth_client.created`
        Created(OAuthClientCreated) = "oauth_client.created",
        /// `oauth_client.secret_rotated`
        SecretRotated(OAuthSecretRotated) = "oauth_client.secret_rotated",
        /// `oauth_client.revoked`
        Revoked(OAuthClientRevoked) = "oauth_client.revoked",
        /// `oauth_client.leak_reported`
        LeakReported(OAuthClientLeakReported) = "oauth_client.leak_reported",
    }
}

/// `signing_key.added` v1: tokens are signed with this key from now on;
/// the one before stays published (and verifying) until
/// `previous_retires_at`, when every token it signed has expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SigningKeyAdded {
    /// The key id (`kid`).
    pub kid: String,
    /// `EdDSA` (Ed25519).
    pub algorithm: String,
    /// The public key, base64url without padding (the JWK's `x`).
    pub public_key: String,
    /// When the previous key stops verifying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_retires_at: Option<DateTime<Utc>>,
}

event_family! {
    /// The deployment's token signing keys, `signing_keys`.
    pub enum SigningKeyEvent {
        /// `signing_key.added`
        Added(SigningKeyAdded) = "signing_key.added",
    }
}

/// The stream of an OAuth client.
pub fn oauth_client_stream(client_id: Uuid) -> String {
    format!("oauth_client-{client_id}")
}

/// The stream of the deployment's signing keys.
pub const SIGNING_KEYS_STREAM: &str = "signing_keys";
