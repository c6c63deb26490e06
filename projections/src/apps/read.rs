//! Typed queries over the `apps` read model (the views `rm.<table>`), for the API, the console and the tools.
//!
//! Apps and their members, versions, installations, product requests,
//! distribution requests, the product catalogue and the organisations'
//! notifications. A query that joins another model's table lives here
//! when an `apps` table drives it (the inactive-apps report reads
//! `rm.usage_daily` for each app).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use event_schemas::app::ApprovalMode;
use tokio_postgres::types::Json;
use tokio_postgres::{Error, Row};
use uuid::Uuid;

use crate::read_models::{keyset, Keyset, TimeKey};

/// The columns [`AppRow`] reads.
const APP_COLUMNS: &str = "app_id, org_id, team_id, name, slug, description, origins, \
    callback_urls, attributes, sandbox_tenant_id, status, suspended_reason, visibility, \
    allowlist, version, created_at, \
    (SELECT d.request_id FROM rm.distribution_requests d \
      WHERE d.app_id = apps.app_id AND d.state = 'pending') AS distribution_request_id, \
    (SELECT d.visibility FROM rm.distribution_requests d \
      WHERE d.app_id = apps.app_id AND d.state = 'pending') AS distribution_visibility";

/// An app as the read model holds it (the General page).
#[derive(Debug, Clone)]
pub struct AppRow {
    /// Id.
    pub app_id: Uuid,
    /// Owning organisation.
    pub org_id: Uuid,
    /// Owning team, if any.
    pub team_id: Option<Uuid>,
    /// Name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// Description.
    pub description: String,
    /// Allowed browser origins.
    pub origins: Vec<String>,
    /// OAuth callback URLs.
    pub callback_urls: Vec<String>,
    /// Custom attributes.
    pub attributes: BTreeMap<String, String>,
    /// The organisation's sandbox tenant the app is linked to.
    pub sandbox_tenant_id: Option<Uuid>,
    /// `active`, `pending`, `suspended` or `deleted`.
    pub status: String,
    /// Why it is suspended.
    pub suspended_reason: Option<String>,
    /// `private`, `unlisted` or `public`.
    pub visibility: String,
    /// Workspaces that may install it while private.
    pub allowlist: Vec<Uuid>,
    /// Stream version.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// A distribution request waiting for staff: its id and the visibility
    /// asked for.
    pub distribution_request: Option<(Uuid, String)>,
}

impl AppRow {
    /// From a row selected with [`APP_COLUMNS`] (read by name).
    fn from_row(r: &Row) -> Self {
        let Json(origins) = r.get("origins");
        let Json(callback_urls) = r.get("callback_urls");
        let Json(attributes) = r.get("attributes");
        let Json(allowlist) = r.get("allowlist");
        AppRow {
            app_id: r.get("app_id"),
            org_id: r.get("org_id"),
            team_id: r.get("team_id"),
            name: r.get("name"),
            slug: r.get("slug"),
            description: r.get("description"),
            origins,
            callback_urls,
            attributes,
            sandbox_tenant_id: r.get("sandbox_tenant_id"),
            status: r.get("status"),
            suspended_reason: r.get("suspended_reason"),
            visibility: r.get("visibility"),
            allowlist,
            version: r.get("version"),
            created_at: r.get("created_at"),
            distribution_request: r
                .get::<_, Option<Uuid>>("distribution_request_id")
                .map(|id| (id, r.get("distribution_visibility"))),
        }
    }
}

/// The organisation of an app that is not deleted.
pub async fn app_org(client: &impl GenericClient, app: Uuid) -> Result<Option<Uuid>, Error> {
    Ok(client
        .query_opt(
            "SELECT org_id FROM rm.apps WHERE app_id = $1 AND deleted_at IS NULL",
            &[&app],
        )
        .await?
        .map(|r| r.get(0)))
}

/// One app (an error when the read model has no row for it).
pub async fn app(client: &impl GenericClient, app: Uuid) -> Result<AppRow, Error> {
    let row = client
        .query_one(
            &format!("SELECT {APP_COLUMNS} FROM rm.apps WHERE app_id = $1"),
            &[&app],
        )
        .await?;
    Ok(AppRow::from_row(&row))
}

/// A page of the organisation's apps (deleted ones excluded), oldest first.
pub async fn org_apps(
    client: &impl GenericClient,
    org: Uuid,
    page: Keyset,
) -> Result<Vec<(TimeKey, AppRow)>, Error> {
    let select =
        format!("SELECT {APP_COLUMNS} FROM rm.apps WHERE org_id = $1 AND deleted_at IS NULL");
    let key = ("created_at", "app_id");
    keyset(client, &select, key, &[&org], page, AppRow::from_row).await
}

/// The developer dashboard's counts.
#[derive(Debug, Clone, Copy)]
pub struct DashboardCounts {
    /// Apps (not deleted).
    pub apps: i64,
    /// Apps with at least one published version.
    pub published_apps: i64,
    /// Draft versions across the apps.
    pub draft_versions: i64,
}

/// The organisation's app and version counts.
pub async fn dashboard_counts(
    client: &impl GenericClient,
    org: Uuid,
) -> Result<DashboardCounts, Error> {
    let row = client
        .query_one(
            "SELECT \
               (SELECT count(*) FROM rm.apps WHERE org_id = $1 AND deleted_at IS NULL), \
               (SELECT count(DISTINCT a.app_id) FROM rm.apps a JOIN rm.app_versions v USING (app_id) \
                 WHERE a.org_id = $1 AND a.deleted_at IS NULL AND v.state = 'published'), \
               (SELECT count(*) FROM rm.apps a JOIN rm.app_versions v USING (app_id) \
                 WHERE a.org_id = $1 AND a.deleted_at IS NULL AND v.state = 'draft')",
            &[&org],
        )
        .await?;
    Ok(DashboardCounts {
        apps: row.get(0),
        published_apps: row.get(1),
        draft_versions: row.get(2),
    })
}

/// The organisation's apps (not deleted) by status.
pub async fn org_apps_by_status(
    client: &impl GenericClient,
    org: Uuid,
) -> Result<BTreeMap<String, i64>, Error> {
    Ok(client
        .query(
            "SELECT status, count(*) FROM rm.apps WHERE org_id = $1 AND deleted_at IS NULL GROUP BY status",
            &[&org],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// The organisation's apps (not deleted).
pub async fn live_app_count(client: &impl GenericClient, org: Uuid) -> Result<i64, Error> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM rm.apps WHERE org_id = $1 AND deleted_at IS NULL",
            &[&org],
        )
        .await?
        .get(0))
}

/// The app an overview focuses on.
#[derive(Debug, Clone)]
pub struct SelectedAppRow {
    /// Id.
    pub app_id: Uuid,
    /// Name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// Status.
    pub status: String,
}

/// The organisation's app `app` (not deleted), or without one its most
/// recently active app.
pub async fn selected_app(
    client: &impl GenericClient,
    org: Uuid,
    app: Option<Uuid>,
) -> Result<Option<SelectedAppRow>, Error> {
    Ok(client
        .query_opt(
            "SELECT app_id, name, slug, status FROM rm.apps \
             WHERE org_id = $1 AND deleted_at IS NULL AND ($2::uuid IS NULL OR app_id = $2) \
             ORDER BY last_activity_at DESC, app_id LIMIT 1",
            &[&org, &app],
        )
        .await?
        .map(|r| SelectedAppRow {
            app_id: r.get(0),
            name: r.get(1),
            slug: r.get(2),
            status: r.get(3),
        }))
}

/// A public app with a published version, as the marketplace lists it.
#[derive(Debug, Clone)]
pub struct ListedAppRow {
    /// Id.
    pub app_id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The publisher's organisation.
    pub org_id: Uuid,
    /// The latest published version's label.
    pub latest_version: String,
}

/// A page of the marketplace: active public apps with a published version.
pub async fn marketplace(
    client: &impl GenericClient,
    page: Keyset,
) -> Result<Vec<(TimeKey, ListedAppRow)>, Error> {
    let select = "SELECT a.app_id, a.name, a.description, a.org_id, v.label, a.created_at \
         FROM rm.apps a \
         JOIN LATERAL (SELECT label FROM rm.app_versions v WHERE v.app_id = a.app_id \
             AND v.state = 'published' ORDER BY v.published_at DESC LIMIT 1) v ON true \
         WHERE a.visibility = 'public' AND a.status = 'active'";
    keyset(
        client,
        select,
        ("a.created_at", "a.app_id"),
        &[],
        page,
        |r| ListedAppRow {
            app_id: r.get(0),
            name: r.get(1),
            description: r.get(2),
            org_id: r.get(3),
            latest_version: r.get(4),
        },
    )
    .await
}

/// An app team member.
#[derive(Debug, Clone)]
pub struct AppMemberRow {
    /// User.
    pub user_id: Uuid,
    /// `admin` or `developer`.
    pub role: String,
}

fn app_member(r: &Row) -> AppMemberRow {
    AppMemberRow {
        user_id: r.get(0),
        role: r.get(1),
    }
}

/// A page of the app's team members by user id, after `after`.
pub async fn app_members(
    client: &impl GenericClient,
    app: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AppMemberRow>, Error> {
    Ok(client
        .query(
            "SELECT user_id, role FROM rm.app_members WHERE app_id = $1 \
             AND ($2::uuid IS NULL OR user_id > $2) ORDER BY user_id LIMIT $3",
            &[&app, &after, &limit],
        )
        .await?
        .iter()
        .map(app_member)
        .collect())
}

/// The app's first 200 team members by user id (the Security page).
pub async fn first_app_members(
    client: &impl GenericClient,
    app: Uuid,
) -> Result<Vec<AppMemberRow>, Error> {
    Ok(client
        .query(
            "SELECT user_id, role FROM rm.app_members WHERE app_id = $1 ORDER BY user_id LIMIT 200",
            &[&app],
        )
        .await?
        .iter()
        .map(app_member)
        .collect())
}

/// Where an app may be called from and who may install it.
#[derive(Debug, Clone)]
pub struct AppReachRow {
    /// Allowed browser origins.
    pub origins: Vec<String>,
    /// OAuth callback URLs.
    pub callback_urls: Vec<String>,
    /// `private`, `unlisted` or `public`.
    pub visibility: String,
    /// Workspaces that may install it while private.
    pub allowlist: Vec<Uuid>,
}

/// The app's origins, callbacks, visibility and allowlist (an error when
/// the read model has no row for it).
pub async fn app_reach(client: &impl GenericClient, app: Uuid) -> Result<AppReachRow, Error> {
    let row = client
        .query_one(
            "SELECT origins, callback_urls, visibility, allowlist FROM rm.apps WHERE app_id = $1",
            &[&app],
        )
        .await?;
    let Json(origins) = row.get(0);
    let Json(callback_urls) = row.get(1);
    let Json(allowlist) = row.get(3);
    Ok(AppReachRow {
        origins,
        callback_urls,
        visibility: row.get(2),
        allowlist,
    })
}

/// The scopes of the app's approved product requests, per mode (`test`,
/// `live`), each list sorted and without repeats.
pub async fn approved_scopes(
    client: &impl GenericClient,
    app: Uuid,
) -> Result<Vec<(String, Vec<String>)>, Error> {
    Ok(client
        .query(
            "SELECT mode, array_agg(DISTINCT scope ORDER BY scope) FROM rm.access_requests, \
                 jsonb_array_elements_text(scopes) AS scope \
             WHERE app_id = $1 AND state = 'approved' GROUP BY mode",
            &[&app],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// A version of an app.
#[derive(Debug, Clone)]
pub struct VersionRow {
    /// Id.
    pub version_id: Uuid,
    /// Label (`1.2.0`).
    pub label: String,
    /// `draft` or `published`.
    pub state: String,
    /// The manifest.
    pub manifest: serde_json::Value,
}

fn version_row(r: &Row) -> VersionRow {
    let Json(manifest) = r.get("manifest");
    VersionRow {
        version_id: r.get("version_id"),
        label: r.get("label"),
        state: r.get("state"),
        manifest,
    }
}

/// The app's version `version`.
pub async fn version(
    client: &impl GenericClient,
    app: Uuid,
    version: Uuid,
) -> Result<Option<VersionRow>, Error> {
    Ok(client
        .query_opt(
            "SELECT version_id, label, state, manifest FROM rm.app_versions \
             WHERE app_id = $1 AND version_id = $2",
            &[&app, &version],
        )
        .await?
        .as_ref()
        .map(version_row))
}

/// A page of the app's versions, oldest first.
pub async fn versions(
    client: &impl GenericClient,
    app: Uuid,
    page: Keyset,
) -> Result<Vec<(TimeKey, VersionRow)>, Error> {
    let select = "SELECT version_id, label, state, manifest, created_at FROM rm.app_versions \
         WHERE app_id = $1";
    let key = ("created_at", "version_id");
    keyset(client, select, key, &[&app], page, version_row).await
}

/// An app installed in a workspace.
#[derive(Debug, Clone, Copy)]
pub struct InstallationRow {
    /// The app.
    pub app_id: Uuid,
    /// The version installed.
    pub version_id: Uuid,
}

/// A page of the apps installed in the workspace `org`, oldest first.
pub async fn installations(
    client: &impl GenericClient,
    org: Uuid,
    page: Keyset,
) -> Result<Vec<(TimeKey, InstallationRow)>, Error> {
    let select = "SELECT app_id, version_id, installed_at FROM rm.installations WHERE org_id = $1";
    let key = ("installed_at", "app_id");
    keyset(client, select, key, &[&org], page, |r| InstallationRow {
        app_id: r.get(0),
        version_id: r.get(1),
    })
    .await
}

/// A product in the catalogue.
#[derive(Debug, Clone)]
pub struct ProductRow {
    /// Id.
    pub product_id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Scopes granted with access.
    pub scopes: Vec<String>,
    /// How requests are decided.
    pub approval: ApprovalMode,
}

const PRODUCT_COLUMNS: &str = "product_id, name, description, scopes, approval, created_at";

fn product_row(r: &Row) -> ProductRow {
    let Json(scopes) = r.get("scopes");
    let Json(approval) = r.get("approval");
    ProductRow {
        product_id: r.get("product_id"),
        name: r.get("name"),
        description: r.get("description"),
        scopes,
        approval,
    }
}

/// A page of the product catalogue, oldest first.
pub async fn products(
    client: &impl GenericClient,
    page: Keyset,
) -> Result<Vec<(TimeKey, ProductRow)>, Error> {
    let select = format!("SELECT {PRODUCT_COLUMNS} FROM rm.products WHERE true");
    let key = ("created_at", "product_id");
    keyset(client, &select, key, &[], page, product_row).await
}

/// One product.
pub async fn product(client: &impl GenericClient, id: Uuid) -> Result<Option<ProductRow>, Error> {
    Ok(client
        .query_opt(
            &format!("SELECT {PRODUCT_COLUMNS} FROM rm.products WHERE product_id = $1"),
            &[&id],
        )
        .await?
        .as_ref()
        .map(product_row))
}

/// An app's request for a product.
#[derive(Debug, Clone)]
pub struct AccessRequestRow {
    /// The request.
    pub request_id: Uuid,
    /// The app.
    pub app_id: Uuid,
    /// The product.
    pub product_id: Uuid,
    /// `test` or `live`.
    pub mode: String,
    /// `pending`, `approved` or `rejected`.
    pub state: String,
    /// Scopes granted (approved only).
    pub scopes: Vec<String>,
    /// Why it was rejected.
    pub reason: Option<String>,
}

const ACCESS_COLUMNS: &str =
    "request_id, app_id, product_id, mode, state, scopes, reason, requested_at";

fn access_request_row(r: &Row) -> AccessRequestRow {
    let Json(scopes) = r.get("scopes");
    AccessRequestRow {
        request_id: r.get("request_id"),
        app_id: r.get("app_id"),
        product_id: r.get("product_id"),
        mode: r.get("mode"),
        state: r.get("state"),
        scopes,
        reason: r.get("reason"),
    }
}

/// A page of the app's product requests, oldest first.
pub async fn app_access_requests(
    client: &impl GenericClient,
    app: Uuid,
    page: Keyset,
) -> Result<Vec<(TimeKey, AccessRequestRow)>, Error> {
    let select = format!("SELECT {ACCESS_COLUMNS} FROM rm.access_requests WHERE app_id = $1");
    let key = ("requested_at", "request_id");
    keyset(client, &select, key, &[&app], page, access_request_row).await
}

/// A page of the pending product requests of every app, oldest first (the
/// approval queue).
pub async fn pending_access_requests(
    client: &impl GenericClient,
    page: Keyset,
) -> Result<Vec<(TimeKey, AccessRequestRow)>, Error> {
    let select = format!("SELECT {ACCESS_COLUMNS} FROM rm.access_requests WHERE state = 'pending'");
    let key = ("requested_at", "request_id");
    keyset(client, &select, key, &[], page, access_request_row).await
}

/// A notification for a workspace.
#[derive(Debug, Clone)]
pub struct NotificationRow {
    /// Log position of what it tells (also the sort key).
    pub position: i64,
    /// The app concerned.
    pub app_id: Uuid,
    /// What kind of news.
    pub kind: String,
    /// What to tell the developer.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A page of the organisation's notifications, newest first, before
/// position `before`.
pub async fn notifications(
    client: &impl GenericClient,
    org: Uuid,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<NotificationRow>, Error> {
    Ok(client
        .query(
            "SELECT position, app_id, kind, message, at FROM rm.notifications WHERE org_id = $1 \
             AND ($2::bigint IS NULL OR position < $2) ORDER BY position DESC LIMIT $3",
            &[&org, &before, &limit],
        )
        .await?
        .iter()
        .map(|r| NotificationRow {
            position: r.get(0),
            app_id: r.get(1),
            kind: r.get(2),
            message: r.get(3),
            at: r.get(4),
        })
        .collect())
}

/// Apps a bulk suspension matches (not deleted, not suspended), oldest
/// first: of `org`, in one of `statuses`, without activity for
/// `inactive_days`; each criterion applies only when given.
pub async fn suspension_candidates(
    client: &impl GenericClient,
    org: Option<Uuid>,
    statuses: Option<&[String]>,
    inactive_days: Option<i32>,
    limit: i64,
) -> Result<Vec<Uuid>, Error> {
    Ok(client
        .query(
            "SELECT app_id FROM rm.apps WHERE deleted_at IS NULL AND suspended_reason IS NULL \
             AND ($1::uuid IS NULL OR org_id = $1) \
             AND ($2::text[] IS NULL OR status = ANY($2)) \
             AND ($3::int IS NULL OR last_activity_at < now() - make_interval(days => $3)) \
             ORDER BY created_at, app_id LIMIT $4",
            &[&org, &statuses, &inactive_days, &limit],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// An app as the staff export writes it.
#[derive(Debug, Clone)]
pub struct ExportedAppRow {
    /// The app.
    pub app: AppRow,
    /// Its last call, or its creation.
    pub last_activity_at: DateTime<Utc>,
    /// When it was deleted.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A chunk of every app (deleted ones included), of `org` when given,
/// oldest first, after the `(created_at, app_id)` of `after`.
pub async fn export_apps(
    client: &impl GenericClient,
    org: Option<Uuid>,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<ExportedAppRow>, Error> {
    let (after_at, after_id) = after.unzip();
    Ok(client
        .query(
            &format!(
                "SELECT {APP_COLUMNS}, last_activity_at, deleted_at FROM rm.apps \
                         WHERE ($1::uuid IS NULL OR org_id = $1) \
                         AND ($2::timestamptz IS NULL OR (created_at, app_id) > ($2, $3)) \
                         ORDER BY created_at, app_id LIMIT $4"
            ),
            &[&org, &after_at, &after_id, &limit],
        )
        .await?
        .iter()
        .map(|r| ExportedAppRow {
            app: AppRow::from_row(r),
            last_activity_at: r.get("last_activity_at"),
            deleted_at: r.get("deleted_at"),
        })
        .collect())
}

/// The platform's app inventory counts.
#[derive(Debug, Clone, Copy)]
pub struct InventoryRow {
    /// Apps not deleted.
    pub total: i64,
    /// Deleted apps.
    pub deleted: i64,
    /// Organisations with at least one app.
    pub organizations: i64,
    /// Apps with a published version.
    pub with_published_version: i64,
}

/// How many apps the platform has, deleted and not, across how many
/// organisations.
pub async fn inventory(client: &impl GenericClient) -> Result<InventoryRow, Error> {
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE deleted_at IS NULL), \
                    count(*) FILTER (WHERE deleted_at IS NOT NULL), \
                    count(DISTINCT org_id) FILTER (WHERE deleted_at IS NULL), \
                    (SELECT count(DISTINCT v.app_id) FROM rm.app_versions v JOIN rm.apps a USING (app_id) \
                      WHERE v.state = 'published' AND a.deleted_at IS NULL) \
             FROM rm.apps",
            &[],
        )
        .await?;
    Ok(InventoryRow {
        total: row.get(0),
        deleted: row.get(1),
        organizations: row.get(2),
        with_published_version: row.get(3),
    })
}

/// Apps not deleted, by a column of `rm.apps` (one of this module's
/// constants, never caller input).
async fn live_apps_by(
    client: &impl GenericClient,
    column: &'static str,
) -> Result<BTreeMap<String, i64>, Error> {
    Ok(client
        .query(
            &format!("SELECT {column}, count(*) FROM rm.apps WHERE deleted_at IS NULL GROUP BY 1"),
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// The platform's apps (not deleted) by status.
pub async fn live_apps_by_status(
    client: &impl GenericClient,
) -> Result<BTreeMap<String, i64>, Error> {
    live_apps_by(client, "status").await
}

/// The platform's apps (not deleted) by visibility.
pub async fn live_apps_by_visibility(
    client: &impl GenericClient,
) -> Result<BTreeMap<String, i64>, Error> {
    live_apps_by(client, "visibility").await
}

/// An app without a call for a while.
#[derive(Debug, Clone)]
pub struct InactiveAppRow {
    /// The app.
    pub app: AppRow,
    /// Its last call (verified or reported), or its creation if it has had
    /// none.
    pub last_call_at: DateTime<Utc>,
}

/// A page of the apps (not deleted) without a call for `days` days, least
/// recently called first.
pub async fn inactive_apps(
    client: &impl GenericClient,
    days: i32,
    page: Keyset,
) -> Result<Vec<(TimeKey, InactiveAppRow)>, Error> {
    let select = format!(
        "SELECT * FROM (SELECT {APP_COLUMNS}, COALESCE( \
             (SELECT max(u.last_at) FROM rm.usage_daily u WHERE u.app_id = rm.apps.app_id), \
             rm.apps.created_at) AS last_call_at \
         FROM rm.apps WHERE deleted_at IS NULL) a \
         WHERE last_call_at <= now() - make_interval(days => $1)"
    );
    let key = ("last_call_at", "app_id");
    keyset(client, &select, key, &[&days], page, |r| InactiveAppRow {
        app: AppRow::from_row(r),
        last_call_at: r.get("last_call_at"),
    })
    .await
}

/// A distribution request waiting for staff.
#[derive(Debug, Clone)]
pub struct DistributionRequestRow {
    /// The request.
    pub request_id: Uuid,
    /// The app.
    pub app_id: Uuid,
    /// Its organisation.
    pub org_id: Uuid,
    /// The visibility asked for.
    pub visibility: String,
    /// When.
    pub requested_at: DateTime<Utc>,
}

/// A page of the distribution requests waiting for staff, oldest first.
pub async fn pending_distribution_requests(
    client: &impl GenericClient,
    page: Keyset,
) -> Result<Vec<(TimeKey, DistributionRequestRow)>, Error> {
    let select = "SELECT request_id, app_id, org_id, visibility, requested_at \
         FROM rm.distribution_requests WHERE state = 'pending'";
    let key = ("requested_at", "request_id");
    keyset(client, select, key, &[], page, |r| DistributionRequestRow {
        request_id: r.get(0),
        app_id: r.get(1),
        org_id: r.get(2),
        visibility: r.get(3),
        requested_at: r.get(4),
    })
    .await
}
