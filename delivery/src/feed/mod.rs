//! The feeder: follows the log and turns it into deliveries. It keeps the
//! dispatcher's copy of every endpoint and key owner, builds each
//! deliverable event's public body once, and inserts one pending delivery
//! per subscribed endpoint, all in the transaction that moves its
//! checkpoint: a batch is fanned out completely or not at all. The
//! checkpoint row is locked `FOR UPDATE SKIP LOCKED`, so among several
//! nodes one feeds at a time and a dead one's work passes to another.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Pool, Transaction};
use event_schemas::webhook::{MessageEvent, MessagePublished, WebhookEvent};
use event_schemas::RecordedEvent;
use event_store::{postgres::read_all_with, SharedStore, StoreError};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use crate::catalog;
use crate::keyring::Keyring;

mod audit;
mod batch;
mod endpoints;

pub use audit::AuditFeeder;

use batch::{Batch, Owner, Target};

/// The channel a feeder notifies when it inserted deliveries.
pub const CHANNEL: &str = "gatehouse_delivery";

/// Events read per transaction.
const BATCH: usize = 500;

/// Why a feed step failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The store or database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database failed.
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection.
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
    /// An event did not decode.
    #[error("event at position {position}: {reason}")]
    Event {
        /// Where.
        position: u64,
        /// What.
        reason: String,
    },
}

/// The feeder of one node.
pub struct Feeder {
    pool: Pool,
    store: SharedStore,
    keyring: Arc<dyn Keyring>,
    poll: Duration,
    fed: Arc<watch::Sender<u64>>,
}

impl Feeder {
    /// A feeder; `fed` is told the checkpoint after every step that
    /// inserted deliveries (this node's dispatcher wakes on it).
    pub fn new(
        pool: Pool,
        store: SharedStore,
        keyring: Arc<dyn Keyring>,
        poll: Duration,
        fed: Arc<watch::Sender<u64>>,
    ) -> Self {
        Feeder {
            pool,
            store,
            keyring,
            poll,
            fed,
        }
    }

    /// Feeds until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut wake = self.store.wakeups();
        loop {
            let full = match self.step().await {
                Ok(n) => n == BATCH,
                Err(e) => {
                    tracing::warn!(error = %e, "feeding deliveries failed; retrying");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One batch: the events read (0 when caught up or another node holds
    /// the checkpoint).
    pub async fn step(&self) -> Result<usize, FeedError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(after) = claim(&tx, "delivery.feed").await? else {
            return Ok(0);
        };
        let after = after as u64;
        let events = read_all_with(&tx, after, BATCH).await?;
        let Some(last) = events.last().map(|e| e.global_position) else {
            return Ok(0);
        };
        let mut batch = Batch::load(&tx, &events).await?;
        for e in &events {
            self.apply(&tx, &mut batch, e).await?;
        }
        let inserted = batch.flush(&tx).await?;
        tx.execute(
            &tx.prepare_cached("UPDATE delivery.feed SET position = $1 WHERE id = 1")
                .await?,
            &[&(last as i64)],
        )
        .await?;
        if inserted > 0 {
            tx.batch_execute(&format!("NOTIFY {CHANNEL}")).await?;
        }
        tx.commit().await?;
        if inserted > 0 {
            self.fed.send_replace(last);
        }
        Ok(events.len())
    }

    async fn apply(
        &self,
        tx: &Transaction<'_>,
        batch: &mut Batch,
        e: &RecordedEvent,
    ) -> Result<(), FeedError> {
        let bad = |reason: String| FeedError::Event {
            position: e.global_position,
            reason,
        };
        if let Some(id) = uuid_of(&e.stream_id, "webhook-") {
            let Some(event) = WebhookEvent::decode(e).map_err(|x| bad(x.to_string()))? else {
                return Ok(());
            };
            batch.endpoint_event(tx, id, e, &event).await?;
        } else if e.event_type == "api_key.issued" {
            let owner = Owner {
                app_id: field_uuid(&e.data, "app_id").ok_or_else(|| bad("no app_id".into()))?,
                org_id: field_uuid(&e.data, "org_id").ok_or_else(|| bad("no org_id".into()))?,
                mode: field_str(&e.data, "mode").unwrap_or_default(),
            };
            let key = field_uuid(&e.data, "key_id").ok_or_else(|| bad("no key_id".into()))?;
            tx.execute(
                &tx.prepare_cached(
                    "INSERT INTO delivery.key_owners (key_id, app_id, org_id, mode) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .await?,
                &[&key, &owner.app_id, &owner.org_id, &owner.mode],
            )
            .await?;
            batch.owners.insert(key, owner);
        } else if let Some(MessageEvent::Published(m)) =
            MessageEvent::decode(e).map_err(|x| bad(x.to_string()))?
        {
            return self.custom_message(batch, e, &m).await;
        }
        if let Some(t) = catalog::find(&e.event_type) {
            batch.platform_event(t, e);
        }
        Ok(())
    }

    async fn custom_message(
        &self,
        batch: &mut Batch,
        e: &RecordedEvent,
        m: &MessagePublished,
    ) -> Result<(), FeedError> {
        let target = Target::app(m.app_id, m.org_id, m.mode.clone());
        if batch.targets(&target, &m.message_type).is_empty() {
            return Ok(());
        }
        let payload = self
            .keyring
            .open_payload(m)
            .await
            .map_err(|x| FeedError::Event {
                position: e.global_position,
                reason: x.to_string(),
            })?;
        // The payload is JSON text already: spliced in, not parsed again.
        let body = payload.map(|p| {
            let mut body = format!(
                "{{\"type\":{},\"timestamp\":{},\"data\":",
                Value::from(m.message_type.as_str()),
                Value::from(timestamp(e.recorded_at)),
            )
            .into_bytes();
            body.extend_from_slice(&p);
            body.push(b'}');
            body
        });
        batch.fan_out(m.message_id, &m.message_type, &target, e, body);
        Ok(())
    }
}

/// Locks the checkpoint row of `table` for this transaction, or `None`
/// when another node holds it. What a feeder writes derives from the log,
/// so a commit lost to a crash of PostgreSQL is fed again from the older
/// checkpoint, the same rows (inserts ignore duplicates): it need not wait
/// for fsync.
async fn claim(tx: &Transaction<'_>, table: &str) -> Result<Option<i64>, FeedError> {
    tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
        .await?;
    let row = tx
        .query_opt(
            &tx.prepare_cached(&format!(
                "SELECT position FROM {table} WHERE id = 1 FOR UPDATE SKIP LOCKED"
            ))
            .await?,
            &[],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Queues one pending delivery per (endpoint, message, seq); answers how
/// many were new.
async fn insert_deliveries(
    tx: &Transaction<'_>,
    endpoints: &[Uuid],
    messages: &[Uuid],
    seqs: &[i64],
) -> Result<u64, FeedError> {
    Ok(tx
        .execute(
            &tx.prepare_cached(
                "INSERT INTO delivery.deliveries \
                   (endpoint_id, message_id, round, seq, next_at, created_at) \
                 SELECT ep, msg, 0, seq, now(), now() \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[]) AS u(ep, msg, seq) \
                 ON CONFLICT DO NOTHING",
            )
            .await?,
            &[&endpoints, &messages, &seqs],
        )
        .await?)
}

/// The RFC 3339 form of a message's `timestamp`.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn uuid_of(stream: &str, prefix: &str) -> Option<Uuid> {
    stream.strip_prefix(prefix)?.parse().ok()
}

fn field_uuid(data: &serde_json::value::RawValue, name: &str) -> Option<Uuid> {
    let v: Value = serde_json::from_str(data.get()).ok()?;
    v.get(name)?.as_str()?.parse().ok()
}

fn field_str(data: &serde_json::value::RawValue, name: &str) -> Option<String> {
    let v: Value = serde_json::from_str(data.get()).ok()?;
    Some(v.get(name)?.as_str()?.to_owned())
}
