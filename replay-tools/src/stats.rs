//! `stats`: event counts by type and category, log size, projections.

use deadpool_postgres::Pool;
use serde::Serialize;

use crate::VerifyError;

/// Counts of one event type or stream category.
#[derive(Debug, Clone, Serialize)]
pub struct Count {
    /// The type or category.
    pub name: String,
    /// Events.
    pub events: i64,
}

/// One projection generation's checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionStat {
    /// Name.
    pub name: String,
    /// Generation.
    pub generation: i32,
    /// Version.
    pub version: i32,
    /// `active` or `building`.
    pub state: String,
    /// Checkpoint.
    pub position: i64,
    /// Events behind the head.
    pub lag: i64,
    /// The error it is stopped at, if any.
    pub error: Option<String>,
}

/// The shape of the log.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Head position (= number of events).
    pub head: i64,
    /// Bytes of the events table with its indexes.
    pub log_bytes: i64,
    /// Events by type.
    pub by_type: Vec<Count>,
    /// Events by stream category.
    pub by_category: Vec<Count>,
    /// Projections.
    pub projections: Vec<ProjectionStat>,
}

/// Gathers [`Stats`].
pub async fn stats(pool: &Pool) -> Result<Stats, VerifyError> {
    let client = pool.get().await?;
    let head: i64 = client
        .query_one("SELECT position FROM log_head WHERE id", &[])
        .await?
        .get(0);
    let log_bytes: i64 = client
        .query_one("SELECT pg_total_relation_size('events')", &[])
        .await?
        .get(0);
    let counts = |rows: Vec<tokio_postgres::Row>| {
        rows.iter()
            .map(|r| Count {
                name: r.get(0),
                events: r.get(1),
            })
            .collect::<Vec<_>>()
    };
    let by_type = counts(
        client
            .query(
                "SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC, 1",
                &[],
            )
            .await?,
    );
    let by_category = counts(
        client
            .query(
                "SELECT split_part(stream_id, '-', 1), count(*) FROM events GROUP BY 1 ORDER BY 2 DESC, 1",
                &[],
            )
            .await?,
    );
    let projections = client
        .query(
            "SELECT name, generation, version, state, position, error FROM projection_generations \
             WHERE state <> 'retired' ORDER BY name, generation",
            &[],
        )
        .await?
        .iter()
        .map(|r| ProjectionStat {
            name: r.get(0),
            generation: r.get(1),
            version: r.get(2),
            state: r.get(3),
            position: r.get(4),
            lag: head - r.get::<_, i64>(4),
            error: r.get(5),
        })
        .collect();
    Ok(Stats {
        head,
        log_bytes,
        by_type,
        by_category,
        projections,
    })
}
