//! The mirror: copies the KurrentDB log into PostgreSQL's `events` table,
//! in order, with its positions and hashes, so the read models (which read
//! the log in their own transactions) stay in PostgreSQL. Several nodes
//! may run it; an import continues the table's head or writes nothing, so
//! each event lands once. The copy is a cache of the log of record: a
//! mirror table lost or behind is filled again from KurrentDB.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::watch;

use super::KurrentStore;
use crate::{EventStore, StoreError};

/// Events copied per transaction.
const BATCH: usize = 500;

/// One round: copies what the table lacks, a batch at a time; answers the
/// events copied.
pub async fn step(source: &KurrentStore, pool: &Pool) -> Result<usize, StoreError> {
    let client = pool.get().await?;
    let head: i64 = client
        .query_one("SELECT position FROM log_head WHERE id", &[])
        .await?
        .get(0);
    let events = source.read_all(head as u64, BATCH).await?;
    if events.is_empty() {
        return Ok(0);
    }
    if crate::postgres::import(&client, &events).await? {
        Ok(events.len())
    } else {
        // Another node's mirror moved the head first: read it again.
        Ok(0)
    }
}

/// Mirrors until `stop` turns true, waking on the log's wake-ups and at
/// least every `poll`.
pub async fn run(
    source: Arc<KurrentStore>,
    pool: Pool,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut wake = source.wakeups();
    loop {
        let copied = match step(&source, &pool).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "mirroring the KurrentDB log failed; retrying");
                0
            }
        };
        if copied == BATCH {
            continue;
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
