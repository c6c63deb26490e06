//! The Gatehouse event store: an append-only log of [`RecordedEvent`]s with
//! optimistic concurrency per stream, a gap-free global order in commit order,
//! a SHA-256 hash chain, and live subscriptions.
//!
//! The store is generic over events: it never sees a domain type.
//!
//! # Layout
//! - [`EventStore`]: the trait every backend implements.
//! - [`postgres`]: the default backend, with group commit and LISTEN/NOTIFY.
//! - [`memory`]: an in-memory backend for pure unit tests.
//! - [`Subscription`]: catch up from a position, then follow the log.
//! - [`launcher`]: starts a private local PostgreSQL cluster.
//! - [`guard`]: notices a log that goes backwards under a running node.
//! - `kurrent` (cargo feature `kurrentdb`): the log on KurrentDB, with
//!   PostgreSQL keeping a mirror of it for the read models.

pub mod guard;
#[cfg(feature = "kurrentdb")]
pub mod kurrent;
pub mod launcher;
pub mod memory;
pub mod postgres;
mod subscription;

use std::sync::Arc;

use async_trait::async_trait;
pub use event_schemas::{ExpectedVersion, NewEvent, RecordedEvent};
use tokio::sync::watch;
use uuid::Uuid;

pub use subscription::Subscription;

/// Events to append to one stream, with the version the caller expects.
#[derive(Debug, Clone)]
pub struct StreamAppend {
    /// `<category>-<id>`, e.g. `app-0190...`.
    pub stream_id: String,
    /// The version the stream must be at.
    pub expected: ExpectedVersion,
    /// At least one event.
    pub events: Vec<NewEvent>,
}

impl StreamAppend {
    /// One stream's append.
    pub fn new(
        stream_id: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        StreamAppend {
            stream_id: stream_id.into(),
            expected,
            events,
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Global position of the first event appended.
    pub first_position: u64,
    /// Global position of the last event appended: the position to wait for
    /// to read your own writes.
    pub last_position: u64,
    /// The new version of each stream, in the order of the request.
    pub stream_versions: Vec<u64>,
}

/// Why an append was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The stream is not at the expected version; nothing was appended.
    #[error("stream {stream_id} is at version {actual}, expected {expected:?}")]
    Conflict {
        /// The stream.
        stream_id: String,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// Its actual version (0: no stream).
        actual: u64,
    },
    /// An event id is already in the log as part of a different append.
    #[error("event id {0} is already in the log")]
    DuplicateEventId(Uuid),
    /// The request itself is malformed (no events, empty stream id).
    #[error("invalid append: {0}")]
    Invalid(&'static str),
    /// The store failed; the append may or may not have been committed, and
    /// retrying it with the same event ids is safe.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A failure of the storage itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL reported an error.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection could be had from the pool.
    #[error("connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// Stored data does not decode.
    #[error("stored event at position {position} is corrupt: {reason}")]
    Corrupt {
        /// Global position.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// The store's background appender has stopped.
    #[error("the event store is shut down")]
    Closed,
    /// The log is behind where this node knows it was: nothing is appended.
    #[error(transparent)]
    Rewound(#[from] guard::Rewound),
    /// Another backend (KurrentDB) failed or could not be reached; the
    /// operation may be retried.
    #[error("event store backend: {0}")]
    Backend(String),
    /// Applying the store's migrations failed.
    #[error("migration {name} failed")]
    Migration {
        /// The migration's file name.
        name: &'static str,
        /// The cause.
        #[source]
        source: tokio_postgres::Error,
    },
}

/// An append-only event log.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends to several streams atomically: all succeed or none.
    async fn append_all(&self, appends: Vec<StreamAppend>) -> Result<Appended, AppendError>;

    /// Reads a stream's events with version `>= from_version`, at most `limit`.
    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads the global log after `after` (exclusive), at most `limit` events.
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The event with id `event_id`, if it is in the log: how a command
    /// retried after an unknown outcome finds that it already happened.
    async fn event_by_id(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError>;

    /// The position of the last committed event (0 for an empty log).
    async fn head(&self) -> Result<u64, StoreError>;

    /// A counter that changes whenever new events may have been committed.
    /// It is a hint: readers always re-read the log.
    fn wakeups(&self) -> watch::Receiver<u64>;
}

/// Conveniences over [`EventStore`].
#[async_trait]
pub trait EventStoreExt: EventStore {
    /// Appends events to one stream.
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, AppendError> {
        self.append_all(vec![StreamAppend::new(stream_id, expected, events)])
            .await
    }
}

impl<S: EventStore + ?Sized> EventStoreExt for S {}

/// A shared store handle.
pub type SharedStore = Arc<dyn EventStore>;

/// Subscribes to the log after `after`: catches up, then follows.
pub fn subscribe(store: SharedStore, after: u64) -> Subscription {
    Subscription::new(store, after)
}

/// Checks an append request's shape; shared by every backend.
pub(crate) fn validate(appends: &[StreamAppend]) -> Result<(), AppendError> {
    if appends.is_empty() {
        return Err(AppendError::Invalid("no streams"));
    }
    for a in appends {
        if a.stream_id.is_empty() {
            return Err(AppendError::Invalid("empty stream id"));
        }
        if a.events.is_empty() {
            return Err(AppendError::Invalid("no events"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for a in appends {
        if !seen.insert(a.stream_id.as_str()) {
            return Err(AppendError::Invalid("a stream appears twice in one append"));
        }
    }
    Ok(())
}

/// Whether `actual` satisfies `expected`.
pub(crate) fn version_matches(expected: ExpectedVersion, actual: u64) -> bool {
    match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => actual == 0,
        ExpectedVersion::Exact(v) => v == actual,
    }
}
