//! Operator tools over the Gatehouse log, behind the `gatehouse-replay`
//! binary: verify the hash chain and stream versions, rebuild a read model
//! blue/green, and report the log's shape and the projections' lag.

use std::collections::HashMap;

use deadpool_postgres::Pool;
use event_schemas::GENESIS_HASH;
use event_store::postgres::read_all_with;
use event_store::StoreError;
use serde::Serialize;

/// Events read per page while verifying.
const PAGE: usize = 10_000;

/// The first place the log does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the log does not verify at position {position}: {reason}")]
pub struct BadPosition {
    /// The first bad global position.
    pub position: u64,
    /// What is wrong there.
    pub reason: String,
}

/// Why verification could not finish or failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log is broken at a position.
    #[error(transparent)]
    Bad(#[from] BadPosition),
    /// The database failed.
    #[error("reading the log")]
    Store(#[from] StoreError),
    /// No connection.
    #[error("connection pool")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A query failed.
    #[error("database")]
    Postgres(#[from] tokio_postgres::Error),
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Events checked.
    pub events: u64,
    /// Distinct streams.
    pub streams: u64,
    /// The head position.
    pub head: u64,
}

/// Recomputes the hash chain over the whole log and checks that positions
/// are gap-free, every `prev_hash` links to the previous event, every stored
/// hash matches its recomputation, stream versions run 1, 2, 3... and the
/// head row agrees with the last event.
pub async fn verify(
    pool: &Pool,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyError> {
    let client = pool.get().await?;
    let mut prev = GENESIS_HASH;
    let mut position = 0u64;
    let mut versions: HashMap<String, u64> = HashMap::new();
    let bad = |position: u64, reason: String| VerifyError::Bad(BadPosition { position, reason });
    loop {
        let page = match read_all_with(&client, position, PAGE).await {
            Ok(p) => p,
            Err(StoreError::Corrupt { position, reason }) => return Err(bad(position, reason)),
            Err(e) => return Err(e.into()),
        };
        if page.is_empty() {
            break;
        }
        for e in &page {
            let p = e.global_position;
            if p != position + 1 {
                return Err(bad(
                    position + 1,
                    format!("missing; the next event is at {p}"),
                ));
            }
            if e.prev_hash != prev {
                return Err(bad(
                    p,
                    "prev_hash does not link to the previous event".into(),
                ));
            }
            if e.computed_hash() != e.hash {
                return Err(bad(
                    p,
                    "the stored hash does not match the event's contents".into(),
                ));
            }
            let v = versions.entry(e.stream_id.clone()).or_insert(0);
            if e.stream_version != *v + 1 {
                return Err(bad(
                    p,
                    format!(
                        "stream {} jumps from version {} to {}",
                        e.stream_id, v, e.stream_version
                    ),
                ));
            }
            *v = e.stream_version;
            prev = e.hash;
            position = p;
        }
        progress(position);
    }
    let head = client
        .query_one("SELECT position, hash FROM log_head WHERE id", &[])
        .await?;
    let head_position = head.get::<_, i64>(0) as u64;
    let head_hash: &[u8] = head.get(1);
    if head_position != position {
        return Err(bad(
            position.min(head_position) + 1,
            format!("the head says {head_position} but the log ends at {position}"),
        ));
    }
    if head_hash != prev {
        return Err(bad(
            position,
            "the head's hash does not match the last event".into(),
        ));
    }
    Ok(VerifyReport {
        events: position,
        streams: versions.len() as u64,
        head: head_position,
    })
}

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
