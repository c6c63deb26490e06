//! The rows a batch touches, held in memory while the batch folds.
//!
//! A batch-shaped projection loads the rows its events will touch with one
//! query per table, folds the events in log order against those rows, and
//! writes back what changed with one upsert and one delete per table. A row
//! travels as JSON both ways (`row_to_json` out, `json_populate_recordset`
//! in), so one typed struct per table is all a read model writes, and any
//! key shape (one column or several) loads the same way. A row the
//! prefetch missed is loaded on first use: a missed key costs a round trip,
//! never a wrong answer.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use deadpool_postgres::Transaction;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use event_schemas::RecordedEvent;

use crate::ProjectionError;

/// A row of a read model's table, as the batch folds it.
pub trait Row: Serialize + DeserializeOwned + Send + Sync {
    /// The table.
    const TABLE: &'static str;
    /// Its primary key's columns, in the order [`Row::Key`] serializes them.
    const KEY: &'static [&'static str];
    /// The primary key: a value for one column, a tuple for several.
    type Key: Hash + Eq + Clone + Serialize + Send + Sync;
    /// This row's key.
    fn key(&self) -> Self::Key;
}

/// Implements [`Row`] for a struct: its table, key columns, key type and
/// how to read the key from a row.
macro_rules! row {
    ($ty:ident, $table:literal, [$($key:ident),+], $keyty:ty, $keyexpr:expr) => {
        impl $crate::table::Row for $ty {
            const TABLE: &'static str = $table;
            const KEY: &'static [&'static str] = &[$(stringify!($key)),+];
            type Key = $keyty;
            fn key(&self) -> $keyty {
                #[allow(clippy::redundant_closure_call)]
                ($keyexpr)(self)
            }
        }
    };
}
pub(crate) use row;

/// What the batch knows of one key.
struct Slot<R> {
    /// The row as of the events folded so far; `None` when there is none.
    row: Option<R>,
    /// Whether it differs from the table.
    dirty: bool,
}

/// The rows of one table that a batch has loaded or written.
pub struct Table<R: Row> {
    slots: HashMap<R::Key, Slot<R>>,
}

impl<R: Row> Default for Table<R> {
    fn default() -> Self {
        Table {
            slots: HashMap::new(),
        }
    }
}

/// A key as the JSON object `json_populate_recordset` takes.
fn key_object<R: Row>(key: &R::Key) -> Result<Value, ProjectionError> {
    let value = serde_json::to_value(key).map_err(json_error)?;
    let mut object = serde_json::Map::new();
    match value {
        Value::Array(parts) if R::KEY.len() > 1 => {
            for (column, part) in R::KEY.iter().zip(parts) {
                object.insert((*column).to_owned(), part);
            }
        }
        single => {
            object.insert(R::KEY[0].to_owned(), single);
        }
    }
    Ok(Value::Object(object))
}

fn json_error(e: serde_json::Error) -> ProjectionError {
    ProjectionError::Invariant {
        position: 0,
        reason: format!("a read model row does not convert to or from JSON: {e}"),
    }
}

impl<R: Row> Table<R> {
    /// Loads the rows of `keys` not yet known, in one query.
    pub async fn load(
        &mut self,
        tx: &Transaction<'_>,
        keys: impl IntoIterator<Item = R::Key>,
    ) -> Result<(), ProjectionError> {
        let wanted: HashSet<R::Key> = keys
            .into_iter()
            .filter(|k| !self.slots.contains_key(k))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let objects = wanted
            .iter()
            .map(key_object::<R>)
            .collect::<Result<Vec<_>, _>>()?;
        // A lateral lookup per key: the primary key's index, however large
        // the table has grown (a join may be planned as a scan of it).
        let matches = R::KEY
            .iter()
            .map(|c| format!("t.{c} = k.{c}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let sql = format!(
            "SELECT row_to_json(r)::text FROM json_populate_recordset(NULL::{table}, $1::text::json) k, \
             LATERAL (SELECT * FROM {table} t WHERE {matches}) r",
            table = R::TABLE
        );
        let stmt = tx.prepare_cached(&sql).await?;
        let text = serde_json::to_string(&objects).map_err(json_error)?;
        for row in tx.query(&stmt, &[&text]).await? {
            let json: &str = row.get(0);
            let row: R = serde_json::from_str(json).map_err(json_error)?;
            self.slots.insert(
                row.key(),
                Slot {
                    row: Some(row),
                    dirty: false,
                },
            );
        }
        for key in wanted {
            self.slots.entry(key).or_insert(Slot {
                row: None,
                dirty: false,
            });
        }
        Ok(())
    }

    /// Loads every row whose `column` is one of `values` (a rule over all
    /// the rows of a parent), keeping the batch's own version of any it
    /// already holds.
    pub async fn load_by(
        &mut self,
        tx: &Transaction<'_>,
        column: &str,
        values: &[uuid::Uuid],
    ) -> Result<(), ProjectionError> {
        if values.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT row_to_json(t)::text FROM {table} t WHERE {column} = ANY($1)",
            table = R::TABLE
        );
        let stmt = tx.prepare_cached(&sql).await?;
        for row in tx.query(&stmt, &[&values]).await? {
            let json: &str = row.get(0);
            let row: R = serde_json::from_str(json).map_err(json_error)?;
            self.slots.entry(row.key()).or_insert(Slot {
                row: Some(row),
                dirty: false,
            });
        }
        Ok(())
    }

    /// The row of `key` if the batch already holds it (never loads).
    pub fn known(&self, key: &R::Key) -> Option<&R> {
        self.slots.get(key).and_then(|s| s.row.as_ref())
    }

    /// The row of `key`, loading it if the prefetch missed it.
    pub async fn get(
        &mut self,
        tx: &Transaction<'_>,
        key: &R::Key,
    ) -> Result<Option<&R>, ProjectionError> {
        self.load(tx, [key.clone()]).await?;
        Ok(self.slots.get(key).and_then(|s| s.row.as_ref()))
    }

    /// The row of `key` to change, loading it if needed; marked changed.
    pub async fn get_mut(
        &mut self,
        tx: &Transaction<'_>,
        key: &R::Key,
    ) -> Result<Option<&mut R>, ProjectionError> {
        self.load(tx, [key.clone()]).await?;
        Ok(self.slots.get_mut(key).and_then(|s| {
            s.dirty |= s.row.is_some();
            s.row.as_mut()
        }))
    }

    /// Writes `row`, whatever was there.
    pub fn put(&mut self, row: R) {
        self.slots.insert(
            row.key(),
            Slot {
                row: Some(row),
                dirty: true,
            },
        );
    }

    /// Writes a new row; `false` (and nothing written) if its key exists.
    pub async fn insert(&mut self, tx: &Transaction<'_>, row: R) -> Result<bool, ProjectionError> {
        if self.get(tx, &row.key()).await?.is_some() {
            return Ok(false);
        }
        self.put(row);
        Ok(true)
    }

    /// Deletes the row of `key`, if any.
    pub async fn delete(
        &mut self,
        tx: &Transaction<'_>,
        key: &R::Key,
    ) -> Result<(), ProjectionError> {
        self.load(tx, [key.clone()]).await?;
        if let Some(slot) = self.slots.get_mut(key) {
            if slot.row.take().is_some() {
                slot.dirty = true;
            }
        }
        Ok(())
    }

    /// Writes what changed, then reads every known row again: after a
    /// set-based statement on the table (a barrier), in one query.
    pub async fn reload(&mut self, tx: &Transaction<'_>) -> Result<(), ProjectionError> {
        self.flush(tx).await?;
        let keys: Vec<R::Key> = self.slots.drain().map(|(k, _)| k).collect();
        self.load(tx, keys).await
    }

    /// Every row known to the batch (for a rule over several rows, after a
    /// [`Table::load`] of all of them).
    pub fn rows(&self) -> impl Iterator<Item = &R> {
        self.slots.values().filter_map(|s| s.row.as_ref())
    }

    /// Writes what changed back to the table: one upsert and one delete.
    /// The rows stay known, now clean.
    pub async fn flush(&mut self, tx: &Transaction<'_>) -> Result<(), ProjectionError> {
        let (mut upserts, mut deletes) = (Vec::new(), Vec::new());
        for (key, slot) in self.slots.iter_mut() {
            if !std::mem::take(&mut slot.dirty) {
                continue;
            }
            match &slot.row {
                Some(row) => upserts.push(row),
                None => deletes.push(key_object::<R>(key)?),
            }
        }
        let key = R::KEY.join(", ");
        if !deletes.is_empty() {
            let matches = R::KEY
                .iter()
                .map(|c| format!("t.{c} = k.{c}"))
                .collect::<Vec<_>>()
                .join(" AND ");
            let sql = format!(
                "DELETE FROM {table} t USING json_populate_recordset(NULL::{table}, $1::text::json) k \
                 WHERE {matches}",
                table = R::TABLE
            );
            let stmt = tx.prepare_cached(&sql).await?;
            let text = serde_json::to_string(&deletes).map_err(json_error)?;
            tx.execute(&stmt, &[&text]).await?;
        }
        if let Some(first) = upserts.first() {
            let Value::Object(first) = serde_json::to_value(first).map_err(json_error)? else {
                return Err(json_error(serde::ser::Error::custom(
                    "a row is not an object",
                )));
            };
            let columns: Vec<&String> = first.keys().collect();
            let set = columns
                .iter()
                .filter(|c| !R::KEY.contains(&c.as_str()))
                .map(|c| format!("{c} = excluded.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let on_conflict = if set.is_empty() {
                "DO NOTHING".to_owned()
            } else {
                format!("DO UPDATE SET {set}")
            };
            let sql = format!(
                "INSERT INTO {table} SELECT * FROM json_populate_recordset(NULL::{table}, $1::text::json) \
                 ON CONFLICT ({key}) {on_conflict}",
                table = R::TABLE
            );
            let stmt = tx.prepare_cached(&sql).await?;
            let text = serde_json::to_string(&upserts).map_err(json_error)?;
            tx.execute(&stmt, &[&text]).await?;
        }
        Ok(())
    }
}

/// A read model's batch: what it loads first, how it folds each event, how
/// it writes back. [`fold`] drives every batch-shaped read model the same
/// way.
#[async_trait::async_trait]
pub trait Batch: Default + Send {
    /// Loads, in one query per table, the rows the events will touch.
    async fn prefetch(
        &mut self,
        tx: &Transaction<'_>,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError>;
    /// Folds one event into the rows held.
    async fn event(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
    ) -> Result<(), ProjectionError>;
    /// Writes back what changed.
    async fn flush(&mut self, tx: &Transaction<'_>) -> Result<(), ProjectionError>;
}

/// Applies `events` with a fresh batch `B`: prefetch, fold in log order,
/// write back.
pub async fn fold<B: Batch>(
    tx: &Transaction<'_>,
    events: &[&RecordedEvent],
) -> Result<(), ProjectionError> {
    let mut batch = B::default();
    batch.prefetch(tx, events).await?;
    for e in events {
        batch.event(tx, e).await?;
    }
    batch.flush(tx).await
}
