//! Staff operations on apps: suspend and reinstate (one, or every app
//! matching criteria), decide distribution requests, export app data as
//! JSON Lines (streamed in pages, never held whole in memory), and the
//! reports: app inventory and inactive apps. (High-usage apps need usage
//! metering, which comes with the credentials issue.)

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::apps;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::apps::{execute, AppCommand, AppView, By};
use crate::command::{Committed, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, Path, Staff};
use crate::page::{Page, PageQuery, Paging};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/staff/apps/{app}/suspend", post(suspend))
        .route("/v1/staff/apps/suspend", post(suspend_matching))
        .route("/v1/staff/apps/export", get(export))
        .route("/v1/staff/distribution-requests", get(distribution_queue))
        .route("/v1/staff/reports/app-inventory", get(inventory))
        .route("/v1/staff/reports/inactive-apps", get(inactive_apps))
        .route("/v1/staff/apps/{app}/reinstate", post(reinstate))
        .route(
            "/v1/staff/apps/{app}/distribution/{request}/approve",
            post(approve_distribution),
        )
        .route(
            "/v1/staff/apps/{app}/distribution/{request}/reject",
            post(reject_distribution),
        )
}

/// A staff decision's reason.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    /// Why (required to suspend, reinstate or reject).
    #[serde(default)]
    pub reason: Option<String>,
}

async fn staff_command(
    state: &AppState,
    app_id: Uuid,
    meta: &RequestMeta,
    staff: &Staff,
    decide: impl Fn(&apps::App) -> Result<Vec<event_schemas::app::AppEvent>, apps::AppError>,
) -> Result<Committed<AppView>, ApiError> {
    let (app, version, position) = execute(
        state,
        AppCommand {
            app: app_id,
            by: By::Staff,
            if_match: None,
            actor: staff.actor(),
        },
        meta,
        |_, app| decide(app),
    )
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(AppView::of(&app, version)),
    })
}

/// Suspend an app: its credentials stop verifying with `app_suspended`.
#[utoipa::path(post, path = "/v1/staff/apps/{app}/suspend", tag = "staff",
    request_body = ReasonRequest,
    responses((status = 200, body = AppView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn suspend(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    meta: RequestMeta,
    staff: Staff,
    ApiJson(body): ApiJson<ReasonRequest>,
) -> Result<Committed<AppView>, ApiError> {
    let reason = body.reason.unwrap_or_default();
    staff_command(&state, app, &meta, &staff, |a| apps::suspend(a, &reason)).await
}

/// Reinstate a suspended app.
#[utoipa::path(post, path = "/v1/staff/apps/{app}/reinstate", tag = "staff",
    request_body = ReasonRequest,
    responses((status = 200, body = AppView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn reinstate(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    meta: RequestMeta,
    staff: Staff,
    ApiJson(body): ApiJson<ReasonRequest>,
) -> Result<Committed<AppView>, ApiError> {
    let reason = body.reason.unwrap_or_default();
    staff_command(&state, app, &meta, &staff, |a| apps::reinstate(a, &reason)).await
}

/// Approve a distribution request: the app's visibility becomes the one
/// asked for.
#[utoipa::path(post, path = "/v1/staff/apps/{app}/distribution/{request}/approve", tag = "staff",
    request_body = ReasonRequest,
    responses((status = 200, body = AppView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn approve_distribution(
    State(state): State<AppState>,
    Path((app, request)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    staff: Staff,
    ApiJson(body): ApiJson<ReasonRequest>,
) -> Result<Committed<AppView>, ApiError> {
    staff_command(&state, app, &meta, &staff, |a| {
        let cmd = apps::DecideRequest {
            request_id: request,
            approve: true,
            reason: body.reason.clone(),
        };
        apps::decide_distribution(a, &cmd)
    })
    .await
}

/// Reject a distribution request, with a reason the developer sees.
#[utoipa::path(post, path = "/v1/staff/apps/{app}/distribution/{request}/reject", tag = "staff",
    request_body = ReasonRequest,
    responses((status = 200, body = AppView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn reject_distribution(
    State(state): State<AppState>,
    Path((app, request)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    staff: Staff,
    ApiJson(body): ApiJson<ReasonRequest>,
) -> Result<Committed<AppView>, ApiError> {
    staff_command(&state, app, &meta, &staff, |a| {
        let cmd = apps::DecideRequest {
            request_id: request,
            approve: false,
            reason: body.reason.clone(),
        };
        apps::decide_distribution(a, &cmd)
    })
    .await
}

/// Which apps a bulk suspension applies to; at least one criterion.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendMatchingRequest {
    /// Why (shown to the developers).
    pub reason: String,
    /// Apps of this organisation.
    #[serde(default)]
    pub org_id: Option<Uuid>,
    /// Apps in one of these statuses (`active`, `pending`).
    #[serde(default)]
    pub status: Option<Vec<String>>,
    /// Apps with no activity for at least this many days.
    #[serde(default)]
    pub inactive_days: Option<i32>,
    /// Report the matches without suspending.
    #[serde(default)]
    pub dry_run: bool,
}

/// The outcome for one app.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuspendOutcome {
    /// The app.
    pub app_id: Uuid,
    /// HTTP status suspending it alone would have had (200 when done).
    pub status: u16,
    /// The problem code when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The outcome of a bulk suspension.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuspendMatchingView {
    /// Apps matched (at most 1000 per call; call again for more).
    pub matched: usize,
    /// Whether anything was suspended.
    pub dry_run: bool,
    /// One outcome per matched app.
    pub results: Vec<SuspendOutcome>,
}

/// The most apps one bulk suspension touches.
const SUSPEND_BATCH: i64 = 1000;

/// Suspend every app matching the criteria (not deleted, not already
/// suspended), each by its own command, and report each.
#[utoipa::path(post, path = "/v1/staff/apps/suspend", tag = "staff",
    request_body = SuspendMatchingRequest,
    responses((status = 200, body = SuspendMatchingView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn suspend_matching(
    State(state): State<AppState>,
    meta: RequestMeta,
    min: MinPosition,
    staff: Staff,
    ApiJson(body): ApiJson<SuspendMatchingRequest>,
) -> Result<Committed<SuspendMatchingView>, ApiError> {
    let mut checks = domain::validate::Checks::default();
    checks
        .check(
            body.org_id.is_some() || body.status.is_some() || body.inactive_days.is_some(),
            "",
            "give at least one criterion: org_id, status or inactive_days",
        )
        .check(
            body.inactive_days.is_none_or(|d| (1..=3650).contains(&d)),
            "/inactive_days",
            "must be 1 to 3650",
        )
        .display_name("/reason", body.reason.trim(), 500);
    for (i, s) in body.status.iter().flatten().enumerate() {
        checks.check(
            s == "active" || s == "pending",
            &format!("/status/{i}"),
            "must be active or pending",
        );
    }
    checks.finish()?;
    min.wait(&state, &["apps"]).await?;
    let client = state.read_models.client().await?;
    let ids = projections::apps::read::suspension_candidates(
        &client,
        body.org_id,
        body.status.as_deref(),
        body.inactive_days,
        SUSPEND_BATCH,
    )
    .await?;
    drop(client);
    let mut results = Vec::with_capacity(ids.len());
    let mut position = 0;
    for app_id in &ids {
        if body.dry_run {
            results.push(SuspendOutcome {
                app_id: *app_id,
                status: 200,
                code: None,
            });
            continue;
        }
        let outcome = execute(
            &state,
            AppCommand {
                app: *app_id,
                by: By::Staff,
                if_match: None,
                actor: staff.actor(),
            },
            &meta,
            |_, a| apps::suspend(a, &body.reason),
        )
        .await;
        let (status, code) = ApiError::outcome(&outcome);
        if let Ok((_, _, p)) = outcome {
            position = position.max(p);
        }
        results.push(SuspendOutcome {
            app_id: *app_id,
            status,
            code,
        });
    }
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(SuspendMatchingView {
            matched: ids.len(),
            dry_run: body.dry_run,
            results,
        }),
    })
}

/// `GET /v1/staff/apps/export` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only this organisation's apps.
    pub org_id: Option<Uuid>,
}

/// Rows fetched per round trip while exporting.
const EXPORT_PAGE: i64 = 500;

/// Every app (deleted ones included, with their status) as JSON Lines, one
/// app per line, oldest first. Streamed page by page: memory stays flat
/// however many apps there are.
#[utoipa::path(get, path = "/v1/staff/apps/export", tag = "staff",
    params(ExportQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = String), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    min: MinPosition,
    _staff: Staff,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    min.wait(&state, &["apps"]).await?;
    type Cursor = Option<(DateTime<Utc>, Uuid)>;
    let pages = futures::stream::try_unfold(
        Some(None::<(DateTime<Utc>, Uuid)>),
        move |next: Option<Cursor>| {
            let state = state.clone();
            async move {
                let Some(after) = next else {
                    return Ok::<_, ApiError>(None);
                };
                let client = state.read_models.client().await?;
                let rows =
                    projections::apps::read::export_apps(&client, q.org_id, after, EXPORT_PAGE)
                        .await?;
                if rows.is_empty() {
                    return Ok(None);
                }
                let full = rows.len() as i64 == EXPORT_PAGE;
                let last = rows.last().map(|r| (r.app.created_at, r.app.app_id));
                let mut chunk = Vec::with_capacity(rows.len() * 512);
                for r in rows {
                    let line = ExportLine {
                        created_at: r.app.created_at,
                        app: AppView::from_row(r.app),
                        last_activity_at: r.last_activity_at,
                        deleted_at: r.deleted_at,
                    };
                    serde_json::to_writer(&mut chunk, &line).map_err(ApiError::internal)?;
                    chunk.push(b'\n');
                }
                let next = full.then_some(last);
                Ok(Some((Bytes::from(chunk), next)))
            }
        },
    );
    // An error mid-stream can only cut the body short; log it so the
    // operator knows the file is incomplete.
    let pages = futures::TryStreamExt::inspect_err(pages, |e| {
        tracing::error!(error = %e, "app export failed mid-stream");
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(pages),
    )
        .into_response())
}

/// One line of the export.
#[derive(Debug, Serialize)]
struct ExportLine {
    #[serde(flatten)]
    app: AppView,
    created_at: DateTime<Utc>,
    last_activity_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

/// The app inventory report.
#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryView {
    /// Apps not deleted.
    pub total: i64,
    /// Deleted apps (kept for history).
    pub deleted: i64,
    /// By status.
    pub by_status: BTreeMap<String, i64>,
    /// By visibility.
    pub by_visibility: BTreeMap<String, i64>,
    /// Apps with a published version.
    pub with_published_version: i64,
    /// Organisations with at least one app.
    pub organizations: i64,
}

/// App inventory: how many apps, in which states, across the platform.
#[utoipa::path(get, path = "/v1/staff/reports/app-inventory", tag = "staff",
    responses((status = 200, body = InventoryView), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn inventory(
    State(state): State<AppState>,
    min: MinPosition,
    _staff: Staff,
) -> Result<Json<InventoryView>, ApiError> {
    min.wait(&state, &["apps"]).await?;
    let client = state.read_models.client().await?;
    let counts = projections::apps::read::inventory(&client).await?;
    Ok(Json(InventoryView {
        total: counts.total,
        deleted: counts.deleted,
        organizations: counts.organizations,
        with_published_version: counts.with_published_version,
        by_status: projections::apps::read::live_apps_by_status(&client).await?,
        by_visibility: projections::apps::read::live_apps_by_visibility(&client).await?,
    }))
}

/// `GET /v1/staff/reports/inactive-apps` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InactiveQuery {
    /// No activity for at least this many days (default 30).
    pub days: Option<i32>,
}

/// An inactive app.
#[derive(Debug, Serialize, ToSchema)]
pub struct InactiveAppView {
    /// The app.
    #[serde(flatten)]
    pub app: AppView,
    /// Its last call (verified or reported), or its creation if it has
    /// had none.
    pub last_activity_at: DateTime<Utc>,
}

/// Apps without a call for N days, least recently called first (an app
/// never called counts from its creation). Calls come from the usage read
/// model, so they are up to one metering interval behind.
#[utoipa::path(get, path = "/v1/staff/reports/inactive-apps", tag = "staff",
    params(InactiveQuery, PageQuery),
    responses((status = 200, body = Page<InactiveAppView>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn inactive_apps(
    State(state): State<AppState>,
    min: MinPosition,
    _staff: Staff,
    Query(q): Query<InactiveQuery>,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<InactiveAppView>>, ApiError> {
    let days = q.days.unwrap_or(30);
    if !(0..=3650).contains(&days) {
        return Err(ApiError::BadBody {
            status: StatusCode::BAD_REQUEST,
            code: "invalid-query",
            detail: "days must be 0 to 3650".into(),
        });
    }
    min.wait(&state, &["apps", "usage"]).await?;
    let client = state.read_models.client().await?;
    let rows = projections::apps::read::inactive_apps(&client, days, paging.keyset()).await?;
    Ok(Json(paging.page(rows, |a| InactiveAppView {
        app: AppView::from_row(a.app),
        last_activity_at: a.last_call_at,
    })))
}

/// A distribution request waiting for staff.
#[derive(Debug, Serialize, ToSchema)]
pub struct DistributionQueueItem {
    /// The request.
    pub id: Uuid,
    /// The app.
    pub app_id: Uuid,
    /// Its organisation.
    pub org_id: Uuid,
    /// The visibility asked for.
    pub visibility: String,
    /// When.
    pub requested_at: DateTime<Utc>,
}

/// Distribution requests waiting for staff, oldest first.
#[utoipa::path(get, path = "/v1/staff/distribution-requests", tag = "staff",
    params(PageQuery),
    responses((status = 200, body = Page<DistributionQueueItem>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn distribution_queue(
    State(state): State<AppState>,
    min: MinPosition,
    _staff: Staff,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<DistributionQueueItem>>, ApiError> {
    min.wait(&state, &["apps"]).await?;
    let client = state.read_models.client().await?;
    let rows =
        projections::apps::read::pending_distribution_requests(&client, paging.keyset()).await?;
    Ok(Json(paging.page(rows, |d| DistributionQueueItem {
        id: d.request_id,
        app_id: d.app_id,
        org_id: d.org_id,
        visibility: d.visibility,
        requested_at: d.requested_at,
    })))
}
