//! An endpoint's delivery log and its health, read from the dispatcher's
//! own record (`delivery.*`): attempts are operational facts, not events.

#[allow(unused_imports)]
use super::*;

/// The delivery log's filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// Deliveries created at or after this instant (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Deliveries created before this instant.
    pub until: Option<DateTime<Utc>>,
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// 1 for the first.
    pub n: i32,
    /// When it started.
    pub at: DateTime<Utc>,
    /// The HTTP status, when one came back.
    pub status_code: Option<i32>,
    /// Milliseconds from start to end.
    pub latency_ms: i32,
    /// Why it failed without a status: `timeout`, `connection_refused`,
    /// `dns`, `tls`, `ssrf`, `connection`, `unsendable`.
    pub error_class: Option<String>,
    /// The start of the response body (or of the error), up to 1 KiB.
    pub response_excerpt: Option<String>,
    /// When the next attempt is due, if one is.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// One message to this endpoint, with its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Delivery id.
    pub id: i64,
    /// The message.
    pub message_id: Uuid,
    /// Its `webhook-id` (the same in every attempt and replay).
    pub webhook_id: String,
    /// Its type.
    pub event_type: String,
    /// Whether this is a replay (and the log position of its request).
    pub replay_of: Option<i64>,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempt_count: i32,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it was delivered or given up.
    pub finished_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptView>,
}

/// The log of an endpoint's deliveries, newest first, each with its
/// attempts.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id"), DeliveryFilter, PageQuery),
    responses((status = 200, body = Page<DeliveryView>), (status = 400, body = Problem), (status = 402, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    min: MinPosition,
    session: Session,
    filter: axum::extract::Query<DeliveryFilter>,
    paging: Paging<i64>,
) -> Result<Json<Page<DeliveryView>>, ApiError> {
    load_endpoint(&state, id, session.user_id).await?;
    fed(&state, min).await?;
    Ok(Json(deliveries_page(&state, id, &filter, &paging).await?))
}

/// A page of an endpoint's deliveries (a webhook endpoint's or an audit
/// stream's), newest first, each with its attempts.
pub(crate) async fn deliveries_page(
    state: &AppState,
    id: Uuid,
    filter: &DeliveryFilter,
    paging: &Paging<i64>,
) -> Result<Page<DeliveryView>, ApiError> {
    if let Some(s) = &filter.status {
        if !matches!(s.as_str(), "pending" | "delivered" | "failed") {
            return Err(domain::Invalid(vec![domain::FieldError {
                pointer: "/status".into(),
                detail: "must be pending, delivered or failed".into(),
            }])
            .into());
        }
    }
    let client = state.pool.get().await?;
    let which = delivery::read::DeliveryFilter {
        status: filter.status.as_deref(),
        since: filter.since,
        until: filter.until,
    };
    let rows = delivery::read::deliveries(&client, id, which, paging.after, paging.fetch()).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let attempts = delivery::read::attempts(&client, &ids).await?;
    let mut by_delivery: std::collections::HashMap<i64, Vec<AttemptView>> = Default::default();
    for a in attempts {
        by_delivery
            .entry(a.delivery_id)
            .or_default()
            .push(AttemptView {
                n: a.n,
                at: a.at,
                status_code: a.status_code,
                latency_ms: a.latency_ms,
                error_class: a.error_class,
                response_excerpt: a.body_excerpt,
                next_attempt_at: a.next_at,
            });
    }
    let items = rows
        .into_iter()
        .map(|r| DeliveryView {
            id: r.id,
            message_id: r.message_id,
            webhook_id: delivery::sign::webhook_id(r.message_id),
            event_type: r.event_type,
            replay_of: (r.round > 0).then_some(r.round),
            status: r.status,
            attempt_count: r.attempts,
            next_attempt_at: r.next_at,
            created_at: r.created_at,
            finished_at: r.finished_at,
            attempts: by_delivery.remove(&r.id).unwrap_or_default(),
        })
        .collect();
    Ok(Page::new(items, paging, |d| d.id))
}

/// Failures of one kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailurePattern {
    /// `timeout`, `connection_refused`, `dns`, `tls`, `ssrf`, `connection`,
    /// `unsendable`, or an HTTP status class and code (`4xx:404`, `5xx:503`,
    /// `3xx:301`).
    pub pattern: String,
    /// Attempts in the last 24 hours.
    pub count: i64,
    /// The latest.
    pub last_at: DateTime<Utc>,
}

/// An endpoint's delivery health.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Share of attempts that succeeded in the last hour (absent: none).
    pub success_rate_1h: Option<f64>,
    /// In the last 24 hours.
    pub success_rate_24h: Option<f64>,
    /// Attempts in the last hour.
    pub attempts_1h: i64,
    /// Attempts in the last 24 hours.
    pub attempts_24h: i64,
    /// Deliveries waiting.
    pub pending: i64,
    /// Failing without a success since.
    pub failing_since: Option<DateTime<Utc>>,
    /// Failures of the last 24 hours by pattern, most frequent first.
    pub failures: Vec<FailurePattern>,
}

/// An endpoint's delivery health from the dispatcher's record.
pub(super) async fn health_of(
    client: &deadpool_postgres::Client,
    id: Uuid,
) -> Result<HealthView, ApiError> {
    let row = delivery::read::health(client, id).await?;
    let rate = |ok: i64, all: i64| (all > 0).then(|| ok as f64 / all as f64);
    let failures = delivery::read::failures(client, id)
        .await?
        .into_iter()
        .map(|r| FailurePattern {
            pattern: r.pattern,
            count: r.count,
            last_at: r.last_at,
        })
        .collect();
    Ok(HealthView {
        endpoint_id: id,
        success_rate_1h: rate(row.succeeded_1h, row.attempts_1h),
        success_rate_24h: rate(row.succeeded_24h, row.attempts_24h),
        attempts_1h: row.attempts_1h,
        attempts_24h: row.attempts_24h,
        pending: row.pending,
        failing_since: row.failing_since,
        failures,
    })
}

/// An endpoint's success rates over 1 h and 24 h and its failures by
/// pattern.
#[utoipa::path(get, path = "/v1/webhooks/{id}/health", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 200, body = HealthView), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn health(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    min: MinPosition,
    session: Session,
) -> Result<Json<HealthView>, ApiError> {
    load_endpoint(&state, id, session.user_id).await?;
    fed(&state, min).await?;
    let client = state.pool.get().await?;
    Ok(Json(health_of(&client, id).await?))
}
