//! Staff operations on apps: suspend and reinstate (with a reason), and
//! decide distribution requests.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use domain::apps;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::apps::{execute, AppView, By};
use crate::command::{Committed, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, Staff};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/staff/apps/{app}/suspend", post(suspend))
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
        app_id,
        By::Staff,
        None,
        meta,
        staff.actor(),
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
        apps::decide_distribution(a, request, true, body.reason.as_deref())
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
        apps::decide_distribution(a, request, false, body.reason.as_deref())
    })
    .await
}
