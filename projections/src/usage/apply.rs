//! The usage read model's write side: a batch's `usage.recorded` events
//! are summed per key and day in memory, then added to the table with one
//! upsert. Sums, least and greatest do not depend on order, so any batch
//! size gives the same rows.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Transaction;
use event_schemas::key::UsageEvent;
use event_schemas::RecordedEvent;
use uuid::Uuid;

use crate::ProjectionError;

/// One key's day, summed over the batch.
struct Day {
    app_id: Uuid,
    org_id: Uuid,
    verifications: i64,
    refused: i64,
    calls: i64,
    errors: i64,
    latency_count: i64,
    latency_sum: i64,
    latency_min: Option<i64>,
    latency_max: Option<i64>,
    last_at: DateTime<Utc>,
}

/// Applies a batch of events.
pub(super) async fn apply(
    tx: &Transaction<'_>,
    events: &[&RecordedEvent],
) -> Result<(), ProjectionError> {
    let mut days: HashMap<(Uuid, NaiveDate), Day> = HashMap::new();
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for e in events {
        let Some(UsageEvent::Recorded(u)) = crate::decode(e, UsageEvent::decode)? else {
            continue;
        };
        let (verified, refused, calls, errors) = match u.source.as_str() {
            "verify" => (u.calls, u.errors, 0, 0),
            "report" => (0, 0, u.calls, u.errors),
            other => {
                return Err(ProjectionError::Invariant {
                    position: e.global_position,
                    reason: format!("usage from an unknown source {other:?}"),
                })
            }
        };
        let latency_count = if u.latency_sum_ms.is_some() { calls } else { 0 };
        let day = days.entry((u.key_id, u.from.date_naive())).or_insert(Day {
            app_id: u.app_id,
            org_id: u.org_id,
            verifications: 0,
            refused: 0,
            calls: 0,
            errors: 0,
            latency_count: 0,
            latency_sum: 0,
            latency_min: None,
            latency_max: None,
            last_at: u.last_at,
        });
        day.verifications = day.verifications.saturating_add(n(verified));
        day.refused = day.refused.saturating_add(n(refused));
        day.calls = day.calls.saturating_add(n(calls));
        day.errors = day.errors.saturating_add(n(errors));
        day.latency_count = day.latency_count.saturating_add(n(latency_count));
        day.latency_sum = day
            .latency_sum
            .saturating_add(n(u.latency_sum_ms.unwrap_or(0)));
        // LEAST and GREATEST in SQL skip NULLs; so do these.
        day.latency_min = match (day.latency_min, u.latency_min_ms.map(n)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        day.latency_max = day.latency_max.max(u.latency_max_ms.map(n));
        day.last_at = day.last_at.max(u.last_at);
    }
    if days.is_empty() {
        return Ok(());
    }
    let mut columns = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for ((key, date), d) in days {
        columns.0.push(key);
        columns.1.push(d.app_id);
        columns.2.push(d.org_id);
        columns.3.push(date);
        columns.4.push(d.verifications);
        columns.5.push(d.refused);
        columns.6.push(d.calls);
        columns.7.push(d.errors);
        columns.8.push(d.latency_count);
        columns.9.push(d.latency_sum);
        columns.10.push(d.latency_min);
        columns.11.push(d.latency_max);
        columns.12.push(d.last_at);
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO usage_daily (key_id, app_id, org_id, day, verifications, refused, \
                 calls, errors, latency_count, latency_sum, latency_min, latency_max, last_at) \
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::date[], $5::bigint[], \
                 $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], \
                 $11::bigint[], $12::bigint[], $13::timestamptz[]) \
             ON CONFLICT (key_id, day) DO UPDATE SET \
                 verifications = usage_daily.verifications + excluded.verifications, \
                 refused = usage_daily.refused + excluded.refused, \
                 calls = usage_daily.calls + excluded.calls, \
                 errors = usage_daily.errors + excluded.errors, \
                 latency_count = usage_daily.latency_count + excluded.latency_count, \
                 latency_sum = usage_daily.latency_sum + excluded.latency_sum, \
                 latency_min = LEAST(usage_daily.latency_min, excluded.latency_min), \
                 latency_max = GREATEST(usage_daily.latency_max, excluded.latency_max), \
                 last_at = GREATEST(usage_daily.last_at, excluded.last_at)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &columns.0,
            &columns.1,
            &columns.2,
            &columns.3,
            &columns.4,
            &columns.5,
            &columns.6,
            &columns.7,
            &columns.8,
            &columns.9,
            &columns.10,
            &columns.11,
            &columns.12,
        ],
    )
    .await?;
    Ok(())
}
