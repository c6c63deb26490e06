//! The audit feeder: turns the audit read model (`rm.audit_entries`) into
//! the messages and deliveries of organisations' audit streams, so the
//! webhook dispatcher sends them like any other (signed, retried, logged).
//!
//! It reads entries rather than the log because an entry needs what the
//! audit projection has already worked out: the organisation an event
//! belongs to, its targets and what changed. Two bounds keep it from
//! skipping one: it reads no entry past the main feeder's checkpoint (so
//! every stream created before an entry is known), nor past the audit
//! projection's (so every entry before its checkpoint is written). A batch
//! and the checkpoint move in one transaction, like the main feeder's.
//!
//! Personal data is not streamed: a user's name, IP address and user
//! agent are sealed under that user's key in Gatehouse so that erasure can
//! destroy them, and a copy in a SIEM could not be erased. An entry names
//! its actor and targets by id, with the request id to join with.

use std::time::Duration;

use deadpool_postgres::Pool;
use serde_json::{json, Value};
use tokio::sync::watch;
use uuid::Uuid;

use super::{claim, insert_deliveries, timestamp, FeedError, CHANNEL};
use event_schemas::webhook::AUDIT_ENTRY_TYPE;
use projections::audit::read::EntryRow;

/// Entries read per transaction.
const BATCH: i64 = 500;

/// The audit feeder of one node.
pub struct AuditFeeder {
    pool: Pool,
    poll: Duration,
    fed: std::sync::Arc<watch::Sender<u64>>,
}

impl AuditFeeder {
    /// A feeder; `fed` is told the checkpoint after every step that
    /// inserted deliveries (this node's dispatcher wakes on it).
    pub fn new(pool: Pool, poll: Duration, fed: std::sync::Arc<watch::Sender<u64>>) -> Self {
        AuditFeeder { pool, poll, fed }
    }

    /// Feeds until `stop` turns true, waking when any of `wake` changes
    /// (the main feeder's and the audit projection's progress) or after
    /// the poll interval.
    pub async fn run(self, mut wake: Vec<watch::Receiver<u64>>, mut stop: watch::Receiver<bool>) {
        loop {
            let full = match self.step().await {
                Ok(n) => n as i64 == BATCH,
                Err(e) => {
                    tracing::warn!(error = %e, "feeding audit streams failed; retrying");
                    false
                }
            };
            if full {
                continue;
            }
            let changed = futures_any(&mut wake);
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One batch: the entries fanned out (0 when caught up or another node
    /// holds the checkpoint).
    pub async fn step(&self) -> Result<usize, FeedError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(after) = claim(&tx, "delivery.audit_feed").await? else {
            return Ok(0);
        };
        // Read before the entries, so each bound holds for what follows.
        let feed: i64 = tx
            .query_one(
                &tx.prepare_cached("SELECT position FROM delivery.feed WHERE id = 1")
                    .await?,
                &[],
            )
            .await?
            .get(0);
        let bound = feed.min(projections::audit::read::position(&tx).await?);
        if bound <= after {
            return Ok(0);
        }
        // Disabled streams keep receiving (their deliveries wait), so an
        // outage at the collector loses nothing once it is enabled again.
        let streams: Vec<(Uuid, Uuid, i64)> = tx
            .query(
                &tx.prepare_cached(
                    "SELECT endpoint_id, org_id, from_position FROM delivery.endpoints \
                     WHERE kind = 'audit' AND status <> 'deleted'",
                )
                .await?,
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let mut orgs: Vec<Uuid> = streams.iter().map(|s| s.1).collect();
        orgs.sort_unstable();
        orgs.dedup();
        let entries = if orgs.is_empty() {
            Vec::new()
        } else {
            projections::audit::read::entries_of_orgs(&tx, &orgs, after, bound, BATCH).await?
        };
        let mut messages = Messages::default();
        for r in &entries {
            let position = r.position;
            let Some(org) = r.org_id else { continue };
            let subscribed: Vec<Uuid> = streams
                .iter()
                .filter(|(_, o, from)| *o == org && position > *from)
                .map(|s| s.0)
                .collect();
            if subscribed.is_empty() {
                continue;
            }
            let body = body(r);
            let id = message_id(position);
            messages.push(id, org, position, r.occurred_at, body, &subscribed);
        }
        let inserted = messages.insert(&tx).await?;
        let reached = if entries.len() as i64 == BATCH {
            entries.last().map_or(bound, |r| r.position)
        } else {
            bound
        };
        tx.execute(
            &tx.prepare_cached("UPDATE delivery.audit_feed SET position = $1 WHERE id = 1")
                .await?,
            &[&reached],
        )
        .await?;
        if inserted > 0 {
            tx.batch_execute(&format!("NOTIFY {CHANNEL}")).await?;
        }
        tx.commit().await?;
        if inserted > 0 {
            self.fed.send_replace(reached as u64);
        }
        Ok(entries.len())
    }
}

/// Waits until any receiver sees a change (forever when there are none).
async fn futures_any(wake: &mut [watch::Receiver<u64>]) {
    if wake.is_empty() {
        return std::future::pending().await;
    }
    let changes = wake.iter_mut().map(|w| Box::pin(w.changed()));
    let _ = futures::future::select_all(changes).await;
}

/// An entry's message id, the same however often it is fed: its
/// `webhook-id` on every delivery.
fn message_id(position: i64) -> Uuid {
    crate::derived_id(&[AUDIT_ENTRY_TYPE.as_bytes(), &position.to_be_bytes()])
}

/// The message body: the entry as the audit history shows it, without the
/// personal data sealed in Gatehouse.
fn body(r: &EntryRow) -> Vec<u8> {
    let occurred_at = r.occurred_at;
    let mut targets = r.targets.clone();
    if let Value::Array(ts) = &mut targets {
        for t in ts {
            if t.get("type").and_then(Value::as_str) == Some("user") {
                if let Value::Object(m) = t {
                    m.remove("name");
                }
            }
        }
    }
    let mut actor = json!({ "kind": r.actor_kind });
    if let Some(id) = &r.actor_id {
        actor["id"] = id.clone().into();
    }
    let mut context = json!({});
    if let Some(request) = &r.request_id {
        context["request_id"] = request.clone().into();
    }
    let mut data = json!({
        "position": r.position,
        "hash": hex::encode(&r.hash),
        "action": r.event_type,
        "occurred_at": timestamp(occurred_at),
        "org_id": r.org_id,
        "actor": actor,
        "targets": targets,
        "context": context,
    });
    if let Some(changes) = &r.changes {
        data["changes"] = changes.clone();
    }
    let body = json!({
        "type": AUDIT_ENTRY_TYPE,
        "timestamp": timestamp(occurred_at),
        "data": data,
    });
    serde_json::to_vec(&body).expect("a JSON value serialises")
}

/// The rows of one batch.
#[derive(Default)]
struct Messages {
    ids: Vec<Uuid>,
    orgs: Vec<Uuid>,
    positions: Vec<i64>,
    times: Vec<chrono::DateTime<chrono::Utc>>,
    bodies: Vec<Vec<u8>>,
    /// (endpoint, message, seq).
    deliveries: (Vec<Uuid>, Vec<Uuid>, Vec<i64>),
}

impl Messages {
    fn push(
        &mut self,
        id: Uuid,
        org: Uuid,
        position: i64,
        at: chrono::DateTime<chrono::Utc>,
        body: Vec<u8>,
        streams: &[Uuid],
    ) {
        self.ids.push(id);
        self.orgs.push(org);
        self.positions.push(position);
        self.times.push(at);
        self.bodies.push(body);
        for s in streams {
            self.deliveries.0.push(*s);
            self.deliveries.1.push(id);
            self.deliveries.2.push(position);
        }
    }

    async fn insert(&self, tx: &deadpool_postgres::Transaction<'_>) -> Result<u64, FeedError> {
        if self.ids.is_empty() {
            return Ok(0);
        }
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO delivery.messages \
                   (message_id, app_id, org_id, event_type, position, created_at, body) \
                 SELECT id, NULL, org, $6, position, at, body \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[], $4::timestamptz[], $5::bytea[]) \
                   AS u(id, org, position, at, body) \
                 ON CONFLICT DO NOTHING",
            )
            .await?,
            &[
                &self.ids,
                &self.orgs,
                &self.positions,
                &self.times,
                &self.bodies,
                &AUDIT_ENTRY_TYPE,
            ],
        )
        .await?;
        let (eps, msgs, seqs) = &self.deliveries;
        insert_deliveries(tx, eps, msgs, seqs).await
    }
}
