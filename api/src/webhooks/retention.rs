//! The retention job: published payloads are sealed under a key of their
//! day, so purging a day destroys its key (what the log holds of those
//! payloads can no longer be opened) and clears the dispatcher's copies.
//! Delivery metadata (attempts, statuses, types) stays. Every purge is a
//! `webhook.payloads_purged` event.

use chrono::{DateTime, NaiveTime, Utc};
use deadpool_postgres::Pool;
use event_schemas::webhook::{PayloadsPurged, RetentionEvent, RETENTION_STREAM};
use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
use event_store::{EventStore, EventStoreExt};
use uuid::Uuid;

use crate::error::ApiError;
use crate::vault::webhooks::RetentionKeys;

/// Purges the payloads of every day that ended before `now - keep`;
/// answers what the event recorded, or `None` when there was nothing.
pub async fn purge(
    store: &dyn EventStore,
    pool: &Pool,
    cache: Option<&RetentionKeys>,
    now: DateTime<Utc>,
    keep: chrono::Duration,
) -> Result<Option<PayloadsPurged>, ApiError> {
    let cutoff = (now - keep).date_naive();
    let before = cutoff.and_time(NaiveTime::MIN).and_utc();
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let ids: Vec<Uuid> = tx
        .query(
            "DELETE FROM webhook_retention_keys WHERE day < $1 RETURNING subject_id",
            &[&cutoff],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let keys = tx
        .execute(
            "DELETE FROM subject_keys WHERE subject_id = ANY($1)",
            &[&ids],
        )
        .await?;
    let messages = delivery::read::clear_bodies(&tx, before).await?;
    if keys == 0 && messages == 0 {
        return Ok(None);
    }
    let purged = PayloadsPurged {
        before,
        keys,
        messages,
    };
    // Recorded before the commit: should the commit fail, the next run
    // purges (and records) again, so the log never misses a purge.
    let event = RetentionEvent::Purged(purged.clone());
    store
        .append(
            RETENTION_STREAM,
            ExpectedVersion::Any,
            vec![NewEvent::from_domain(&event, Metadata::by(Actor::system()))],
        )
        .await?;
    tx.commit().await?;
    if let Some(cache) = cache {
        cache.forget(&ids);
    }
    tracing::info!(%before, keys, messages, "purged webhook payloads past their retention");
    Ok(Some(purged))
}

/// Runs [`purge`] every hour until `stop`.
pub async fn run(
    state: crate::state::AppState,
    keep: chrono::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = purge(
            state.store.as_ref(),
            &state.pool,
            Some(&state.webhook_keys),
            Utc::now(),
            keep,
        )
        .await
        {
            tracing::warn!(error = %e, "purging webhook payloads failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
