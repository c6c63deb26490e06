//! Usage: the gateway's reports of the calls it served (`POST /v1/usage`),
//! aggregated per key per minute before they reach the log; the
//! organisation's Usage tab (`GET /v1/orgs/{org}/usage`); an app's
//! analytics (`GET /v1/apps/{app}/analytics`).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::roles::Permission;
use event_schemas::key::{usage_stream, UsageEvent, UsageRecorded};
use event_schemas::{Actor, ActorKind, ExpectedVersion};
use event_store::StreamAppend;
use projections::usage::read as usage_read;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::keys::Gateway;
use crate::authorize::{AppReader, OrgMember};
use crate::command::{Committed, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, Path};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/usage", post(report_usage))
        .route("/v1/orgs/{org}/usage", get(org_usage))
        .route("/v1/apps/{app}/analytics", get(app_analytics))
}

/// The most records one report may carry.
pub const MAX_RECORDS: usize = 10_000;

/// `POST /v1/usage` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageReport {
    /// Calls the gateway served: each `{key_id, status, latency_ms, at}`.
    /// A record that does not read as one is refused alone.
    #[schema(value_type = Vec<UsageRecordBody>, max_items = 10000)]
    pub records: Vec<Value>,
}

/// One call the gateway served.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRecordBody {
    /// The key the call presented.
    pub key_id: Uuid,
    /// The HTTP status the call was answered with (100 to 599).
    #[schema(minimum = 100, maximum = 599)]
    pub status: u16,
    /// How long it took, in milliseconds (at most an hour).
    #[schema(minimum = 0, maximum = 3_600_000)]
    pub latency_ms: u64,
    /// When it was served (at most 7 days ago, not in the future).
    pub at: DateTime<Utc>,
}

/// A record refused, by its place in the batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusedRecord {
    /// Its index in `records`.
    pub index: usize,
    /// The field, by JSON pointer into the body.
    pub pointer: String,
    /// Why.
    pub detail: String,
}

/// What a report recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageAccepted {
    /// Records counted.
    pub accepted: usize,
    /// `usage.recorded` events written (one per key per minute).
    pub events: usize,
    /// Records refused, each with the reason.
    pub rejected: Vec<RefusedRecord>,
}

/// Reads one record, or says why not.
fn record(
    state: &AppState,
    index: usize,
    raw: Value,
    now: DateTime<Utc>,
) -> Result<(UsageRecordBody, Uuid, Uuid), RefusedRecord> {
    let refuse = |field: &str, detail: String| RefusedRecord {
        index,
        pointer: format!("/records/{index}{field}"),
        detail,
    };
    let r: UsageRecordBody = serde_json::from_value(raw).map_err(|e| refuse("", e.to_string()))?;
    if !(100..=599).contains(&r.status) {
        return Err(refuse(
            "/status",
            "must be an HTTP status, 100 to 599".into(),
        ));
    }
    if r.latency_ms > 3_600_000 {
        return Err(refuse(
            "/latency_ms",
            "must be at most 3600000 (an hour)".into(),
        ));
    }
    if r.at > now + Duration::minutes(5) || r.at < now - Duration::days(7) {
        return Err(refuse("/at", "must be within the last 7 days".into()));
    }
    let (app, org) = state
        .index
        .key_owner(r.key_id)
        .ok_or_else(|| refuse("/key_id", "no such key".into()))?;
    Ok((r, app, org))
}

/// Report calls the gateway served, in batches. Counted per key per
/// minute before they reach the log; bad records are refused one by one
/// in the answer, the others counted.
#[utoipa::path(post, path = "/v1/usage", tag = "gateway",
    request_body = UsageReport,
    responses((status = 200, body = UsageAccepted), (status = 503, body = Problem)),
    security(("gateway" = [])))]
pub async fn report_usage(
    State(state): State<AppState>,
    _gateway: Gateway,
    meta: RequestMeta,
    ApiJson(body): ApiJson<UsageReport>,
) -> Result<Committed<UsageAccepted>, ApiError> {
    if body.records.len() > MAX_RECORDS {
        return Err(domain::Invalid(vec![domain::FieldError {
            pointer: "/records".into(),
            detail: format!("at most {MAX_RECORDS} records per report"),
        }])
        .into());
    }
    if !state.index.is_ready() {
        return Err(ApiError::Unavailable {
            reason: "the verification index is loading",
            source: "not ready".into(),
        });
    }
    let now = crate::command::now();
    let mut rejected = Vec::new();
    let mut minutes: BTreeMap<(Uuid, i64), UsageRecorded> = BTreeMap::new();
    let accepted_before = body.records.len();
    for (i, raw) in body.records.into_iter().enumerate() {
        let (r, app_id, org_id) = match record(&state, i, raw, now) {
            Ok(ok) => ok,
            Err(refused) => {
                rejected.push(refused);
                continue;
            }
        };
        let minute = r.at.timestamp().div_euclid(60);
        let from = DateTime::from_timestamp(minute * 60, 0).unwrap_or(r.at);
        let u = minutes
            .entry((r.key_id, minute))
            .or_insert_with(|| UsageRecorded {
                key_id: r.key_id,
                app_id,
                org_id,
                from,
                to: from + Duration::minutes(1),
                source: "report".into(),
                calls: 0,
                errors: 0,
                latency_min_ms: Some(u64::MAX),
                latency_max_ms: Some(0),
                latency_sum_ms: Some(0),
                last_at: r.at,
            });
        u.calls += 1;
        u.errors += u64::from(r.status >= 400);
        u.latency_min_ms = u.latency_min_ms.map(|m| m.min(r.latency_ms));
        u.latency_max_ms = u.latency_max_ms.map(|m| m.max(r.latency_ms));
        u.latency_sum_ms = u.latency_sum_ms.map(|s| s + r.latency_ms);
        u.last_at = u.last_at.max(r.at);
    }
    let accepted = accepted_before - rejected.len();
    let events = minutes.len();
    let mut position = state.store.head().await?;
    if events > 0 {
        let ids = meta.ids();
        let actor = Actor {
            kind: ActorKind::System,
            id: Some("gateway".into()),
        };
        // Several minutes of one key go to its stream in one append.
        let mut per_stream: BTreeMap<String, Vec<UsageEvent>> = BTreeMap::new();
        for u in minutes.into_values() {
            per_stream
                .entry(usage_stream(u.key_id))
                .or_default()
                .push(UsageEvent::Recorded(u));
        }
        let appends = per_stream
            .into_iter()
            .map(|(stream, events)| {
                let org = match &events[0] {
                    UsageEvent::Recorded(u) => u.org_id,
                };
                let metadata = meta.in_org(actor.clone(), org);
                let new = ids.new_events(&stream, &events, &metadata);
                StreamAppend::new(stream, ExpectedVersion::Any, new)
            })
            .collect();
        position = state.store.append_all(appends).await?.last_position;
    }
    Ok(Committed {
        status: axum::http::StatusCode::OK,
        position,
        body: Some(UsageAccepted {
            accepted,
            events,
            rejected,
        }),
    })
}

/// Calls and latency over a period.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct UsageFigures {
    /// Valid verifications counted by Gatehouse.
    pub verifications: i64,
    /// Refused verifications of known keys.
    pub refused: i64,
    /// Calls the gateway reported.
    pub calls: i64,
    /// Reported calls answered with a status of 400 or more.
    pub errors: i64,
    /// Least reported latency, in milliseconds.
    pub latency_min_ms: Option<i64>,
    /// Average reported latency.
    pub latency_avg_ms: Option<f64>,
    /// Greatest reported latency.
    pub latency_max_ms: Option<i64>,
}

impl From<usage_read::Figures> for UsageFigures {
    fn from(f: usage_read::Figures) -> Self {
        UsageFigures {
            verifications: f.verifications,
            refused: f.refused,
            calls: f.calls,
            errors: f.errors,
            latency_min_ms: f.latency_min_ms,
            latency_avg_ms: f.latency_avg_ms.map(|v| (v * 100.0).round() / 100.0),
            latency_max_ms: f.latency_max_ms,
        }
    }
}

/// `GET /v1/apps/{app}/analytics` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// First day (UTC, `YYYY-MM-DD`); default 29 days before `to`.
    pub from: Option<String>,
    /// Last day, included; default today.
    pub to: Option<String>,
    /// `current`: the organisation's current billing window instead of
    /// `from` and `to`.
    pub window: Option<String>,
}

/// One day of an app's analytics.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayFigures {
    /// The day (UTC).
    pub day: NaiveDate,
    /// Its figures.
    #[serde(flatten)]
    pub figures: UsageFigures,
}

/// One key's figures over the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyFigures {
    /// The key.
    pub key_id: Uuid,
    /// Its figures.
    #[serde(flatten)]
    pub figures: UsageFigures,
}

/// An app's analytics.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppAnalytics {
    /// The app.
    pub app_id: Uuid,
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// The whole period.
    pub totals: UsageFigures,
    /// Each day with usage.
    pub days: Vec<DayFigures>,
    /// Each key with usage.
    pub keys: Vec<KeyFigures>,
}

fn bad_query(detail: &str) -> ApiError {
    ApiError::BadBody {
        status: axum::http::StatusCode::BAD_REQUEST,
        code: "invalid-query",
        detail: detail.into(),
    }
}

/// Calls, errors and latency of an app per day and per key, over days or
/// the current billing window (written from usage aggregates, up to a
/// metering interval behind).
#[utoipa::path(get, path = "/v1/apps/{app}/analytics", tag = "usage",
    params(("app" = Uuid, Path, description = "App id"), AnalyticsQuery),
    responses((status = 200, body = AppAnalytics), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn app_analytics(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    min: MinPosition,
    reader: AppReader,
    Query(q): Query<AnalyticsQuery>,
) -> Result<Json<AppAnalytics>, ApiError> {
    let day = |s: &Option<String>, name: &str| -> Result<Option<NaiveDate>, ApiError> {
        s.as_deref()
            .map(|s| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|_| bad_query(&format!("{name} must be a date, YYYY-MM-DD")))
            })
            .transpose()
    };
    let (from, to) = match q.window.as_deref() {
        None => {
            let to = day(&q.to, "to")?.unwrap_or_else(|| Utc::now().date_naive());
            (day(&q.from, "from")?.unwrap_or(to - Duration::days(29)), to)
        }
        Some("current") if q.from.is_none() && q.to.is_none() => {
            let usage = org_usage_of(&state, reader.org).await?;
            match (usage.billing_window_start, usage.billing_window_end) {
                (Some(s), Some(e)) => {
                    (s.date_naive(), (e - Duration::milliseconds(1)).date_naive())
                }
                _ => {
                    return Err(bad_query(
                        "the organisation has no plan, so no billing window",
                    ))
                }
            }
        }
        Some(_) => return Err(bad_query("window must be current, without from and to")),
    };
    if from > to || (to - from).num_days() > 366 {
        return Err(bad_query(
            "from must be on or before to, at most 366 days apart",
        ));
    }
    min.wait(&state, &["usage"]).await?;
    let client = state.read_models.client().await?;
    let totals = usage_read::app_totals(&client, app, from, to).await?;
    let days = usage_read::app_days(&client, app, from, to).await?;
    let keys = usage_read::app_keys(&client, app, from, to).await?;
    Ok(Json(AppAnalytics {
        app_id: app,
        from,
        to,
        totals: totals.into(),
        days: days
            .into_iter()
            .map(|(day, f)| DayFigures {
                day,
                figures: f.into(),
            })
            .collect(),
        keys: keys
            .into_iter()
            .map(|(key_id, f)| KeyFigures {
                key_id,
                figures: f.into(),
            })
            .collect(),
    }))
}

/// The Usage tab.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgUsage {
    /// The plan, if staff set one.
    pub plan: Option<String>,
    /// `trialing`, `active`, `past_due` or `canceled`.
    pub subscription_state: Option<String>,
    /// Whether the plan includes `platform.api` (and is not canceled).
    pub platform_api_enabled: bool,
    /// Platform calls allowed per billing window.
    pub monthly_call_limit: Option<i64>,
    /// Calls verified in the current billing window.
    pub used: i64,
    /// Calls left in it.
    pub remaining: Option<i64>,
    /// The current billing window's first instant.
    pub billing_window_start: Option<DateTime<Utc>>,
    /// The first instant after it.
    pub billing_window_end: Option<DateTime<Utc>>,
}

/// The organisation's plan and its use in the current billing window
/// (owners, managers, finance and compliance).
#[utoipa::path(get, path = "/v1/orgs/{org}/usage", tag = "usage",
    params(("org" = Uuid, Path, description = "Organization id")),
    responses((status = 200, body = OrgUsage), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn org_usage(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    member: OrgMember,
    min: MinPosition,
) -> Result<Json<OrgUsage>, ApiError> {
    member.require(Permission::ViewBilling)?;
    min.wait(&state, &["orgs", "keys"]).await?;
    Ok(Json(org_usage_of(&state, org).await?))
}

/// The Usage tab of `org`, from the read models.
pub async fn org_usage_of(state: &AppState, org: Uuid) -> Result<OrgUsage, ApiError> {
    let client = state.read_models.client().await?;
    let row = projections::orgs::read::plan(&client, org).await?;
    let limit = row.monthly_call_limit;
    let window = match (row.billing_window_start, row.billing_window_end) {
        (Some(s), Some(e)) => domain::orgs::billing_window(
            s.timestamp_millis(),
            e.timestamp_millis(),
            Utc::now().timestamp_millis(),
        ),
        _ => None,
    };
    let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let window = window.map(|(s, e)| (at(s), at(e)));
    let used: i64 = match window {
        Some((s, _)) => projections::keys::read::org_window_calls(&client, org, s)
            .await?
            .unwrap_or(0),
        None => 0,
    };
    Ok(OrgUsage {
        plan: row.plan,
        platform_api_enabled: domain::orgs::plan_unlocks_workspace(
            &row.modules,
            row.subscription_state.as_deref(),
        ),
        subscription_state: row.subscription_state,
        monthly_call_limit: limit,
        used,
        remaining: limit.map(|l| (l - used).max(0)),
        billing_window_start: window.map(|w| w.0),
        billing_window_end: window.map(|w| w.1),
    })
}
