//! `verify --read-models`: every read model compared with a fresh rebuild.
//! Each projection is rebuilt, in batches of a chosen size (any size must
//! give the rows the live runner's small batches gave), into a scratch
//! schema up to the position its
//! active generation has reached, then every table of the two is compared
//! by row count and a digest of its rows. A difference means the live read
//! model drifted from what the log says (a bug, or a hand edit).

use deadpool_postgres::Pool;
use event_store::postgres::EVENT_COLUMNS;
use projections::Projection;
use serde::Serialize;

use crate::VerifyError;

/// How one read model compared.
#[derive(Debug, Clone, Serialize)]
pub struct ReadModelCheck {
    /// The projection.
    pub name: String,
    /// The position compared at.
    pub position: u64,
    /// Tables that differ, with the live and rebuilt row counts.
    pub differences: Vec<(String, i64, i64)>,
    /// Tables compared.
    pub tables: usize,
}

/// Why a read model could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// Reading or writing failed.
    #[error(transparent)]
    Db(#[from] VerifyError),
    /// The projection failed to apply an event.
    #[error("{0}")]
    Projection(#[from] projections::ProjectionError),
    /// It has no active generation.
    #[error("{0} has no active generation")]
    NotActive(String),
    /// The live generation kept moving while it was compared.
    #[error("{0} kept moving while it was compared; stop the writers or try again")]
    Moving(String),
}

impl From<tokio_postgres::Error> for ReadModelError {
    fn from(e: tokio_postgres::Error) -> Self {
        ReadModelError::Db(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for ReadModelError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ReadModelError::Db(e.into())
    }
}

async fn active(pool: &Pool, name: &str) -> Result<(i32, u64), ReadModelError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT generation, position FROM projection_generations WHERE name = $1 AND state = 'active'",
            &[&name],
        )
        .await?
        .ok_or_else(|| ReadModelError::NotActive(name.to_owned()))?;
    Ok((row.get(0), row.get::<_, i64>(1) as u64))
}

/// Count and digest of every table of `schema`.
async fn digests(pool: &Pool, schema: &str) -> Result<Vec<(String, i64, String)>, ReadModelError> {
    let client = pool.get().await?;
    let tables: Vec<String> = client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 \
             AND table_type = 'BASE TABLE' ORDER BY table_name",
            &[&schema],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::with_capacity(tables.len());
    for t in tables {
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') \
                     FROM (SELECT md5(x::text) AS h FROM \"{schema}\".\"{t}\" x) rows"
                ),
                &[],
            )
            .await?;
        out.push((t, row.get(0), row.get(1)));
    }
    Ok(out)
}

/// Rebuilds `projection` into a scratch schema up to `upto`.
async fn fill(
    pool: &Pool,
    projection: &dyn Projection,
    schema: &str,
    upto: u64,
    batch: usize,
) -> Result<(), ReadModelError> {
    {
        let client = pool.get().await?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
                 SET search_path TO {schema}, public; {} {} SET search_path TO DEFAULT;",
                projection.schema(),
                projection.indexes()
            ))
            .await?;
    }
    let types: Option<Vec<String>> = projection
        .event_types()
        .map(|t| t.iter().map(|s| s.to_string()).collect());
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE global_position > $1 AND global_position <= $2 \
         AND ($3::text[] IS NULL OR event_type = ANY($3)) ORDER BY global_position LIMIT {batch}"
    );
    let mut after = 0i64;
    loop {
        let mut client = pool.get().await?;
        let rows = client
            .query(&sql, &[&after, &(upto as i64), &types])
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let events = rows
            .iter()
            .map(event_store::postgres::decode_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(VerifyError::from)?;
        after = events.last().map_or(after, |e| e.global_position as i64);
        let tx = client.transaction().await?;
        tx.batch_execute(&format!("SET LOCAL search_path TO {schema}, public"))
            .await?;
        let events: Vec<_> = events.iter().collect();
        projection.apply(&tx, &events).await?;
        tx.commit().await?;
    }
}

/// Compares `projection`'s active generation with a fresh rebuild.
pub async fn check(
    pool: &Pool,
    projection: &dyn Projection,
    batch: usize,
) -> Result<ReadModelCheck, ReadModelError> {
    let name = projection.name();
    let scratch = format!("rm_check_{name}");
    for _ in 0..3 {
        let (generation, position) = active(pool, name).await?;
        fill(pool, projection, &scratch, position, batch).await?;
        let live = digests(pool, &format!("rm_{name}_g{generation}")).await?;
        if active(pool, name).await? != (generation, position) {
            continue;
        }
        let rebuilt = digests(pool, &scratch).await?;
        let client = pool.get().await?;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {scratch} CASCADE"))
            .await?;
        let mut differences = Vec::new();
        for (table, n, digest) in &rebuilt {
            match live.iter().find(|(t, _, _)| t == table) {
                Some((_, m, d)) if d == digest && m == n => {}
                Some((_, m, _)) => differences.push((table.clone(), *m, *n)),
                None => differences.push((table.clone(), -1, *n)),
            }
        }
        return Ok(ReadModelCheck {
            name: name.to_owned(),
            position,
            differences,
            tables: rebuilt.len(),
        });
    }
    let client = pool.get().await?;
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {scratch} CASCADE"))
        .await?;
    Err(ReadModelError::Moving(name.to_owned()))
}
