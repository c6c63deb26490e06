//! Typed queries over the `audit` read model (the views `rm.<table>`), for the API, the console and the tools.
//!
//! Entries come back with the hash of their event (the chain's field), as
//! stored: names, personal data and request context are opened by the
//! reader. The audit trail's `(org_id, position)` index also says which
//! events of the log are an organisation's (time travel folds those).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use event_schemas::RecordedEvent;
use event_store::StoreError;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row};
use uuid::Uuid;

/// Which event types an audit query keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTypes {
    /// One type (`api_key.rotated`).
    Exact(String),
    /// A family (`api_key`): every `api_key.*` type.
    Family(String),
}

/// What an audit query narrows to; each criterion, when given, narrows an
/// indexed column of `rm.audit_entries`.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    /// Events of this organisation.
    pub org: Option<Uuid>,
    /// Events by this actor (a user's or key's id).
    pub actor: Option<String>,
    /// Events concerning this app.
    pub app: Option<Uuid>,
    /// Events concerning this API key.
    pub key: Option<Uuid>,
    /// Events of these types.
    pub event_types: Option<EventTypes>,
    /// Events recorded at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Events recorded before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Oldest first (else newest first).
    pub ascending: bool,
}

/// An audit entry with its event's hash, before names and personal data
/// are opened.
#[derive(Debug, Clone)]
pub struct EntryRow {
    /// The event's global position.
    pub position: i64,
    /// The event type.
    pub event_type: String,
    /// When it was recorded.
    pub occurred_at: DateTime<Utc>,
    /// `user`, `api_key`, `staff` or `system`.
    pub actor_kind: String,
    /// The actor's id.
    pub actor_id: Option<String>,
    /// What it touched (`[{type, id, name?}]`).
    pub targets: serde_json::Value,
    /// For an update, each changed field.
    pub changes: Option<serde_json::Value>,
    /// The request id.
    pub request_id: Option<String>,
    /// The client context, sealed under the actor's key.
    pub context_sealed: Option<String>,
    /// The organisation.
    pub org_id: Option<Uuid>,
    /// The event's hash in the chain.
    pub hash: Vec<u8>,
}

/// The columns [`EntryRow`] reads, as `a` the entry and `e` the event.
const ENTRY_COLUMNS: &str = "a.position, a.event_type, a.occurred_at, a.actor_kind, a.actor_id, \
     a.targets, a.changes, a.request_id, a.context_sealed, a.org_id, e.hash";

fn entry_row(r: &Row) -> EntryRow {
    entry_row_at(r, 0)
}

/// An [`EntryRow`] from [`ENTRY_COLUMNS`] starting at column `at`.
fn entry_row_at(r: &Row, at: usize) -> EntryRow {
    EntryRow {
        position: r.get(at),
        event_type: r.get(at + 1),
        occurred_at: r.get(at + 2),
        actor_kind: r.get(at + 3),
        actor_id: r.get(at + 4),
        targets: r.get(at + 5),
        changes: r.get(at + 6),
        request_id: r.get(at + 7),
        context_sealed: r.get(at + 8),
        org_id: r.get(at + 9),
        hash: r.get(at + 10),
    }
}

/// The entries matching a filter up to a position, each with its event as
/// stored, oldest first: one query in one snapshot (the transaction it is
/// opened in, which should be `REPEATABLE READ`), read a chunk at a time
/// through a portal, so an export of any length holds one chunk.
pub struct ExportCursor {
    portal: tokio_postgres::Portal,
}

impl ExportCursor {
    /// Opens the cursor inside `tx`.
    pub async fn open(
        tx: &deadpool_postgres::Transaction<'_>,
        filter: &EntryFilter,
        upto: i64,
    ) -> Result<Self, Error> {
        let mut c = Conditions::of(filter);
        c.push("a.position <= ?", Box::new(upto));
        // The range is stated on both sides of the join, so the planner
        // can bound the log's side too.
        c.push("e.global_position <= ?", Box::new(upto));
        let events = event_store::postgres::EVENT_COLUMNS
            .split(", ")
            .map(|col| format!("e.{}", col.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {events}, {ENTRY_COLUMNS} FROM rm.audit_entries a \
             JOIN events e ON e.global_position = a.position \
             WHERE {} ORDER BY a.position",
            c.clause()
        );
        let stmt = tx.prepare(&sql).await?;
        let portal = tx.bind(&stmt, &c.refs()).await?;
        Ok(ExportCursor { portal })
    }

    /// The next `n` entries and their events (none at the end).
    pub async fn next(
        &mut self,
        tx: &deadpool_postgres::Transaction<'_>,
        n: i32,
    ) -> Result<Vec<(EntryRow, RecordedEvent)>, StoreError> {
        let rows = tx.query_portal(&self.portal, n).await?;
        let columns = event_store::postgres::EVENT_COLUMNS.split(", ").count();
        rows.iter()
            .map(|r| {
                Ok((
                    entry_row_at(r, columns),
                    event_store::postgres::decode_row(r)?,
                ))
            })
            .collect()
    }
}

/// A filter's conditions as SQL over `a` (`rm.audit_entries`), with their
/// parameters in order.
struct Conditions {
    sql: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Conditions {
    fn of(f: &EntryFilter) -> Self {
        let mut c = Conditions {
            sql: String::new(),
            params: Vec::new(),
        };
        if let Some(org) = f.org {
            c.push("a.org_id = ?", Box::new(org));
        }
        if let Some(actor) = &f.actor {
            c.push("a.actor_id = ?", Box::new(actor.clone()));
        }
        if let Some(app) = f.app {
            c.push("a.app_id = ?", Box::new(app));
        }
        if let Some(key) = f.key {
            c.push("a.key_id = ?", Box::new(key));
        }
        match &f.event_types {
            Some(EventTypes::Family(family)) => {
                c.push("a.event_type LIKE ?", Box::new(format!("{family}.%")));
            }
            Some(EventTypes::Exact(t)) => c.push("a.event_type = ?", Box::new(t.clone())),
            None => {}
        }
        if let Some(from) = f.from {
            c.push("a.occurred_at >= ?", Box::new(from));
        }
        if let Some(to) = f.to {
            c.push("a.occurred_at < ?", Box::new(to));
        }
        c
    }

    fn push(&mut self, expr: &str, value: Box<dyn ToSql + Sync + Send>) {
        self.params.push(value);
        if !self.sql.is_empty() {
            self.sql.push_str(" AND ");
        }
        self.sql
            .push_str(&expr.replace('?', &format!("${}", self.params.len())));
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| &**p as &(dyn ToSql + Sync))
            .collect()
    }

    fn clause(&self) -> &str {
        if self.sql.is_empty() {
            "TRUE"
        } else {
            &self.sql
        }
    }
}

/// A page of entries matching `filter`, in its order, beyond the position
/// `after`: at most `limit`.
pub async fn entries(
    client: &impl GenericClient,
    filter: &EntryFilter,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<EntryRow>, Error> {
    let mut c = Conditions::of(filter);
    if let Some(p) = after {
        let op = if filter.ascending { ">" } else { "<" };
        c.push(&format!("a.position {op} ?"), Box::new(p));
    }
    let order = if filter.ascending { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM rm.audit_entries a JOIN events e ON e.global_position = a.position \
         WHERE {} ORDER BY a.position {order} LIMIT {limit}",
        c.clause()
    );
    Ok(client
        .query(&sql, &c.refs())
        .await?
        .iter()
        .map(entry_row)
        .collect())
}

/// A chunk of the entries matching `filter` up to the position `upto`,
/// oldest first, beyond the position `after`: at most `limit` (an export
/// walks them all).
pub async fn entries_upto(
    client: &impl GenericClient,
    filter: &EntryFilter,
    upto: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<EntryRow>, Error> {
    let mut c = Conditions::of(filter);
    c.push("a.position <= ?", Box::new(upto));
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM rm.audit_entries a JOIN events e ON e.global_position = a.position \
         WHERE {} AND a.position > ${} ORDER BY a.position LIMIT {limit}",
        c.clause(),
        c.params.len() + 1
    );
    let mut params = c.refs();
    params.push(&after);
    Ok(client
        .query(&sql, &params)
        .await?
        .iter()
        .map(entry_row)
        .collect())
}

/// The names of the audit trail's entities among `ids` (`None` for one
/// without a name; a user's name is sealed under their key).
pub async fn entity_names(
    client: &impl GenericClient,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Option<String>>, Error> {
    Ok(client
        .query(
            "SELECT id, name FROM rm.audit_entities WHERE id = ANY($1)",
            &[&ids],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// The organisation's events recorded at or before `as_of`, beyond the
/// position `after`, in log order: at most `limit`, read from the log
/// itself (the audit trail only says which they are).
pub async fn org_events_until(
    client: &impl GenericClient,
    org: Uuid,
    as_of: DateTime<Utc>,
    after: i64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!(
        "SELECT {} FROM events WHERE global_position IN ( \
           SELECT position FROM rm.audit_entries WHERE org_id = $1 AND occurred_at <= $2 \
             AND position > $3 ORDER BY position LIMIT {limit}) \
         ORDER BY global_position",
        event_store::postgres::EVENT_COLUMNS
    );
    let rows = client.query(&sql, &[&org, &as_of, &after]).await?;
    rows.iter().map(event_store::postgres::decode_row).collect()
}

/// The audit trail's checkpoint: the position its active generation
/// reached (0 before any).
pub async fn position(client: &impl GenericClient) -> Result<i64, Error> {
    let stmt = client
        .prepare_cached(
            "SELECT COALESCE((SELECT position FROM projection_generations \
                              WHERE name = 'audit' AND state = 'active'), 0)",
        )
        .await?;
    Ok(client.query_one(&stmt, &[]).await?.get(0))
}

/// The entries of the organisations `orgs` in `(after, upto]`, oldest
/// first: at most `limit` (what the audit streams are fed).
pub async fn entries_of_orgs(
    client: &impl GenericClient,
    orgs: &[Uuid],
    after: i64,
    upto: i64,
    limit: i64,
) -> Result<Vec<EntryRow>, Error> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM rm.audit_entries a JOIN events e ON e.global_position = a.position \
             WHERE a.org_id = ANY($1) AND a.position > $2 AND a.position <= $3 \
               AND e.global_position > $2 AND e.global_position <= $3 \
             ORDER BY a.position LIMIT $4"
        ))
        .await?;
    Ok(client
        .query(&stmt, &[&orgs, &after, &upto, &limit])
        .await?
        .iter()
        .map(entry_row)
        .collect())
}
