//! The index's background work on a node: load from the read model, catch
//! up with the log, declare ready, then follow the log (woken by the
//! store's LISTEN/NOTIFY hint, with the poll as backstop); and the usage
//! meter's flush, every interval and once more at shutdown.

use std::sync::Arc;
use std::time::Duration;

use event_schemas::key::{usage_stream, UsageEvent};
use event_schemas::{Actor, Metadata, NewEvent};
use event_store::{AppendError, ExpectedVersion, SharedStore, StreamAppend, Subscription};
use tokio::sync::watch;

use crate::meter::Drained;
use crate::state::Index;

/// Loads `index`, catches it up with the log's head, marks it ready and
/// follows the log until `stop` turns true. A failure to load is retried
/// (the node stays not ready); an event the index cannot take stops it
/// loudly and the node stops answering (not ready), never a wrong verdict.
pub async fn run(
    index: Arc<Index>,
    store: SharedStore,
    pool: deadpool_postgres::Pool,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let position = loop {
        match crate::load::from_read_model(&index, &pool).await {
            Ok(p) => break p,
            Err(e) => {
                tracing::warn!(error = %e, "loading the verification index failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
    };
    let mut subscription = Subscription::with_poll(store.clone(), position, poll);
    let mut head = None;
    loop {
        if head.is_none() {
            match store.head().await {
                Ok(h) => head = Some(h),
                Err(e) => tracing::warn!(error = %e, "reading the log head failed"),
            }
        }
        if let Some(h) = head {
            if !index.is_ready() && index.position() >= h {
                index.mark_ready();
                tracing::info!(
                    keys = index.stats().keys,
                    position = h,
                    "verification index ready"
                );
            }
        }
        let batch = tokio::select! {
            b = subscription.next_batch() => b,
            _ = stop.wait_for(|s| *s) => return,
        };
        match batch {
            Ok(events) => {
                if let Err(e) = index.apply(&events) {
                    index.mark_not_ready();
                    tracing::error!(error = %e, "the verification index cannot apply the log; it stops and the node answers 503");
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the log for the verification index failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Appends a drained interval, each key's usage to its own stream, in one
/// transaction. Retried with the same event ids, an append that committed
/// after all is recognised, never doubled.
pub async fn append_usage(store: &SharedStore, drained: &Drained) -> Result<(), AppendError> {
    if drained.usage.is_empty() {
        return Ok(());
    }
    let appends = drained
        .usage
        .iter()
        .map(|(id, u)| {
            let metadata = Metadata {
                org_id: Some(u.org_id),
                ..Metadata::by(Actor::system())
            };
            let event = NewEvent {
                event_id: *id,
                ..NewEvent::from_domain(&UsageEvent::Recorded(u.clone()), metadata)
            };
            StreamAppend::new(usage_stream(u.key_id), ExpectedVersion::Any, vec![event])
        })
        .collect();
    store.append_all(appends).await.map(|_| ())
}

/// Flushes usage every `interval` and once more when `stop` turns true. A
/// batch that fails to append is retried until it lands; what a crash can
/// lose is at most one interval of counts.
pub async fn run_meter(
    index: Arc<Index>,
    store: SharedStore,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut pending: Option<Drained> = None;
    let step = interval.as_millis().max(1) as i64;
    loop {
        // Flush on the interval's wall-clock boundaries (every minute on
        // the minute by default), so a key's usage events are one per
        // minute of the clock, whichever node counted them.
        let now = chrono::Utc::now().timestamp_millis();
        let next = (now.div_euclid(step) + 1) * step;
        let wait = Duration::from_millis((next - now) as u64);
        let stopping = tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        let batch = pending
            .take()
            .unwrap_or_else(|| index.drain_usage(uuid::Uuid::now_v7));
        if let Err(e) = append_usage(&store, &batch).await {
            tracing::warn!(error = %e, keys = batch.usage.len(), "flushing usage failed; retrying");
            pending = Some(batch);
        }
        if stopping {
            let last = pending
                .take()
                .unwrap_or_else(|| index.drain_usage(uuid::Uuid::now_v7));
            if let Err(e) = append_usage(&store, &last).await {
                tracing::error!(error = %e, keys = last.usage.len(), "usage lost at shutdown");
            }
            return;
        }
    }
}
