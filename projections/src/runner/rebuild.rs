//! Rebuilds: one read model at a time ([`rebuild`]), or all of them in one
//! pass over the log ([`rebuild_all`]): the log is read and decoded once
//! and each batch feeds every projection being built, committing every
//! generation's rows and checkpoint in one transaction.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use event_schemas::RecordedEvent;
use event_store::postgres::{decode_row, EVENT_COLUMNS};

use super::{
    build_indexes, create_generation, lock_name, record_failure, renew_lease, schema_name, step,
    swap, Step, FILL_BATCH, LEASE,
};
use crate::{Projection, ProjectionError};

/// Progress of a rebuild, reported after each batch.
#[derive(Debug, Clone, Copy)]
pub struct RebuildProgress {
    /// The generation being filled.
    pub generation: i32,
    /// The new generation's checkpoint.
    pub position: u64,
    /// The log head when the batch was read.
    pub head: u64,
}

/// Rebuilds a projection blue/green: fills a new generation from position 0
/// in batches (or resumes one an interrupted rebuild left, see
/// [`release`]), then swaps it in. The active generation serves until the
/// swap.
/// Returns the new generation and its checkpoint.
pub async fn rebuild(
    pool: &Pool,
    projection: &dyn Projection,
    mut progress: impl FnMut(RebuildProgress),
) -> Result<(i32, u64), ProjectionError> {
    let name = projection.name();
    let (generation, _) = claim_building(pool, projection, false).await?;
    loop {
        renew_lease(pool, name, generation).await?;
        match step(pool, projection, generation, FILL_BATCH).await {
            Ok(Step::Applied(position)) => {
                let head = {
                    let client = pool.get().await?;
                    let head: i64 = client
                        .query_one("SELECT position FROM log_head WHERE id", &[])
                        .await?
                        .get(0);
                    head as u64
                };
                progress(RebuildProgress {
                    generation,
                    position,
                    head,
                });
            }
            Ok(Step::Idle(_)) => break,
            Ok(Step::Locked(_)) | Ok(Step::Retired) => {
                return Err(ProjectionError::Invariant {
                    position: 0,
                    reason: format!(
                        "generation {generation} of {name} was taken over during the rebuild"
                    ),
                })
            }
            Err((_, e)) => return Err(e),
        }
    }
    build_indexes(pool, projection, generation).await?;
    let position = swap(pool, projection, generation).await?;
    progress(RebuildProgress {
        generation,
        position,
        head: position,
    });
    Ok((generation, position))
}

/// The building generation a rebuild fills, and its checkpoint.
///
/// A rebuild or an upgrade that died part-way leaves a building generation
/// whose lease lapses. One of this version is resumed from its checkpoint
/// (the newest, if several); others are dropped. One a live process fills
/// renews its lease (and is locked while it applies a batch): it is left
/// alone, and whichever generation catches up first swaps in; unless
/// `take_over`, when the operator knows its filler is dead (killed, so it
/// never released it) and resumes it at once.
pub async fn claim_building(
    pool: &Pool,
    projection: &dyn Projection,
    take_over: bool,
) -> Result<(i32, u64), ProjectionError> {
    let name = projection.name();
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    lock_name(&tx, name).await?;
    let stale: Vec<(i32, i32, i64)> = tx
        .query(
            "SELECT generation, version, position FROM projection_generations \
             WHERE name = $1 AND state = 'building' AND (lease_until < now() OR $2) \
             ORDER BY generation DESC FOR UPDATE SKIP LOCKED",
            &[&name, &take_over],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let version = projection.version() as i32;
    let resumed = stale
        .iter()
        .find(|(_, v, _)| *v == version)
        .map(|(g, _, p)| (*g, *p as u64));
    for (g, _, _) in stale {
        if Some(g) == resumed.map(|(g, _)| g) {
            continue;
        }
        tx.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            schema_name(name, g)
        ))
        .await?;
        tx.execute(
            "DELETE FROM projection_generations WHERE name = $1 AND generation = $2",
            &[&name, &g],
        )
        .await?;
    }
    let claimed = match resumed {
        Some(g) => g,
        None => (
            create_generation(&tx, projection, "building")
                .await?
                .generation,
            0,
        ),
    };
    tx.execute(
        "UPDATE projection_generations SET lease_until = now() + make_interval(secs => $3) \
         WHERE name = $1 AND generation = $2",
        &[&name, &claimed.0, &LEASE.as_secs_f64()],
    )
    .await?;
    tx.commit().await?;
    Ok(claimed)
}

/// How [`rebuild_all`] runs.
#[derive(Debug, Clone, Copy)]
pub struct RebuildOptions {
    /// Resume building generations whose leases have not lapsed (their
    /// filler is known to be dead); see [`claim_building`].
    pub take_over: bool,
    /// Events read per batch (and transaction).
    pub batch: usize,
}

impl Default for RebuildOptions {
    fn default() -> Self {
        RebuildOptions {
            take_over: false,
            batch: FILL_BATCH,
        }
    }
}

/// What [`rebuild_all`] did for one read model.
#[derive(Debug)]
pub struct Rebuilt {
    /// The projection.
    pub name: &'static str,
    /// Its new generation and checkpoint, or why it stopped (a poison event
    /// stops only its own read model).
    pub outcome: Result<(i32, u64), ProjectionError>,
    /// Where it resumed (0 for a fresh generation).
    pub resumed_at: u64,
    /// Time spent folding and writing its batches.
    pub applying: Duration,
    /// Time spent building its read indexes and swapping it in.
    pub finishing: Duration,
}

/// Progress of [`rebuild_all`], reported once the generations are claimed
/// and after each batch.
#[derive(Debug, Clone)]
pub struct PassProgress {
    /// Every generation being filled, by projection.
    pub generations: Vec<(&'static str, i32)>,
    /// The lowest checkpoint among them.
    pub position: u64,
    /// The log head when the batch was read.
    pub head: u64,
}

/// Why a generation stopped filling in the one pass.
enum Stopped {
    /// Another filler took it over (or it was removed).
    TakenOver(ProjectionError),
    /// One of its batches failed; the exact event is found alone.
    Failed,
}

/// One read model being filled by [`rebuild_all`].
struct Filling {
    projection: Arc<dyn Projection>,
    generation: i32,
    checkpoint: u64,
    types: Option<HashSet<&'static str>>,
    resumed_at: u64,
    applying: Duration,
    failed: Option<Stopped>,
}

impl Filling {
    /// Moves its checkpoint to `end`, in the batch's transaction.
    async fn reach(
        &mut self,
        tx: &deadpool_postgres::Transaction<'_>,
        end: u64,
    ) -> Result<(), ProjectionError> {
        tx.execute(
            "UPDATE projection_generations SET position = $3, updated_at = now() \
             WHERE name = $1 AND generation = $2",
            &[&self.projection.name(), &self.generation, &(end as i64)],
        )
        .await?;
        self.checkpoint = end;
        Ok(())
    }

    fn handles(&self, e: &RecordedEvent) -> bool {
        e.global_position > self.checkpoint
            && self
                .types
                .as_ref()
                .is_none_or(|t| t.contains(e.event_type.as_str()))
    }
}

/// Rebuilds every projection in `projections` blue/green in one pass: the
/// log is read and decoded once, each batch is fed to every projection
/// whose generation has not reached it, and the batch commits every
/// generation's rows and checkpoint in one transaction (exactly once, as
/// with one). A projection that fails on an event stops alone; its
/// generation stays building at the last good batch and its exact poison
/// position is found the way the runner finds it. When the pass reaches
/// the head, each generation builds its read indexes and swaps in.
///
/// Memory: one batch of events (by default [`FILL_BATCH`]) and the rows
/// it touches.
pub async fn rebuild_all(
    pool: &Pool,
    projections: &[Arc<dyn Projection>],
    options: RebuildOptions,
    mut progress: impl FnMut(PassProgress),
) -> Result<Vec<Rebuilt>, ProjectionError> {
    let mut fills = Vec::with_capacity(projections.len());
    for p in projections {
        let (generation, checkpoint) = claim_building(pool, p.as_ref(), options.take_over).await?;
        fills.push(Filling {
            projection: p.clone(),
            generation,
            checkpoint,
            types: p.event_types().map(|t| t.iter().copied().collect()),
            resumed_at: checkpoint,
            applying: Duration::ZERO,
            failed: None,
        });
    }
    let generations: Vec<_> = fills
        .iter()
        .map(|f| (f.projection.name(), f.generation))
        .collect();
    progress(PassProgress {
        generations: generations.clone(),
        position: fills.iter().map(|f| f.checkpoint).min().unwrap_or(0),
        head: 0,
    });
    let read = format!(
        "SELECT {EVENT_COLUMNS} FROM public.events \
         WHERE global_position > $1 AND global_position <= $2 \
         ORDER BY global_position LIMIT $3"
    );
    loop {
        for f in fills.iter().filter(|f| f.failed.is_none()) {
            renew_lease(pool, f.projection.name(), f.generation).await?;
        }
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        tx.batch_execute(super::FILLING).await?;
        for f in fills.iter_mut().filter(|f| f.failed.is_none()) {
            let row = tx
                .query_opt(
                    "SELECT position, state FROM projection_generations \
                     WHERE name = $1 AND generation = $2 FOR UPDATE SKIP LOCKED",
                    &[&f.projection.name(), &f.generation],
                )
                .await?;
            match row {
                Some(r) if r.get::<_, &str>(1) == "building" => {
                    f.checkpoint = r.get::<_, i64>(0) as u64
                }
                _ => {
                    f.failed = Some(Stopped::TakenOver(ProjectionError::Invariant {
                        position: 0,
                        reason: format!(
                            "generation {} of {} was taken over during the rebuild",
                            f.generation,
                            f.projection.name()
                        ),
                    }))
                }
            }
        }
        let head: i64 = tx
            .query_one("SELECT position FROM public.log_head WHERE id", &[])
            .await?
            .get(0);
        let head = head as u64;
        let Some(from) = fills
            .iter()
            .filter(|f| f.failed.is_none() && f.checkpoint < head)
            .map(|f| f.checkpoint)
            .min()
        else {
            tx.commit().await?;
            break;
        };
        let stmt = tx.prepare_cached(&read).await?;
        let rows = tx
            .query(
                &stmt,
                &[&(from as i64), &(head as i64), &(options.batch as i64)],
            )
            .await?;
        let events: Vec<RecordedEvent> = rows.iter().map(decode_row).collect::<Result<_, _>>()?;
        drop(rows);
        let end = match events.last() {
            Some(last) if events.len() == options.batch => last.global_position,
            _ => head,
        };
        if !apply_together(&tx, &mut fills, &events, end).await? {
            // One of them failed: apply each alone, so the failure stops
            // only its own read model.
            for f in fills.iter_mut().filter(|f| f.failed.is_none()) {
                if f.checkpoint >= end {
                    continue;
                }
                let mine: Vec<&RecordedEvent> = events.iter().filter(|e| f.handles(e)).collect();
                let started = Instant::now();
                tx.batch_execute(&format!(
                    "SAVEPOINT fill; SET LOCAL search_path TO {}, public",
                    schema_name(f.projection.name(), f.generation)
                ))
                .await?;
                match f.projection.apply(&tx, &mine).await {
                    Ok(()) => {
                        tx.batch_execute(
                            "SET LOCAL search_path TO DEFAULT; RELEASE SAVEPOINT fill",
                        )
                        .await?;
                        f.reach(&tx, end).await?;
                    }
                    Err(e) => {
                        tx.batch_execute("ROLLBACK TO SAVEPOINT fill; RELEASE SAVEPOINT fill")
                            .await?;
                        tracing::error!(projection = f.projection.name(), error = %e, "rebuild stopped; the other read models go on");
                        f.failed = Some(Stopped::Failed);
                    }
                }
                f.applying += started.elapsed();
            }
        }
        tx.commit().await?;
        progress(PassProgress {
            generations: generations.clone(),
            position: fills
                .iter()
                .filter(|f| f.failed.is_none())
                .map(|f| f.checkpoint)
                .min()
                .unwrap_or(end),
            head,
        });
    }
    let mut out = Vec::with_capacity(fills.len());
    for f in fills {
        let started = Instant::now();
        let name = f.projection.name();
        let outcome = match f.failed {
            Some(Stopped::TakenOver(e)) => Err(e),
            Some(Stopped::Failed) => Err(poison(pool, f.projection.as_ref(), f.generation).await),
            None => {
                async {
                    build_indexes(pool, f.projection.as_ref(), f.generation).await?;
                    let position = swap(pool, f.projection.as_ref(), f.generation).await?;
                    Ok((f.generation, position))
                }
                .await
            }
        };
        out.push(Rebuilt {
            name,
            outcome,
            resumed_at: f.resumed_at,
            applying: f.applying,
            finishing: started.elapsed(),
        });
    }
    Ok(out)
}

/// Applies a batch to every generation still filling, all at once over the
/// one connection: every generation's schema is on the search path (table
/// names are unique across read models, as their views `rm.<table>` must
/// be), so while one read model folds in this process the statements of
/// another run in the database. Moves each checkpoint to `end`. `false`
/// (and nothing applied) if one failed.
async fn apply_together(
    tx: &deadpool_postgres::Transaction<'_>,
    fills: &mut [Filling],
    events: &[RecordedEvent],
    end: u64,
) -> Result<bool, ProjectionError> {
    let due: Vec<usize> = (0..fills.len())
        .filter(|&i| fills[i].failed.is_none() && fills[i].checkpoint < end)
        .collect();
    if due.is_empty() {
        return Ok(true);
    }
    let path = due
        .iter()
        .map(|&i| schema_name(fills[i].projection.name(), fills[i].generation))
        .collect::<Vec<_>>()
        .join(", ");
    tx.batch_execute(&format!(
        "SAVEPOINT together; SET LOCAL search_path TO {path}, public"
    ))
    .await?;
    let runs = due.iter().map(|&i| {
        let f = &fills[i];
        let mine: Vec<&RecordedEvent> = events.iter().filter(|e| f.handles(e)).collect();
        let projection = f.projection.clone();
        async move {
            let started = Instant::now();
            let outcome = projection.apply(tx, &mine).await;
            (outcome, started.elapsed())
        }
    });
    let outcomes = futures::future::join_all(runs).await;
    if outcomes.iter().any(|(o, _)| o.is_err()) {
        tx.batch_execute("ROLLBACK TO SAVEPOINT together; RELEASE SAVEPOINT together")
            .await?;
        return Ok(false);
    }
    tx.batch_execute("SET LOCAL search_path TO DEFAULT; RELEASE SAVEPOINT together")
        .await?;
    for (&i, (_, took)) in due.iter().zip(outcomes) {
        let f = &mut fills[i];
        f.reach(tx, end).await?;
        f.applying += took;
    }
    Ok(true)
}

/// Finds and records the exact event a failed generation stops at, the
/// way the runner does (one event at a time after the last good batch).
async fn poison(pool: &Pool, projection: &dyn Projection, generation: i32) -> ProjectionError {
    loop {
        match step(pool, projection, generation, FILL_BATCH).await {
            Ok(Step::Applied(_)) => continue,
            Ok(_) => {
                return ProjectionError::Invariant {
                    position: 0,
                    reason: format!(
                        "{} failed in the joint pass but not alone; run the rebuild again",
                        projection.name()
                    ),
                }
            }
            Err((position, e)) => {
                record_failure(
                    pool,
                    projection.name(),
                    generation,
                    position,
                    &format!("{e}"),
                )
                .await;
                return e;
            }
        }
    }
}
