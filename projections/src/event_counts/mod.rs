//! Event counts by type and stream category: the log's shape at a glance for
//! dashboards and `gatehouse-replay stats`. Aggregates each batch in memory
//! and writes one upsert per key, so it costs little per event.

pub mod read;

use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use event_schemas::RecordedEvent;

use crate::{Projection, ProjectionError};

/// The event counts read model.
pub struct EventCounts;

#[async_trait]
impl Projection for EventCounts {
    fn name(&self) -> &'static str {
        "event_counts"
    }

    fn version(&self) -> u32 {
        1
    }

    fn schema(&self) -> &'static str {
        "CREATE TABLE event_counts (
             event_type TEXT   NOT NULL,
             category   TEXT   NOT NULL,
             events     BIGINT NOT NULL,
             last_position BIGINT NOT NULL,
             PRIMARY KEY (event_type, category)
         );"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["event_counts"]
    }

    async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut counts: HashMap<(&str, &str), (i64, i64)> = HashMap::new();
        for e in events {
            let entry = counts.entry((&e.event_type, e.category())).or_default();
            entry.0 += 1;
            entry.1 = e.global_position as i64;
        }
        let mut types = Vec::with_capacity(counts.len());
        let mut categories = Vec::with_capacity(counts.len());
        let mut numbers = Vec::with_capacity(counts.len());
        let mut lasts = Vec::with_capacity(counts.len());
        for ((t, c), (n, last)) in counts {
            types.push(t);
            categories.push(c);
            numbers.push(n);
            lasts.push(last);
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO event_counts (event_type, category, events, last_position) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) \
             ON CONFLICT (event_type, category) DO UPDATE \
             SET events = event_counts.events + excluded.events, \
                 last_position = excluded.last_position",
            )
            .await?;
        tx.execute(&stmt, &[&types, &categories, &numbers, &lasts])
            .await?;
        Ok(())
    }
}
