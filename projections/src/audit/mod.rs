//! The audit trail: one entry per event, with the organisation, app, key
//! and actor it concerns (for the filters of `GET /v1/orgs/{org}/audit` and
//! `GET /v1/staff/audit`), its targets with their names as of the event,
//! and for updates what changed, before and after.
//!
//! Names and the fields an update compares with come from earlier events,
//! kept per entity (`audit_entities`) and per subject (`audit_subjects`,
//! see [`describe::subject_key`]). Personal data stays sealed, as in the
//! log: a user's name and the request context are opened at read time
//! with the user's key, so erasing the key erases them here too, and a
//! rebuild keeps them erased.
//!
//! Each batch costs two reads and three writes, whatever its size: the
//! entities and subjects it touches are loaded at once, updated in memory
//! in log order, and written back with `unnest`; the entries go in by
//! binary `COPY`.

pub mod describe;

pub mod read;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use event_schemas::RecordedEvent;
use serde_json::{Map, Value};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::{Projection, ProjectionError};
use describe::{attributes, changes, named_ids, stream_entity, subject_key_of};

/// The audit read model.
pub struct Audit;

/// An entity as the audit trail knows it.
#[derive(Debug, Clone, Default)]
struct Entity {
    kind: String,
    org_id: Option<Uuid>,
    app_id: Option<Uuid>,
    name: Option<String>,
    dirty: bool,
}

/// One row of `audit_entries`, before it is written.
struct Row {
    position: i64,
    org_id: Option<Uuid>,
    occurred_at: DateTime<Utc>,
    event_type: String,
    actor_kind: String,
    actor_id: Option<String>,
    app_id: Option<Uuid>,
    key_id: Option<Uuid>,
    targets: Value,
    changes: Option<Value>,
    request_id: Option<String>,
    context: Option<String>,
}

#[async_trait]
impl Projection for Audit {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn version(&self) -> u32 {
        // 2: URLs in `changes` cut to their origin.
        2
    }

    fn schema(&self) -> &'static str {
        "CREATE TABLE audit_entries (
             position       BIGINT PRIMARY KEY,
             org_id         UUID,
             occurred_at    TIMESTAMPTZ NOT NULL,
             event_type     TEXT NOT NULL,
             actor_kind     TEXT NOT NULL,
             actor_id       TEXT,
             app_id         UUID,
             key_id         UUID,
             targets        JSONB NOT NULL,
             changes        JSONB,
             request_id     TEXT,
             context_sealed TEXT
         );
         CREATE TABLE audit_entities (
             id      UUID PRIMARY KEY,
             kind    TEXT NOT NULL,
             org_id  UUID,
             app_id  UUID,
             name    TEXT
         );
         CREATE TABLE audit_subjects (
             subject TEXT PRIMARY KEY,
             attrs   JSONB NOT NULL
         );"
    }

    fn indexes(&self) -> &'static str {
        "CREATE INDEX IF NOT EXISTS audit_org_idx ON audit_entries (org_id, position);
         CREATE INDEX IF NOT EXISTS audit_org_type_idx ON audit_entries (org_id, event_type, position);
         CREATE INDEX IF NOT EXISTS audit_actor_idx ON audit_entries (actor_id, position);
         CREATE INDEX IF NOT EXISTS audit_app_idx ON audit_entries (app_id, position);
         CREATE INDEX IF NOT EXISTS audit_key_idx ON audit_entries (key_id, position);
         CREATE INDEX IF NOT EXISTS audit_type_idx ON audit_entries (event_type, position);
         CREATE INDEX IF NOT EXISTS audit_time_idx ON audit_entries (occurred_at, position);"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["audit_entries", "audit_entities"]
    }

    async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let parsed = events
            .iter()
            .map(|e| parse(e))
            .collect::<Result<Vec<_>, _>>()?;

        // Each event's named ids and subject, worked out once.
        let named: Vec<Vec<(&str, String, Uuid)>> =
            parsed.iter().map(|(data, _)| named_ids(data)).collect();
        let subject_of: Vec<String> = events
            .iter()
            .zip(&named)
            .map(|(e, n)| subject_key_of(&e.stream_id, n))
            .collect();
        let mut ids: HashSet<Uuid> = HashSet::new();
        for (e, n) in events.iter().zip(&named) {
            if let Some((_, id)) = stream_entity(&e.stream_id) {
                ids.insert(id);
            }
            ids.extend(n.iter().map(|(_, _, id)| *id));
        }
        let subjects: HashSet<&String> = subject_of.iter().collect();
        let ids: Vec<Uuid> = ids.into_iter().collect();
        let mut entities: HashMap<Uuid, Entity> = tx
            .query(
                "SELECT id, kind, org_id, app_id, name FROM audit_entities WHERE id = ANY($1)",
                &[&ids],
            )
            .await?
            .into_iter()
            .map(|r| {
                (
                    r.get(0),
                    Entity {
                        kind: r.get(1),
                        org_id: r.get(2),
                        app_id: r.get(3),
                        name: r.get(4),
                        dirty: false,
                    },
                )
            })
            .collect();
        let keys: Vec<&String> = subjects.into_iter().collect();
        let mut attrs: HashMap<String, (Map<String, Value>, bool)> = tx
            .query(
                "SELECT subject, attrs FROM audit_subjects WHERE subject = ANY($1)",
                &[&keys],
            )
            .await?
            .into_iter()
            .map(|r| {
                let attrs: Value = r.get(1);
                let map = match attrs {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                (r.get(0), (map, false))
            })
            .collect();

        let mut rows = Vec::with_capacity(events.len());
        for (((e, (data, meta)), named), subject) in events
            .iter()
            .zip(&parsed)
            .zip(&named)
            .zip(subject_of.iter().cloned())
        {
            rows.push(describe_event(
                e,
                data,
                meta,
                named,
                subject,
                &mut entities,
                &mut attrs,
            ));
        }
        write(tx, rows, entities, attrs).await
    }
}

/// The payload (an object, or empty) and metadata of an event.
fn parse(e: &RecordedEvent) -> Result<(Map<String, Value>, Value), ProjectionError> {
    let bad = |what: &str| ProjectionError::Invariant {
        position: e.global_position,
        reason: format!("the {what} is not a JSON object"),
    };
    let data = match serde_json::from_str::<Value>(e.data.get()).map_err(|_| bad("payload"))? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let meta = serde_json::from_str::<Value>(e.metadata.get()).map_err(|_| bad("metadata"))?;
    Ok((data, meta))
}

fn uuid_at(v: &Value, field: &str) -> Option<Uuid> {
    v.get(field)?.as_str()?.parse().ok()
}

fn describe_event(
    e: &RecordedEvent,
    data: &Map<String, Value>,
    meta: &Value,
    named: &[(&str, String, Uuid)],
    subject: String,
    entities: &mut HashMap<Uuid, Entity>,
    subjects: &mut HashMap<String, (Map<String, Value>, bool)>,
) -> Row {
    let own = stream_entity(&e.stream_id);
    let field = |name: &str| -> Option<Uuid> { data.get(name)?.as_str()?.parse().ok() };

    // The organisation and app, from the event or what is known of the
    // entities it names.
    let known = |id: Option<Uuid>, entities: &HashMap<Uuid, Entity>| {
        id.and_then(|id| entities.get(&id)).cloned()
    };
    let own_id = own.map(|(_, id)| id);
    let own_known = known(own_id, entities);
    let key_id = match own {
        Some(("api_key", id)) => Some(id),
        _ => field("key_id"),
    };
    let app_id = match own {
        Some(("app", id)) => Some(id),
        _ => field("app_id")
            .or_else(|| own_known.as_ref().and_then(|x| x.app_id))
            .or_else(|| known(key_id, entities).and_then(|k| k.app_id)),
    };
    let org_id = uuid_at(meta, "org_id")
        .or_else(|| field("org_id"))
        .or(match own {
            Some(("org", id)) => Some(id),
            _ => None,
        })
        .or_else(|| own_known.as_ref().and_then(|x| x.org_id))
        .or_else(|| known(app_id, entities).and_then(|a| a.org_id))
        .or_else(|| known(key_id, entities).and_then(|k| k.org_id));

    // Remember what this event says about its own entity.
    if let Some((kind, id)) = own {
        let entity = entities.entry(id).or_insert_with(|| Entity {
            kind: kind.to_owned(),
            dirty: true,
            ..Entity::default()
        });
        if entity.org_id.is_none() && org_id.is_some() && kind != "user" {
            entity.org_id = org_id;
            entity.dirty = true;
        }
        if entity.app_id.is_none() && kind != "app" && app_id.is_some() {
            entity.app_id = app_id;
            entity.dirty = true;
        }
        if let Some(name) = data.get("name").and_then(Value::as_str) {
            // A user's name is sealed; it is kept sealed and opened on read.
            if entity.name.as_deref() != Some(name) {
                entity.name = Some(name.to_owned());
                entity.dirty = true;
            }
        }
    }
    for (_, kind, id) in named {
        entities.entry(*id).or_insert_with(|| Entity {
            kind: kind.clone(),
            dirty: true,
            ..Entity::default()
        });
    }

    let target = |kind: &str, id: Uuid, entities: &HashMap<Uuid, Entity>| {
        let name = entities
            .get(&id)
            .and_then(|x| x.name.clone())
            .filter(|_| kind != "user");
        serde_json::json!({ "type": kind, "id": id, "name": name })
    };
    let mut seen = HashSet::new();
    let mut targets = Vec::new();
    if let Some((kind, id)) = own {
        seen.insert(id);
        targets.push(target(kind, id, entities));
    }
    for (_, kind, id) in named {
        if seen.insert(*id) {
            targets.push(target(kind, *id, entities));
        }
    }

    let after = attributes(&e.event_type, data);
    let change = match subjects.get_mut(&subject) {
        Some((held, dirty)) => {
            let change = changes(held, &after);
            held.extend(after);
            *dirty = true;
            change
        }
        None => {
            subjects.insert(subject, (after, true));
            None
        }
    };

    let actor = meta.get("actor");
    Row {
        position: e.global_position as i64,
        org_id,
        occurred_at: e.recorded_at,
        event_type: e.event_type.clone(),
        actor_kind: actor
            .and_then(|a| a.get("kind"))
            .and_then(Value::as_str)
            .unwrap_or("system")
            .to_owned(),
        actor_id: actor
            .and_then(|a| a.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        app_id,
        key_id,
        targets: Value::Array(targets),
        changes: change,
        request_id: meta
            .get("request_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        context: meta
            .get("context")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

async fn write(
    tx: &Transaction<'_>,
    rows: Vec<Row>,
    entities: HashMap<Uuid, Entity>,
    subjects: HashMap<String, (Map<String, Value>, bool)>,
) -> Result<(), ProjectionError> {
    // COPY: the cheapest way in for rows that are only ever inserted.
    let sink = tx
        .copy_in(
            "COPY audit_entries (position, org_id, occurred_at, event_type, actor_kind, \
             actor_id, app_id, key_id, targets, changes, request_id, context_sealed) \
             FROM STDIN BINARY",
        )
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::INT8,
            Type::UUID,
            Type::TIMESTAMPTZ,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::UUID,
            Type::UUID,
            Type::JSONB,
            Type::JSONB,
            Type::TEXT,
            Type::TEXT,
        ],
    );
    futures::pin_mut!(writer);
    for r in &rows {
        writer
            .as_mut()
            .write(&[
                &r.position,
                &r.org_id,
                &r.occurred_at,
                &r.event_type,
                &r.actor_kind,
                &r.actor_id,
                &r.app_id,
                &r.key_id,
                &r.targets,
                &r.changes,
                &r.request_id,
                &r.context,
            ])
            .await?;
    }
    writer.finish().await?;

    let (mut ids, mut kinds, mut orgs, mut apps, mut names) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, x) in entities.into_iter().filter(|(_, x)| x.dirty) {
        ids.push(id);
        kinds.push(x.kind);
        orgs.push(x.org_id);
        apps.push(x.app_id);
        names.push(x.name);
    }
    if !ids.is_empty() {
        tx.execute(
            "INSERT INTO audit_entities (id, kind, org_id, app_id, name) \
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::text[]) \
             ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id, \
             app_id = excluded.app_id, name = excluded.name",
            &[&ids, &kinds, &orgs, &apps, &names],
        )
        .await?;
    }
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    for (k, (attrs, dirty)) in subjects {
        if dirty {
            keys.push(k);
            values.push(Value::Object(attrs));
        }
    }
    if !keys.is_empty() {
        tx.execute(
            "INSERT INTO audit_subjects (subject, attrs) \
             SELECT * FROM unnest($1::text[], $2::jsonb[]) \
             ON CONFLICT (subject) DO UPDATE SET attrs = excluded.attrs",
            &[&keys, &values],
        )
        .await?;
    }
    Ok(())
}
