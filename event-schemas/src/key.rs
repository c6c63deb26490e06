//! The `api_key.*` and `usage.*` families: an app's API keys and what their
//! use adds up to.
//!
//! Streams: every key has its own, `api_key-<key_id>`, so an app's keys never
//! grow its stream and a rotation guards exactly the key it replaces (the
//! old key's `api_key.rotated` and the new key's `api_key.issued` commit
//! together). Usage is aggregated before it reaches the log: one
//! `usage.recorded` per key per metering interval, in `usage-<key_id>`,
//! a stream nothing decides on (appended without an expected version).
//!
//! No event carries a key's plaintext: only its SHA-256 and a short display
//! prefix.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `api_key.issued` v1: a key created, rotated in, or imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyIssued {
    /// The key.
    pub key_id: Uuid,
    /// The app it belongs to (a key is always app-bound).
    pub app_id: Uuid,
    /// The app's organisation.
    pub org_id: Uuid,
    /// Display name.
    pub name: String,
    /// `live` or `test`.
    pub mode: String,
    /// `secret` or `restricted`.
    pub kind: String,
    /// Scopes of a restricted key (empty for a secret key: everything its
    /// app's approved products grant).
    pub scopes: Vec<String>,
    /// The public start of the key, for display (`gh_test_sk_a1B2c3`).
    pub prefix: String,
    /// SHA-256 of the whole key, lower-case hex.
    pub hash: String,
    /// When it stops verifying, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Most verifications per `rate_limit_window_secs`, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    /// The window of `rate_limit`, in seconds (1 or 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_window_secs: Option<u32>,
    /// The key this one replaces, for a rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<Uuid>,
    /// Imported from a platform that issued it (Gatehouse never saw the
    /// plaintext).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub imported: bool,
}

/// `api_key.rotated` v1, in the old key's stream: replaced by `replaced_by`;
/// the old key verifies until `stops_at` (the grace's end or the
/// scheduled instant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyRotated {
    /// The new key.
    pub replaced_by: Uuid,
    /// When the old key stops verifying.
    pub stops_at: DateTime<Utc>,
}

/// `api_key.revoked` v1: irreversible, effective at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyRevoked {
    /// Why, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `api_key.leak_reported` v1: a secret scanner found the key in public
/// (GitHub's secret scanning partner program).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyLeakReported {
    /// The key's app, whose owners are told.
    pub app_id: Uuid,
    /// Where it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// What found it (`content`, `commit`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Whether it was revoked for it (test keys always; live keys when the
    /// deployment says so).
    pub revoked: bool,
}

/// `api_key.rotation_required` v1: staff's mass rotation: the key stops
/// at `stops_at` unless rotated before (its owners are told).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyRotationRequired {
    /// The mass rotation.
    pub job_id: Uuid,
    /// The key's app, whose owners are told.
    pub app_id: Uuid,
    /// When the key stops verifying.
    pub stops_at: DateTime<Utc>,
}

event_family! {
    /// An API key's stream, `api_key-<key_id>`.
    // Events are short-lived values; boxing the issue would only cost an
    // allocation.
    #[allow(clippy::large_enum_variant)]
    pub enum KeyEvent {
        /// `api_key.issued`
        Issued(KeyIssued) = "api_key.issued",
        /// `api_key.rotated`
        Rotated(KeyRotated) = "api_key.rotated",
        /// `api_key.revoked`
        Revoked(KeyRevoked) = "api_key.revoked",
        /// `api_key.leak_reported`
        LeakReported(KeyLeakReported) = "api_key.leak_reported",
        /// `api_key.rotation_required`
        RotationRequired(KeyRotationRequired) = "api_key.rotation_required",
    }
}

/// `api_key.hash_claimed` v1, first in `api_key_hash-<sha256 hex>`: an
/// imported key's hash is held by one key only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyHashClaimed {
    /// The key holding it.
    pub key_id: Uuid,
}

event_family! {
    /// An imported hash's reservation, `api_key_hash-<sha256 hex>`.
    pub enum KeyHashEvent {
        /// `api_key.hash_claimed`
        Claimed(KeyHashClaimed) = "api_key.hash_claimed",
    }
}

/// The stream reserving an imported key's hash.
pub fn key_hash_stream(hash_hex: &str) -> String {
    format!("api_key_hash-{hash_hex}")
}

/// `usage.recorded` v1: one key's calls in one metering interval, counted in
/// memory by a node (verifications) or reported by the gateway, then
/// written once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UsageRecorded {
    /// The key.
    pub key_id: Uuid,
    /// Its app.
    pub app_id: Uuid,
    /// The app's organisation.
    pub org_id: Uuid,
    /// Start of the interval.
    pub from: DateTime<Utc>,
    /// End of the interval (exclusive).
    pub to: DateTime<Utc>,
    /// Where the figures come from: `verify` (verifications counted by a
    /// node) or `report` (calls the gateway reported).
    pub source: String,
    /// Calls.
    pub calls: u64,
    /// Calls that failed (a refused verification, or a reported status of
    /// 400 or more).
    pub errors: u64,
    /// Latency of reported calls, when reported: least, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_min_ms: Option<u64>,
    /// Greatest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_max_ms: Option<u64>,
    /// Sum over the calls with a latency, for the average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_sum_ms: Option<u64>,
    /// The last call in the interval.
    pub last_at: DateTime<Utc>,
}

event_family! {
    /// Usage, `usage-<key_id>`.
    pub enum UsageEvent {
        /// `usage.recorded`
        Recorded(UsageRecorded) = "usage.recorded",
    }
}

/// `key_rotation.requested` v1, first in `key_rotation-<job_id>`: staff
/// asked to rotate every key matching the criteria issued before
/// `created_before`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyRotationRequested {
    /// The job.
    pub job_id: Uuid,
    /// Keys of this organisation only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<Uuid>,
    /// Keys of this app only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<Uuid>,
    /// Keys of this mode only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Keys issued before this instant (at most the request's).
    pub created_before: DateTime<Utc>,
    /// How long each key keeps verifying, in seconds.
    pub grace_period_secs: u64,
    /// Why, shown to the owners.
    pub reason: String,
}

/// `key_rotation.completed` v1: every matching key has its rotation
/// required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyRotationCompleted {
    /// Keys the job required to rotate.
    pub keys: u64,
}

event_family! {
    /// A staff mass rotation, `key_rotation-<job_id>`.
    pub enum KeyRotationEvent {
        /// `key_rotation.requested`
        Requested(KeyRotationRequested) = "key_rotation.requested",
        /// `key_rotation.completed`
        Completed(KeyRotationCompleted) = "key_rotation.completed",
    }
}

/// The stream of a mass rotation.
pub fn key_rotation_stream(job_id: Uuid) -> String {
    format!("key_rotation-{job_id}")
}

/// `usage.threshold_crossed` v1, alone in
/// `usage_threshold-<org>-<window start ms>-<percent>`: the organisation
/// used `threshold` percent of its billing window's calls (80, then 100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UsageThresholdCrossed {
    /// The organisation.
    pub org_id: Uuid,
    /// 80 or 100.
    pub threshold: u8,
    /// Calls counted when it was noticed.
    pub used: u64,
    /// The window's limit.
    pub limit: u64,
    /// The billing window.
    pub window_start: DateTime<Utc>,
    /// Its end.
    pub window_end: DateTime<Utc>,
}

/// `api_key.expiry_approaching` v1, alone in `api_key_expiry-<key>`: the
/// key expires within 7 days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyExpiryApproaching {
    /// The key.
    pub key_id: Uuid,
    /// Its app, whose owners are told.
    pub app_id: Uuid,
    /// The app's organisation.
    pub org_id: Uuid,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

event_family! {
    /// Notices Gatehouse raises on its own (`usage_threshold-*`,
    /// `api_key_expiry-*`), each once.
    pub enum NoticeEvent {
        /// `usage.threshold_crossed`
        ThresholdCrossed(UsageThresholdCrossed) = "usage.threshold_crossed",
        /// `api_key.expiry_approaching`
        ExpiryApproaching(KeyExpiryApproaching) = "api_key.expiry_approaching",
    }
}

/// The stream of an organisation's threshold notice for one window.
pub fn threshold_stream(org_id: Uuid, window_start_ms: i64, threshold: u8) -> String {
    format!("usage_threshold-{org_id}-{window_start_ms}-{threshold}")
}

/// The stream of a key's expiry notice.
pub fn expiry_notice_stream(key_id: Uuid) -> String {
    format!("api_key_expiry-{key_id}")
}

/// The stream of an API key.
pub fn key_stream(key_id: Uuid) -> String {
    format!("api_key-{key_id}")
}

/// The stream of a key's usage.
pub fn usage_stream(key_id: Uuid) -> String {
    format!("usage-{key_id}")
}
