//! One feed batch's working set: the endpoints and key owners its events
//! concern, routing each deliverable event to the endpoints it reaches,
//! and the rows to insert.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use event_schemas::RecordedEvent;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{field_uuid, timestamp, uuid_of, FeedError};
use crate::catalog::{self, Scope};

/// A message row to insert.
pub(super) struct MessageRow {
    pub id: Uuid,
    pub app_id: Uuid,
    pub org_id: Uuid,
    pub event_type: String,
    pub position: i64,
    pub at: DateTime<Utc>,
    pub body: Option<Vec<u8>>,
}

/// The dispatcher's view of an endpoint, as far as fan-out needs it.
#[derive(Debug, Clone)]
pub(super) struct Lane {
    /// None for an audit stream, which belongs to its organisation.
    pub(super) app_id: Option<Uuid>,
    pub(super) org_id: Uuid,
    pub(super) mode: String,
    pub(super) types: Vec<String>,
    /// Not deleted. A disabled endpoint still receives: its deliveries
    /// wait, and are sent once it is enabled again.
    pub(super) receiving: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Owner {
    pub(super) app_id: Uuid,
    pub(super) org_id: Uuid,
    pub(super) mode: String,
}

/// Who a message goes to.
pub(super) struct Target {
    /// The app's endpoints; `None`: every app of `org_id`.
    pub(super) app_id: Option<Uuid>,
    pub(super) org_id: Uuid,
    /// Only endpoints of this mode; `None`: both.
    pub(super) mode: Option<String>,
    /// Not this endpoint (it is the one the message is about).
    pub(super) exclude: Option<Uuid>,
}

impl Target {
    /// The endpoints of `app` (of `mode`, if one is given).
    pub(super) fn app(app: Uuid, org: Uuid, mode: Option<String>) -> Self {
        Target {
            app_id: Some(app),
            org_id: org,
            mode,
            exclude: None,
        }
    }
}

/// One batch's working set: the endpoints and key owners its events
/// concern, and the rows to insert.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) endpoints: HashMap<Uuid, Lane>,
    pub(super) owners: HashMap<Uuid, Owner>,
    messages: Vec<MessageRow>,
    /// (endpoint, message, seq).
    deliveries: Vec<(Uuid, Uuid, i64)>,
    pub(super) inserted: u64,
}

impl Batch {
    /// Loads the endpoints and key owners the events may route to.
    pub(super) async fn load(
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<Self, FeedError> {
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
                    receiving: r.get::<_, String>(5) != "deleted",
                },
            );
        }
        Ok(batch)
    }

    /// The endpoints `target` reaches that subscribe to `event_type`.
    pub(super) fn targets(&self, target: &Target, event_type: &str) -> Vec<Uuid> {
        let mut out: Vec<Uuid> = self
            .endpoints
            .iter()
            .filter(|(id, l)| {
                l.receiving
                    && l.app_id.is_some()
                    && Some(**id) != target.exclude
                    && match target.app_id {
                        Some(app) => l.app_id == Some(app),
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
    pub(super) fn fan_out(
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
                    .and_then(|l| l.app_id)
            })
            .unwrap_or_default();
        self.messages.push(MessageRow {
            id: message_id,
            app_id: app,
            org_id: target.org_id,
            event_type: event_type.to_owned(),
            position,
            at: e.recorded_at,
            body,
        });
        for t in targets {
            self.deliveries.push((t, message_id, position));
        }
    }

    /// A platform event from the catalog: its public body, to whom it
    /// concerns.
    pub(super) fn platform_event(&mut self, t: &'static catalog::PublicType, e: &RecordedEvent) {
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
                    Target::app(app, org, mode),
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
                    Target::app(o.app_id, o.org_id, Some(o.mode)),
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
                    Target::app(app, org, mode),
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
                // An audit stream's changes reach no app's endpoints.
                let Some((l, app)) = self
                    .endpoints
                    .get(&id)
                    .and_then(|l| Some((l.clone(), l.app_id?)))
                else {
                    return;
                };
                (
                    vec![("endpoint_id", id), ("app_id", app), ("org_id", l.org_id)],
                    Target {
                        app_id: Some(app),
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

    pub(super) fn org_of_app(&self, app: Uuid) -> Option<Uuid> {
        self.endpoints
            .values()
            .find(|l| l.app_id == Some(app))
            .map(|l| l.org_id)
    }

    /// Keeps the endpoint's row (and this batch's copy) as its stream says.
    pub(super) async fn flush(&mut self, tx: &Transaction<'_>) -> Result<u64, FeedError> {
        if !self.messages.is_empty() {
            let rows = std::mem::take(&mut self.messages);
            let ids: Vec<Uuid> = rows.iter().map(|m| m.id).collect();
            let apps: Vec<Uuid> = rows.iter().map(|m| m.app_id).collect();
            let orgs: Vec<Uuid> = rows.iter().map(|m| m.org_id).collect();
            let positions: Vec<i64> = rows.iter().map(|m| m.position).collect();
            let times: Vec<DateTime<Utc>> = rows.iter().map(|m| m.at).collect();
            let (types, bodies): (Vec<String>, Vec<Option<Vec<u8>>>) =
                rows.into_iter().map(|m| (m.event_type, m.body)).unzip();
            tx.execute(
                &tx.prepare_cached(
                    "INSERT INTO delivery.messages \
                   (message_id, app_id, org_id, event_type, position, created_at, body) \
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], \
                                      $5::int8[], $6::timestamptz[], $7::bytea[]) \
                 ON CONFLICT DO NOTHING",
                )
                .await?,
                &[&ids, &apps, &orgs, &types, &positions, &times, &bodies],
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
            self.inserted += super::insert_deliveries(tx, &eps, &msgs, &seqs).await?;
        }
        Ok(self.inserted)
    }
}
