//! Group commit: one task per process owns a connection and turns every
//! append waiting in its queue into one transaction. Two pipelined round trips
//! per batch: lock the head and read stream versions and known event ids;
//! then insert, move the head, notify and commit. A request that conflicts
//! fails alone; the rest of its batch commits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use event_schemas::chain::{event_hash, CanonicalEvent};
use event_schemas::Hash;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{Client, NoTls, Statement};
use uuid::Uuid;

use crate::memory::now_micros;
use crate::{version_matches, AppendError, Appended, StoreError, StreamAppend};

/// One caller's append and where to send its outcome.
pub(super) struct Job {
    pub appends: Vec<StreamAppend>,
    pub reply: oneshot::Sender<Result<Appended, AppendError>>,
}

struct Conn {
    client: Client,
    lock_head: Statement,
    versions: Statement,
    existing: Statement,
    insert: Statement,
    move_head: Statement,
}

impl Conn {
    async fn open(config: &tokio_postgres::Config) -> Result<Self, StoreError> {
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "appender connection closed");
            }
        });
        let (lock_head, versions, existing, insert, move_head) = tokio::try_join!(
            client.prepare("SELECT position, hash FROM log_head WHERE id FOR UPDATE"),
            client.prepare(
                "SELECT stream_id, max(stream_version) FROM events \
                 WHERE stream_id = ANY($1) GROUP BY stream_id"
            ),
            client.prepare(
                "SELECT event_id, global_position, stream_id, stream_version FROM events \
                 WHERE event_id = ANY($1)"
            ),
            client.prepare(
                "INSERT INTO events (global_position, stream_id, stream_version, event_id, \
                 event_type, schema_version, data, metadata, recorded_at, prev_hash, hash) \
                 SELECT p, s, v, i, t, sv, d::json, m::json, $9, ph, h \
                 FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], \
                 $6::int[], $7::text[], $8::text[], $10::bytea[], $11::bytea[]) \
                 AS u(p, s, v, i, t, sv, d, m, ph, h)"
            ),
            client.prepare("UPDATE log_head SET position = $1, hash = $2 WHERE id"),
        )?;
        Ok(Conn {
            client,
            lock_head,
            versions,
            existing,
            insert,
            move_head,
        })
    }
}

/// The appender loop; ends when every sender is gone.
pub(super) async fn run(
    config: tokio_postgres::Config,
    mut rx: mpsc::Receiver<Job>,
    wake: Arc<watch::Sender<u64>>,
    max_batch_events: usize,
) {
    let mut conn: Option<Conn> = None;
    while let Some(first) = rx.recv().await {
        let mut size = event_count(&first);
        let mut jobs = vec![first];
        while size < max_batch_events {
            match rx.try_recv() {
                Ok(job) => {
                    size += event_count(&job);
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            match Conn::open(&config).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "appender cannot connect");
                    for job in jobs {
                        let _ = job.reply.send(Err(AppendError::Store(StoreError::Closed)));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_ref() else { continue };
        let committed = commit_jobs(c, jobs).await;
        if committed {
            wake.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

fn event_count(job: &Job) -> usize {
    job.appends.iter().map(|a| a.events.len()).sum()
}

/// Commits a batch, falling back to one transaction per job if the batch as
/// a whole fails, so that one bad request cannot fail its neighbours.
/// Returns whether anything was committed.
async fn commit_jobs(conn: &Conn, jobs: Vec<Job>) -> bool {
    let requests: Vec<&[StreamAppend]> = jobs.iter().map(|j| j.appends.as_slice()).collect();
    match try_batch(conn, &requests).await {
        Ok(outcomes) => {
            let any = outcomes.iter().any(|o| o.is_ok());
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
            any
        }
        Err(e) if jobs.len() == 1 => {
            if let Some(job) = jobs.into_iter().next() {
                let _ = job.reply.send(Err(AppendError::Store(e)));
            }
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = jobs.len(), "batch append failed; retrying one by one");
            let mut any = false;
            for job in jobs {
                let outcome = match try_batch(conn, &[job.appends.as_slice()]).await {
                    Ok(mut o) => o.pop().unwrap_or(Err(AppendError::Store(StoreError::Closed))),
                    Err(e) => Err(AppendError::Store(e)),
                };
                any |= outcome.is_ok();
                let _ = job.reply.send(outcome);
            }
            any
        }
    }
}

/// Column arrays for the multi-row insert.
#[derive(Default)]
struct Rows<'a> {
    positions: Vec<i64>,
    streams: Vec<&'a str>,
    versions: Vec<i64>,
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    schema_versions: Vec<i32>,
    data: Vec<&'a str>,
    metadata: Vec<String>,
    prev_hashes: Vec<Hash>,
    hashes: Vec<Hash>,
}

async fn try_batch(
    conn: &Conn,
    requests: &[&[StreamAppend]],
) -> Result<Vec<Result<Appended, AppendError>>, StoreError> {
    let c = &conn.client;
    let streams: Vec<&str> = requests
        .iter()
        .flat_map(|r| r.iter().map(|a| a.stream_id.as_str()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|r| r.iter().flat_map(|a| a.events.iter().map(|e| e.event_id)))
        .collect();

    let versions_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&streams];
    let existing_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&ids];
    let (begin, head, versions, existing) = tokio::join!(
        c.batch_execute("BEGIN"),
        c.query_one(&conn.lock_head, &[]),
        c.query(&conn.versions, &versions_params),
        c.query(&conn.existing, &existing_params),
    );
    let first_round = (|| {
        begin?;
        Ok::<_, tokio_postgres::Error>((head?, versions?, existing?))
    })();
    let (head, versions, existing) = match first_round {
        Ok(v) => v,
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            return Err(e.into());
        }
    };

    let mut position = head.get::<_, i64>(0) as u64;
    let head_hash: &[u8] = head.get(1);
    let mut prev: Hash = head_hash.try_into().map_err(|_| StoreError::Corrupt {
        position,
        reason: "log head hash is not 32 bytes".into(),
    })?;
    let mut current: HashMap<String, u64> = versions
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
        .collect();
    let known: HashMap<Uuid, (u64, String, u64)> = existing
        .iter()
        .map(|r| {
            (
                r.get::<_, Uuid>(0),
                (
                    r.get::<_, i64>(1) as u64,
                    r.get::<_, String>(2),
                    r.get::<_, i64>(3) as u64,
                ),
            )
        })
        .collect();

    let recorded_at: DateTime<Utc> = now_micros();
    let mut rows = Rows::default();
    let mut batch_ids: HashSet<Uuid> = HashSet::new();
    let mut outcomes = Vec::with_capacity(requests.len());
    for request in requests {
        outcomes.push(decide(
            request,
            &known,
            &mut batch_ids,
            &mut current,
            &mut position,
            &mut prev,
            recorded_at,
            &mut rows,
        ));
    }

    if rows.positions.is_empty() {
        c.batch_execute("ROLLBACK").await?;
        return Ok(outcomes);
    }
    let prev_refs: Vec<&[u8]> = rows.prev_hashes.iter().map(|h| h.as_slice()).collect();
    let hash_refs: Vec<&[u8]> = rows.hashes.iter().map(|h| h.as_slice()).collect();
    let new_head = position as i64;
    let head_hash: &[u8] = prev.as_slice();
    let insert_params: [&(dyn tokio_postgres::types::ToSql + Sync); 11] = [
        &rows.positions,
        &rows.streams,
        &rows.versions,
        &rows.ids,
        &rows.types,
        &rows.schema_versions,
        &rows.data,
        &rows.metadata,
        &recorded_at,
        &prev_refs,
        &hash_refs,
    ];
    let head_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&new_head, &head_hash];
    let (insert, moved, notify, commit) = tokio::join!(
        c.execute(&conn.insert, &insert_params),
        c.execute(&conn.move_head, &head_params),
        c.batch_execute("SELECT pg_notify('gatehouse_events', '')"),
        c.batch_execute("COMMIT"),
    );
    // After a failed statement PostgreSQL answers COMMIT with a rollback, so
    // the batch committed only if every statement before COMMIT succeeded.
    insert?;
    moved?;
    notify?;
    commit?;
    Ok(outcomes)
}

/// Decides one request against the state so far, adding its rows if accepted.
#[allow(clippy::too_many_arguments)]
fn decide<'a>(
    request: &'a [StreamAppend],
    known: &HashMap<Uuid, (u64, String, u64)>,
    batch_ids: &mut HashSet<Uuid>,
    current: &mut HashMap<String, u64>,
    position: &mut u64,
    prev: &mut Hash,
    recorded_at: DateTime<Utc>,
    rows: &mut Rows<'a>,
) -> Result<Appended, AppendError> {
    let ids: Vec<Uuid> = request
        .iter()
        .flat_map(|a| a.events.iter().map(|e| e.event_id))
        .collect();
    let found: Vec<&(u64, String, u64)> = ids.iter().filter_map(|id| known.get(id)).collect();
    if !found.is_empty() {
        // A retry of an append that already committed answers with where it
        // landed; a partial overlap is a different append reusing ids.
        if found.len() != ids.len() {
            let dup = ids.iter().find(|id| known.contains_key(id)).copied();
            return Err(AppendError::DuplicateEventId(dup.unwrap_or(ids[0])));
        }
        let stream_versions = request
            .iter()
            .map(|a| {
                a.events
                    .last()
                    .and_then(|e| known.get(&e.event_id))
                    .map_or(0, |k| k.2)
            })
            .collect();
        return Ok(Appended {
            first_position: found.iter().map(|k| k.0).min().unwrap_or(0),
            last_position: found.iter().map(|k| k.0).max().unwrap_or(0),
            stream_versions,
        });
    }
    let mut local = HashSet::new();
    for id in &ids {
        if batch_ids.contains(id) || !local.insert(*id) {
            return Err(AppendError::DuplicateEventId(*id));
        }
    }
    for a in request {
        let actual = current.get(&a.stream_id).copied().unwrap_or(0);
        if !version_matches(a.expected, actual) {
            return Err(AppendError::Conflict {
                stream_id: a.stream_id.clone(),
                expected: a.expected,
                actual,
            });
        }
    }
    batch_ids.extend(ids);
    let first_position = *position + 1;
    let mut stream_versions = Vec::with_capacity(request.len());
    for a in request {
        let mut version = current.get(&a.stream_id).copied().unwrap_or(0);
        for e in &a.events {
            version += 1;
            *position += 1;
            let metadata = serde_json::to_string(&e.metadata)
                .expect("metadata is plain data and always serialises");
            let hash = event_hash(
                prev,
                &CanonicalEvent {
                    global_position: *position,
                    stream_id: &a.stream_id,
                    stream_version: version,
                    event_id: e.event_id,
                    event_type: &e.event_type,
                    schema_version: e.schema_version,
                    data: e.data.get(),
                    metadata: &metadata,
                    recorded_at,
                },
            );
            rows.positions.push(*position as i64);
            rows.streams.push(&a.stream_id);
            rows.versions.push(version as i64);
            rows.ids.push(e.event_id);
            rows.types.push(&e.event_type);
            rows.schema_versions.push(e.schema_version as i32);
            rows.data.push(e.data.get());
            rows.metadata.push(metadata);
            rows.prev_hashes.push(*prev);
            rows.hashes.push(hash);
            *prev = hash;
        }
        current.insert(a.stream_id.clone(), version);
        stream_versions.push(version);
    }
    Ok(Appended {
        first_position,
        last_position: *position,
        stream_versions,
    })
}
