//! The PostgreSQL event store.
//!
//! Appends go through one appender task per process that gathers concurrent
//! requests into one transaction (group commit). Each transaction locks the
//! single `log_head` row, which serialises position allocation, so positions
//! are gap-free and in commit order, and carries the hash the chain continues
//! from. A commit bumps the local wake-up counter at once and sends a
//! payload-less `NOTIFY` so other processes re-read the table.

mod appender;
mod migrate;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use event_schemas::RecordedEvent;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls, Row};
use uuid::Uuid;

pub use migrate::{migrate, Migration};

use crate::{validate, AppendError, Appended, EventStore, StoreError, StreamAppend};

/// The channel commits are announced on.
pub const NOTIFY_CHANNEL: &str = "gatehouse_events";

/// The store's own migrations, applied at start.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_events.sql",
        sql: include_str!("../../migrations/0001_events.sql"),
    },
    Migration {
        name: "0002_projections.sql",
        sql: include_str!("../../migrations/0002_projections.sql"),
    },
    Migration {
        name: "0003_generation_lease.sql",
        sql: include_str!("../../migrations/0003_generation_lease.sql"),
    },
];

/// Columns of `events` in the order [`decode_row`] expects.
pub const EVENT_COLUMNS: &str =
    "global_position, stream_id, stream_version, event_id, event_type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash";

/// Tuning of the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStoreOptions {
    /// Connections in the shared pool (reads, projections, API).
    pub pool_size: usize,
    /// Most events gathered into one append transaction.
    pub max_batch_events: usize,
    /// Appender connections taking turns (see the appender's docs).
    pub append_lanes: usize,
    /// How long a subscriber at the head waits for a `NOTIFY` before it
    /// re-reads the log anyway (the backstop for a lost notification). The
    /// store does not poll itself: [`PgStore::subscribe`] passes it to its
    /// subscriptions, and [`PgStore::poll_interval`] hands it to others
    /// (`Subscription::with_poll`, a projection runner's
    /// `with_poll_interval`).
    pub poll_interval: Duration,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        PgStoreOptions {
            pool_size: 16,
            max_batch_events: 2000,
            append_lanes: 1,
            poll_interval: crate::Subscription::DEFAULT_POLL,
        }
    }
}

/// The PostgreSQL event store.
pub struct PgStore {
    pool: Pool,
    appender: mpsc::Sender<appender::Job>,
    /// Set by [`PgStore::close`]: the appender's lanes finish what is
    /// queued and close their connections.
    closing: watch::Sender<bool>,
    appender_task: std::sync::Mutex<Option<JoinHandle<()>>>,
    guard: Arc<crate::guard::RewindGuard>,
    wake: Arc<watch::Sender<u64>>,
    listener: JoinHandle<()>,
    poll_interval: Duration,
}

impl PgStore {
    /// Connects, applies the migrations, and starts the appender and the
    /// LISTEN task.
    pub async fn connect(
        config: tokio_postgres::Config,
        options: PgStoreOptions,
    ) -> Result<Self, StoreError> {
        let pool = pool(&config, options.pool_size);
        {
            let mut client = pool.get().await?;
            migrate(&mut client, "event-store", MIGRATIONS).await?;
        }
        let wake = Arc::new(watch::Sender::new(0u64));
        let (tx, rx) = mpsc::channel(4096);
        let closing = watch::Sender::new(false);
        let guard = Arc::new(crate::guard::RewindGuard::default());
        let appender_task = tokio::spawn(appender::run(
            config.clone(),
            rx,
            wake.clone(),
            guard.clone(),
            closing.subscribe(),
            options.max_batch_events,
            options.append_lanes,
        ));
        let listener = tokio::spawn(listen(config, NOTIFY_CHANNEL, wake.clone()));
        Ok(PgStore {
            pool,
            appender: tx,
            closing,
            appender_task: std::sync::Mutex::new(Some(appender_task)),
            guard,
            wake,
            listener,
            poll_interval: options.poll_interval,
        })
    }

    /// The shared connection pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The rewind guard: positions this store committed raise its floor;
    /// the appender checks the locked head against it.
    pub fn guard(&self) -> Arc<crate::guard::RewindGuard> {
        self.guard.clone()
    }

    /// Reads how far the log reaches (the lower of the head row and the
    /// newest event, so a tail cut without moving the head shows too) and
    /// checks it against the guard.
    pub async fn check_head(&self) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        // The floor before the statement's snapshot: a commit that lands
        // meanwhile may raise it past what the snapshot can see.
        let floor = self.guard.floor();
        let row = client
            .query_one(
                "SELECT LEAST((SELECT position FROM log_head WHERE id), \
                 COALESCE((SELECT max(global_position) FROM events), 0))",
                &[],
            )
            .await?;
        let head = row.get::<_, i64>(0) as u64;
        self.guard.check_against(head, floor)?;
        Ok(head)
    }

    /// Closes every connection this store holds, cleanly (each session
    /// ends with a Terminate, not a broken socket): the appender commits
    /// what is queued and closes, the LISTEN connection and the pool close.
    /// Appends after this fail with [`StoreError::Closed`]. Call it before
    /// the database it uses stops.
    pub async fn close(&self) {
        self.closing.send_replace(true);
        let task = self
            .appender_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.listener.abort();
        self.pool.close();
    }

    /// The poll interval this store was configured with
    /// ([`PgStoreOptions::poll_interval`]).
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// A subscription to events after `after` that polls at this store's
    /// [`poll_interval`](Self::poll_interval).
    pub fn subscribe(self: &Arc<Self>, after: u64) -> crate::Subscription {
        crate::Subscription::with_poll(self.clone(), after, self.poll_interval)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

#[async_trait]
impl EventStore for PgStore {
    async fn append_all(&self, appends: Vec<StreamAppend>) -> Result<Appended, AppendError> {
        validate(&appends)?;
        if let Some(rewound) = self.guard.fenced() {
            return Err(AppendError::Store(rewound.into()));
        }
        let (reply, rx) = oneshot::channel();
        self.appender
            .send(appender::Job { appends, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version >= $2 \
                 ORDER BY stream_version LIMIT $3"
            ))
            .await?;
        let rows = client
            .query(
                &stmt,
                &[&stream_id, &(from_version as i64), &(limit as i64)],
            )
            .await?;
        rows.iter().map(decode_row).collect()
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.pool.get().await?;
        let events = read_all_with(&client, after, limit).await?;
        // What this node has read, it knows the log reached.
        if let Some(last) = events.last() {
            self.guard.reached(last.global_position);
        }
        Ok(events)
    }

    async fn event_by_id(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE event_id = $1"
            ))
            .await?;
        let row = client.query_opt(&stmt, &[&event_id]).await?;
        row.as_ref().map(decode_row).transpose()
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one("SELECT position FROM log_head WHERE id", &[])
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }
}

/// A connection pool for `config` (connections are opened on demand).
pub fn pool(config: &tokio_postgres::Config, size: usize) -> Pool {
    Pool::builder(Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    ))
    .max_size(size)
    .build()
    .expect("a pool with the tokio runtime and no timeouts always builds")
}

/// Reads the log after `after` on a given client (used inside transactions).
pub async fn read_all_with(
    client: &impl deadpool_postgres::GenericClient,
    after: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE global_position > $1 \
             ORDER BY global_position LIMIT $2"
        ))
        .await?;
    let rows = client
        .query(&stmt, &[&(after as i64), &(limit as i64)])
        .await?;
    rows.iter().map(decode_row).collect()
}

/// Decodes a row selected with [`EVENT_COLUMNS`].
pub fn decode_row(row: &Row) -> Result<RecordedEvent, StoreError> {
    let position = row.try_get::<_, i64>(0)? as u64;
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let hash_of = |i: usize| -> Result<[u8; 32], StoreError> {
        let bytes: &[u8] = row.try_get(i)?;
        bytes
            .try_into()
            .map_err(|_| corrupt(format!("column {i} is not a 32-byte hash")))
    };
    let data: tokio_postgres::types::Json<Box<serde_json::value::RawValue>> = row.try_get(6)?;
    let metadata: tokio_postgres::types::Json<Box<serde_json::value::RawValue>> = row.try_get(7)?;
    Ok(RecordedEvent {
        global_position: position,
        stream_id: row.try_get(1)?,
        stream_version: row.try_get::<_, i64>(2)? as u64,
        event_id: row.try_get(3)?,
        event_type: row.try_get(4)?,
        schema_version: row.try_get::<_, i32>(5)? as u32,
        data: data.0,
        metadata: metadata.0,
        recorded_at: row.try_get(8)?,
        prev_hash: hash_of(9)?,
        hash: hash_of(10)?,
    })
}

/// Keeps a LISTEN connection open and turns notifications into wake-ups;
/// reconnects with a pause, and wakes everyone after a reconnect because
/// notifications sent while disconnected are lost.
/// Follows `NOTIFY` on `channel` (a plain identifier): a counter that
/// changes with every notification and with every reconnection (which may
/// have missed some), for as long as the receiver lives.
pub fn listen_channel(
    config: tokio_postgres::Config,
    channel: &'static str,
) -> watch::Receiver<u64> {
    let wake = Arc::new(watch::Sender::new(0u64));
    let rx = wake.subscribe();
    tokio::spawn(async move {
        tokio::select! {
            () = listen(config, channel, wake.clone()) => {}
            () = wake.closed() => {}
        }
    });
    rx
}

async fn listen(config: tokio_postgres::Config, channel: &str, wake: Arc<watch::Sender<u64>>) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = mpsc::unbounded_channel::<()>();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => {
                                if tx.send(()).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {channel}")).await {
                    Ok(()) => {
                        wake.send_modify(|n| *n = n.wrapping_add(1));
                        while rx.recv().await.is_some() {
                            wake.send_modify(|n| *n = n.wrapping_add(1));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN failed"),
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(error = %e, "event notification connection failed"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Appends events already recorded elsewhere (the KurrentDB log, whose
/// mirror this table then is), with their positions and hashes, if they
/// continue this table's head: answers whether they were written (`false`:
/// the head is elsewhere, another mirror wrote first). The chain is checked
/// at the seam, so a mirror never splices a foreign log onto this one.
pub async fn import(
    client: &impl deadpool_postgres::GenericClient,
    events: &[RecordedEvent],
) -> Result<bool, StoreError> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok(true);
    };
    let positions: Vec<i64> = events.iter().map(|e| e.global_position as i64).collect();
    let streams: Vec<&str> = events.iter().map(|e| e.stream_id.as_str()).collect();
    let versions: Vec<i64> = events.iter().map(|e| e.stream_version as i64).collect();
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let schemas: Vec<i32> = events.iter().map(|e| e.schema_version as i32).collect();
    let data: Vec<&str> = events.iter().map(|e| e.data.get()).collect();
    let metadata: Vec<&str> = events.iter().map(|e| e.metadata.get()).collect();
    let times: Vec<chrono::DateTime<chrono::Utc>> = events.iter().map(|e| e.recorded_at).collect();
    let prev: Vec<&[u8]> = events.iter().map(|e| e.prev_hash.as_slice()).collect();
    let hashes: Vec<&[u8]> = events.iter().map(|e| e.hash.as_slice()).collect();
    let stmt = client
        .prepare_cached(
            "WITH moved AS (UPDATE log_head SET position = $12, hash = $13 \
             WHERE id AND position = $14 AND hash = $15 RETURNING 1), \
             ins AS (INSERT INTO events (global_position, stream_id, stream_version, \
             event_id, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash) \
             SELECT p, s, v, i, t, sv, d::json, m::json, r, ph, h \
             FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], \
             $6::int[], $7::text[], $8::text[], $9::timestamptz[], $10::bytea[], $11::bytea[]) \
             AS u(p, s, v, i, t, sv, d, m, r, ph, h) \
             WHERE EXISTS (SELECT 1 FROM moved) RETURNING 1) \
             SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM ins), \
             pg_notify('gatehouse_events', '')",
        )
        .await?;
    let row = client
        .query_one(
            &stmt,
            &[
                &positions,
                &streams,
                &versions,
                &ids,
                &types,
                &schemas,
                &data,
                &metadata,
                &times,
                &prev,
                &hashes,
                &(last.global_position as i64),
                &last.hash.as_slice(),
                &(first.global_position as i64 - 1),
                &first.prev_hash.as_slice(),
            ],
        )
        .await?;
    Ok(row.get::<_, i64>(0) == 1)
}
