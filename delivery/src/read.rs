//! Typed queries over delivery's tables (messages, attempts, endpoints' delivery state), for the API's delivery log, summaries and replay, and the console.
//!
//! These tables are the dispatcher's working copy, not read models: how
//! far the feeder has got is [`feed_position`]. One write lives here too,
//! [`clear_bodies`], the retention job's share of these tables.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::{Error, Row};
use uuid::Uuid;

/// The sort key of the endpoint lists: creation time and id.
pub type TimeKey = (DateTime<Utc>, Uuid);

/// How far the feeder has followed the log.
pub async fn feed_position(client: &impl GenericClient) -> Result<i64, Error> {
    Ok(client
        .query_one("SELECT position FROM delivery.feed WHERE id = 1", &[])
        .await?
        .get(0))
}

/// One page of `select` (`SELECT ... WHERE <conditions>` over `$1..$n`),
/// ordered by `(created_at, endpoint_id)` after `after`, at most `limit`
/// rows, each with its sort key.
async fn endpoint_page<T>(
    client: &impl GenericClient,
    select: &str,
    params: &[&(dyn ToSql + Sync)],
    after: Option<TimeKey>,
    limit: i64,
    item: impl Fn(&Row) -> T,
) -> Result<Vec<(TimeKey, T)>, Error> {
    let n = params.len();
    let sql = format!(
        "{select} AND (${a}::timestamptz IS NULL OR (created_at, endpoint_id) > (${a}, ${b})) \
         ORDER BY created_at, endpoint_id LIMIT ${c}",
        a = n + 1,
        b = n + 2,
        c = n + 3
    );
    let (after_time, after_id) = after.unzip();
    let mut all: Vec<&(dyn ToSql + Sync)> = params.to_vec();
    all.extend([&after_time as &(dyn ToSql + Sync), &after_id, &limit]);
    let rows = client.query(&sql, &all).await?;
    Ok(rows
        .iter()
        .map(|r| ((r.get("created_at"), r.get("endpoint_id")), item(r)))
        .collect())
}

/// An app's webhook endpoint as the dispatcher holds it.
#[derive(Debug, Clone)]
pub struct EndpointRow {
    /// Endpoint id.
    pub endpoint_id: Uuid,
    /// Its app.
    pub app_id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// Type filters.
    pub event_types: Vec<String>,
    /// `live` or `test`.
    pub mode: String,
    /// Description.
    pub description: String,
    /// Messages per second at most.
    pub rate_limit: Option<i32>,
    /// `v1` or `v1a`.
    pub scheme: String,
    /// Its signing secrets, sealed, the current one first
    /// (`{sealed, kek_id, public_key?, until?}`).
    pub secrets: Vec<serde_json::Value>,
    /// `enabled`, `disabled` or `deleted`.
    pub status: String,
    /// Why it is disabled.
    pub disabled_reason: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

fn endpoint_row(r: &Row) -> EndpointRow {
    let Json(event_types) = r.get("event_types");
    let Json(secrets) = r.get("secrets");
    EndpointRow {
        endpoint_id: r.get("endpoint_id"),
        app_id: r.get("app_id"),
        url: r.get("url"),
        event_types,
        mode: r.get("mode"),
        description: r.get("description"),
        rate_limit: r.get("rate_limit"),
        scheme: r.get("scheme"),
        secrets,
        status: r.get("status"),
        disabled_reason: r.get("disabled_reason"),
        created_at: r.get("created_at"),
    }
}

/// A page of the app's endpoints (not deleted), oldest first.
pub async fn app_endpoints(
    client: &impl GenericClient,
    app: Uuid,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<(TimeKey, EndpointRow)>, Error> {
    endpoint_page(
        client,
        "SELECT * FROM delivery.endpoints WHERE app_id = $1 AND status <> 'deleted'",
        &[&app],
        after,
        limit,
        endpoint_row,
    )
    .await
}

/// Every endpoint of the app (not deleted), oldest first.
pub async fn all_app_endpoints(
    client: &impl GenericClient,
    app: Uuid,
) -> Result<Vec<EndpointRow>, Error> {
    Ok(client
        .query(
            "SELECT * FROM delivery.endpoints WHERE app_id = $1 AND status <> 'deleted' \
             ORDER BY created_at, endpoint_id",
            &[&app],
        )
        .await?
        .iter()
        .map(endpoint_row)
        .collect())
}

/// The organisation's webhook endpoints (not deleted).
pub async fn org_webhook_count(client: &impl GenericClient, org: Uuid) -> Result<i64, Error> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM delivery.endpoints \
             WHERE org_id = $1 AND kind = 'webhook' AND status <> 'deleted'",
            &[&org],
        )
        .await?
        .get(0))
}

/// An organisation's audit stream as the dispatcher holds it.
#[derive(Debug, Clone)]
pub struct AuditStreamRow {
    /// Stream id (its deliveries' endpoint id).
    pub endpoint_id: Uuid,
    /// The organisation.
    pub org_id: Uuid,
    /// Where entries go.
    pub url: String,
    /// Description.
    pub description: String,
    /// `enabled`, `disabled` or `deleted`.
    pub status: String,
    /// Why it is disabled.
    pub disabled_reason: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A page of the organisation's audit streams (not deleted), oldest first.
pub async fn org_audit_streams(
    client: &impl GenericClient,
    org: Uuid,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<(TimeKey, AuditStreamRow)>, Error> {
    endpoint_page(
        client,
        "SELECT * FROM delivery.endpoints \
         WHERE org_id = $1 AND kind = 'audit' AND status <> 'deleted'",
        &[&org],
        after,
        limit,
        |r| AuditStreamRow {
            endpoint_id: r.get("endpoint_id"),
            org_id: r.get("org_id"),
            url: r.get("url"),
            description: r.get("description"),
            status: r.get("status"),
            disabled_reason: r.get("disabled_reason"),
            created_at: r.get("created_at"),
        },
    )
    .await
}

/// One message to one endpoint, once per round.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    /// Delivery id.
    pub id: i64,
    /// The message.
    pub message_id: Uuid,
    /// Its type.
    pub event_type: String,
    /// 0, or the log position of the replay that caused it.
    pub round: i64,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due.
    pub next_at: Option<DateTime<Utc>>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it was delivered or given up.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Which of an endpoint's deliveries a page holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeliveryFilter<'a> {
    /// `pending`, `delivered` or `failed`.
    pub status: Option<&'a str>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created before.
    pub until: Option<DateTime<Utc>>,
}

/// A page of the endpoint's deliveries matching `filter`, newest first,
/// with ids below `before`: at most `limit`.
pub async fn deliveries(
    client: &impl GenericClient,
    endpoint: Uuid,
    filter: DeliveryFilter<'_>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, Error> {
    Ok(client
        .query(
            "SELECT d.id, d.message_id, m.event_type, d.round, d.status, d.attempts, d.next_at, \
               d.created_at, d.finished_at \
             FROM delivery.deliveries d JOIN delivery.messages m USING (message_id) \
             WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.status = $2) \
               AND ($3::timestamptz IS NULL OR d.created_at >= $3) \
               AND ($4::timestamptz IS NULL OR d.created_at < $4) \
               AND ($5::int8 IS NULL OR d.id < $5) \
             ORDER BY d.id DESC LIMIT $6",
            &[
                &endpoint,
                &filter.status,
                &filter.since,
                &filter.until,
                &before,
                &limit,
            ],
        )
        .await?
        .iter()
        .map(|r| DeliveryRow {
            id: r.get(0),
            message_id: r.get(1),
            event_type: r.get(2),
            round: r.get(3),
            status: r.get(4),
            attempts: r.get(5),
            next_at: r.get(6),
            created_at: r.get(7),
            finished_at: r.get(8),
        })
        .collect())
}

/// One attempt of a delivery.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    /// The delivery.
    pub delivery_id: i64,
    /// 1 for the first.
    pub n: i32,
    /// When it started.
    pub at: DateTime<Utc>,
    /// The HTTP status, when one came back.
    pub status_code: Option<i32>,
    /// Milliseconds from start to end.
    pub latency_ms: i32,
    /// Why it failed without a status.
    pub error_class: Option<String>,
    /// The start of the response body (or of the error).
    pub body_excerpt: Option<String>,
    /// When the next attempt is due, if one is.
    pub next_at: Option<DateTime<Utc>>,
}

/// The attempts of the deliveries `ids`, by delivery, oldest first.
pub async fn attempts(client: &impl GenericClient, ids: &[i64]) -> Result<Vec<AttemptRow>, Error> {
    Ok(client
        .query(
            "SELECT delivery_id, n, at, status_code, latency_ms, error_class, body_excerpt, next_at \
             FROM delivery.attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, n",
            &[&ids],
        )
        .await?
        .iter()
        .map(|a| AttemptRow {
            delivery_id: a.get(0),
            n: a.get(1),
            at: a.get(2),
            status_code: a.get(3),
            latency_ms: a.get(4),
            error_class: a.get(5),
            body_excerpt: a.get(6),
            next_at: a.get(7),
        })
        .collect())
}

/// An endpoint's attempts over the last hour and day, and its backlog.
#[derive(Debug, Clone, Copy)]
pub struct HealthRow {
    /// Attempts in the last hour.
    pub attempts_1h: i64,
    /// Of those, answered 2xx.
    pub succeeded_1h: i64,
    /// Attempts in the last 24 hours.
    pub attempts_24h: i64,
    /// Of those, answered 2xx.
    pub succeeded_24h: i64,
    /// Deliveries waiting.
    pub pending: i64,
    /// Failing without a success since.
    pub failing_since: Option<DateTime<Utc>>,
}

/// The endpoint's attempt counts and backlog.
pub async fn health(client: &impl GenericClient, endpoint: Uuid) -> Result<HealthRow, Error> {
    let row = client
        .query_one(
            "SELECT \
               count(*) FILTER (WHERE a.at > now() - interval '1 hour'), \
               count(*) FILTER (WHERE a.at > now() - interval '1 hour' AND a.status_code BETWEEN 200 AND 299), \
               count(*), \
               count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299), \
               (SELECT count(*) FROM delivery.deliveries d WHERE d.endpoint_id = $1 AND d.status = 'pending'), \
               (SELECT failing_since FROM delivery.endpoints e WHERE e.endpoint_id = $1) \
             FROM delivery.attempts a WHERE a.endpoint_id = $1 AND a.at > now() - interval '24 hours'",
            &[&endpoint],
        )
        .await?;
    Ok(HealthRow {
        attempts_1h: row.get(0),
        succeeded_1h: row.get(1),
        attempts_24h: row.get(2),
        succeeded_24h: row.get(3),
        pending: row.get(4),
        failing_since: row.get(5),
    })
}

/// Failed attempts of one kind.
#[derive(Debug, Clone)]
pub struct FailureRow {
    /// `timeout`, `dns`... or an HTTP status class and code (`4xx:404`).
    pub pattern: String,
    /// Attempts in the last 24 hours.
    pub count: i64,
    /// The latest.
    pub last_at: DateTime<Utc>,
}

/// The endpoint's failed attempts of the last 24 hours by pattern, most
/// frequent first.
pub async fn failures(
    client: &impl GenericClient,
    endpoint: Uuid,
) -> Result<Vec<FailureRow>, Error> {
    Ok(client
        .query(
            "SELECT CASE WHEN status_code IS NULL THEN coalesce(error_class, 'connection') \
                    ELSE (status_code / 100)::text || 'xx:' || status_code::text END AS pattern, \
                    count(*), max(at) \
             FROM delivery.attempts WHERE endpoint_id = $1 AND at > now() - interval '24 hours' \
               AND (status_code IS NULL OR status_code NOT BETWEEN 200 AND 299) \
             GROUP BY 1 ORDER BY 2 DESC, 1",
            &[&endpoint],
        )
        .await?
        .iter()
        .map(|r| FailureRow {
            pattern: r.get(0),
            count: r.get(1),
            last_at: r.get(2),
        })
        .collect())
}

/// Which of the messages `ids` were sent to the app's endpoints.
pub async fn known_messages(
    client: &impl GenericClient,
    ids: &[Uuid],
    app: Uuid,
) -> Result<Vec<Uuid>, Error> {
    Ok(client
        .query(
            "SELECT message_id FROM delivery.messages WHERE message_id = ANY($1) AND app_id = $2",
            &[&ids, &app],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Clears the bodies of the messages created before `before` (payload
/// retention; their delivery metadata stays). Answers how many it cleared.
pub async fn clear_bodies(
    client: &impl GenericClient,
    before: DateTime<Utc>,
) -> Result<u64, Error> {
    client
        .execute(
            "UPDATE delivery.messages SET body = NULL WHERE created_at < $1 AND body IS NOT NULL",
            &[&before],
        )
        .await
}
