//! The read side in one handle: connections to the read models and the
//! published checkpoints, with the bounded wait for a position
//! (read-your-writes). Handlers (JSON and console), the verifier loader and
//! the audit feeder read through it and the `read` module of each model.
//!
//! Lists page by keyset, never by offset: [`Keyset`] names the sort key of
//! the last row seen, and a page is one index range scan however deep.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Object, Pool, PoolError};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{NotCaughtUp, Statuses};

/// Connections to the read models and how far each has got.
#[derive(Clone)]
pub struct ReadModels {
    pool: Pool,
    statuses: Statuses,
}

impl ReadModels {
    /// The read side over `pool`, whose projections publish to `statuses`.
    pub fn new(pool: Pool, statuses: Statuses) -> Self {
        ReadModels { pool, statuses }
    }

    /// The connection pool the read models are read through.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The projections' published checkpoints.
    pub fn statuses(&self) -> &Statuses {
        &self.statuses
    }

    /// A connection to read with (`&client` is what every `read` function
    /// takes).
    pub async fn client(&self) -> Result<Object, PoolError> {
        self.pool.get().await
    }

    /// Whether every named read model has reached `min_position` already.
    pub fn reached(&self, models: &[&'static str], min_position: u64) -> bool {
        self.statuses.reached(models, min_position)
    }

    /// Waits until every named read model has applied `min_position`, or
    /// `timeout` passes.
    pub async fn wait_for(
        &self,
        models: &[&'static str],
        min_position: u64,
        timeout: Duration,
    ) -> Result<(), NotCaughtUp> {
        self.statuses.wait_for(models, min_position, timeout).await
    }
}

/// The sort key of most lists: a time and an id to break ties.
pub type TimeKey = (DateTime<Utc>, Uuid);

/// Where a keyset page starts and how many rows it fetches.
#[derive(Debug, Clone, Copy)]
pub struct Keyset {
    /// The sort key of the last row already seen; `None` for the first page.
    pub after: Option<TimeKey>,
    /// Rows to fetch (a page and one more, so the caller knows whether
    /// another follows).
    pub limit: i64,
}

/// One page of `select` (a `SELECT ... WHERE <conditions>` using `$1..$n`
/// for `params`): adds the page condition on `key` (the `(time, id)` SQL
/// expressions; rows carry them under their last name segment), the order
/// and the limit. Each row comes back with its sort key.
pub(crate) async fn keyset<T>(
    client: &impl GenericClient,
    select: &str,
    key: (&str, &str),
    params: &[&(dyn ToSql + Sync)],
    page: Keyset,
    item: impl Fn(&Row) -> T,
) -> Result<Vec<(TimeKey, T)>, tokio_postgres::Error> {
    let (time, id) = key;
    let n = params.len();
    let sql = format!(
        "{select} AND (${a}::timestamptz IS NULL OR ({time}, {id}) > (${a}, ${b})) \
         ORDER BY {time}, {id} LIMIT ${c}",
        a = n + 1,
        b = n + 2,
        c = n + 3
    );
    let (after_time, after_id) = page.after.unzip();
    let mut all: Vec<&(dyn ToSql + Sync)> = params.to_vec();
    all.extend([&after_time as &(dyn ToSql + Sync), &after_id, &page.limit]);
    let rows = client.query(&sql, &all).await?;
    let last = |expr: &str| expr.rsplit('.').next().unwrap_or(expr).to_owned();
    let (time_col, id_col) = (last(time), last(id));
    Ok(rows
        .iter()
        .map(|r| ((r.get(time_col.as_str()), r.get(id_col.as_str())), item(r)))
        .collect())
}
