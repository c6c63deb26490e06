//! Group commit: one task per process owns a connection and turns every
//! append waiting in its queue into one transaction. Two pipelined round trips
//! per batch: lock the head and read the stream versions; then insert, move
//! the head, notify and commit. A request that conflicts
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

use crate::guard::RewindGuard;
use crate::memory::now_micros;
use crate::{version_matches, AppendError, Appended, ExpectedVersion, StoreError, StreamAppend};

/// How many times the appender yields to other tasks, when its queue is
/// empty, before it closes a batch (cf. PostgreSQL's `commit_delay`).
const GATHER_YIELDS: u32 = 4;

/// One caller's append and where to send its outcome.
pub(super) struct Job {
    pub appends: Vec<StreamAppend>,
    pub reply: oneshot::Sender<Result<Appended, AppendError>>,
}

struct Conn {
    client: Client,
    /// Drives the connection; ends once `client` is dropped and the
    /// session's Terminate is sent.
    driver: tokio::task::JoinHandle<()>,
    guard: Arc<RewindGuard>,
    lock_head: Statement,
    versions: Statement,
    existing: Statement,
    write: Statement,
    fast_write: Statement,
    /// The head and stream versions as of this connection's last commit.
    cache: std::sync::Mutex<Option<HeadCache>>,
}

/// What the appender knows of the log after its own last commit. It stays
/// exact for as long as nobody else appends, which the fast path checks by
/// moving the head only from the cached position.
struct HeadCache {
    position: u64,
    hash: Hash,
    versions: HashMap<String, u64>,
}

/// Streams remembered by the cache; past this it starts afresh.
const CACHE_STREAMS: usize = 100_000;

impl Conn {
    fn cache(&self) -> std::sync::MutexGuard<'_, Option<HeadCache>> {
        // Only plain data behind it, and no await while it is held.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a commit that moved the head from `from` to `to`.
    fn remember(&self, from: u64, to: u64, hash: Hash, versions: HashMap<String, u64>) {
        self.guard.reached(to);
        let mut cache = self.cache();
        match cache.as_mut() {
            Some(c) if c.position == from && c.versions.len() + versions.len() <= CACHE_STREAMS => {
                c.position = to;
                c.hash = hash;
                c.versions.extend(versions);
            }
            _ => {
                *cache = Some(HeadCache {
                    position: to,
                    hash,
                    versions,
                })
            }
        }
    }

    fn forget(&self) {
        *self.cache() = None;
    }

    /// Ends the session cleanly and waits until it has.
    async fn close(self) {
        let Conn { client, driver, .. } = self;
        drop(client);
        let _ = driver.await;
    }
}

impl Conn {
    async fn open(
        config: &tokio_postgres::Config,
        guard: Arc<RewindGuard>,
    ) -> Result<Self, StoreError> {
        let (client, connection) = config.connect(NoTls).await?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "appender connection closed");
            }
        });
        // A generic plan cached while the log was small (a sequential scan
        // and hash join) stays bad as the log grows; plan with the live size.
        client
            .batch_execute("SET plan_cache_mode = force_custom_plan")
            .await?;
        let (lock_head, versions, existing, write, fast_write) = tokio::try_join!(
            // Locks the head and, in the same round trip, reads the stream
            // versions. The versions come from the statement's snapshot,
            // taken before the lock was granted: `seen` is the head in that
            // snapshot, and if it differs from the locked head another
            // append committed in between and the versions are re-read.
            client.prepare(
                "WITH locked AS (SELECT position, hash FROM log_head WHERE id FOR UPDATE) \
                 SELECT l.position, l.hash, (SELECT position FROM log_head WHERE id), \
                 ARRAY(SELECT (SELECT e.stream_version FROM events e WHERE e.stream_id = s.id \
                 ORDER BY e.stream_version DESC LIMIT 1) \
                 FROM unnest($1::text[]) WITH ORDINALITY AS s(id, n) ORDER BY s.n) \
                 FROM locked l"
            ),
            client.prepare(
                "SELECT s.id, (SELECT e.stream_version FROM events e WHERE e.stream_id = s.id \
                 ORDER BY e.stream_version DESC LIMIT 1) FROM unnest($1::text[]) AS s(id)"
            ),
            client.prepare(
                "SELECT e.event_id, e.global_position, e.stream_id, e.stream_version \
                 FROM unnest($1::uuid[]) AS i(id), \
                 LATERAL (SELECT * FROM events WHERE event_id = i.id) AS e"
            ),
            // Inserts the batch, moves the head and queues the notification
            // (delivered at commit) in one statement.
            client.prepare(
                "WITH ins AS (INSERT INTO events (global_position, stream_id, stream_version, \
                 event_id, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash) \
                 SELECT p, s, v, i, t, sv, d::json, m::json, $9, ph, h \
                 FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], \
                 $6::int[], $7::text[], $8::text[], $10::bytea[], $11::bytea[]) \
                 AS u(p, s, v, i, t, sv, d, m, ph, h) RETURNING 1), \
                 moved AS (UPDATE log_head SET position = $12, hash = $13 WHERE id RETURNING 1) \
                 SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM moved), \
                 pg_notify('gatehouse_events', '')"
            ),
            // The fast path: one statement, its own transaction. It moves the
            // head only if it is still where this connection left it (the
            // row lock serialises it with every other appender), and inserts
            // only if the head moved; the unique indexes catch a stream that
            // exists although the cache did not know it.
            client.prepare(
                "WITH moved AS (UPDATE log_head SET position = $12, hash = $13 \
                 WHERE id AND position = $14 RETURNING 1), \
                 ins AS (INSERT INTO events (global_position, stream_id, stream_version, \
                 event_id, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash) \
                 SELECT p, s, v, i, t, sv, d::json, m::json, $9, ph, h \
                 FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], \
                 $6::int[], $7::text[], $8::text[], $10::bytea[], $11::bytea[]) \
                 AS u(p, s, v, i, t, sv, d, m, ph, h) \
                 WHERE EXISTS (SELECT 1 FROM moved) RETURNING 1) \
                 SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM ins), \
                 pg_notify('gatehouse_events', '')"
            ),
        )?;
        Ok(Conn {
            client,
            driver,
            guard,
            lock_head,
            versions,
            existing,
            write,
            fast_write,
            cache: std::sync::Mutex::new(None),
        })
    }
}

/// The appender: `lanes` connections take turns gathering the queue into
/// batches. While one lane's batch commits (and waits for its WAL flush), the
/// next lane already holds its batch and waits on the head row lock, so
/// commits follow each other without a client round trip in between. Ends
/// when every sender is gone, or once `closing` is set and the queue is
/// empty, each lane closing its connection.
pub(super) async fn run(
    config: tokio_postgres::Config,
    rx: mpsc::Receiver<Job>,
    wake: Arc<watch::Sender<u64>>,
    guard: Arc<RewindGuard>,
    closing: watch::Receiver<bool>,
    max_batch_events: usize,
    lanes: usize,
) {
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let lanes: Vec<_> = (0..lanes.max(1))
        .map(|_| {
            tokio::spawn(lane(
                config.clone(),
                rx.clone(),
                wake.clone(),
                guard.clone(),
                closing.clone(),
                max_batch_events,
            ))
        })
        .collect();
    for lane in lanes {
        let _ = lane.await;
    }
}

async fn lane(
    config: tokio_postgres::Config,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    wake: Arc<watch::Sender<u64>>,
    guard: Arc<RewindGuard>,
    mut closing: watch::Receiver<bool>,
    max_batch_events: usize,
) {
    let mut conn: Option<Conn> = None;
    loop {
        let jobs = {
            let mut rx = tokio::select! {
                rx = rx.lock() => rx,
                _ = closing.wait_for(|c| *c) => break,
            };
            // Queued jobs first: closing commits what was acknowledged to
            // the queue before the connection goes.
            let first = tokio::select! {
                biased;
                job = rx.recv() => job,
                _ = closing.wait_for(|c| *c) => None,
            };
            let Some(first) = first else { break };
            let mut size = event_count(&first);
            let mut jobs = vec![first];
            let mut yields = 0;
            while size < max_batch_events {
                match rx.try_recv() {
                    Ok(job) => {
                        size += event_count(&job);
                        jobs.push(job);
                    }
                    // Writers woken by the last commit may be about to
                    // enqueue: give them a moment before closing the batch.
                    Err(_) if yields < GATHER_YIELDS => {
                        yields += 1;
                        tokio::task::yield_now().await;
                    }
                    Err(_) => break,
                }
            }
            jobs
        };
        if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            match Conn::open(&config, guard.clone()).await {
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
    if let Some(c) = conn {
        c.close().await;
    }
}

fn event_count(job: &Job) -> usize {
    job.appends.iter().map(|a| a.events.len()).sum()
}

/// Commits a batch. The fast path skips the duplicate-id lookup and lets
/// the unique index catch a retried append; on any failure the batch is
/// retried with the lookup, and then one job per transaction, so that one bad
/// request cannot fail its neighbours. Returns whether anything committed.
async fn commit_jobs(conn: &Conn, jobs: Vec<Job>) -> bool {
    let requests: Vec<&[StreamAppend]> = jobs.iter().map(|j| j.appends.as_slice()).collect();
    let fast = match try_fast(conn, &requests).await {
        Some(o) => Some(o),
        None => try_batch(conn, &requests, false).await.ok(),
    };
    let outcome = match fast {
        Some(o) => Ok(recheck_conflicts(conn, &requests, o).await),
        None => try_batch(conn, &requests, true).await,
    };
    match outcome {
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
                let outcome = match try_batch(conn, &[job.appends.as_slice()], true).await {
                    Ok(mut o) => o
                        .pop()
                        .unwrap_or(Err(AppendError::Store(StoreError::Closed))),
                    Err(e) => Err(AppendError::Store(e)),
                };
                any |= outcome.is_ok();
                let _ = job.reply.send(outcome);
            }
            any
        }
    }
}

/// A conflict found without the duplicate-id lookup may be the retry of an
/// append that already committed; such requests are decided again with it.
async fn recheck_conflicts(
    conn: &Conn,
    requests: &[&[StreamAppend]],
    mut outcomes: Vec<Result<Appended, AppendError>>,
) -> Vec<Result<Appended, AppendError>> {
    let conflicted: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, Err(AppendError::Conflict { .. })))
        .map(|(i, _)| i)
        .collect();
    if conflicted.is_empty() {
        return outcomes;
    }
    let again: Vec<&[StreamAppend]> = conflicted.iter().map(|&i| requests[i]).collect();
    if let Ok(decided) = try_batch(conn, &again, true).await {
        for (i, outcome) in conflicted.into_iter().zip(decided) {
            outcomes[i] = outcome;
        }
    }
    outcomes
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

type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// The insert's column arrays as statement parameters `$1`..`$11`.
fn insert_params<'a>(
    rows: &'a Rows<'_>,
    recorded_at: &'a DateTime<Utc>,
    (prev_refs, hash_refs): &'a (Vec<&'a [u8]>, Vec<&'a [u8]>),
) -> Vec<Param<'a>> {
    vec![
        &rows.positions,
        &rows.streams,
        &rows.versions,
        &rows.ids,
        &rows.types,
        &rows.schema_versions,
        &rows.data,
        &rows.metadata,
        recorded_at,
        prev_refs,
        hash_refs,
    ]
}

/// The fast path: decides the batch against the cache and commits it in one
/// statement and one round trip. `None` when the cache cannot decide (no
/// cache, a stream it does not know that is not expected to be new) or the
/// statement did not commit (someone else appended, a stream existed after
/// all, a connection error): the caller takes the slow path, which reads
/// the truth under the head lock.
async fn try_fast(
    conn: &Conn,
    requests: &[&[StreamAppend]],
) -> Option<Vec<Result<Appended, AppendError>>> {
    // A fenced guard sends every batch to the locked path, which refuses it.
    if conn.guard.fenced().is_some() {
        return None;
    }
    let (from, hash, mut current) = {
        let cache = conn.cache();
        let cache = cache.as_ref()?;
        let mut current = HashMap::new();
        for a in requests.iter().flat_map(|r| r.iter()) {
            match cache.versions.get(&a.stream_id) {
                Some(&v) => {
                    current.insert(a.stream_id.clone(), v);
                }
                None if a.expected == ExpectedVersion::NoStream => {}
                None => return None,
            }
        }
        (cache.position, cache.hash, current)
    };
    let mut position = from;
    let mut prev = hash;
    let recorded_at: DateTime<Utc> = now_micros();
    let (rows, outcomes) = decide_all(
        requests,
        &HashMap::new(),
        &mut current,
        &mut position,
        &mut prev,
        recorded_at,
    );
    if rows.positions.is_empty() {
        return Some(outcomes);
    }
    let hashes: (Vec<&[u8]>, Vec<&[u8]>) = (
        rows.prev_hashes.iter().map(|h| h.as_slice()).collect(),
        rows.hashes.iter().map(|h| h.as_slice()).collect(),
    );
    let (to, expected) = (position as i64, from as i64);
    let head_hash: &[u8] = prev.as_slice();
    let mut params = insert_params(&rows, &recorded_at, &hashes);
    params.extend([&to as Param, &head_hash, &expected]);
    match conn.client.query_one(&conn.fast_write, &params).await {
        Ok(row) if row.get::<_, i64>(0) == 1 => {
            conn.remember(from, position, prev, current);
            Some(outcomes)
        }
        _ => {
            conn.forget();
            None
        }
    }
}

async fn try_batch(
    conn: &Conn,
    requests: &[&[StreamAppend]],
    check_duplicates: bool,
) -> Result<Vec<Result<Appended, AppendError>>, StoreError> {
    let c = &conn.client;
    let streams: Vec<&str> = requests
        .iter()
        .flat_map(|r| r.iter().map(|a| a.stream_id.as_str()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let ids: Vec<Uuid> = if check_duplicates {
        requests
            .iter()
            .flat_map(|r| r.iter().flat_map(|a| a.events.iter().map(|e| e.event_id)))
            .collect()
    } else {
        Vec::new()
    };

    let versions_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&streams];
    let existing_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&ids];
    let (begin, head, existing) = tokio::join!(
        c.batch_execute("BEGIN"),
        c.query_one(&conn.lock_head, &versions_params),
        async {
            if check_duplicates {
                c.query(&conn.existing, &existing_params).await
            } else {
                Ok(Vec::new())
            }
        },
    );
    let first_round = (|| {
        begin?;
        Ok::<_, tokio_postgres::Error>((head?, existing?))
    })();
    let (head, existing) = match first_round {
        Ok(v) => v,
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            return Err(e.into());
        }
    };

    let mut position = head.get::<_, i64>(0) as u64;
    let head_hash: &[u8] = head.get(1);
    let Ok(mut prev) = <Hash>::try_from(head_hash) else {
        let _ = c.batch_execute("ROLLBACK").await;
        return Err(StoreError::Corrupt {
            position,
            reason: "log head hash is not 32 bytes".into(),
        });
    };
    // The head is locked: below what this node knows the log reached, the
    // next positions were acknowledged for other events. Refuse.
    if let Err(rewound) = conn.guard.check(position) {
        let _ = c.batch_execute("ROLLBACK").await;
        return Err(rewound.into());
    }
    let (locked, locked_hash) = (position, prev);
    let seen: i64 = head.get(2);
    let mut current: HashMap<String, u64> = if seen == position as i64 {
        let versions: Vec<Option<i64>> = head.get(3);
        streams
            .iter()
            .zip(versions)
            .filter_map(|(s, v)| Some((s.to_string(), v? as u64)))
            .collect()
    } else {
        let versions = match c.query(&conn.versions, &versions_params).await {
            Ok(v) => v,
            Err(e) => {
                let _ = c.batch_execute("ROLLBACK").await;
                return Err(e.into());
            }
        };
        versions
            .iter()
            .filter_map(|r| Some((r.get::<_, String>(0), r.get::<_, Option<i64>>(1)? as u64)))
            .collect()
    };
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
    let (rows, outcomes) = decide_all(
        requests,
        &known,
        &mut current,
        &mut position,
        &mut prev,
        recorded_at,
    );

    if rows.positions.is_empty() {
        c.batch_execute("ROLLBACK").await?;
        conn.remember(locked, locked, locked_hash, current);
        return Ok(outcomes);
    }
    let hashes: (Vec<&[u8]>, Vec<&[u8]>) = (
        rows.prev_hashes.iter().map(|h| h.as_slice()).collect(),
        rows.hashes.iter().map(|h| h.as_slice()).collect(),
    );
    let new_head = position as i64;
    let head_hash: &[u8] = prev.as_slice();
    let mut write_params = insert_params(&rows, &recorded_at, &hashes);
    write_params.extend([&new_head as Param, &head_hash]);
    let (write, commit) = tokio::join!(
        c.execute(&conn.write, &write_params),
        c.batch_execute("COMMIT"),
    );
    // After a failed statement PostgreSQL answers COMMIT with a rollback, so
    // the batch committed only if the write succeeded.
    if let (Ok(_), Ok(())) = (&write, &commit) {
        conn.remember(locked, position, prev, current);
        return Ok(outcomes);
    }
    conn.forget();
    write?;
    commit?;
    Ok(outcomes)
}

/// Decides every request of a batch in order, each against the state the
/// ones before it left.
fn decide_all<'a>(
    requests: &[&'a [StreamAppend]],
    known: &HashMap<Uuid, (u64, String, u64)>,
    current: &mut HashMap<String, u64>,
    position: &mut u64,
    prev: &mut Hash,
    recorded_at: DateTime<Utc>,
) -> (Rows<'a>, Vec<Result<Appended, AppendError>>) {
    let mut rows = Rows::default();
    let mut batch_ids = HashSet::new();
    let outcomes = requests
        .iter()
        .map(|request| {
            decide(
                request,
                known,
                &mut batch_ids,
                current,
                position,
                prev,
                recorded_at,
                &mut rows,
            )
        })
        .collect();
    (rows, outcomes)
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
        let same_streams = request.iter().all(|a| {
            a.events
                .iter()
                .all(|e| known.get(&e.event_id).is_some_and(|k| k.1 == a.stream_id))
        });
        if found.len() != ids.len() || !same_streams {
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
