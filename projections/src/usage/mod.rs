//! Usage analytics: per key and day, the verifications a node counted
//! (valid and refused) and the calls the gateway reported (count, errors,
//! least, total and greatest latency), from `usage.recorded` aggregates.
//! An app's analytics and an organisation's usage sum these rows.

pub mod read;

use async_trait::async_trait;
use event_schemas::key::UsageEvent;
use event_schemas::RecordedEvent;
use tokio_postgres::Transaction;

use crate::{Projection, ProjectionError};

/// The usage read model.
pub struct Usage;

#[async_trait]
impl Projection for Usage {
    fn name(&self) -> &'static str {
        "usage"
    }

    fn version(&self) -> u32 {
        1
    }

    fn schema(&self) -> &'static str {
        "CREATE TABLE usage_daily (
             key_id        UUID NOT NULL,
             app_id        UUID NOT NULL,
             org_id        UUID NOT NULL,
             day           DATE NOT NULL,
             verifications BIGINT NOT NULL DEFAULT 0,
             refused       BIGINT NOT NULL DEFAULT 0,
             calls         BIGINT NOT NULL DEFAULT 0,
             errors        BIGINT NOT NULL DEFAULT 0,
             latency_count BIGINT NOT NULL DEFAULT 0,
             latency_sum   BIGINT NOT NULL DEFAULT 0,
             latency_min   BIGINT,
             latency_max   BIGINT,
             last_at       TIMESTAMPTZ NOT NULL,
             PRIMARY KEY (key_id, day)
         );
         CREATE INDEX usage_daily_app_idx ON usage_daily (app_id, day);
         CREATE INDEX usage_daily_org_idx ON usage_daily (org_id, day);"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["usage_daily"]
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(UsageEvent::TYPES)
    }

    async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
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
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            let opt = |v: Option<u64>| v.map(n);
            tx.execute(
                "INSERT INTO usage_daily (key_id, app_id, org_id, day, verifications, refused, \
                     calls, errors, latency_count, latency_sum, latency_min, latency_max, last_at) \
                 VALUES ($1, $2, $3, ($4::timestamptz AT TIME ZONE 'UTC')::date, $5, $6, $7, $8, \
                     $9, $10, $11, $12, $13) \
                 ON CONFLICT (key_id, day) DO UPDATE SET \
                     verifications = usage_daily.verifications + $5, \
                     refused = usage_daily.refused + $6, \
                     calls = usage_daily.calls + $7, \
                     errors = usage_daily.errors + $8, \
                     latency_count = usage_daily.latency_count + $9, \
                     latency_sum = usage_daily.latency_sum + $10, \
                     latency_min = LEAST(usage_daily.latency_min, $11), \
                     latency_max = GREATEST(usage_daily.latency_max, $12), \
                     last_at = GREATEST(usage_daily.last_at, $13)",
                &[
                    &u.key_id,
                    &u.app_id,
                    &u.org_id,
                    &u.from,
                    &n(verified),
                    &n(refused),
                    &n(calls),
                    &n(errors),
                    &n(latency_count),
                    &n(u.latency_sum_ms.unwrap_or(0)),
                    &opt(u.latency_min_ms),
                    &opt(u.latency_max_ms),
                    &u.last_at,
                ],
            )
            .await?;
        }
        Ok(())
    }
}
