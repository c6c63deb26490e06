//! The one executor every command goes through: load the aggregate (from
//! the cache, reading only the stream's tail), decide, append with the
//! expected version, and on a concurrent change re-decide on fresh state.

use std::future::Future;
use std::sync::Arc;

use event_schemas::{ExpectedVersion, Metadata, RecordedEvent};
use event_store::{AppendError, SharedStore, StreamAppend};

use super::aggregate::Aggregate;
use super::cache::{CacheLimits, Loaded, StateCache};
use super::ids::CommandIds;
use super::locks::StreamLocks;
use crate::error::ApiError;

/// Most attempts of a command that keeps meeting concurrent changes to its
/// streams (from other nodes: this node queues its own) before it answers
/// 409 `concurrent-modification`.
pub const ATTEMPTS: u32 = 16;

/// Events read per query while catching a stream up.
const PAGE: usize = 10_000;

/// What a decision appends: the aggregate's own events, with their
/// metadata, and appends to other streams that must commit with them (a
/// slug reservation), each with its own expected version.
pub struct Plan<E> {
    /// Events for the command's own stream; none means "nothing to do".
    pub events: Vec<E>,
    /// Metadata every event of the command carries.
    pub metadata: Metadata,
    /// Appends to other streams in the same transaction.
    pub also: Vec<StreamAppend>,
}

impl<E> Plan<E> {
    /// Events for the command's own stream only.
    pub fn new(events: Vec<E>, metadata: Metadata) -> Self {
        Plan {
            events,
            metadata,
            also: Vec::new(),
        }
    }
}

/// A command's outcome: the state after it, and the position its events
/// reached (the stream's position when it appended nothing).
pub struct Executed<A> {
    /// The aggregate after the command, as the log now holds it.
    pub loaded: Arc<Loaded<A>>,
    /// Position to send as `Gatehouse-Position`.
    pub position: u64,
    /// Whether this call appended (false: nothing to do, or a retry of a
    /// command the log already holds).
    pub appended: bool,
}

impl<A> Executed<A> {
    /// The state after the command.
    pub fn state(&self) -> &A {
        &self.loaded.state
    }

    /// The stream version after the command.
    pub fn version(&self) -> u64 {
        self.loaded.version
    }
}

/// The command service's shared parts.
pub struct Executor {
    store: SharedStore,
    cache: StateCache,
    locks: StreamLocks,
}

impl Executor {
    /// An executor over `store` with a cache within `limits`.
    pub fn new(store: SharedStore, limits: CacheLimits) -> Self {
        Executor {
            store,
            cache: StateCache::new(limits),
            locks: StreamLocks::default(),
        }
    }

    /// The cache, for its figures.
    pub fn cache(&self) -> &StateCache {
        &self.cache
    }

    /// `stream`'s cached state as it is, without reading the log: for checks
    /// that a fresh read confirms when they fail (the tenancy guard), never
    /// for decisions.
    pub fn peek<A: Aggregate>(&self, stream: &str) -> Option<Arc<Loaded<A>>> {
        self.cache.get::<A>(stream)
    }

    /// `stream`'s state as the log holds it now: the cached state plus
    /// the events after it (one indexed query, usually empty).
    pub async fn load<A: Aggregate>(&self, stream: &str) -> Result<Arc<Loaded<A>>, ApiError> {
        let mut loaded = self.cache.get::<A>(stream).unwrap_or_default();
        if self.catch_up(stream, &mut loaded).await? {
            self.cache
                .put(stream, loaded.clone(), loaded.state.weight());
        }
        Ok(loaded)
    }

    /// Folds the events after `loaded.version` into it; whether any were.
    async fn catch_up<A: Aggregate>(
        &self,
        stream: &str,
        loaded: &mut Arc<Loaded<A>>,
    ) -> Result<bool, ApiError> {
        let mut changed = false;
        loop {
            let from = loaded.version + 1;
            let events = self.store.read_stream(stream, from, PAGE).await?;
            if !events.is_empty() {
                // Copies the state only when a reader shares it.
                fold(Arc::make_mut(loaded), &events)?;
                changed = true;
            }
            if events.len() < PAGE {
                return Ok(changed);
            }
        }
    }

    /// Runs a command on `stream`: waits for the stream's turn in this
    /// process, loads it, asks `decide` for a [`Plan`], and appends it with
    /// the version decided on. A concurrent change from another node
    /// refreshes the state from the tail and decides again. With
    /// deterministic `ids` (an `Idempotency-Key`), a command whose first
    /// event is already in the log is not decided again: it happened.
    pub async fn execute<A: Aggregate, F>(
        &self,
        stream: &str,
        ids: &CommandIds,
        decide: impl Fn(Arc<Loaded<A>>) -> F,
    ) -> Result<Executed<A>, ApiError>
    where
        F: Future<Output = Result<Plan<A::Event>, ApiError>>,
    {
        let _turn = self.locks.lock(stream).await;
        if ids.is_deterministic() {
            if let Some(first) = self.store.event_by_id(ids.event(stream, 0)).await? {
                if first.stream_id == stream {
                    let loaded = self.load::<A>(stream).await?;
                    let position = loaded.position;
                    return Ok(Executed {
                        loaded,
                        position,
                        appended: false,
                    });
                }
            }
        }
        // Under the stream's lock no other command of this process touches
        // the entry, so it is updated in place (not copied) when no reader
        // holds it.
        let mut loaded = self.cache.take::<A>(stream).unwrap_or_default();
        let outcome = self.attempts(stream, ids, &mut loaded, decide).await;
        match &outcome {
            // The append's outcome is unknown: forget the state, so the
            // next command reads what the log really holds.
            Err(ApiError::Unavailable { .. } | ApiError::Internal(_)) => {}
            _ => self
                .cache
                .put(stream, loaded.clone(), loaded.state.weight()),
        }
        outcome
    }

    async fn attempts<A: Aggregate, F>(
        &self,
        stream: &str,
        ids: &CommandIds,
        loaded: &mut Arc<Loaded<A>>,
        decide: impl Fn(Arc<Loaded<A>>) -> F,
    ) -> Result<Executed<A>, ApiError>
    where
        F: Future<Output = Result<Plan<A::Event>, ApiError>>,
    {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            self.catch_up(stream, loaded).await?;
            // The decision gets its own reference, dropped when it returns,
            // so the state below is updated in place, not copied.
            let plan = decide(loaded.clone()).await?;
            if plan.events.is_empty() {
                return Ok(Executed {
                    loaded: loaded.clone(),
                    position: loaded.position,
                    appended: false,
                });
            }
            let mut appends = plan.also;
            appends.push(StreamAppend::new(
                stream,
                ExpectedVersion::Exact(loaded.version),
                ids.new_events(stream, &plan.events, &plan.metadata),
            ));
            match self.store.append_all(appends).await {
                Ok(appended) => {
                    let expected = loaded.version + plan.events.len() as u64;
                    if appended.stream_versions.last() != Some(&expected) {
                        // The store answered a retry of an append it already
                        // holds: the log, not this decision, is the state.
                        let fresh = Arc::new(Loaded::default());
                        *loaded = fresh;
                        self.catch_up(stream, loaded).await?;
                    } else {
                        let next = Arc::make_mut(loaded);
                        for e in &plan.events {
                            next.state.apply(e).map_err(ApiError::internal)?;
                        }
                        next.version = expected;
                        next.position = appended.last_position;
                    }
                    return Ok(Executed {
                        loaded: loaded.clone(),
                        position: appended.last_position,
                        appended: true,
                    });
                }
                Err(AppendError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Conflict {
            code: "concurrent-modification",
            detail:
                "the resource kept changing on another node while this request was handled; retry"
                    .into(),
        })
    }
}

/// Folds recorded events into `loaded`; an event of the stream that does
/// not decode or apply is an error, never skipped.
fn fold<A: Aggregate>(loaded: &mut Loaded<A>, events: &[RecordedEvent]) -> Result<(), ApiError> {
    for e in events {
        if let Some(event) = A::decode(e).map_err(ApiError::internal)? {
            loaded.state.apply(&event).map_err(ApiError::internal)?;
        }
        loaded.version = e.stream_version;
        loaded.position = e.global_position;
    }
    Ok(())
}

/// Waits before attempt `attempt` (from 1) of a command that met a
/// concurrent change: a random few milliseconds, doubling, so writers that
/// collided spread out instead of colliding again.
pub async fn backoff(attempt: u32) {
    use rand::Rng;
    let ceiling_ms = 1u64 << attempt.min(6);
    let ms = rand::thread_rng().gen_range(0..=ceiling_ms);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}
