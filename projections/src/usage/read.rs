//! Typed queries over the `usage` read model (the views `rm.<table>`), for the API, the console and the tools.
//!
//! Calls per key per day, summed over an app's period (its analytics) or
//! ranked across apps (the staff high-usage report, which reads each app's
//! name from `rm.apps`).

use chrono::NaiveDate;
use deadpool_postgres::GenericClient;
use tokio_postgres::{Error, Row};
use uuid::Uuid;

/// Calls and latency summed over a period.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    /// Valid verifications.
    pub verifications: i64,
    /// Refused verifications of known keys.
    pub refused: i64,
    /// Calls the gateway reported.
    pub calls: i64,
    /// Reported calls answered with a status of 400 or more.
    pub errors: i64,
    /// Least reported latency, in milliseconds.
    pub latency_min_ms: Option<i64>,
    /// Average reported latency, in milliseconds (unrounded).
    pub latency_avg_ms: Option<f64>,
    /// Greatest reported latency.
    pub latency_max_ms: Option<i64>,
}

/// The sums [`Figures`] reads, seven columns.
const FIGURES: &str =
    "COALESCE(sum(verifications), 0)::bigint, COALESCE(sum(refused), 0)::bigint, \
     COALESCE(sum(calls), 0)::bigint, COALESCE(sum(errors), 0)::bigint, min(latency_min), \
     (sum(latency_sum)::float8 / NULLIF(sum(latency_count), 0)), max(latency_max)";

/// The days of one app's usage, from and to included.
const APP_RANGE: &str = "FROM rm.usage_daily WHERE app_id = $1 AND day BETWEEN $2 AND $3";

impl Figures {
    /// From the seven columns of [`FIGURES`] starting at `at`.
    fn from_row(r: &Row, at: usize) -> Self {
        Figures {
            verifications: r.get(at),
            refused: r.get(at + 1),
            calls: r.get(at + 2),
            errors: r.get(at + 3),
            latency_min_ms: r.get(at + 4),
            latency_avg_ms: r.get(at + 5),
            latency_max_ms: r.get(at + 6),
        }
    }
}

/// The app's figures over the days `from` to `to`, included.
pub async fn app_totals(
    client: &impl GenericClient,
    app: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Figures, Error> {
    let row = client
        .query_one(
            &format!("SELECT {FIGURES} {APP_RANGE}"),
            &[&app, &from, &to],
        )
        .await?;
    Ok(Figures::from_row(&row, 0))
}

/// The app's figures per day with usage, from `from` to `to`, in order.
pub async fn app_days(
    client: &impl GenericClient,
    app: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, Figures)>, Error> {
    Ok(client
        .query(
            &format!("SELECT day, {FIGURES} {APP_RANGE} GROUP BY day ORDER BY day"),
            &[&app, &from, &to],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), Figures::from_row(r, 1)))
        .collect())
}

/// The app's figures per key with usage, from `from` to `to`, by key id.
pub async fn app_keys(
    client: &impl GenericClient,
    app: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(Uuid, Figures)>, Error> {
    Ok(client
        .query(
            &format!("SELECT key_id, {FIGURES} {APP_RANGE} GROUP BY key_id ORDER BY key_id"),
            &[&app, &from, &to],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), Figures::from_row(r, 1)))
        .collect())
}

/// An app and its calls over a period.
#[derive(Debug, Clone)]
pub struct HighUsageRow {
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

/// A page of the apps with usage over the last `days` days (today
/// included), busiest first, after the `(total, app_id)` of `after`.
pub async fn high_usage_apps(
    client: &impl GenericClient,
    days: i32,
    after: Option<(i64, Uuid)>,
    limit: i64,
) -> Result<Vec<HighUsageRow>, Error> {
    let (after_total, after_app) = after.unzip();
    Ok(client
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
            &[&days, &after_total, &after_app, &limit],
        )
        .await?
        .iter()
        .map(|r| HighUsageRow {
            app_id: r.get(0),
            org_id: r.get(1),
            name: r.get(2),
            total: r.get(3),
            verifications: r.get(4),
            calls: r.get(5),
            errors: r.get(6),
        })
        .collect())
}
