//! Read models of the Gatehouse log and the runner that keeps them current.
//!
//! A projection is a name, a version, the DDL of its tables, and a batch
//! handler. The runner applies batches of events and moves the checkpoint in
//! the same transaction (exactly-once effects), fences one active runner per
//! projection across processes by locking the checkpoint row inside that
//! transaction, and rebuilds blue/green: a new generation fills fresh tables
//! from position 0 while the old one serves, then views swap in one
//! transaction.
//!
//! # Layout
//! - [`Projection`]: what a read model implements.
//! - [`runner`]: the batch loop, generations, rebuild and swap.
//! - [`status`]: published checkpoints and the read-your-writes wait.
//! - `table`: the rows a batch touches, held in memory while it folds.
//! - [`read_models`]: the read side's handle; each model's `read` module
//!   holds its typed queries beside its `apply` module.
//! - [`audit`]: the audit trail, one readable entry per event.
//! - [`accounts`], [`apps`], [`event_counts`], [`keys`], [`orgs`], [`usage`]:
//!   the read models.

pub mod accounts;
pub mod apps;
pub mod audit;
pub mod event_counts;
pub mod keys;
pub mod orgs;
pub mod read_models;
pub mod runner;
pub mod status;
pub(crate) mod table;
pub mod usage;

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use event_schemas::{RecordedEvent, SchemaError};

pub use runner::{
    rebuild, rebuild_all, release, PassProgress, RebuildOptions, RebuildProgress, Rebuilt, Runner,
};
pub use status::{NotCaughtUp, ProjectionState, ProjectionStatus, Statuses};

/// A read model built from the log.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name; also names its schemas (`rm_<name>_g<generation>`).
    fn name(&self) -> &'static str;
    /// Bump when the tables or the handler change: a new version rebuilds
    /// blue/green from position 0.
    fn version(&self) -> u32;
    /// DDL creating the tables (with their primary keys and the indexes its
    /// own writes look rows up by), run with `search_path` set to a fresh
    /// schema.
    fn schema(&self) -> &'static str;
    /// Secondary indexes only reads use (`CREATE INDEX IF NOT EXISTS`): a
    /// generation filled from position 0 builds them after the load, before
    /// it is swapped in, which is cheaper than keeping them row by row.
    fn indexes(&self) -> &'static str {
        ""
    }
    /// The tables the API reads, exposed as views `rm.<table>`.
    fn tables(&self) -> &'static [&'static str];
    /// The event types it handles, or `None` for every type. Lets the runner
    /// read only those (through the `(event_type, global_position)` index).
    fn event_types(&self) -> Option<&'static [&'static str]> {
        None
    }
    /// Applies a batch of the events it handles, in log order, inside the
    /// runner's transaction (whose `search_path` is this generation's
    /// schema). Any batch size gives the same rows.
    async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError>;
}

/// A projection that cannot apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The event does not decode.
    #[error("event at position {position} does not decode")]
    Schema {
        /// Where.
        position: u64,
        /// Why.
        #[source]
        source: SchemaError,
    },
    /// A SQL statement failed.
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The pool had no connection.
    #[error("connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// Reading the log failed.
    #[error("reading the log: {0}")]
    Store(#[from] event_store::StoreError),
    /// The event breaks an invariant of the read model.
    #[error("event at position {position}: {reason}")]
    Invariant {
        /// Where.
        position: u64,
        /// What.
        reason: String,
    },
}

/// Decodes `e` with its family's `decode`, naming the event's position if
/// the payload does not decode (a poison event stops the projection).
pub fn decode<E>(
    e: &RecordedEvent,
    decode: fn(&RecordedEvent) -> Result<Option<E>, SchemaError>,
) -> Result<Option<E>, ProjectionError> {
    decode(e).map_err(|source| ProjectionError::Schema {
        position: e.global_position,
        source,
    })
}

/// The id in a `<prefix><uuid>` stream id (`app-`, `api_key-`), or an
/// invariant error naming the event's position.
pub(crate) fn stream_uuid(e: &RecordedEvent, prefix: &str) -> Result<uuid::Uuid, ProjectionError> {
    e.stream_id
        .strip_prefix(prefix)
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ProjectionError::Invariant {
            position: e.global_position,
            reason: format!("expected a {prefix}<uuid> stream, got {}", e.stream_id),
        })
}

/// Every projection of this build, in the order the API registers them.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(accounts::Accounts),
        Arc::new(apps::Apps),
        Arc::new(audit::Audit),
        Arc::new(event_counts::EventCounts),
        Arc::new(keys::Keys),
        Arc::new(orgs::Orgs),
        Arc::new(usage::Usage),
    ]
}

/// Finds a projection of this build by name.
pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    /// The one-pass rebuild puts every generation's schema on one search
    /// path: a table name two read models shared would be ambiguous there.
    #[test]
    fn no_two_read_models_name_a_table_alike() {
        let mut seen = HashSet::new();
        for p in super::all() {
            let ddl = p.schema().to_lowercase();
            for part in ddl.split("create table").skip(1) {
                let name = part.split_whitespace().next().unwrap_or_default();
                let name = name.trim_end_matches('(').to_owned();
                assert!(
                    seen.insert(name.clone()),
                    "{} and another read model both have a table {name}",
                    p.name()
                );
            }
        }
        assert!(
            seen.contains("audit_subjects") && seen.contains("apps"),
            "{seen:?}"
        );
    }
}
