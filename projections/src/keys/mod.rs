//! API keys and what verification needs of their apps and organisations:
//! the key table (`api_keys`, with usage count and last use written from
//! `usage.recorded`, never per call), each app's status and granted scopes
//! (`key_apps`), each organisation's plan window (`key_orgs`) and the calls
//! counted in each billing window (`org_usage`).
//!
//! A node's verification index loads from these tables together with this
//! projection's checkpoint, in one snapshot, then follows the log from
//! there; so they hold exactly what `verifier` folds from the same events.

mod apply;
pub mod read;

use std::sync::LazyLock;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use event_schemas::key::{KeyEvent, KeyRotationEvent, UsageEvent};
use event_schemas::oauth::{OAuthClientEvent, SigningKeyEvent};
use event_schemas::RecordedEvent;

use crate::{Projection, ProjectionError};

/// The keys read model.
pub struct Keys;

static TYPES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    KeyEvent::TYPES
        .iter()
        .chain(UsageEvent::TYPES)
        .chain(&[
            "app.created",
            "app.updated",
            "app.deleted",
            "app.suspended",
            "app.reinstated",
            "product_access.requested",
            "product_access.approved",
            "product_access.rejected",
            "plan.set",
        ])
        .chain(OAuthClientEvent::TYPES)
        .chain(SigningKeyEvent::TYPES)
        .chain(KeyRotationEvent::TYPES)
        .copied()
        .collect()
});

#[async_trait]
impl Projection for Keys {
    fn name(&self) -> &'static str {
        "keys"
    }

    fn version(&self) -> u32 {
        // 2: leak reports. 3: OAuth clients and signing keys. 4: mass
        // rotations. 5: apps' browser origins, clients' secret hashes.
        // 6: batch-shaped (the same rows, written set-wise).
        6
    }

    fn schema(&self) -> &'static str {
        "CREATE TABLE api_keys (
             key_id           UUID PRIMARY KEY,
             app_id           UUID NOT NULL,
             org_id           UUID NOT NULL,
             name             TEXT NOT NULL,
             mode             TEXT NOT NULL,
             kind             TEXT NOT NULL,
             scopes           JSONB NOT NULL,
             prefix           TEXT NOT NULL,
             hash             TEXT NOT NULL,
             expires_at       TIMESTAMPTZ,
             rate_limit       INT,
             rate_window_secs INT,
             rotated_from     UUID,
             replaced_by      UUID,
             stops_at         TIMESTAMPTZ,
             revoked_at       TIMESTAMPTZ,
             revoke_reason    TEXT,
             leak_reported_at TIMESTAMPTZ,
             rotation_job     UUID,
             imported         BOOLEAN NOT NULL,
             usage_count      BIGINT NOT NULL DEFAULT 0,
             last_used_at     TIMESTAMPTZ,
             created_by       TEXT NOT NULL,
             created_at       TIMESTAMPTZ NOT NULL
         );
         CREATE TABLE key_apps (
             app_id    UUID PRIMARY KEY,
             org_id    UUID NOT NULL,
             deleted   BOOLEAN NOT NULL DEFAULT false,
             suspended BOOLEAN NOT NULL DEFAULT false,
             access    JSONB NOT NULL DEFAULT '{}',
             origins   JSONB NOT NULL DEFAULT '[]'
         );
         CREATE TABLE key_orgs (
             org_id             UUID PRIMARY KEY,
             monthly_call_limit BIGINT NOT NULL,
             window_start       TIMESTAMPTZ NOT NULL,
             window_end         TIMESTAMPTZ NOT NULL
         );
         CREATE TABLE oauth_clients (
             client_id  UUID PRIMARY KEY,
             app_id     UUID NOT NULL,
             org_id     UUID NOT NULL,
             name       TEXT NOT NULL,
             mode       TEXT NOT NULL,
             scopes     JSONB NOT NULL,
             secret_rotated_at TIMESTAMPTZ,
             previous_secret_stops_at TIMESTAMPTZ,
             secret_hash TEXT NOT NULL,
             previous_secret_hash TEXT,
             revoked_at TIMESTAMPTZ,
             created_by TEXT NOT NULL,
             created_at TIMESTAMPTZ NOT NULL
         );
         CREATE TABLE signing_keys (
             position   BIGINT PRIMARY KEY,
             kid        TEXT NOT NULL,
             public_key TEXT NOT NULL,
             retires_at TIMESTAMPTZ,
             added_at   TIMESTAMPTZ NOT NULL
         );
         CREATE TABLE key_rotations (
             job_id          UUID PRIMARY KEY,
             criteria        JSONB NOT NULL,
             created_before  TIMESTAMPTZ NOT NULL,
             grace_period_secs BIGINT NOT NULL,
             reason          TEXT NOT NULL,
             requested_by    TEXT NOT NULL,
             requested_at    TIMESTAMPTZ NOT NULL,
             completed_at    TIMESTAMPTZ,
             keys            BIGINT
         );
         CREATE TABLE org_usage (
             org_id       UUID NOT NULL,
             window_start TIMESTAMPTZ NOT NULL,
             window_end   TIMESTAMPTZ NOT NULL,
             calls        BIGINT NOT NULL,
             PRIMARY KEY (org_id, window_start)
         );"
    }

    fn indexes(&self) -> &'static str {
        "CREATE INDEX IF NOT EXISTS api_keys_app_idx ON api_keys (app_id, created_at, key_id);
         CREATE INDEX IF NOT EXISTS api_keys_hash_idx ON api_keys (hash);
         CREATE INDEX IF NOT EXISTS oauth_clients_app_idx ON oauth_clients (app_id, created_at, client_id);
         CREATE INDEX IF NOT EXISTS oauth_clients_secret_idx ON oauth_clients (secret_hash);
         CREATE INDEX IF NOT EXISTS oauth_clients_previous_secret_idx ON oauth_clients (previous_secret_hash);
         CREATE INDEX IF NOT EXISTS api_keys_rotation_job_idx ON api_keys (rotation_job);"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "api_keys",
            "key_apps",
            "key_orgs",
            "org_usage",
            "oauth_clients",
            "signing_keys",
            "key_rotations",
        ]
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(TYPES.as_slice())
    }

    async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        apply::apply(tx, events).await
    }
}
