//! Apps: create, read, update, delete; app team members (the Security
//! page); visibility and distribution requests; the private-install
//! allowlist; the developer dashboard.
//!
//! Commands load the app's stream and its organisation's stream and decide
//! with the domain's rules. Concurrency, per command: `PATCH /v1/apps/{app}`
//! with `If-Match: <version>` answers 409 `version-conflict` when the app
//! has moved on (the client re-reads and decides); without `If-Match`, and
//! for every other command, a concurrent change makes the server re-decide
//! on fresh state (up to 16 times, with jittered backoff), which is safe because each command
//! states its whole intent (fields to set, a member's role).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::apps::{self, App, AppError, AppRole, Details, Visibility};
use domain::orgs::{Org, PLATFORM_API};
use domain::roles::Permission;
use event_schemas::app::{
    app_slug_stream, app_stream, AppEvent, AppSlug, AppSlugEvent, AppUpdated,
};
use event_schemas::{Actor, ExpectedVersion};
use event_store::StreamAppend;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::Json as PgJson;
use utoipa::ToSchema;
use uuid::Uuid;

use super::orgs::{authorize_read, load as load_org};
use crate::command::{CommandIds, Committed, Plan, RequestMeta, SlugHolder};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, Path, Session};
use crate::page::{self, Page, PageQuery, Paging};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs/{org}/apps", post(create_app).get(list_apps))
        .route("/v1/orgs/{org}/dashboard", get(dashboard))
        .route(
            "/v1/apps/{app}",
            get(get_app).patch(update_app).delete(delete_app),
        )
        .route("/v1/apps/{app}/members", get(list_app_members))
        .route("/v1/apps/{app}/security", get(security))
        .route("/v1/marketplace", get(marketplace))
        .route(
            "/v1/apps/{app}/members/{user}",
            put(set_app_member).delete(remove_app_member),
        )
        .route("/v1/apps/{app}/visibility", post(set_visibility))
        .route("/v1/apps/{app}/allowlist", put(set_allowlist))
}

/// An app as the log holds it, shared with the command service's cache
/// (it reads as an `&App`; nothing is copied).
pub(crate) type SharedApp = std::sync::Arc<crate::command::Loaded<App>>;

/// Loads an app from the log: the state, its stream version and position.
pub(crate) async fn load(state: &AppState, app: Uuid) -> Result<(SharedApp, u64, u64), ApiError> {
    let loaded = state.commands.load::<App>(&app_stream(app)).await?;
    let (version, position) = (loaded.version, loaded.position);
    Ok((loaded, version, position))
}

/// A wire string parsed into the domain's enum at the edge, or 422 naming
/// the field and what it may be.
pub(crate) fn wire<T>(
    value: &str,
    pointer: &str,
    parse: fn(&str) -> Option<T>,
    expected: &str,
) -> Result<T, ApiError> {
    parse(value).ok_or_else(|| {
        ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
            pointer: pointer.into(),
            detail: format!("must be {expected}"),
        }]))
    })
}

/// Without `platform.api` the Developers workspace is locked.
pub(crate) fn require_workspace(org: &Org, user: Uuid) -> Result<(), ApiError> {
    org.role_of(user)?;
    if !org.has_module(PLATFORM_API) {
        return Err(ApiError::UpgradeRequired {
            module: PLATFORM_API,
        });
    }
    Ok(())
}

/// Who acts, for the workspace check: a member (checked against the
/// paywall) or staff (neither).
#[derive(Clone, Copy)]
pub(crate) enum By {
    /// A member of the owning organisation.
    Member(Uuid),
    /// Platform staff.
    Staff,
    /// Someone the command's own rules judge (installing into another
    /// workspace).
    Anyone,
}

/// Runs an app command through the executor: checks the caller against
/// the owning organisation, decides on fresh state and appends; with
/// `expected` (`If-Match`), a moved-on app is a 409 instead of a re-decision.
/// Slug changes and deletion move the app's slug reservation in the same
/// commit. Returns the app after the command, its version and the position.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn execute(
    state: &AppState,
    app_id: Uuid,
    by: By,
    expected: Option<u64>,
    meta: &RequestMeta,
    actor: Actor,
    decide: impl Fn(&Org, &App) -> Result<Vec<AppEvent>, AppError>,
) -> Result<(SharedApp, u64, u64), ApiError> {
    let ids = meta.ids();
    let stream = app_stream(app_id);
    let (ids_ref, decide, actor) = (&ids, &decide, &actor);
    let executed = state
        .commands
        .execute::<App, _>(&stream, &ids, move |loaded| async move {
            let ids = ids_ref;
            let app = &loaded.state;
            if !app.exists {
                return Err(ApiError::NotFound);
            }
            let (org, _, _) = load_org(state, app.org_id).await?;
            if let By::Member(user) = by {
                app.access_of(&org, user)?;
                require_workspace(&org, user)?;
            }
            if expected.is_some_and(|v| v != loaded.version) {
                return Err(ApiError::Conflict {
                    code: "version-conflict",
                    detail: format!(
                        "the app is at version {}, not the expected one; re-read it and retry",
                        loaded.version
                    ),
                });
            }
            let events = decide(&org, app)?;
            let metadata = meta.in_org(actor.clone(), app.org_id);
            let also = slug_moves(state, ids, app, &events, &metadata).await?;
            Ok(Plan {
                events,
                metadata,
                also,
            })
        })
        .await?;
    if !executed.state().exists {
        return Err(ApiError::NotFound);
    }
    let (version, position) = (executed.version(), executed.position);
    Ok((executed.loaded, version, position))
}

/// [`execute`] for a member of the owning organisation.
pub(crate) async fn by_member(
    state: &AppState,
    app_id: Uuid,
    meta: &RequestMeta,
    session: &Session,
    decide: impl Fn(&Org, &App) -> Result<Vec<AppEvent>, AppError>,
) -> Result<(SharedApp, u64, u64), ApiError> {
    let by = By::Member(session.user_id);
    execute(state, app_id, by, None, meta, session.actor(), decide).await
}

/// The expected version to claim `slug` in `org` for `app`, or
/// `slug-taken` when another app holds it. Reads the reservation's folded
/// holder (cached), never the reservation's whole history.
async fn slug_claim(
    state: &AppState,
    org: Uuid,
    slug: &str,
    app: Uuid,
) -> Result<ExpectedVersion, ApiError> {
    let holder = state
        .commands
        .load::<SlugHolder>(&app_slug_stream(org, slug))
        .await?;
    match holder.state.0 {
        Some(other) if other != app => Err(slug_taken()),
        _ if holder.version == 0 => Ok(ExpectedVersion::NoStream),
        _ => Ok(ExpectedVersion::Exact(holder.version)),
    }
}

fn slug_taken() -> ApiError {
    ApiError::Conflict {
        code: "slug-taken",
        detail: "an app with this slug already exists in the organization".into(),
    }
}

/// The slug reservation appends a command's events imply: the old slug
/// released on a rename or deletion, the new one claimed on a rename.
async fn slug_moves(
    state: &AppState,
    ids: &CommandIds,
    app: &App,
    events: &[AppEvent],
    metadata: &event_schemas::Metadata,
) -> Result<Vec<StreamAppend>, ApiError> {
    let mut appends = Vec::new();
    for e in events {
        let moved = matches!(e, AppEvent::Updated(u) if u.slug.is_some());
        if moved || matches!(e, AppEvent::Deleted(_)) {
            let stream = app_slug_stream(app.org_id, &app.slug);
            let released = [AppSlugEvent::Released(AppSlug { app_id: app.id })];
            appends.push(StreamAppend::new(
                stream.clone(),
                ExpectedVersion::Any,
                ids.new_events(&stream, &released, metadata),
            ));
        }
        if let AppEvent::Updated(AppUpdated {
            slug: Some(slug), ..
        }) = e
        {
            let expected = slug_claim(state, app.org_id, slug, app.id).await?;
            let stream = app_slug_stream(app.org_id, slug);
            let claimed = [AppSlugEvent::Claimed(AppSlug { app_id: app.id })];
            appends.push(StreamAppend::new(
                stream.clone(),
                expected,
                ids.new_events(&stream, &claimed, metadata),
            ));
        }
    }
    Ok(appends)
}

/// `POST /v1/orgs/{org}/apps` and `PATCH /v1/apps/{app}` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppRequest {
    /// Display name (required on create).
    pub name: Option<String>,
    /// URL name, unique in the organisation (required on create).
    pub slug: Option<String>,
    /// What the app does.
    pub description: Option<String>,
    /// Allowed browser origins: `https://host[:port]`.
    pub origins: Option<Vec<String>>,
    /// OAuth callback URLs: `https`, or `http://localhost` before production.
    pub callback_urls: Option<Vec<String>>,
    /// Custom attributes; on update, `null` removes one.
    #[serde(default)]
    pub attributes: BTreeMap<String, Option<String>>,
    /// The owning team (create only); the organisation when absent.
    pub team_id: Option<Uuid>,
}

impl AppRequest {
    fn details(self) -> Details {
        Details {
            name: self.name,
            slug: self.slug,
            description: self.description,
            origins: self.origins,
            callback_urls: self.callback_urls,
            attributes: self.attributes,
        }
    }
}

/// An app (the General page).
#[derive(Debug, Serialize, ToSchema)]
pub struct AppView {
    /// Id.
    pub id: Uuid,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended_reason: Option<String>,
    /// `private`, `unlisted` or `public`.
    pub visibility: String,
    /// Workspaces that may install it while private.
    pub allowlist: Vec<Uuid>,
    /// A distribution request waiting for staff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution_request: Option<DistributionRequestView>,
    /// Stream version, for `If-Match`.
    pub version: u64,
}

impl AppView {
    pub(crate) fn of(app: &App, version: u64) -> Self {
        AppView {
            id: app.id,
            org_id: app.org_id,
            team_id: app.team_id,
            name: app.name.clone(),
            slug: app.slug.clone(),
            description: app.description.clone(),
            origins: app.origins.clone(),
            callback_urls: app.callback_urls.clone(),
            attributes: app.attributes.clone(),
            sandbox_tenant_id: app.sandbox_tenant_id,
            status: app.status().as_str().to_owned(),
            suspended_reason: app.suspended.clone(),
            visibility: app.visibility.as_str().to_owned(),
            allowlist: app.allowlist.iter().copied().collect(),
            distribution_request: app
                .distribution_request
                .map(|(id, v)| DistributionRequestView {
                    id,
                    visibility: v.as_str().to_owned(),
                }),
            version,
        }
    }

    pub(crate) fn from_row(r: &tokio_postgres::Row) -> Self {
        let PgJson(origins) = r.get("origins");
        let PgJson(callback_urls) = r.get("callback_urls");
        let PgJson(attributes) = r.get("attributes");
        let PgJson(allowlist) = r.get("allowlist");
        AppView {
            id: r.get("app_id"),
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
            distribution_request: r
                .get::<_, Option<Uuid>>("distribution_request_id")
                .map(|id| DistributionRequestView {
                    id,
                    visibility: r.get("distribution_visibility"),
                }),
            version: r.get::<_, i64>("version") as u64,
        }
    }
}

/// A distribution request waiting for staff.
#[derive(Debug, Serialize, ToSchema)]
pub struct DistributionRequestView {
    /// The request.
    pub id: Uuid,
    /// The visibility asked for.
    pub visibility: String,
}

/// The columns [`AppView::from_row`] reads.
pub(crate) const APP_COLUMNS: &str = "app_id, org_id, team_id, name, slug, description, origins, \
    callback_urls, attributes, sandbox_tenant_id, status, suspended_reason, visibility, \
    allowlist, version, created_at, \
    (SELECT d.request_id FROM rm.distribution_requests d \
      WHERE d.app_id = apps.app_id AND d.state = 'pending') AS distribution_request_id, \
    (SELECT d.visibility FROM rm.distribution_requests d \
      WHERE d.app_id = apps.app_id AND d.state = 'pending') AS distribution_visibility";

/// Create an app in an organisation (or one of its teams).
#[utoipa::path(post, path = "/v1/orgs/{org}/apps", tag = "apps",
    request_body = AppRequest,
    responses((status = 201, body = AppView), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_app(
    State(state): State<AppState>,
    Path(org_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<AppRequest>,
) -> Result<Committed<AppView>, ApiError> {
    let ids = meta.ids();
    let app_id = ids.entity("app");
    let team_id = body.team_id;
    let details = body.details();
    let metadata = meta.in_org(session.actor(), org_id);
    let (state_ref, ids_ref, details, metadata) = (&state, &ids, &details, &metadata);
    let executed = state
        .commands
        .execute::<App, _>(&app_stream(app_id), &ids, move |loaded| async move {
            let (state, ids) = (state_ref, ids_ref);
            if loaded.version > 0 {
                // Only a retried request (same Idempotency-Key) gets here
                // with the app already there; the executor answers it.
                return Ok(Plan::new(Vec::new(), metadata.clone()));
            }
            let (org, _, _) = load_org(state, org_id).await?;
            require_workspace(&org, session.user_id)?;
            let events = apps::create(&org, session.user_id, app_id, team_id, details.clone())?;
            let slug = details.slug.clone().unwrap_or_default();
            let claim = slug_claim(state, org_id, &slug, app_id).await?;
            let stream = app_slug_stream(org_id, &slug);
            let claimed = [AppSlugEvent::Claimed(AppSlug { app_id })];
            Ok(Plan {
                events,
                metadata: metadata.clone(),
                also: vec![StreamAppend::new(
                    stream.clone(),
                    claim,
                    ids.new_events(&stream, &claimed, metadata),
                )],
            })
        })
        .await?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position: executed.position,
        body: Some(AppView::of(executed.state(), executed.version())),
    })
}

/// Checks that the caller may read the Developers workspace of `org`.
pub(crate) async fn authorize_workspace_read(
    state: &AppState,
    org: Uuid,
    user: Uuid,
) -> Result<(), ApiError> {
    authorize_read(state, org, user, Permission::ViewApps).await?;
    let client = state.pool.get().await?;
    let unlocked: bool = client
        .query_one(
            "SELECT subscription_state IS DISTINCT FROM 'canceled' AND $2 = ANY(modules) \
             FROM rm.orgs WHERE org_id = $1",
            &[&org, &PLATFORM_API],
        )
        .await?
        .get(0);
    if !unlocked {
        return Err(ApiError::UpgradeRequired {
            module: PLATFORM_API,
        });
    }
    Ok(())
}

/// The app's organisation from the read model, checked for the caller.
pub(crate) async fn app_org_for(state: &AppState, app: Uuid, user: Uuid) -> Result<Uuid, ApiError> {
    let client = state.pool.get().await?;
    let org: Uuid = client
        .query_opt(
            "SELECT org_id FROM rm.apps WHERE app_id = $1 AND deleted_at IS NULL",
            &[&app],
        )
        .await?
        .ok_or(ApiError::NotFound)?
        .get(0);
    authorize_workspace_read(state, org, user).await?;
    Ok(org)
}

/// An app (the General page).
#[utoipa::path(get, path = "/v1/apps/{app}", tag = "apps",
    responses((status = 200, body = AppView), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_app(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    min: MinPosition,
    session: Session,
) -> Result<Json<AppView>, ApiError> {
    min.wait(&state, &["orgs", "apps"]).await?;
    app_org_for(&state, app, session.user_id).await?;
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            &format!("SELECT {APP_COLUMNS} FROM rm.apps WHERE app_id = $1"),
            &[&app],
        )
        .await?;
    Ok(Json(AppView::from_row(&row)))
}

/// The organisation's apps, oldest first (deleted ones excluded).
#[utoipa::path(get, path = "/v1/orgs/{org}/apps", tag = "apps",
    params(("org" = Uuid, Path, description = "Organization id"), PageQuery),
    responses((status = 200, body = Page<AppView>), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_apps(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    min: MinPosition,
    session: Session,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<AppView>>, ApiError> {
    min.wait(&state, &["orgs", "apps"]).await?;
    authorize_workspace_read(&state, org, session.user_id).await?;
    let client = state.pool.get().await?;
    let select =
        format!("SELECT {APP_COLUMNS} FROM rm.apps WHERE org_id = $1 AND deleted_at IS NULL");
    let key = ("created_at", "app_id");
    let page = page::fetch(&client, &paging, &select, key, &[&org], AppView::from_row).await?;
    Ok(Json(page))
}

/// The If-Match version, if sent.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or_else(|| ApiError::BadBody {
            status: StatusCode::BAD_REQUEST,
            code: "invalid-if-match",
            detail: "If-Match must be the app's version, as GET returns it".into(),
        })
}

/// Update an app's details; only the fields sent change. Send
/// `If-Match: <version>` to be refused (409) if the app changed since read.
#[utoipa::path(patch, path = "/v1/apps/{app}", tag = "apps",
    request_body = AppRequest,
    responses((status = 200, body = AppView), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_app(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    headers: HeaderMap,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<AppRequest>,
) -> Result<Committed<AppView>, ApiError> {
    if body.team_id.is_some() {
        return Err(domain::Invalid(vec![domain::FieldError {
            pointer: "/team_id".into(),
            detail: "an app's owner does not change".into(),
        }])
        .into());
    }
    let expected = if_match(&headers)?;
    let details = body.details();
    let (app, version, position) = execute(
        &state,
        app_id,
        By::Member(session.user_id),
        expected,
        &meta,
        session.actor(),
        |org, app| apps::update(org, app, session.user_id, details.clone()),
    )
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(AppView::of(&app, version)),
    })
}

/// `DELETE /v1/apps/{app}` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    /// Why.
    pub reason: Option<String>,
}

/// Delete an app: every credential of it stops at once; history and
/// analytics stay.
#[utoipa::path(delete, path = "/v1/apps/{app}", tag = "apps",
    responses((status = 204), (status = 402, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_app(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<()>, ApiError> {
    let (_, _, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::delete(org, app, session.user_id, None)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}

/// An app team member.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppMemberView {
    /// User.
    pub user_id: Uuid,
    /// `admin` or `developer`.
    pub role: String,
}

/// The app's team members (Security page).
#[utoipa::path(get, path = "/v1/apps/{app}/members", tag = "apps",
    params(PageQuery),
    responses((status = 200, body = Page<AppMemberView>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_app_members(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    min: MinPosition,
    session: Session,
    paging: Paging<Uuid>,
) -> Result<Json<Page<AppMemberView>>, ApiError> {
    min.wait(&state, &["orgs", "apps"]).await?;
    app_org_for(&state, app, session.user_id).await?;
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT user_id, role FROM rm.app_members WHERE app_id = $1 \
             AND ($2::uuid IS NULL OR user_id > $2) ORDER BY user_id LIMIT $3",
            &[&app, &paging.after, &paging.fetch()],
        )
        .await?;
    let items = rows
        .iter()
        .map(|r| AppMemberView {
            user_id: r.get(0),
            role: r.get(1),
        })
        .collect();
    Ok(Json(Page::new(items, &paging, |m| m.user_id)))
}

/// `PUT /v1/apps/{app}/members/{user}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppMemberRequest {
    /// `admin` or `developer`.
    pub role: String,
}

/// Make an organisation member an app admin or app developer.
#[utoipa::path(put, path = "/v1/apps/{app}/members/{user}", tag = "apps",
    request_body = AppMemberRequest,
    responses((status = 200, body = AppMemberView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_app_member(
    State(state): State<AppState>,
    Path((app_id, user)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<AppMemberRequest>,
) -> Result<Committed<AppMemberView>, ApiError> {
    let role = wire(&body.role, "/role", AppRole::parse, "admin or developer")?;
    let (after, _, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::set_member(org, app, session.user_id, user, role)
    })
    .await?;
    let role = after
        .members
        .get(&user)
        .cloned()
        .ok_or(ApiError::NotFound)?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(AppMemberView {
            user_id: user,
            role,
        }),
    })
}

/// Remove an app team member.
#[utoipa::path(delete, path = "/v1/apps/{app}/members/{user}", tag = "apps",
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn remove_app_member(
    State(state): State<AppState>,
    Path((app_id, user)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<()>, ApiError> {
    let (_, _, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::remove_member(org, app, session.user_id, user)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}

/// `POST /v1/apps/{app}/visibility` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisibilityRequest {
    /// `private` (at once), `unlisted` or `public` (a request to staff).
    pub visibility: String,
}

/// Set visibility: `private` applies at once; `unlisted` and `public` are a
/// distribution request staff approve or reject.
#[utoipa::path(post, path = "/v1/apps/{app}/visibility", tag = "apps",
    request_body = VisibilityRequest,
    responses((status = 200, body = AppView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_visibility(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<VisibilityRequest>,
) -> Result<Committed<AppView>, ApiError> {
    let visibility = wire(
        &body.visibility,
        "/visibility",
        Visibility::parse,
        "private, unlisted or public",
    )?;
    let request_id = meta.ids().entity("distribution_request");
    let (app, version, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::set_visibility(org, app, session.user_id, request_id, visibility)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(AppView::of(&app, version)),
    })
}

/// `PUT /v1/apps/{app}/allowlist` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowlistRequest {
    /// Organisation ids that may install the app while it is private.
    pub workspaces: Vec<Uuid>,
}

/// Replace the private-install allowlist.
#[utoipa::path(put, path = "/v1/apps/{app}/allowlist", tag = "apps",
    request_body = AllowlistRequest,
    responses((status = 200, body = AppView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_allowlist(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<AllowlistRequest>,
) -> Result<Committed<AppView>, ApiError> {
    let (app, version, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::set_allowlist(org, app, session.user_id, body.workspaces.clone())
    })
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(AppView::of(&app, version)),
    })
}

/// The developer dashboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardView {
    /// Apps (not deleted).
    pub app_count: i64,
    /// Apps with at least one published version.
    pub published_app_count: i64,
    /// Draft versions across the apps.
    pub draft_version_count: i64,
    /// Apps by status.
    pub by_status: BTreeMap<String, i64>,
    /// The first page of apps.
    pub apps: Page<AppView>,
}

/// The developer dashboard: counts and the first page of apps.
#[utoipa::path(get, path = "/v1/orgs/{org}/dashboard", tag = "apps",
    responses((status = 200, body = DashboardView), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn dashboard(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    min: MinPosition,
    session: Session,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<DashboardView>, ApiError> {
    let Json(apps) = list_apps(State(state.clone()), Path(org), min, session, paging).await?;
    let client = state.pool.get().await?;
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
    let by_status = client
        .query(
            "SELECT status, count(*) FROM rm.apps WHERE org_id = $1 AND deleted_at IS NULL GROUP BY status",
            &[&org],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(Json(DashboardView {
        app_count: row.get(0),
        published_app_count: row.get(1),
        draft_version_count: row.get(2),
        by_status,
        apps,
    }))
}

/// The Security page of an app.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityView {
    /// App team members (at most the first 200; the members list pages).
    pub members: Vec<AppMemberView>,
    /// Allowed browser origins.
    pub origins: Vec<String>,
    /// OAuth callback URLs.
    pub callback_urls: Vec<String>,
    /// `private`, `unlisted` or `public`.
    pub visibility: String,
    /// Workspaces that may install it while private.
    pub allowlist: Vec<Uuid>,
    /// The scopes its credentials carry, per mode: those of approved
    /// products only.
    pub approved_scopes: BTreeMap<String, Vec<String>>,
}

/// The Security page: who holds the app, where it may be called from, who
/// may install it, and the scopes its credentials carry.
#[utoipa::path(get, path = "/v1/apps/{app}/security", tag = "apps",
    responses((status = 200, body = SecurityView), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn security(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    min: MinPosition,
    session: Session,
) -> Result<Json<SecurityView>, ApiError> {
    min.wait(&state, &["orgs", "apps"]).await?;
    app_org_for(&state, app, session.user_id).await?;
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "SELECT origins, callback_urls, visibility, allowlist FROM rm.apps WHERE app_id = $1",
            &[&app],
        )
        .await?;
    let members = client
        .query(
            "SELECT user_id, role FROM rm.app_members WHERE app_id = $1 ORDER BY user_id LIMIT 200",
            &[&app],
        )
        .await?
        .iter()
        .map(|r| AppMemberView {
            user_id: r.get(0),
            role: r.get(1),
        })
        .collect();
    let mut approved_scopes: BTreeMap<String, Vec<String>> = [
        ("test".to_owned(), Vec::new()),
        ("live".to_owned(), Vec::new()),
    ]
    .into();
    for r in client
        .query(
            "SELECT mode, array_agg(DISTINCT scope ORDER BY scope) FROM rm.access_requests, \
                 jsonb_array_elements_text(scopes) AS scope \
             WHERE app_id = $1 AND state = 'approved' GROUP BY mode",
            &[&app],
        )
        .await?
    {
        approved_scopes.insert(r.get(0), r.get(1));
    }
    let PgJson(origins) = row.get(0);
    let PgJson(callback_urls) = row.get(1);
    let PgJson(allowlist) = row.get(3);
    Ok(Json(SecurityView {
        members,
        origins,
        callback_urls,
        visibility: row.get(2),
        allowlist,
        approved_scopes,
    }))
}

/// A listed app.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedApp {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The publisher's organisation.
    pub org_id: Uuid,
    /// The latest published version's label.
    pub latest_version: String,
}

/// Public apps with a published version, for every signed-in user: the
/// listing `public` visibility buys (unlisted apps install by link only).
#[utoipa::path(get, path = "/v1/marketplace", tag = "apps",
    params(PageQuery),
    responses((status = 200, body = Page<ListedApp>)),
    security(("bearer" = [])))]
pub async fn marketplace(
    State(state): State<AppState>,
    min: MinPosition,
    _session: Session,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<ListedApp>>, ApiError> {
    min.wait(&state, &["apps"]).await?;
    let client = state.pool.get().await?;
    let select = "SELECT a.app_id, a.name, a.description, a.org_id, v.label, a.created_at \
         FROM rm.apps a \
         JOIN LATERAL (SELECT label FROM rm.app_versions v WHERE v.app_id = a.app_id \
             AND v.state = 'published' ORDER BY v.published_at DESC LIMIT 1) v ON true \
         WHERE a.visibility = 'public' AND a.status = 'active'";
    let page = page::fetch(
        &client,
        &paging,
        select,
        ("a.created_at", "a.app_id"),
        &[],
        |r| ListedApp {
            id: r.get(0),
            name: r.get(1),
            description: r.get(2),
            org_id: r.get(3),
            latest_version: r.get(4),
        },
    )
    .await?;
    Ok(Json(page))
}
