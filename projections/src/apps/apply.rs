//! The apps read model's write side: a batch loads the rows it touches,
//! folds its events in log order, and writes back what changed.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use event_schemas::app::{AppEvent, InstallLinkEvent, InstallationEvent, ProductEvent};
use event_schemas::key::{KeyEvent, NoticeEvent};
use event_schemas::oauth::OAuthClientEvent;
use event_schemas::org::OrgEvent;
use event_schemas::webhook::WebhookEvent;
use event_schemas::RecordedEvent;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::table::{self, row, Table};
use crate::{stream_uuid, ProjectionError};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct App {
    app_id: Uuid,
    org_id: Uuid,
    team_id: Option<Uuid>,
    name: String,
    slug: String,
    description: String,
    origins: Value,
    callback_urls: Value,
    attributes: Value,
    sandbox_tenant_id: Option<Uuid>,
    status: String,
    suspended_reason: Option<String>,
    visibility: String,
    allowlist: Value,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_activity_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}
row!(App, "apps", [app_id], Uuid, |r: &App| r.app_id);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Member {
    app_id: Uuid,
    user_id: Uuid,
    role: String,
}
row!(
    Member,
    "app_members",
    [app_id, user_id],
    (Uuid, Uuid),
    |r: &Member| (r.app_id, r.user_id)
);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Version {
    version_id: Uuid,
    app_id: Uuid,
    label: String,
    manifest: Value,
    state: String,
    created_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
}
row!(
    Version,
    "app_versions",
    [version_id],
    Uuid,
    |r: &Version| r.version_id
);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Link {
    link_id: Uuid,
    app_id: Uuid,
    version_id: Uuid,
    single_use: bool,
    expires_at: DateTime<Utc>,
    uses: i32,
    created_at: DateTime<Utc>,
}
row!(Link, "install_links", [link_id], Uuid, |r: &Link| r.link_id);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Installation {
    app_id: Uuid,
    org_id: Uuid,
    version_id: Uuid,
    installed_at: DateTime<Utc>,
}
row!(
    Installation,
    "installations",
    [app_id, org_id],
    (Uuid, Uuid),
    |r: &Installation| (r.app_id, r.org_id)
);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccessRequest {
    request_id: Uuid,
    app_id: Uuid,
    org_id: Uuid,
    product_id: Uuid,
    mode: String,
    state: String,
    scopes: Value,
    automatic: bool,
    reason: Option<String>,
    requested_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
}
row!(
    AccessRequest,
    "access_requests",
    [request_id],
    Uuid,
    |r: &AccessRequest| r.request_id
);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DistributionRequest {
    request_id: Uuid,
    app_id: Uuid,
    org_id: Uuid,
    visibility: String,
    state: String,
    reason: Option<String>,
    requested_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
}
row!(
    DistributionRequest,
    "distribution_requests",
    [request_id],
    Uuid,
    |r: &DistributionRequest| r.request_id
);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Product {
    product_id: Uuid,
    name: String,
    description: String,
    scopes: Value,
    approval: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}
row!(Product, "products", [product_id], Uuid, |r: &Product| r
    .product_id);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Notification {
    position: i64,
    org_id: Uuid,
    app_id: Uuid,
    kind: String,
    message: String,
    at: DateTime<Utc>,
}
row!(
    Notification,
    "notifications",
    [position],
    i64,
    |r: &Notification| r.position
);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WebhookApp {
    endpoint_id: Uuid,
    app_id: Uuid,
}
row!(
    WebhookApp,
    "webhook_apps",
    [endpoint_id],
    Uuid,
    |r: &WebhookApp| r.endpoint_id
);

/// The rows one batch works on.
#[derive(Default)]
struct Batch {
    apps: Table<App>,
    members: Table<Member>,
    versions: Table<Version>,
    links: Table<Link>,
    installations: Table<Installation>,
    requests: Table<AccessRequest>,
    distributions: Table<DistributionRequest>,
    products: Table<Product>,
    notifications: Table<Notification>,
    webhooks: Table<WebhookApp>,
    /// Apps whose every access request is loaded (their status needs all).
    requests_of: HashSet<Uuid>,
}

/// Applies a batch of events.
pub(super) async fn apply(
    tx: &Transaction<'_>,
    events: &[&RecordedEvent],
) -> Result<(), ProjectionError> {
    table::fold::<Batch>(tx, events).await
}

/// An app id an event names in its payload, without decoding it fully.
fn app_in_payload(e: &RecordedEvent) -> Option<Uuid> {
    #[derive(Deserialize)]
    struct Named {
        app_id: Option<Uuid>,
    }
    serde_json::from_str::<Named>(e.data.get()).ok()?.app_id
}

#[async_trait::async_trait]
impl table::Batch for Batch {
    /// Loads, in one query per table, the rows the batch's events name.
    async fn prefetch(
        &mut self,
        tx: &Transaction<'_>,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut apps = HashSet::new();
        let mut requests = Vec::new();
        let mut versions = Vec::new();
        let mut endpoints = Vec::new();
        let mut links = Vec::new();
        for e in events {
            if let Some(id) = e
                .stream_id
                .strip_prefix("webhook-")
                .and_then(|id| id.parse().ok())
            {
                endpoints.push(id);
            }
            #[derive(Deserialize)]
            struct Link {
                link_id: Option<Uuid>,
            }
            if e.event_type.starts_with("installation.") || e.event_type == "app.installed" {
                if let Ok(l) = serde_json::from_str::<Link>(e.data.get()) {
                    links.extend(l.link_id);
                }
            }
            if let Some(id) = e
                .stream_id
                .strip_prefix("app-")
                .and_then(|id| id.parse().ok())
            {
                apps.insert(id);
                #[derive(Deserialize)]
                struct Ids {
                    request_id: Option<Uuid>,
                    version_id: Option<Uuid>,
                }
                if let Ok(ids) = serde_json::from_str::<Ids>(e.data.get()) {
                    requests.extend(ids.request_id);
                    versions.extend(ids.version_id);
                }
            } else if let Some(app) = app_in_payload(e) {
                apps.insert(app);
            }
        }
        self.apps.load(tx, apps.iter().copied()).await?;
        self.versions.load(tx, versions).await?;
        self.webhooks.load(tx, endpoints).await?;
        self.links.load(tx, links).await?;
        self.distributions
            .load(tx, requests.iter().copied())
            .await?;
        self.load_requests_of(tx, apps).await?;
        self.requests.load(tx, requests).await
    }

    async fn flush(&mut self, tx: &Transaction<'_>) -> Result<(), ProjectionError> {
        self.apps.flush(tx).await?;
        self.members.flush(tx).await?;
        self.versions.flush(tx).await?;
        self.links.flush(tx).await?;
        self.installations.flush(tx).await?;
        self.requests.flush(tx).await?;
        self.distributions.flush(tx).await?;
        self.products.flush(tx).await?;
        self.notifications.flush(tx).await?;
        self.webhooks.flush(tx).await
    }

    async fn event(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if e.stream_id.starts_with("product-") {
            if let Some(p) = crate::decode(e, ProductEvent::decode)? {
                self.product(tx, e, &p).await?;
            }
            return Ok(());
        }
        if let Some(l) = crate::decode(e, InstallLinkEvent::decode)? {
            // Uses are counted from the installations, for every kind of link.
            if let InstallLinkEvent::Issued(l) = l {
                self.links.put(Link {
                    link_id: l.link_id,
                    app_id: l.app_id,
                    version_id: l.version_id,
                    single_use: l.single_use,
                    expires_at: l.expires_at,
                    uses: 0,
                    created_at: e.recorded_at,
                });
            }
            return Ok(());
        }
        if let Some(i) = crate::decode(e, InstallationEvent::decode)? {
            match i {
                InstallationEvent::Added(i) => {
                    self.install(tx, e, i.app_id, i.org_id, i.version_id, i.link_id)
                        .await?
                }
                InstallationEvent::Removed(r) => {
                    self.installations.delete(tx, &(r.app_id, r.org_id)).await?
                }
            }
            return Ok(());
        }
        if let Some(w) = crate::decode(e, WebhookEvent::decode)? {
            return self.webhook_notice(tx, e, &w).await;
        }
        if let Some(NoticeEvent::ExpiryApproaching(x)) = crate::decode(e, NoticeEvent::decode)? {
            let message = format!(
                "API key {} expires at {}; rotate it before then",
                x.key_id,
                x.expires_at.to_rfc3339()
            );
            return self.notify(tx, e, x.app_id, "key_expiring", message).await;
        }
        if let Some(KeyEvent::RotationRequired(r)) = crate::decode(e, KeyEvent::decode)? {
            let key = e.stream_id.trim_start_matches("api_key-");
            let message = format!(
                "Platform staff require API key {key} to be rotated: it stops working at {}",
                r.stops_at.to_rfc3339()
            );
            return self
                .notify(tx, e, r.app_id, "key_rotation_required", message)
                .await;
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
            return self.notify(tx, e, l.app_id, "key_leaked", message).await;
        }
        if let Some(OAuthClientEvent::LeakReported(l)) = crate::decode(e, OAuthClientEvent::decode)?
        {
            let what = if l.revoked {
                "the client has been revoked"
            } else {
                "rotate its secret now"
            };
            let client = e.stream_id.trim_start_matches("oauth_client-");
            let at = l.url.as_deref().unwrap_or("a public place");
            let message =
                format!("The secret of OAuth client {client} was found in public at {at}; {what}");
            return self
                .notify(tx, e, l.app_id, "client_secret_leaked", message)
                .await;
        }
        if let Some(OrgEvent::MemberRemoved(m)) = crate::decode(e, OrgEvent::decode)? {
            // App team membership is membership of the organisation's apps:
            // it ends with the organisation's. Set-based, so a barrier: the
            // rows it reads are written first, those it deletes read again.
            let org = stream_uuid(e, "org-")?;
            self.apps.flush(tx).await?;
            self.members.flush(tx).await?;
            let stmt = tx
                .prepare_cached(
                    "DELETE FROM app_members am USING apps a \
                     WHERE am.app_id = a.app_id AND a.org_id = $1 AND am.user_id = $2",
                )
                .await?;
            tx.execute(&stmt, &[&org, &m.user_id]).await?;
            return self.members.reload(tx).await;
        }
        if !e.stream_id.starts_with("app-") {
            return Ok(()); // slug reservations
        }
        if let Some(a) = crate::decode(e, AppEvent::decode)? {
            self.app_event(tx, e, &a).await?;
        }
        Ok(())
    }
}

impl Batch {
    /// Loads every access request of `apps`.
    async fn load_requests_of(
        &mut self,
        tx: &Transaction<'_>,
        apps: impl IntoIterator<Item = Uuid>,
    ) -> Result<(), ProjectionError> {
        let apps: Vec<Uuid> = apps
            .into_iter()
            .filter(|a| self.requests_of.insert(*a))
            .collect();
        self.requests.load_by(tx, "app_id", &apps).await
    }

    async fn product(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        event: &ProductEvent,
    ) -> Result<(), ProjectionError> {
        let (ProductEvent::Defined(d) | ProductEvent::Updated(d)) = event;
        let id = stream_uuid(e, "product-")?;
        let created_at = match self.products.get(tx, &id).await? {
            Some(p) => p.created_at,
            None => e.recorded_at,
        };
        self.products.put(Product {
            product_id: id,
            name: d.name.clone(),
            description: d.description.clone(),
            scopes: json!(d.scopes),
            approval: json!(d.approval),
            created_at,
            updated_at: e.recorded_at,
        });
        Ok(())
    }

    async fn install(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        app_id: Uuid,
        org_id: Uuid,
        version_id: Uuid,
        link_id: Uuid,
    ) -> Result<(), ProjectionError> {
        self.installations.put(Installation {
            app_id,
            org_id,
            version_id,
            installed_at: e.recorded_at,
        });
        if let Some(link) = self.links.get_mut(tx, &link_id).await? {
            link.uses += 1;
        }
        Ok(())
    }

    /// An endpoint's app, remembered from its creation, so that Gatehouse
    /// disabling it (a 410, or days of failures) tells the app's owners.
    async fn webhook_notice(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        w: &WebhookEvent,
    ) -> Result<(), ProjectionError> {
        let endpoint = stream_uuid(e, "webhook-")?;
        match w {
            WebhookEvent::Created(c) if self.webhooks.get(tx, &endpoint).await?.is_none() => {
                self.webhooks.put(WebhookApp {
                    endpoint_id: endpoint,
                    app_id: c.app_id,
                });
            }
            WebhookEvent::Disabled(d) if d.reason != "manual" => {
                let Some(app) = self.webhooks.get(tx, &endpoint).await?.map(|w| w.app_id) else {
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
                self.notify(tx, e, app, "webhook_disabled", message).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// A notification to the app's organisation (none for an unknown app).
    async fn notify(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        app: Uuid,
        kind: &str,
        message: String,
    ) -> Result<(), ProjectionError> {
        let Some(org_id) = self.apps.get(tx, &app).await?.map(|a| a.org_id) else {
            return Ok(());
        };
        self.notifications.put(Notification {
            position: e.global_position as i64,
            org_id,
            app_id: app,
            kind: kind.to_owned(),
            message,
            at: e.recorded_at,
        });
        Ok(())
    }

    async fn app_event(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        event: &AppEvent,
    ) -> Result<(), ProjectionError> {
        let app = stream_uuid(e, "app-")?;
        let at = e.recorded_at;
        let duplicate = |what: &str| ProjectionError::Invariant {
            position: e.global_position,
            reason: format!("{what} recorded twice"),
        };
        match event {
            AppEvent::Created(c) => {
                let row = App {
                    app_id: app,
                    org_id: c.org_id,
                    team_id: c.team_id,
                    name: c.name.clone(),
                    slug: c.slug.clone(),
                    description: c.description.clone(),
                    origins: json!(c.origins),
                    callback_urls: json!(c.callback_urls),
                    attributes: json!(c.attributes),
                    sandbox_tenant_id: c.sandbox_tenant_id,
                    status: "active".to_owned(),
                    suspended_reason: None,
                    visibility: "private".to_owned(),
                    allowlist: json!([]),
                    version: e.stream_version as i64,
                    created_at: at,
                    updated_at: at,
                    last_activity_at: at,
                    deleted_at: None,
                };
                if !self.apps.insert(tx, row).await? {
                    return Err(duplicate("app.created"));
                }
            }
            AppEvent::Updated(u) => {
                if let Some(a) = self.apps.get_mut(tx, &app).await? {
                    if let Some(name) = &u.name {
                        a.name = name.clone();
                    }
                    if let Some(slug) = &u.slug {
                        a.slug = slug.clone();
                    }
                    if let Some(description) = &u.description {
                        a.description = description.clone();
                    }
                    if let Some(origins) = &u.origins {
                        a.origins = json!(origins);
                    }
                    if let Some(urls) = &u.callback_urls {
                        a.callback_urls = json!(urls);
                    }
                    if let Value::Object(attributes) = &mut a.attributes {
                        for (k, v) in &u.attributes {
                            match v {
                                Some(v) => attributes.insert(k.clone(), Value::String(v.clone())),
                                None => attributes.remove(k),
                            };
                        }
                    }
                }
            }
            AppEvent::Deleted(_) => {
                if let Some(a) = self.apps.get_mut(tx, &app).await? {
                    a.deleted_at = Some(at);
                }
            }
            AppEvent::Suspended(s) => {
                if let Some(a) = self.apps.get_mut(tx, &app).await? {
                    a.suspended_reason = Some(s.reason.clone());
                }
            }
            AppEvent::Reinstated(_) => {
                if let Some(a) = self.apps.get_mut(tx, &app).await? {
                    a.suspended_reason = None;
                }
            }
            AppEvent::MemberSet(m) => self.members.put(Member {
                app_id: app,
                user_id: m.user_id,
                role: m.role.clone(),
            }),
            AppEvent::MemberRemoved(m) => self.members.delete(tx, &(app, m.user_id)).await?,
            AppEvent::DistributionRequested(r) => {
                if let Some(org_id) = self.apps.get(tx, &app).await?.map(|a| a.org_id) {
                    let row = DistributionRequest {
                        request_id: r.request_id,
                        app_id: app,
                        org_id,
                        visibility: r.visibility.clone(),
                        state: "pending".to_owned(),
                        reason: None,
                        requested_at: at,
                        decided_at: None,
                    };
                    if !self.distributions.insert(tx, row).await? {
                        return Err(duplicate("a distribution request"));
                    }
                }
            }
            AppEvent::DistributionDecided(d) => {
                let state = if d.approved { "approved" } else { "rejected" };
                if let Some(r) = self.distributions.get_mut(tx, &d.request_id).await? {
                    r.state = state.to_owned();
                    r.reason = d.reason.clone();
                    r.decided_at = Some(at);
                }
                let message = match &d.reason {
                    Some(r) => format!("Distribution request {state}: {r}"),
                    None => format!("Distribution request {state}"),
                };
                self.notify(tx, e, app, &format!("distribution.{state}"), message)
                    .await?;
            }
            AppEvent::VisibilityChanged(v) => {
                if let Some(a) = self.apps.get_mut(tx, &app).await? {
                    a.visibility = v.visibility.clone();
                }
            }
            AppEvent::AllowlistSet(l) => {
                if let Some(a) = self.apps.get_mut(tx, &app).await? {
                    a.allowlist = json!(l.org_ids);
                }
            }
            AppEvent::VersionCreated(v) => {
                let row = Version {
                    version_id: v.version_id,
                    app_id: app,
                    label: v.label.clone(),
                    manifest: v.manifest.clone(),
                    state: "draft".to_owned(),
                    created_at: at,
                    published_at: None,
                };
                if !self.versions.insert(tx, row).await? {
                    return Err(duplicate("a version"));
                }
            }
            AppEvent::ManifestUpdated(m) => {
                if let Some(v) = self.versions.get_mut(tx, &m.version_id).await? {
                    v.manifest = m.manifest.clone();
                }
            }
            AppEvent::VersionPublished(p) => {
                if let Some(v) = self.versions.get_mut(tx, &p.version_id).await? {
                    v.state = "published".to_owned();
                    v.published_at = Some(at);
                }
            }
            AppEvent::InstallLinkCreated(l) => {
                let row = Link {
                    link_id: l.link_id,
                    app_id: app,
                    version_id: l.version_id,
                    single_use: l.single_use,
                    expires_at: l.expires_at,
                    uses: 0,
                    created_at: at,
                };
                if !self.links.insert(tx, row).await? {
                    return Err(duplicate("an install link"));
                }
            }
            AppEvent::Installed(i) => {
                self.install(tx, e, app, i.org_id, i.version_id, i.link_id)
                    .await?
            }
            AppEvent::Uninstalled(u) => self.installations.delete(tx, &(app, u.org_id)).await?,
            AppEvent::AccessRequested(r) => {
                self.load_requests_of(tx, [app]).await?;
                if let Some(org_id) = self.apps.get(tx, &app).await?.map(|a| a.org_id) {
                    let row = AccessRequest {
                        request_id: r.request_id,
                        app_id: app,
                        org_id,
                        product_id: r.product_id,
                        mode: r.mode.clone(),
                        state: "pending".to_owned(),
                        scopes: json!([]),
                        automatic: false,
                        reason: None,
                        requested_at: at,
                        decided_at: None,
                    };
                    if !self.requests.insert(tx, row).await? {
                        return Err(duplicate("an access request"));
                    }
                }
            }
            AppEvent::AccessApproved(a) => {
                if let Some(r) = self.requests.get_mut(tx, &a.request_id).await? {
                    r.state = "approved".to_owned();
                    r.scopes = json!(a.scopes);
                    r.automatic = a.automatic;
                    r.decided_at = Some(at);
                }
                if !a.automatic {
                    let message = "Product access approved".to_owned();
                    self.notify(tx, e, app, "product_access.approved", message)
                        .await?;
                }
            }
            AppEvent::AccessRejected(r) => {
                if let Some(row) = self.requests.get_mut(tx, &r.request_id).await? {
                    row.state = "rejected".to_owned();
                    row.reason = Some(r.reason.clone());
                    row.decided_at = Some(at);
                }
                let message = format!("Product access rejected: {}", r.reason);
                self.notify(tx, e, app, "product_access.rejected", message)
                    .await?;
            }
        }
        // Status, version and activity follow every event of the app.
        self.load_requests_of(tx, [app]).await?;
        let requests = self.requests.rows().filter(|r| r.app_id == app);
        let (mut pending, mut approved) = (false, false);
        for r in requests {
            pending |= r.state == "pending";
            approved |= r.state == "approved";
        }
        if let Some(a) = self.apps.get_mut(tx, &app).await? {
            a.version = e.stream_version as i64;
            a.updated_at = at;
            a.last_activity_at = at;
            a.status = domain::apps::Status::of(
                a.deleted_at.is_some(),
                a.suspended_reason.is_some(),
                pending,
                approved,
            )
            .as_str()
            .to_owned();
        }
        Ok(())
    }
}
