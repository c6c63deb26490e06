//! The feeder: follows the log and turns it into deliveries. It keeps the
//! dispatcher's copy of every endpoint and key owner, builds each
//! deliverable event's public body once, and inserts one pending delivery
//! per subscribed endpoint, all in the transaction that moves its
//! checkpoint: a batch is fanned out completely or not at all. The
//! checkpoint row is locked `FOR UPDATE SKIP LOCKED`, so among several
//! nodes one feeds at a time and a dead one's work passes to another.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Pool, Transaction};
use event_schemas::webhook::{MessageEvent, MessagePublished, SealedSecret, WebhookEvent};
use event_schemas::RecordedEvent;
use event_store::{postgres::read_all_with, SharedStore, StoreError};
use serde_json::{json, Value};
use tokio::sync::watch;
use uuid::Uuid;

use crate::catalog::{self, Scope};
use crate::keyring::Keyring;

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
        // Everything here derives from the log: a commit lost to a crash
        // of PostgreSQL is fed again from the older checkpoint, the same
        // rows (inserts ignore duplicates). So it need not wait for fsync.
        tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
            .await?;
        let Some(row) = tx
            .query_opt(
                &tx.prepare_cached(
                    "SELECT position FROM delivery.feed WHERE id = 1 FOR UPDATE SKIP LOCKED",
                )
                .await?,
                &[],
            )
            .await?
        else {
            return Ok(0);
        };
        let after = row.get::<_, i64>(0) as u64;
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
        let target = Target {
            app_id: Some(m.app_id),
            org_id: m.org_id,
            mode: m.mode.clone(),
            exclude: None,
        };
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

/// The dispatcher's view of an endpoint, as far as fan-out needs it.
#[derive(Debug, Clone)]
struct Lane {
    app_id: Uuid,
    org_id: Uuid,
    mode: String,
    types: Vec<String>,
    enabled: bool,
}

#[derive(Debug, Clone)]
struct Owner {
    app_id: Uuid,
    org_id: Uuid,
    mode: String,
}

/// Who a message goes to.
struct Target {
    /// The app's endpoints; `None`: every app of `org_id`.
    app_id: Option<Uuid>,
    org_id: Uuid,
    /// Only endpoints of this mode; `None`: both.
    mode: Option<String>,
    /// Not this endpoint (it is the one the message is about).
    exclude: Option<Uuid>,
}

/// One batch's working set: the endpoints and key owners its events
/// concern, and the rows to insert.
#[derive(Default)]
struct Batch {
    endpoints: HashMap<Uuid, Lane>,
    owners: HashMap<Uuid, Owner>,
    messages: Vec<(
        Uuid,
        Uuid,
        Uuid,
        String,
        i64,
        DateTime<Utc>,
        Option<Vec<u8>>,
    )>,
    deliveries: Vec<(Uuid, Uuid, i64)>,
    inserted: u64,
}

impl Batch {
    /// Loads the endpoints and key owners the events may route to.
    async fn load(tx: &Transaction<'_>, events: &[RecordedEvent]) -> Result<Self, FeedError> {
        let (mut apps, mut orgs, mut endpoints, mut keys) = (
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
        );
        for e in events {
            if let Some(id) = uuid_of(&e.stream_id, "app-") {
                apps.insert(id);
            } else if let Some(id) = uuid_of(&e.stream_id, "webhook-") {
                endpoints.insert(id);
            } else if let Some(id) = uuid_of(&e.stream_id, "api_key-") {
                keys.insert(id);
            }
            if e.event_type == "webhook.message_published" || e.event_type == "api_key.issued" {
                apps.extend(field_uuid(&e.data, "app_id"));
            }
            if let Some(t) = catalog::find(&e.event_type) {
                match t.scope {
                    Scope::Org => orgs.extend(field_uuid(&e.data, "org_id")),
                    Scope::NamesApp => {
                        apps.extend(field_uuid(&e.data, "app_id"));
                        keys.extend(field_uuid(&e.data, "key_id"));
                    }
                    _ => {}
                }
            }
        }
        let mut batch = Batch::default();
        let (keys, apps, orgs, endpoints): (Vec<_>, Vec<_>, Vec<_>, Vec<_>) = (
            keys.into_iter().collect(),
            apps.into_iter().collect(),
            orgs.into_iter().collect(),
            endpoints.into_iter().collect(),
        );
        if !keys.is_empty() {
            for r in tx
                .query(
                    &tx.prepare_cached(
                        "SELECT key_id, app_id, org_id, mode FROM delivery.key_owners \
                     WHERE key_id = ANY($1)",
                    )
                    .await?,
                    &[&keys],
                )
                .await?
            {
                batch.owners.insert(
                    r.get(0),
                    Owner {
                        app_id: r.get(1),
                        org_id: r.get(2),
                        mode: r.get(3),
                    },
                );
            }
        }
        let key_apps: Vec<Uuid> = batch.owners.values().map(|o| o.app_id).collect();
        for r in tx
            .query(
                &tx.prepare_cached(
                    "SELECT endpoint_id, app_id, org_id, mode, event_types, status \
                 FROM delivery.endpoints \
                 WHERE app_id = ANY($1) OR app_id = ANY($2) OR org_id = ANY($3) \
                    OR app_id IN (SELECT app_id FROM delivery.endpoints \
                                  WHERE endpoint_id = ANY($4))",
                )
                .await?,
                &[&apps, &key_apps, &orgs, &endpoints],
            )
            .await?
        {
            let types: tokio_postgres::types::Json<Vec<String>> = r.get(4);
            batch.endpoints.insert(
                r.get(0),
                Lane {
                    app_id: r.get(1),
                    org_id: r.get(2),
                    mode: r.get(3),
                    types: types.0,
                    enabled: r.get::<_, String>(5) == "enabled",
                },
            );
        }
        Ok(batch)
    }

    /// The endpoints `target` reaches that subscribe to `event_type`.
    fn targets(&self, target: &Target, event_type: &str) -> Vec<Uuid> {
        let mut out: Vec<Uuid> = self
            .endpoints
            .iter()
            .filter(|(id, l)| {
                l.enabled
                    && Some(**id) != target.exclude
                    && match target.app_id {
                        Some(app) => l.app_id == app,
                        None => l.org_id == target.org_id,
                    }
                    && target.mode.as_ref().is_none_or(|m| *m == l.mode)
                    && domain::webhooks::subscribed(&l.types, event_type)
            })
            .map(|(id, _)| *id)
            .collect();
        out.sort();
        out
    }

    /// Queues the message and one delivery per endpoint it reaches.
    fn fan_out(
        &mut self,
        message_id: Uuid,
        event_type: &str,
        target: &Target,
        e: &RecordedEvent,
        body: Option<Vec<u8>>,
    ) {
        let targets = self.targets(target, event_type);
        if targets.is_empty() {
            return;
        }
        let position = e.global_position as i64;
        let app = target
            .app_id
            .or_else(|| {
                targets
                    .first()
                    .and_then(|t| self.endpoints.get(t))
                    .map(|l| l.app_id)
            })
            .unwrap_or_default();
        self.messages.push((
            message_id,
            app,
            target.org_id,
            event_type.to_owned(),
            position,
            e.recorded_at,
            body,
        ));
        for t in targets {
            self.deliveries.push((t, message_id, position));
        }
    }

    /// A platform event from the catalog: its public body, to whom it
    /// concerns.
    fn platform_event(&mut self, t: &'static catalog::PublicType, e: &RecordedEvent) {
        let data: Value = serde_json::from_str(e.data.get()).unwrap_or(Value::Null);
        let meta_org = e.parsed_metadata().ok().and_then(|m| m.org_id);
        let (ids, target) = match t.scope {
            Scope::App => {
                let Some(app) = uuid_of(&e.stream_id, "app-") else {
                    return;
                };
                let org = meta_org
                    .or_else(|| field_uuid(&e.data, "org_id"))
                    .or_else(|| self.org_of_app(app));
                let Some(org) = org else { return };
                let mode = (t.name == "product_access.requested")
                    .then(|| data.get("mode").and_then(Value::as_str).map(str::to_owned))
                    .flatten();
                (
                    vec![("app_id", app), ("org_id", org)],
                    Target {
                        app_id: Some(app),
                        org_id: org,
                        mode,
                        exclude: None,
                    },
                )
            }
            Scope::Key => {
                let Some(key) = uuid_of(&e.stream_id, "api_key-") else {
                    return;
                };
                let Some(o) = self.owners.get(&key).cloned() else {
                    return;
                };
                (
                    vec![("key_id", key), ("app_id", o.app_id), ("org_id", o.org_id)],
                    Target {
                        app_id: Some(o.app_id),
                        org_id: o.org_id,
                        mode: Some(o.mode),
                        exclude: None,
                    },
                )
            }
            Scope::NamesApp => {
                let (Some(app), Some(org)) =
                    (field_uuid(&e.data, "app_id"), field_uuid(&e.data, "org_id"))
                else {
                    return;
                };
                let mode = field_uuid(&e.data, "key_id")
                    .and_then(|k| self.owners.get(&k))
                    .map(|o| o.mode.clone());
                (
                    vec![("app_id", app), ("org_id", org)],
                    Target {
                        app_id: Some(app),
                        org_id: org,
                        mode,
                        exclude: None,
                    },
                )
            }
            Scope::Org => {
                let Some(org) = field_uuid(&e.data, "org_id") else {
                    return;
                };
                (
                    vec![("org_id", org)],
                    Target {
                        app_id: None,
                        org_id: org,
                        mode: None,
                        exclude: None,
                    },
                )
            }
            Scope::Endpoint => {
                let Some(id) = uuid_of(&e.stream_id, "webhook-") else {
                    return;
                };
                let Some(l) = self.endpoints.get(&id).cloned() else {
                    return;
                };
                (
                    vec![
                        ("endpoint_id", id),
                        ("app_id", l.app_id),
                        ("org_id", l.org_id),
                    ],
                    Target {
                        app_id: Some(l.app_id),
                        org_id: l.org_id,
                        mode: Some(l.mode),
                        exclude: Some(id),
                    },
                )
            }
        };
        if self.targets(&target, t.name).is_empty() {
            return;
        }
        let body = json!({
            "type": t.name,
            "timestamp": timestamp(e.recorded_at),
            "data": t.payload(&ids, &data),
        });
        let body = serde_json::to_vec(&body).expect("a JSON value serialises");
        self.fan_out(e.event_id, t.name, &target, e, Some(body));
    }

    fn org_of_app(&self, app: Uuid) -> Option<Uuid> {
        self.endpoints
            .values()
            .find(|l| l.app_id == app)
            .map(|l| l.org_id)
    }

    /// Keeps the endpoint's row (and this batch's copy) as its stream says.
    async fn endpoint_event(
        &mut self,
        tx: &Transaction<'_>,
        id: Uuid,
        e: &RecordedEvent,
        event: &WebhookEvent,
    ) -> Result<(), FeedError> {
        match event {
            WebhookEvent::Created(c) => {
                let secrets = json!([secret_json(&c.secret)]);
                tx.execute(&tx.prepare_cached("INSERT INTO delivery.endpoints (endpoint_id, app_id, org_id, mode, scheme, \
                     url, event_types, rate_limit, status, secrets, created_at, description) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'enabled', $9, $10, $11) \
                     ON CONFLICT DO NOTHING").await?,
                    &[
                        &id,
                        &c.app_id,
                        &c.org_id,
                        &c.mode,
                        &c.signature,
                        &c.settings.url,
                        &tokio_postgres::types::Json(&c.settings.event_types),
                        &c.settings.rate_limit.map(|r| r as i32),
                        &tokio_postgres::types::Json(&secrets),
                        &e.recorded_at,
                        &c.settings.description,
                    ],
                )
                .await?;
                self.endpoints.insert(
                    id,
                    Lane {
                        app_id: c.app_id,
                        org_id: c.org_id,
                        mode: c.mode.clone(),
                        types: c.settings.event_types.clone(),
                        enabled: true,
                    },
                );
            }
            WebhookEvent::Updated(u) => {
                tx.execute(&tx.prepare_cached("UPDATE delivery.endpoints SET url = $2, event_types = $3, rate_limit = $4, \
                     description = $5 \
                     WHERE endpoint_id = $1").await?,
                    &[
                        &id,
                        &u.settings.url,
                        &tokio_postgres::types::Json(&u.settings.event_types),
                        &u.settings.rate_limit.map(|r| r as i32),
                        &u.settings.description,
                    ],
                )
                .await?;
                if let Some(l) = self.endpoints.get_mut(&id) {
                    l.types = u.settings.event_types.clone();
                }
            }
            WebhookEvent::Disabled(_) | WebhookEvent::Enabled(_) | WebhookEvent::Deleted(_) => {
                let (from, to) = match event {
                    WebhookEvent::Disabled(_) => ("enabled", "disabled"),
                    WebhookEvent::Enabled(_) => ("disabled", "enabled"),
                    _ => ("", "deleted"),
                };
                tx.execute(
                    &tx.prepare_cached(
                        "UPDATE delivery.endpoints SET status = $3, failing_since = NULL \
                     WHERE endpoint_id = $1 AND (status = $2 OR $3 = 'deleted')",
                    )
                    .await?,
                    &[&id, &from, &to],
                )
                .await?;
                if let Some(l) = self.endpoints.get_mut(&id) {
                    l.enabled = match to {
                        "enabled" => true,
                        "disabled" | "deleted" => false,
                        _ => l.enabled,
                    };
                }
            }
            WebhookEvent::SecretRotated(r) => {
                tx.execute(&tx.prepare_cached("UPDATE delivery.endpoints SET secrets = \
                     jsonb_build_array($2::jsonb, secrets->0 || jsonb_build_object('until', $3::text)) \
                     WHERE endpoint_id = $1").await?,
                    &[
                        &id,
                        &tokio_postgres::types::Json(secret_json(&r.secret)),
                        &r.previous_expires_at.to_rfc3339(),
                    ],
                )
                .await?;
            }
            WebhookEvent::SecretsResealed(r) => {
                tx.execute(&tx.prepare_cached("UPDATE delivery.endpoints SET secrets = CASE \
                       WHEN $3::jsonb IS NULL OR jsonb_array_length(secrets) < 2 \
                         THEN jsonb_build_array($2::jsonb) \
                       ELSE jsonb_build_array($2::jsonb, $3::jsonb || jsonb_build_object('until', secrets->1->'until')) END \
                     WHERE endpoint_id = $1").await?,
                    &[
                        &id,
                        &tokio_postgres::types::Json(secret_json(&r.secret)),
                        &r.previous
                            .as_ref()
                            .map(|p| tokio_postgres::types::Json(secret_json(p))),
                    ],
                )
                .await?;
            }
            WebhookEvent::ReplayRequested(r) => {
                // A replay may name messages this very batch fans out.
                self.flush(tx).await?;
                let round = e.global_position as i64;
                let n = if r.message_ids.is_empty() {
                    tx.execute(&tx.prepare_cached("INSERT INTO delivery.deliveries \
                           (endpoint_id, message_id, round, seq, next_at, created_at) \
                         SELECT $1, m.message_id, $2, $2, now(), now() FROM delivery.messages m \
                         WHERE m.created_at >= $3 AND ($4::timestamptz IS NULL OR m.created_at < $4) \
                           AND EXISTS (SELECT 1 FROM delivery.deliveries d WHERE d.endpoint_id = $1 \
                                       AND d.message_id = m.message_id AND d.status = 'failed') \
                           AND NOT EXISTS (SELECT 1 FROM delivery.deliveries d WHERE d.endpoint_id = $1 \
                                       AND d.message_id = m.message_id AND d.status <> 'failed') \
                         ON CONFLICT DO NOTHING").await?,
                        &[&id, &round, &r.since, &r.until],
                    )
                    .await?
                } else {
                    tx.execute(&tx.prepare_cached("INSERT INTO delivery.deliveries \
                           (endpoint_id, message_id, round, seq, next_at, created_at) \
                         SELECT $1, m.message_id, $2, $2, now(), now() FROM delivery.messages m \
                         JOIN delivery.endpoints ep ON ep.endpoint_id = $1 AND ep.app_id = m.app_id \
                         WHERE m.message_id = ANY($3) ON CONFLICT DO NOTHING").await?,
                        &[&id, &round, &r.message_ids],
                    )
                    .await?
                };
                self.inserted += n;
            }
            WebhookEvent::MessageExhausted(_) => {}
        }
        Ok(())
    }

    /// Inserts the queued messages and deliveries; answers how many
    /// deliveries this batch inserted in all.
    async fn flush(&mut self, tx: &Transaction<'_>) -> Result<u64, FeedError> {
        if !self.messages.is_empty() {
            let mut cols: (Vec<Uuid>, Vec<Uuid>, Vec<Uuid>, Vec<String>, Vec<i64>) =
                Default::default();
            let mut times = Vec::new();
            let mut bodies = Vec::new();
            for (id, app, org, t, pos, at, body) in self.messages.drain(..) {
                cols.0.push(id);
                cols.1.push(app);
                cols.2.push(org);
                cols.3.push(t);
                cols.4.push(pos);
                times.push(at);
                bodies.push(body);
            }
            tx.execute(
                &tx.prepare_cached(
                    "INSERT INTO delivery.messages \
                   (message_id, app_id, org_id, event_type, position, created_at, body) \
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], \
                                      $5::int8[], $6::timestamptz[], $7::bytea[]) \
                 ON CONFLICT DO NOTHING",
                )
                .await?,
                &[&cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &times, &bodies],
            )
            .await?;
        }
        if !self.deliveries.is_empty() {
            let (mut eps, mut msgs, mut seqs) = (Vec::new(), Vec::new(), Vec::new());
            for (ep, msg, seq) in self.deliveries.drain(..) {
                eps.push(ep);
                msgs.push(msg);
                seqs.push(seq);
            }
            self.inserted += tx
                .execute(
                    &tx.prepare_cached(
                        "INSERT INTO delivery.deliveries \
                       (endpoint_id, message_id, round, seq, next_at, created_at) \
                     SELECT ep, msg, 0, seq, now(), now() \
                     FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[]) AS u(ep, msg, seq) \
                     ON CONFLICT DO NOTHING",
                    )
                    .await?,
                    &[&eps, &msgs, &seqs],
                )
                .await?;
        }
        Ok(self.inserted)
    }
}

fn secret_json(s: &SealedSecret) -> Value {
    let mut v = json!({"sealed": s.sealed, "kek_id": s.kek_id});
    if let Some(p) = &s.public_key {
        v["public_key"] = p.clone().into();
    }
    v
}
