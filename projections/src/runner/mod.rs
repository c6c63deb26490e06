//! The projection runner: one batch per transaction, checkpoint included;
//! fenced by locking the checkpoint row; blue/green generations.
//!
//! A generation is a schema `rm_<name>_g<n>` with the projection's tables and
//! a row in `projection_generations`. Exactly one generation per name is
//! active; the API reads it through views `rm.<table>`. A new projection
//! version, or `gatehouse-replay rebuild`, fills a new generation from position
//! 0 while the active one keeps serving, then [`swap`]s in one transaction.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Transaction;
use deadpool_postgres::{GenericClient, Pool};
use event_schemas::RecordedEvent;
use event_store::postgres::{decode_row, EVENT_COLUMNS};
use event_store::SharedStore;

use crate::status::{ProjectionState, ProjectionStatus, Statuses};
use crate::{Projection, ProjectionError};

mod rebuild;
pub use rebuild::{
    claim_building, rebuild, rebuild_all, PassProgress, RebuildOptions, RebuildProgress, Rebuilt,
};

/// Events per batch while following the log.
const FOLLOW_BATCH: usize = 1000;
/// Events per batch while filling a new generation (of each projection in
/// one pass of [`rebuild_all`]): large enough that a batch's fixed costs
/// (a transaction, one query per table) vanish, small enough that the rows
/// it holds stay a few tens of megabytes.
pub const FILL_BATCH: usize = 20_000;
/// Settings of a transaction that fills a building generation. It serves
/// nobody yet: if the database crashes, the batches it loses (with their
/// checkpoint) are simply applied again, so commits need not wait for the
/// disk. Its tables grow from nothing without statistics, so a plan cached
/// while they were empty would scan them whole for every key looked up;
/// every read of a fill goes by an index.
pub(crate) const FILLING: &str =
    "SET LOCAL synchronous_commit = off; SET LOCAL enable_seqscan = off";

/// How long a failed batch (the database or the pool failed) waits before
/// it is retried. Not the poll interval: a long poll must not slow recovery.
const BACKOFF: Duration = Duration::from_secs(1);
/// How long a failed projection waits before retrying its poison event.
const RETRY: Duration = Duration::from_secs(5);
/// How long a building generation stays its filler's without renewal. The
/// filler renews it before every batch; its longest pause ([`RETRY`]) is
/// well inside it.
pub const LEASE: Duration = Duration::from_secs(30);

/// A generation of a projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Its number, from 1.
    pub generation: i32,
    /// The projection version that fills it.
    pub version: i32,
    /// Its checkpoint.
    pub position: u64,
    /// `building`, `active` or `retired`.
    pub state: String,
}

/// The schema of a generation.
pub fn schema_name(name: &str, generation: i32) -> String {
    format!("rm_{name}_g{generation}")
}

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Applied events up to this checkpoint.
    Applied(u64),
    /// Nothing new after this checkpoint.
    Idle(u64),
    /// Another runner holds the checkpoint row; it is at this position.
    Locked(u64),
    /// The generation was retired by a swap.
    Retired,
}

/// Keeps one projection current in this process (or stands by while another
/// process does).
pub struct Runner {
    pool: Pool,
    store: SharedStore,
    projection: Arc<dyn Projection>,
    statuses: Statuses,
    /// How long to wait for a wake-up before polling anyway.
    poll: Duration,
}

impl Runner {
    /// A runner for `projection`, polling every
    /// [`Subscription::DEFAULT_POLL`](event_store::Subscription::DEFAULT_POLL)
    /// when no wake-up comes.
    pub fn new(
        pool: Pool,
        store: SharedStore,
        projection: Arc<dyn Projection>,
        statuses: Statuses,
    ) -> Self {
        Runner {
            pool,
            store,
            projection,
            statuses,
            poll: event_store::Subscription::DEFAULT_POLL,
        }
    }

    /// Sets how long the runner waits for a wake-up before it re-reads the
    /// log anyway (e.g. `PgStore::poll_interval`).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Makes sure the projection has an active generation (creating the
    /// first one, with its views, if needed) and returns it.
    pub async fn ensure_active(&self) -> Result<Generation, ProjectionError> {
        ensure_active(&self.pool, self.projection.as_ref()).await
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        tokio::select! {
            _ = &mut shutdown => {}
            _ = self.run_forever() => {}
        }
    }

    /// Follows the active generation's checkpoint without applying events,
    /// for nodes that serve reads but run no projections; until `shutdown`.
    pub async fn watch(self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut wake = self.store.wakeups();
        loop {
            wake.borrow_and_update();
            match self.pool.get().await {
                Ok(client) => match active_generation(&client, self.projection.name()).await {
                    Ok(Some(g)) => self.publish(g.position, ProjectionState::Standby),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read a projection checkpoint"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot read a projection checkpoint"),
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::timeout(self.poll, wake.changed()) => {}
            }
        }
    }

    async fn run_forever(&self) {
        let name = self.projection.name();
        loop {
            let active = match self.ensure_active().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(projection = name, error = %e, "cannot prepare projection");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            if (active.version as u32) > self.projection.version() {
                // A newer version is deployed elsewhere (a rolling deploy):
                // never rebuild backwards; follow its checkpoint.
                tracing::warn!(
                    projection = name,
                    active = active.version,
                    ours = self.projection.version(),
                    "a newer version of this projection is active; standing by"
                );
                self.follow_checkpoint().await;
                continue;
            }
            if (active.version as u32) < self.projection.version() {
                // A new version: fill a new generation while the old one
                // serves what it has (its own code is gone from this build,
                // so it does not advance here until the swap).
                self.publish(active.position, ProjectionState::Standby);
                if let Err(e) = self.upgrade(&active).await {
                    tracing::error!(projection = name, error = %e, "upgrade failed");
                    tokio::time::sleep(RETRY).await;
                }
                continue;
            }
            self.follow(active.generation, true).await;
        }
    }

    async fn upgrade(&self, active: &Generation) -> Result<(), ProjectionError> {
        tracing::info!(
            projection = self.projection.name(),
            from = active.version,
            to = self.projection.version(),
            "rebuilding a new projection version blue/green"
        );
        let building = find_or_create_building(&self.pool, self.projection.as_ref()).await?;
        self.follow(building.generation, false).await;
        Ok(())
    }

    /// Applies batches to `generation` until it is retired (active) or
    /// caught up and swapped in (building).
    async fn follow(&self, generation: i32, active: bool) {
        let name = self.projection.name();
        let mut wake = self.store.wakeups();
        let batch = if active { FOLLOW_BATCH } else { FILL_BATCH };
        loop {
            wake.borrow_and_update();
            if !active {
                if let Err(e) = renew_lease(&self.pool, name, generation).await {
                    tracing::warn!(projection = name, error = %e, "renewing a building generation's lease failed");
                }
            }
            match step(&self.pool, self.projection.as_ref(), generation, batch).await {
                Ok(Step::Applied(position)) => {
                    if active {
                        self.publish(position, ProjectionState::Active);
                    }
                    continue;
                }
                Ok(Step::Idle(position)) => {
                    if !active {
                        let swapped = async {
                            build_indexes(&self.pool, self.projection.as_ref(), generation).await?;
                            swap(&self.pool, self.projection.as_ref(), generation).await
                        };
                        match swapped.await {
                            Ok(position) => {
                                self.publish(position, ProjectionState::Active);
                                return;
                            }
                            Err(e) => {
                                tracing::error!(projection = name, error = %e, "swap failed");
                                tokio::time::sleep(RETRY).await;
                                continue;
                            }
                        }
                    }
                    self.publish(position, ProjectionState::Active);
                }
                Ok(Step::Locked(position)) => {
                    if active {
                        self.publish(position, ProjectionState::Standby);
                    }
                }
                Ok(Step::Retired) => return,
                Err((0, e)) => {
                    // Not an event's fault: the database or the pool failed.
                    let error = format!("{e}");
                    tracing::warn!(
                        projection = name,
                        error,
                        "projection batch failed; retrying"
                    );
                    if active {
                        self.publish_state(ProjectionState::Failed { position: 0, error });
                    }
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
                Err((position, e)) => {
                    let error = format!("{e}");
                    tracing::error!(
                        projection = name,
                        position,
                        error,
                        "projection stopped at a poison event"
                    );
                    record_failure(&self.pool, name, generation, position, &error).await;
                    if active {
                        self.publish(
                            position.saturating_sub(1),
                            ProjectionState::Failed { position, error },
                        );
                    }
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            }
            if let Ok(Err(_)) = tokio::time::timeout(self.poll, wake.changed()).await {
                tokio::time::sleep(self.poll).await;
            }
        }
    }

    /// Publishes a state, keeping the published position.
    fn publish_state(&self, state: ProjectionState) {
        let position = self
            .statuses
            .snapshot()
            .into_iter()
            .find(|(n, _)| *n == self.projection.name())
            .map_or(0, |(_, s)| s.position);
        self.publish(position, state);
    }

    /// Publishes the active generation's checkpoint as it moves, for as long
    /// as another process (with another version) runs the projection.
    async fn follow_checkpoint(&self) {
        let mut wake = self.store.wakeups();
        loop {
            wake.borrow_and_update();
            if let Ok(client) = self.pool.get().await {
                if let Ok(Some(g)) = active_generation(&client, self.projection.name()).await {
                    if g.version as u32 <= self.projection.version() {
                        return;
                    }
                    self.publish(g.position, ProjectionState::Standby);
                }
            }
            let _ = tokio::time::timeout(self.poll, wake.changed()).await;
        }
    }

    fn publish(&self, position: u64, state: ProjectionState) {
        self.statuses
            .publish(self.projection.name(), ProjectionStatus { position, state });
    }
}

async fn record_failure(pool: &Pool, name: &str, generation: i32, position: u64, error: &str) {
    let result = async {
        let client = pool.get().await?;
        client
            .execute(
                "UPDATE projection_generations SET error = $3, error_position = $4, updated_at = now() \
                 WHERE name = $1 AND generation = $2",
                &[&name, &generation, &error, &(position as i64)],
            )
            .await?;
        Ok::<_, ProjectionError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(projection = name, error = %e, "cannot record the projection failure");
    }
}

/// Returns the active generation, creating the first one if there is none.
pub async fn ensure_active(
    pool: &Pool,
    projection: &dyn Projection,
) -> Result<Generation, ProjectionError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    lock_name(&tx, projection.name()).await?;
    if let Some(active) = active_generation(&tx, projection.name()).await? {
        tx.commit().await?;
        return Ok(active);
    }
    let generation = create_generation(&tx, projection, "active").await?;
    expose(&tx, projection, generation.generation).await?;
    tx.commit().await?;
    Ok(generation)
}

/// The active generation of `name`, if any.
pub async fn active_generation(
    client: &impl GenericClient,
    name: &str,
) -> Result<Option<Generation>, ProjectionError> {
    let row = client
        .query_opt(
            "SELECT generation, version, position, state FROM projection_generations \
             WHERE name = $1 AND state = 'active'",
            &[&name],
        )
        .await?;
    Ok(row.map(|r| Generation {
        generation: r.get(0),
        version: r.get(1),
        position: r.get::<_, i64>(2) as u64,
        state: r.get(3),
    }))
}

/// Serialises creation of generations of one projection across processes.
async fn lock_name(tx: &Transaction<'_>, name: &str) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('projection:' || $1))",
        &[&name],
    )
    .await
    .map(|_| ())
}

async fn create_generation(
    tx: &Transaction<'_>,
    projection: &dyn Projection,
    state: &str,
) -> Result<Generation, ProjectionError> {
    let name = projection.name();
    let generation: i32 = tx
        .query_one(
            "SELECT coalesce(max(generation), 0) + 1 FROM projection_generations WHERE name = $1",
            &[&name],
        )
        .await?
        .get(0);
    let schema = schema_name(name, generation);
    tx.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
         SET LOCAL search_path TO {schema}, public;"
    ))
    .await?;
    tx.batch_execute(projection.schema()).await?;
    if state == "active" {
        // Nothing to load first: its read indexes come with it.
        tx.batch_execute(projection.indexes()).await?;
    }
    tx.batch_execute("SET LOCAL search_path TO DEFAULT").await?;
    let version = projection.version() as i32;
    tx.execute(
        "INSERT INTO projection_generations (name, generation, version, position, state) \
         VALUES ($1, $2, $3, 0, $4)",
        &[&name, &generation, &version, &state],
    )
    .await?;
    Ok(Generation {
        generation,
        version,
        position: 0,
        state: state.to_owned(),
    })
}

/// Points the views `rm.<table>` at a generation's tables.
async fn expose(
    tx: &Transaction<'_>,
    projection: &dyn Projection,
    generation: i32,
) -> Result<(), ProjectionError> {
    let schema = schema_name(projection.name(), generation);
    let mut sql = String::new();
    for table in projection.tables() {
        sql.push_str(&format!(
            "DROP VIEW IF EXISTS rm.{table}; CREATE VIEW rm.{table} AS SELECT * FROM {schema}.{table};"
        ));
    }
    tx.batch_execute(&sql).await?;
    Ok(())
}

/// Builds a filled generation's read indexes ([`Projection::indexes`]) and
/// its statistics, before it is swapped in.
pub async fn build_indexes(
    pool: &Pool,
    projection: &dyn Projection,
    generation: i32,
) -> Result<(), ProjectionError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.batch_execute(&format!(
        "SET LOCAL search_path TO {}, public; SET LOCAL maintenance_work_mem = '256MB';",
        schema_name(projection.name(), generation)
    ))
    .await?;
    tx.batch_execute(projection.indexes()).await?;
    // Statistics before it serves, so the API's first plans over it are
    // not made for empty tables.
    tx.batch_execute(&format!(
        "ANALYZE {}",
        qualified_tables(projection, generation)
    ))
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Every table of a generation, schema-qualified and comma-separated.
fn qualified_tables(projection: &dyn Projection, generation: i32) -> String {
    let schema = schema_name(projection.name(), generation);
    projection
        .tables()
        .iter()
        .map(|t| format!("{schema}.{t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Gives up a building generation's lease at once, so the next rebuild
/// resumes it instead of waiting for the lease to lapse (an interrupted
/// `gatehouse-replay rebuild`).
pub async fn release(pool: &Pool, name: &str, generation: i32) -> Result<(), ProjectionError> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE projection_generations SET lease_until = now() - interval '1 second' \
             WHERE name = $1 AND generation = $2 AND state = 'building'",
            &[&name, &generation],
        )
        .await?;
    Ok(())
}

/// Keeps a building generation its filler's for another [`LEASE`].
pub async fn renew_lease(pool: &Pool, name: &str, generation: i32) -> Result<(), ProjectionError> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE projection_generations SET lease_until = now() + make_interval(secs => $3) \
             WHERE name = $1 AND generation = $2 AND state = 'building'",
            &[&name, &generation, &LEASE.as_secs_f64()],
        )
        .await?;
    Ok(())
}

/// A building generation of the current version to resume, or a new one.
async fn find_or_create_building(
    pool: &Pool,
    projection: &dyn Projection,
) -> Result<Generation, ProjectionError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    lock_name(&tx, projection.name()).await?;
    let version = projection.version() as i32;
    let row = tx
        .query_opt(
            "SELECT generation, version, position, state FROM projection_generations \
             WHERE name = $1 AND state = 'building' AND version = $2 \
             ORDER BY generation DESC LIMIT 1",
            &[&projection.name(), &version],
        )
        .await?;
    let generation = match row {
        Some(r) => Generation {
            generation: r.get(0),
            version: r.get(1),
            position: r.get::<_, i64>(2) as u64,
            state: r.get(3),
        },
        None => create_generation(&tx, projection, "building").await?,
    };
    tx.commit().await?;
    Ok(generation)
}

/// Reads the events of `(after, upto]` that the projection handles.
async fn read_range(
    client: &impl GenericClient,
    projection: &dyn Projection,
    after: u64,
    upto: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, ProjectionError> {
    let rows = match projection.event_types() {
        None => {
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM public.events \
                     WHERE global_position > $1 AND global_position <= $2 \
                     ORDER BY global_position LIMIT $3"
                ))
                .await?;
            client
                .query(&stmt, &[&(after as i64), &(upto as i64), &(limit as i64)])
                .await?
        }
        Some(types) => {
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM public.events \
                     WHERE global_position > $1 AND global_position <= $2 \
                     AND event_type = ANY($4) ORDER BY global_position LIMIT $3"
                ))
                .await?;
            client
                .query(
                    &stmt,
                    &[&(after as i64), &(upto as i64), &(limit as i64), &types],
                )
                .await?
        }
    };
    Ok(rows.iter().map(decode_row).collect::<Result<_, _>>()?)
}

/// Applies events in `(after, head]` to the open transaction, in batches,
/// and returns the new checkpoint. With `limit_once`, one batch only.
async fn apply_range(
    tx: &Transaction<'_>,
    projection: &dyn Projection,
    generation: i32,
    after: u64,
    batch: usize,
    limit_once: bool,
) -> Result<u64, (u64, ProjectionError)> {
    let at = |p: u64| move |e: ProjectionError| (p + 1, e);
    // Everything at or below the head is committed and visible: positions are
    // allocated under the head lock, so reading up to it leaves no gap.
    let head: i64 = tx
        .query_one("SELECT position FROM public.log_head WHERE id", &[])
        .await
        .map_err(|e| (after + 1, e.into()))?
        .get(0);
    let head = head as u64;
    let mut checkpoint = after;
    tx.batch_execute(&format!(
        "SET LOCAL search_path TO {}, public",
        schema_name(projection.name(), generation)
    ))
    .await
    .map_err(|e| at(checkpoint)(e.into()))?;
    while checkpoint < head {
        let events = read_range(tx, projection, checkpoint, head, batch)
            .await
            .map_err(at(checkpoint))?;
        let full = events.len() == batch;
        if !events.is_empty() {
            let events: Vec<&RecordedEvent> = events.iter().collect();
            projection
                .apply(tx, &events)
                .await
                .map_err(|e| (events[0].global_position, e))?;
        }
        checkpoint = match events.last() {
            Some(last) if full => last.global_position,
            _ => head,
        };
        if limit_once {
            break;
        }
    }
    tx.batch_execute("SET LOCAL search_path TO DEFAULT")
        .await
        .map_err(|e| at(checkpoint)(e.into()))?;
    Ok(checkpoint)
}

/// One batch in one transaction: lock the checkpoint row (or find another
/// runner holds it), apply, move the checkpoint, commit. On failure returns
/// the position of the event that failed.
async fn step(
    pool: &Pool,
    projection: &dyn Projection,
    generation: i32,
    batch: usize,
) -> Result<Step, (u64, ProjectionError)> {
    let name = projection.name();
    let outcome = step_once(pool, projection, generation, batch).await;
    match outcome {
        Err((position, _)) if batch > 1 => {
            // Find the exact poison event: retry the failing batch one event
            // at a time, applying the good events before it.
            tracing::warn!(
                projection = name,
                position,
                "batch failed; retrying event by event"
            );
            let mut last = Ok(Step::Idle(0));
            for _ in 0..batch {
                last = step_once(pool, projection, generation, 1).await;
                if !matches!(last, Ok(Step::Applied(_))) {
                    break;
                }
            }
            last
        }
        other => other,
    }
}

async fn step_once(
    pool: &Pool,
    projection: &dyn Projection,
    generation: i32,
    batch: usize,
) -> Result<Step, (u64, ProjectionError)> {
    let name = projection.name();
    let early = |e: ProjectionError| (0u64, e);
    let mut client = pool.get().await.map_err(|e| early(e.into()))?;
    let tx = client.transaction().await.map_err(|e| early(e.into()))?;
    let row = tx
        .query_opt(
            "SELECT position, state FROM projection_generations \
             WHERE name = $1 AND generation = $2 FOR UPDATE SKIP LOCKED",
            &[&name, &generation],
        )
        .await
        .map_err(|e| early(e.into()))?;
    let Some(row) = row else {
        let row = tx
            .query_opt(
                "SELECT position, state FROM projection_generations \
                 WHERE name = $1 AND generation = $2",
                &[&name, &generation],
            )
            .await
            .map_err(|e| early(e.into()))?;
        return Ok(match row {
            Some(r) if r.get::<_, String>(1) != "retired" => {
                Step::Locked(r.get::<_, i64>(0) as u64)
            }
            _ => Step::Retired,
        });
    };
    match row.get::<_, &str>(1) {
        "retired" => return Ok(Step::Retired),
        "building" => tx
            .batch_execute(FILLING)
            .await
            .map_err(|e| early(e.into()))?,
        _ => {}
    }
    let checkpoint = row.get::<_, i64>(0) as u64;
    let new_checkpoint = apply_range(&tx, projection, generation, checkpoint, batch, true).await?;
    if new_checkpoint == checkpoint {
        return Ok(Step::Idle(checkpoint));
    }
    let fail = |e: tokio_postgres::Error| (checkpoint + 1, ProjectionError::from(e));
    tx.execute(
        "UPDATE projection_generations SET position = $3, error = NULL, error_position = NULL, \
         updated_at = now() WHERE name = $1 AND generation = $2",
        &[&name, &generation, &(new_checkpoint as i64)],
    )
    .await
    .map_err(fail)?;
    // Wake standby runners and waiting readers in other processes.
    tx.batch_execute("SELECT pg_notify('gatehouse_events', '')")
        .await
        .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    Ok(Step::Applied(new_checkpoint))
}

/// Makes a caught-up building generation the active one, in one
/// transaction: waits for the active generation's runner to finish its batch
/// (by locking its checkpoint row), applies what is left, re-points the views,
/// retires and drops the old generation. Returns the new checkpoint.
pub async fn swap(
    pool: &Pool,
    projection: &dyn Projection,
    generation: i32,
) -> Result<u64, ProjectionError> {
    let name = projection.name();
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    lock_name(&tx, name).await?;
    let row = tx
        .query_opt(
            "SELECT position, state FROM projection_generations \
             WHERE name = $1 AND generation = $2 FOR UPDATE",
            &[&name, &generation],
        )
        .await?;
    let checkpoint = match row {
        Some(r) if r.get::<_, String>(1) == "building" => r.get::<_, i64>(0) as u64,
        // Another runner swapped it in (or it was removed): nothing to do.
        Some(r) if r.get::<_, String>(1) == "active" => return Ok(r.get::<_, i64>(0) as u64),
        _ => {
            return Err(ProjectionError::Invariant {
                position: 0,
                reason: format!("generation {generation} of {name} is no longer being built"),
            })
        }
    };
    let old: Option<i32> = tx
        .query_opt(
            "SELECT generation FROM projection_generations \
             WHERE name = $1 AND state = 'active' AND generation <> $2 FOR UPDATE",
            &[&name, &generation],
        )
        .await?
        .map(|r| r.get(0));
    let checkpoint = apply_range(&tx, projection, generation, checkpoint, FILL_BATCH, false)
        .await
        .map_err(|(_, e)| e)?;
    expose(&tx, projection, generation).await?;
    if let Some(old) = old {
        tx.execute(
            "UPDATE projection_generations SET state = 'retired', updated_at = now() \
             WHERE name = $1 AND generation = $2",
            &[&name, &old],
        )
        .await?;
        tx.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            schema_name(name, old)
        ))
        .await?;
    }
    tx.execute(
        "UPDATE projection_generations SET state = 'active', position = $3, updated_at = now() \
         WHERE name = $1 AND generation = $2",
        &[&name, &generation, &(checkpoint as i64)],
    )
    .await?;
    tx.batch_execute("SELECT pg_notify('gatehouse_events', '')")
        .await?;
    tx.commit().await?;
    tracing::info!(
        projection = name,
        generation,
        checkpoint,
        "swapped in a new generation"
    );
    Ok(checkpoint)
}
