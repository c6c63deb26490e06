//! The staff high-usage apps report: apps ranked by their calls over the
//! last N days (verified calls and gateway-reported calls), from the usage
//! read model.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, Problem};
use crate::extract::{MinPosition, Staff};
use crate::page::{Page, PageQuery, Paging};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/staff/reports/high-usage-apps", get(high_usage_apps))
}

/// `GET /v1/staff/reports/high-usage-apps` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HighUsageQuery {
    /// Over the last this many days, today included (1 to 366, default 30).
    pub days: Option<i32>,
}

/// An app and its calls over the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct HighUsageApp {
    /// The app.
    pub app_id: Uuid,
    /// Its organisation.
    pub org_id: Uuid,
    /// Its name.
    pub name: String,
    /// Verified plus reported calls: the ranking.
    pub total: i64,
    /// Valid verifications.
    pub verifications: i64,
    /// Calls the gateway reported.
    pub calls: i64,
    /// Reported calls answered with 400 or more.
    pub errors: i64,
}

/// Apps by calls over the last N days, busiest first (staff).
#[utoipa::path(get, path = "/v1/staff/reports/high-usage-apps", tag = "staff",
    params(HighUsageQuery, PageQuery),
    responses((status = 200, body = Page<HighUsageApp>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn high_usage_apps(
    State(state): State<AppState>,
    min: MinPosition,
    _staff: Staff,
    Query(q): Query<HighUsageQuery>,
    paging: Paging<(i64, Uuid)>,
) -> Result<Json<Page<HighUsageApp>>, ApiError> {
    let days = q.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::BadBody {
            status: StatusCode::BAD_REQUEST,
            code: "invalid-query",
            detail: "days must be 1 to 366".into(),
        });
    }
    min.wait(&state, &["apps", "usage"]).await?;
    let client = state.read_models.client().await?;
    let rows =
        projections::usage::read::high_usage_apps(&client, days, paging.after, paging.fetch())
            .await?;
    let items = rows
        .into_iter()
        .map(|r| {
            let app = HighUsageApp {
                app_id: r.app_id,
                org_id: r.org_id,
                name: r.name,
                total: r.total,
                verifications: r.verifications,
                calls: r.calls,
                errors: r.errors,
            };
            ((app.total, app.app_id), app)
        })
        .collect();
    Ok(Json(Page::keyed(items, &paging)))
}
