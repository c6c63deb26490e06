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
    let client = state.pool.get().await?;
    let (after_total, after_app) = paging.after.unzip();
    let rows = client
        .query(
            "SELECT * FROM ( \
                 SELECT u.app_id, a.org_id, a.name, \
                        (sum(u.verifications) + sum(u.calls))::bigint AS total, \
                        sum(u.verifications)::bigint AS verifications, \
                        sum(u.calls)::bigint AS calls, sum(u.errors)::bigint AS errors \
                 FROM rm.usage_daily u JOIN rm.apps a ON a.app_id = u.app_id \
                 WHERE u.day > (now() AT TIME ZONE 'UTC')::date - $1::int \
                 GROUP BY u.app_id, a.org_id, a.name) r \
             WHERE $2::bigint IS NULL OR total < $2 OR (total = $2 AND app_id > $3::uuid) \
             ORDER BY total DESC, app_id LIMIT $4",
            &[&days, &after_total, &after_app, &paging.fetch()],
        )
        .await?;
    let items = rows
        .iter()
        .map(|r| {
            let app = HighUsageApp {
                app_id: r.get(0),
                org_id: r.get(1),
                name: r.get(2),
                total: r.get(3),
                verifications: r.get(4),
                calls: r.get(5),
                errors: r.get(6),
            };
            ((app.total, app.app_id), app)
        })
        .collect();
    Ok(Json(Page::keyed(items, &paging)))
}
