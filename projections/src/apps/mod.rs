//! Apps and API products: the developer dashboard and app list, the app
//! detail pages (General, Versions, Security), installs, the product
//! catalogue, the staff approval queue and reports, and the notifications
//! a developer sees when staff decide.
//!
//! An app's `status` is kept by the same rule as `domain::apps::App::status`:
//! deleted, else suspended, else pending while a product request waits and
//! none is approved, else active.

mod apply;
pub mod read;

use std::sync::LazyLock;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use event_schemas::app::{AppEvent, InstallLinkEvent, InstallationEvent, ProductEvent};
use event_schemas::RecordedEvent;

use crate::{Projection, ProjectionError};

/// The apps read model.
pub struct Apps;

static TYPES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    AppEvent::TYPES
        .iter()
        .chain(ProductEvent::TYPES)
        .chain(InstallLinkEvent::TYPES)
        .chain(InstallationEvent::TYPES)
        .chain(&[
            "api_key.leak_reported",
            "oauth_client.leak_reported",
            "api_key.rotation_required",
            "api_key.expiry_approaching",
            "webhook.endpoint_created",
            "webhook.endpoint_disabled",
            "member.removed",
        ])
        .copied()
        .collect()
});

#[async_trait]
impl Projection for Apps {
    fn name(&self) -> &'static str {
        "apps"
    }

    fn version(&self) -> u32 {
        // 2: install links and installations in streams of their own.
        // 3: leaked-key notifications.
        // 4: endpoints disabled by delivery failures notify the owners.
        // 5: leaving the organisation ends app team membership.
        // 6: leaked OAuth client secrets notify the owners.
        // 7: batch-shaped (the same rows, written set-wise).
        7
    }

    fn schema(&self) -> &'static str {
        "CREATE TABLE apps (
             app_id            UUID PRIMARY KEY,
             org_id            UUID NOT NULL,
             team_id           UUID,
             name              TEXT NOT NULL,
             slug              TEXT NOT NULL,
             description       TEXT NOT NULL,
             origins           JSONB NOT NULL,
             callback_urls     JSONB NOT NULL,
             attributes        JSONB NOT NULL,
             sandbox_tenant_id UUID,
             status            TEXT NOT NULL,
             suspended_reason  TEXT,
             visibility        TEXT NOT NULL,
             allowlist         JSONB NOT NULL DEFAULT '[]',
             version           BIGINT NOT NULL,
             created_at        TIMESTAMPTZ NOT NULL,
             updated_at        TIMESTAMPTZ NOT NULL,
             last_activity_at  TIMESTAMPTZ NOT NULL,
             deleted_at        TIMESTAMPTZ
         );
         CREATE INDEX apps_org_idx ON apps (org_id, created_at, app_id);
         CREATE TABLE app_members (
             app_id  UUID NOT NULL,
             user_id UUID NOT NULL,
             role    TEXT NOT NULL,
             PRIMARY KEY (app_id, user_id)
         );
         CREATE TABLE app_versions (
             version_id   UUID PRIMARY KEY,
             app_id       UUID NOT NULL,
             label        TEXT NOT NULL,
             manifest     JSONB NOT NULL,
             state        TEXT NOT NULL,
             created_at   TIMESTAMPTZ NOT NULL,
             published_at TIMESTAMPTZ
         );
         CREATE TABLE install_links (
             link_id    UUID PRIMARY KEY,
             app_id     UUID NOT NULL,
             version_id UUID NOT NULL,
             single_use BOOLEAN NOT NULL,
             expires_at TIMESTAMPTZ NOT NULL,
             uses       INT NOT NULL DEFAULT 0,
             created_at TIMESTAMPTZ NOT NULL
         );
         CREATE TABLE installations (
             app_id       UUID NOT NULL,
             org_id       UUID NOT NULL,
             version_id   UUID NOT NULL,
             installed_at TIMESTAMPTZ NOT NULL,
             PRIMARY KEY (app_id, org_id)
         );
         CREATE TABLE access_requests (
             request_id   UUID PRIMARY KEY,
             app_id       UUID NOT NULL,
             org_id       UUID NOT NULL,
             product_id   UUID NOT NULL,
             mode         TEXT NOT NULL,
             state        TEXT NOT NULL,
             scopes       JSONB NOT NULL DEFAULT '[]',
             automatic    BOOLEAN NOT NULL DEFAULT false,
             reason       TEXT,
             requested_at TIMESTAMPTZ NOT NULL,
             decided_at   TIMESTAMPTZ
         );
         CREATE INDEX access_requests_app_idx ON access_requests (app_id, requested_at, request_id);
         CREATE TABLE distribution_requests (
             request_id   UUID PRIMARY KEY,
             app_id       UUID NOT NULL,
             org_id       UUID NOT NULL,
             visibility   TEXT NOT NULL,
             state        TEXT NOT NULL,
             reason       TEXT,
             requested_at TIMESTAMPTZ NOT NULL,
             decided_at   TIMESTAMPTZ
         );
         CREATE TABLE products (
             product_id  UUID PRIMARY KEY,
             name        TEXT NOT NULL,
             description TEXT NOT NULL,
             scopes      JSONB NOT NULL,
             approval    JSONB NOT NULL,
             created_at  TIMESTAMPTZ NOT NULL,
             updated_at  TIMESTAMPTZ NOT NULL
         );
         CREATE TABLE notifications (
             position BIGINT PRIMARY KEY,
             org_id   UUID NOT NULL,
             app_id   UUID NOT NULL,
             kind     TEXT NOT NULL,
             message  TEXT NOT NULL,
             at       TIMESTAMPTZ NOT NULL
         );
         CREATE TABLE webhook_apps (
             endpoint_id UUID PRIMARY KEY,
             app_id      UUID NOT NULL
         );"
    }

    fn indexes(&self) -> &'static str {
        "CREATE INDEX IF NOT EXISTS apps_all_idx ON apps (created_at, app_id);
         CREATE INDEX IF NOT EXISTS app_versions_app_idx ON app_versions (app_id, created_at, version_id);
         CREATE INDEX IF NOT EXISTS installations_org_idx ON installations (org_id, installed_at, app_id);
         CREATE INDEX IF NOT EXISTS access_requests_pending_idx ON access_requests (requested_at, request_id) WHERE state = 'pending';
         CREATE INDEX IF NOT EXISTS distribution_requests_pending_idx ON distribution_requests (app_id) WHERE state = 'pending';
         CREATE INDEX IF NOT EXISTS notifications_org_idx ON notifications (org_id, position);"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "apps",
            "app_members",
            "app_versions",
            "install_links",
            "installations",
            "access_requests",
            "distribution_requests",
            "products",
            "notifications",
            "webhook_apps",
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
