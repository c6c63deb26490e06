//! Usage analytics: per key and day, the verifications a node counted
//! (valid and refused) and the calls the gateway reported (count, errors,
//! least, total and greatest latency), from `usage.recorded` aggregates.
//! An app's analytics and an organisation's usage sum these rows.

mod apply;
pub mod read;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use event_schemas::key::UsageEvent;
use event_schemas::RecordedEvent;

use crate::{Projection, ProjectionError};

/// The usage read model.
pub struct Usage;

#[async_trait]
impl Projection for Usage {
    fn name(&self) -> &'static str {
        "usage"
    }

    fn version(&self) -> u32 {
        // 2: batch-shaped (each batch summed per key and day first).
        2
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
         );"
    }

    fn indexes(&self) -> &'static str {
        "CREATE INDEX IF NOT EXISTS usage_daily_app_idx ON usage_daily (app_id, day);
         CREATE INDEX IF NOT EXISTS usage_daily_org_idx ON usage_daily (org_id, day);"
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
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        apply::apply(tx, events).await
    }
}
