//! Apps and API products: the developer dashboard and app list, the app
//! detail pages (General, Versions, Security), installs, the product
//! catalogue, the staff approval queue and reports, and the notifications
//! a developer sees when staff decide.
//!
//! An app's `status` is kept by the same rule as `domain::apps::App::status`:
//! deleted, else suspended, else pending while a product request waits and
//! none is approved, else active.

pub mod read;

use std::sync::LazyLock;

use async_trait::async_trait;
use event_schemas::app::{AppEvent, InstallLinkEvent, InstallationEvent, ProductEvent};
use event_schemas::key::{KeyEvent, NoticeEvent};
use event_schemas::oauth::OAuthClientEvent;
use event_schemas::org::OrgEvent;
use event_schemas::RecordedEvent;
use tokio_postgres::types::Json;
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::{stream_uuid, Projection, ProjectionError};

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
        6
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
         CREATE INDEX apps_all_idx ON apps (created_at, app_id);
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
         CREATE INDEX app_versions_app_idx ON app_versions (app_id, created_at, version_id);
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
         CREATE INDEX installations_org_idx ON installations (org_id, installed_at, app_id);
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
         CREATE INDEX access_requests_pending_idx ON access_requests (requested_at, request_id)
             WHERE state = 'pending';
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
         CREATE INDEX distribution_requests_pending_idx ON distribution_requests (app_id)
             WHERE state = 'pending';
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
         CREATE INDEX notifications_org_idx ON notifications (org_id, position);
         CREATE TABLE webhook_apps (
             endpoint_id UUID PRIMARY KEY,
             app_id      UUID NOT NULL
         );"
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
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for e in events {
            if e.stream_id.starts_with("product-") {
                if let Some(p) = crate::decode(e, ProductEvent::decode)? {
                    apply_product(tx, e, &p).await?;
                }
                continue;
            }
            if let Some(l) = crate::decode(e, InstallLinkEvent::decode)? {
                apply_link(tx, e, &l).await?;
                continue;
            }
            if let Some(i) = crate::decode(e, InstallationEvent::decode)? {
                apply_installation(tx, e, &i).await?;
                continue;
            }
            if let Some(w) = crate::decode(e, event_schemas::webhook::WebhookEvent::decode)? {
                webhook_notice(tx, e, &w).await?;
                continue;
            }
            if let Some(NoticeEvent::ExpiryApproaching(x)) = crate::decode(e, NoticeEvent::decode)?
            {
                let message = format!(
                    "API key {} expires at {}; rotate it before then",
                    x.key_id,
                    x.expires_at.to_rfc3339()
                );
                notify(tx, e, x.app_id, "key_expiring", message).await?;
                continue;
            }
            if let Some(KeyEvent::RotationRequired(r)) = crate::decode(e, KeyEvent::decode)? {
                let key = e.stream_id.trim_start_matches("api_key-");
                let message = format!(
                    "Platform staff require API key {key} to be rotated: it stops working at {}",
                    r.stops_at.to_rfc3339()
                );
                notify(tx, e, r.app_id, "key_rotation_required", message).await?;
                continue;
            }
            if let Some(KeyEvent::LeakReported(l)) = crate::decode(e, KeyEvent::decode)? {
                let what = if l.revoked {
                    "it has been revoked"
                } else {
                    "rotate it now"
                };
                let key = e.stream_id.trim_start_matches("api_key-");
                let at = l.url.as_deref().unwrap_or("a public place");
                let message = format!("API key {key} was found in public at {at}; {what}");
                notify(tx, e, l.app_id, "key_leaked", message).await?;
                continue;
            }
            if let Some(OAuthClientEvent::LeakReported(l)) =
                crate::decode(e, OAuthClientEvent::decode)?
            {
                let what = if l.revoked {
                    "the client has been revoked"
                } else {
                    "rotate its secret now"
                };
                let client = e.stream_id.trim_start_matches("oauth_client-");
                let at = l.url.as_deref().unwrap_or("a public place");
                let message = format!(
                    "The secret of OAuth client {client} was found in public at {at}; {what}"
                );
                notify(tx, e, l.app_id, "client_secret_leaked", message).await?;
                continue;
            }
            if let Some(OrgEvent::MemberRemoved(m)) = crate::decode(e, OrgEvent::decode)? {
                // App team membership is membership of the organisation's
                // apps: it ends with the organisation's.
                let org = stream_uuid(e, "org-")?;
                tx.execute(
                    "DELETE FROM app_members am USING apps a \
                     WHERE am.app_id = a.app_id AND a.org_id = $1 AND am.user_id = $2",
                    &[&org, &m.user_id],
                )
                .await?;
                continue;
            }
            if !e.stream_id.starts_with("app-") {
                continue; // slug reservations
            }
            if let Some(a) = crate::decode(e, AppEvent::decode)? {
                apply_app(tx, e, &a).await?;
            }
        }
        Ok(())
    }
}

async fn apply_link(
    tx: &Transaction<'_>,
    e: &RecordedEvent,
    event: &InstallLinkEvent,
) -> Result<(), ProjectionError> {
    match event {
        InstallLinkEvent::Issued(l) => {
            tx.execute(
                "INSERT INTO install_links (link_id, app_id, version_id, single_use, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&l.link_id, &l.app_id, &l.version_id, &l.single_use, &l.expires_at, &e.recorded_at],
            )
            .await?;
        }
        // Uses are counted from the installations, for every kind of link.
        InstallLinkEvent::Used(_) => {}
    }
    Ok(())
}

async fn apply_installation(
    tx: &Transaction<'_>,
    e: &RecordedEvent,
    event: &InstallationEvent,
) -> Result<(), ProjectionError> {
    match event {
        InstallationEvent::Added(i) => {
            tx.execute(
                "INSERT INTO installations (app_id, org_id, version_id, installed_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (app_id, org_id) DO UPDATE SET version_id = $3, installed_at = $4",
                &[&i.app_id, &i.org_id, &i.version_id, &e.recorded_at],
            )
            .await?;
            tx.execute(
                "UPDATE install_links SET uses = uses + 1 WHERE link_id = $1",
                &[&i.link_id],
            )
            .await?;
        }
        InstallationEvent::Removed(r) => {
            tx.execute(
                "DELETE FROM installations WHERE app_id = $1 AND org_id = $2",
                &[&r.app_id, &r.org_id],
            )
            .await?;
        }
    }
    Ok(())
}

async fn apply_product(
    tx: &Transaction<'_>,
    e: &RecordedEvent,
    event: &ProductEvent,
) -> Result<(), ProjectionError> {
    let (ProductEvent::Defined(d) | ProductEvent::Updated(d)) = event;
    let id = stream_uuid(e, "product-")?;
    tx.execute(
        "INSERT INTO products (product_id, name, description, scopes, approval, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) \
         ON CONFLICT (product_id) DO UPDATE SET name = $2, description = $3, scopes = $4, \
             approval = $5, updated_at = $6",
        &[
            &id,
            &d.name,
            &d.description,
            &Json(&d.scopes),
            &Json(&d.approval),
            &e.recorded_at,
        ],
    )
    .await?;
    Ok(())
}

/// An endpoint's app, remembered from its creation, so that Gatehouse
/// disabling it (a 410, or days of failures) tells the app's owners.
async fn webhook_notice(
    tx: &Transaction<'_>,
    e: &RecordedEvent,
    w: &event_schemas::webhook::WebhookEvent,
) -> Result<(), ProjectionError> {
    use event_schemas::webhook::WebhookEvent;
    let endpoint = stream_uuid(e, "webhook-")?;
    match w {
        WebhookEvent::Created(c) => {
            tx.execute(
                "INSERT INTO webhook_apps (endpoint_id, app_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                &[&endpoint, &c.app_id],
            )
            .await?;
        }
        WebhookEvent::Disabled(d) if d.reason != "manual" => {
            let Some(row) = tx
                .query_opt(
                    "SELECT app_id FROM webhook_apps WHERE endpoint_id = $1",
                    &[&endpoint],
                )
                .await?
            else {
                return Ok(());
            };
            let why = match d.reason.as_str() {
                "gone" => "its receiver answered 410 Gone".to_owned(),
                _ => format!(
                    "every delivery failed since {}",
                    d.failing_since.map(|t| t.to_rfc3339()).unwrap_or_default()
                ),
            };
            let message = format!(
                "Webhook endpoint {endpoint} was disabled because {why}; fix it, enable it again and replay what it missed"
            );
            notify(tx, e, row.get(0), "webhook_disabled", message).await?;
        }
        _ => {}
    }
    Ok(())
}

async fn notify(
    tx: &Transaction<'_>,
    e: &RecordedEvent,
    app: Uuid,
    kind: &str,
    message: String,
) -> Result<(), ProjectionError> {
    tx.execute(
        "INSERT INTO notifications (position, org_id, app_id, kind, message, at) \
         SELECT $1, org_id, app_id, $3, $4, $5 FROM apps WHERE app_id = $2",
        &[
            &(e.global_position as i64),
            &app,
            &kind,
            &message,
            &e.recorded_at,
        ],
    )
    .await?;
    Ok(())
}

async fn apply_app(
    tx: &Transaction<'_>,
    e: &RecordedEvent,
    event: &AppEvent,
) -> Result<(), ProjectionError> {
    let app = stream_uuid(e, "app-")?;
    let at = &e.recorded_at;
    let version = e.stream_version as i64;
    match event {
        AppEvent::Created(c) => {
            tx.execute(
                "INSERT INTO apps (app_id, org_id, team_id, name, slug, description, origins, \
                     callback_urls, attributes, sandbox_tenant_id, status, visibility, version, \
                     created_at, updated_at, last_activity_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', 'private', $11, $12, $12, $12)",
                &[
                    &app,
                    &c.org_id,
                    &c.team_id,
                    &c.name,
                    &c.slug,
                    &c.description,
                    &Json(&c.origins),
                    &Json(&c.callback_urls),
                    &Json(&c.attributes),
                    &c.sandbox_tenant_id,
                    &version,
                    at,
                ],
            )
            .await?;
        }
        AppEvent::Updated(u) => {
            let (set, unset): (Vec<_>, Vec<_>) =
                u.attributes.iter().partition(|(_, v)| v.is_some());
            let set: serde_json::Map<String, serde_json::Value> = set
                .into_iter()
                .filter_map(|(k, v)| Some((k.clone(), v.clone()?.into())))
                .collect();
            let unset: Vec<String> = unset.into_iter().map(|(k, _)| k.clone()).collect();
            tx.execute(
                "UPDATE apps SET name = COALESCE($2, name), slug = COALESCE($3, slug), \
                     description = COALESCE($4, description), origins = COALESCE($5, origins), \
                     callback_urls = COALESCE($6, callback_urls), \
                     attributes = (attributes - $7::text[]) || $8 \
                 WHERE app_id = $1",
                &[
                    &app,
                    &u.name,
                    &u.slug,
                    &u.description,
                    &u.origins.as_ref().map(Json),
                    &u.callback_urls.as_ref().map(Json),
                    &unset,
                    &Json(serde_json::Value::Object(set)),
                ],
            )
            .await?;
        }
        AppEvent::Deleted(_) => {
            tx.execute(
                "UPDATE apps SET deleted_at = $2 WHERE app_id = $1",
                &[&app, at],
            )
            .await?;
        }
        AppEvent::Suspended(s) => {
            tx.execute(
                "UPDATE apps SET suspended_reason = $2 WHERE app_id = $1",
                &[&app, &s.reason],
            )
            .await?;
        }
        AppEvent::Reinstated(_) => {
            tx.execute(
                "UPDATE apps SET suspended_reason = NULL WHERE app_id = $1",
                &[&app],
            )
            .await?;
        }
        AppEvent::MemberSet(m) => {
            tx.execute(
                "INSERT INTO app_members (app_id, user_id, role) VALUES ($1, $2, $3) \
                 ON CONFLICT (app_id, user_id) DO UPDATE SET role = $3",
                &[&app, &m.user_id, &m.role],
            )
            .await?;
        }
        AppEvent::MemberRemoved(m) => {
            tx.execute(
                "DELETE FROM app_members WHERE app_id = $1 AND user_id = $2",
                &[&app, &m.user_id],
            )
            .await?;
        }
        AppEvent::DistributionRequested(r) => {
            tx.execute(
                "INSERT INTO distribution_requests (request_id, app_id, org_id, visibility, state, requested_at) \
                 SELECT $1, app_id, org_id, $3, 'pending', $4 FROM apps WHERE app_id = $2",
                &[&r.request_id, &app, &r.visibility, at],
            )
            .await?;
        }
        AppEvent::DistributionDecided(d) => {
            let state = if d.approved { "approved" } else { "rejected" };
            tx.execute(
                "UPDATE distribution_requests SET state = $2, reason = $3, decided_at = $4 \
                 WHERE request_id = $1",
                &[&d.request_id, &state, &d.reason, at],
            )
            .await?;
            let message = match &d.reason {
                Some(r) => format!("Distribution request {state}: {r}"),
                None => format!("Distribution request {state}"),
            };
            notify(tx, e, app, &format!("distribution.{state}"), message).await?;
        }
        AppEvent::VisibilityChanged(v) => {
            tx.execute(
                "UPDATE apps SET visibility = $2 WHERE app_id = $1",
                &[&app, &v.visibility],
            )
            .await?;
        }
        AppEvent::AllowlistSet(a) => {
            tx.execute(
                "UPDATE apps SET allowlist = $2 WHERE app_id = $1",
                &[&app, &Json(&a.org_ids)],
            )
            .await?;
        }
        AppEvent::VersionCreated(v) => {
            tx.execute(
                "INSERT INTO app_versions (version_id, app_id, label, manifest, state, created_at) \
                 VALUES ($1, $2, $3, $4, 'draft', $5)",
                &[&v.version_id, &app, &v.label, &Json(&v.manifest), at],
            )
            .await?;
        }
        AppEvent::ManifestUpdated(m) => {
            tx.execute(
                "UPDATE app_versions SET manifest = $2 WHERE version_id = $1",
                &[&m.version_id, &Json(&m.manifest)],
            )
            .await?;
        }
        AppEvent::VersionPublished(p) => {
            tx.execute(
                "UPDATE app_versions SET state = 'published', published_at = $2 WHERE version_id = $1",
                &[&p.version_id, at],
            )
            .await?;
        }
        AppEvent::InstallLinkCreated(l) => {
            tx.execute(
                "INSERT INTO install_links (link_id, app_id, version_id, single_use, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&l.link_id, &app, &l.version_id, &l.single_use, &l.expires_at, at],
            )
            .await?;
        }
        AppEvent::Installed(i) => {
            tx.execute(
                "INSERT INTO installations (app_id, org_id, version_id, installed_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (app_id, org_id) DO UPDATE SET version_id = $3, installed_at = $4",
                &[&app, &i.org_id, &i.version_id, at],
            )
            .await?;
            tx.execute(
                "UPDATE install_links SET uses = uses + 1 WHERE link_id = $1",
                &[&i.link_id],
            )
            .await?;
        }
        AppEvent::Uninstalled(u) => {
            tx.execute(
                "DELETE FROM installations WHERE app_id = $1 AND org_id = $2",
                &[&app, &u.org_id],
            )
            .await?;
        }
        AppEvent::AccessRequested(r) => {
            tx.execute(
                "INSERT INTO access_requests (request_id, app_id, org_id, product_id, mode, state, requested_at) \
                 SELECT $1, app_id, org_id, $3, $4, 'pending', $5 FROM apps WHERE app_id = $2",
                &[&r.request_id, &app, &r.product_id, &r.mode, at],
            )
            .await?;
        }
        AppEvent::AccessApproved(a) => {
            tx.execute(
                "UPDATE access_requests SET state = 'approved', scopes = $2, automatic = $3, decided_at = $4 \
                 WHERE request_id = $1",
                &[&a.request_id, &Json(&a.scopes), &a.automatic, at],
            )
            .await?;
            if !a.automatic {
                notify(
                    tx,
                    e,
                    app,
                    "product_access.approved",
                    "Product access approved".into(),
                )
                .await?;
            }
        }
        AppEvent::AccessRejected(r) => {
            tx.execute(
                "UPDATE access_requests SET state = 'rejected', reason = $2, decided_at = $3 \
                 WHERE request_id = $1",
                &[&r.request_id, &r.reason, at],
            )
            .await?;
            let message = format!("Product access rejected: {}", r.reason);
            notify(tx, e, app, "product_access.rejected", message).await?;
        }
    }
    // Status, version and activity follow every event of the app.
    tx.execute(
        "UPDATE apps SET version = $2, updated_at = $3, last_activity_at = $3, status = CASE \
             WHEN deleted_at IS NOT NULL THEN 'deleted' \
             WHEN suspended_reason IS NOT NULL THEN 'suspended' \
             WHEN EXISTS (SELECT 1 FROM access_requests r WHERE r.app_id = $1 AND r.state = 'pending') \
              AND NOT EXISTS (SELECT 1 FROM access_requests r WHERE r.app_id = $1 AND r.state = 'approved') \
             THEN 'pending' ELSE 'active' END \
         WHERE app_id = $1",
        &[&app, &version, at],
    )
    .await?;
    Ok(())
}
