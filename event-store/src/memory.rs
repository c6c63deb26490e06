//! An in-memory [`EventStore`] for pure unit tests of the domain. Same
//! contract as the PostgreSQL store (the contract suite runs against both),
//! nothing durable.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_schemas::{
    chain::{event_hash, CanonicalEvent},
    RecordedEvent, GENESIS_HASH,
};
use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    validate, version_matches, AppendError, Appended, EventStore, StoreError, StreamAppend,
};

#[derive(Default)]
struct Log {
    events: Vec<RecordedEvent>,
    versions: HashMap<String, u64>,
    ids: HashMap<Uuid, usize>,
}

/// The in-memory store.
pub struct MemoryStore {
    log: Mutex<Log>,
    wake: watch::Sender<u64>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty log.
    pub fn new() -> Self {
        MemoryStore {
            log: Mutex::new(Log::default()),
            wake: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave the log half-written:
        // every mutation below happens after all checks passed.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Truncates to microseconds, the precision PostgreSQL keeps.
pub(crate) fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append_all(&self, appends: Vec<StreamAppend>) -> Result<Appended, AppendError> {
        validate(&appends)?;
        let mut log = self.lock();
        // A retry of an append already in the log answers with its result.
        let ids: Vec<Uuid> = appends
            .iter()
            .flat_map(|a| a.events.iter().map(|e| e.event_id))
            .collect();
        let found: Vec<usize> = ids
            .iter()
            .filter_map(|id| log.ids.get(id).copied())
            .collect();
        if !found.is_empty() {
            let same_streams = appends.iter().all(|a| {
                a.events.iter().all(|e| {
                    log.ids
                        .get(&e.event_id)
                        .is_some_and(|&i| log.events[i].stream_id == a.stream_id)
                })
            });
            if found.len() != ids.len() || !same_streams {
                let dup = ids.iter().find(|id| log.ids.contains_key(id));
                return Err(AppendError::DuplicateEventId(*dup.unwrap_or(&ids[0])));
            }
            let first = found.iter().min().copied().unwrap_or(0);
            let last = found.iter().max().copied().unwrap_or(0);
            let stream_versions = appends
                .iter()
                .map(|a| {
                    let last_id = a.events.last().map(|e| e.event_id);
                    last_id
                        .and_then(|id| log.ids.get(&id))
                        .map_or(0, |&i| log.events[i].stream_version)
                })
                .collect();
            return Ok(Appended {
                first_position: log.events[first].global_position,
                last_position: log.events[last].global_position,
                stream_versions,
            });
        }
        for a in &appends {
            let actual = log.versions.get(&a.stream_id).copied().unwrap_or(0);
            if !version_matches(a.expected, actual) {
                return Err(AppendError::Conflict {
                    stream_id: a.stream_id.clone(),
                    expected: a.expected,
                    actual,
                });
            }
        }
        let recorded_at = now_micros();
        let first_position = log.events.len() as u64 + 1;
        let mut stream_versions = Vec::with_capacity(appends.len());
        for a in appends {
            let mut version = log.versions.get(&a.stream_id).copied().unwrap_or(0);
            for e in a.events {
                version += 1;
                let prev_hash = log.events.last().map_or(GENESIS_HASH, |e| e.hash);
                let metadata = serde_json::value::to_raw_value(&e.metadata)
                    .expect("metadata is plain data and always serialises");
                let mut rec = RecordedEvent {
                    global_position: log.events.len() as u64 + 1,
                    stream_id: a.stream_id.clone(),
                    stream_version: version,
                    event_id: e.event_id,
                    event_type: e.event_type,
                    schema_version: e.schema_version,
                    data: e.data,
                    metadata,
                    recorded_at,
                    prev_hash,
                    hash: GENESIS_HASH,
                };
                rec.hash = event_hash(&prev_hash, &CanonicalEvent::of(&rec));
                let index = log.events.len();
                log.ids.insert(rec.event_id, index);
                log.events.push(rec);
            }
            log.versions.insert(a.stream_id, version);
            stream_versions.push(version);
        }
        let last_position = log.events.len() as u64;
        drop(log);
        self.wake.send_modify(|n| *n += 1);
        Ok(Appended {
            first_position,
            last_position,
            stream_versions,
        })
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.lock();
        Ok(log
            .events
            .iter()
            .filter(|e| e.stream_id == stream_id && e.stream_version >= from_version)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn event_by_id(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let log = self.lock();
        Ok(log.events.iter().find(|e| e.event_id == event_id).cloned())
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.lock();
        let start = (after as usize).min(log.events.len());
        Ok(log.events[start..].iter().take(limit).cloned().collect())
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.lock().events.len() as u64)
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }
}
