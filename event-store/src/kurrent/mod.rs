//! The log on KurrentDB (EventStoreDB), through its Rust client: the
//! scale-out backend, selected with `GATEHOUSE_EVENT_STORE=kurrentdb://...`.
//!
//! Gatehouse's log promises what KurrentDB's streams alone do not: atomic
//! appends across streams (a user and the claim on their email), one
//! gap-free order in which the hash chain links every event to the one
//! before, and positions a reader can wait for. The client has no
//! multi-stream append, and `$all` positions are neither gap-free nor
//! known before a write. So every Gatehouse event is one KurrentDB event in
//! a single log stream (`gatehouse-log` by default): one
//! `append_to_stream` call is atomic whatever Gatehouse streams it
//! touches, its expected revision (the log's head) is the optimistic
//! concurrency that orders writers across nodes, the event's revision + 1
//! is its global position, and Gatehouse computes the chain before the
//! write because it knows the event before. The Gatehouse stream, its
//! version, the schema version, the metadata and the chain ride in the
//! event's custom metadata; its data is the payload, byte for byte.
//!
//! Each node keeps an index of the log in memory (every stream's
//! positions, every event id) that it catches up from the log before each
//! decision: per-stream expected versions are checked against it, and a
//! write another node made first shows up as a wrong expected revision of
//! the log, after which the index catches up and the append is decided
//! again. Uniqueness reservations (emails, slugs) are appended with their
//! entity in one call, so they stay as correct as on PostgreSQL. The
//! trade: all writes of a deployment go through one stream on the leader.
//! `docs/scaling.md` says when that is the right choice.
//!
//! Read models stay in PostgreSQL: [`mirror`] copies the log, in order and
//! with its hashes, into PostgreSQL's `events` table, which the projections,
//! the webhook feeder and the audit history read in their transactions.

pub mod mirror;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use event_schemas::chain::{event_hash, CanonicalEvent};
use event_schemas::{Hash, RecordedEvent, GENESIS_HASH};
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, EventData, ReadStreamOptions, StreamPosition,
    StreamState, SubscribeToStreamOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{watch, Mutex};
use uuid::Uuid;

use crate::{
    validate, version_matches, AppendError, Appended, EventStore, StoreError, StreamAppend,
};

/// The log stream when the URL names none.
pub const DEFAULT_LOG_STREAM: &str = "gatehouse-log";

/// Events read per round trip when catching up.
const PAGE: usize = 1_000;

/// What rides in a KurrentDB event's custom metadata.
#[derive(Serialize, Deserialize)]
struct Envelope {
    stream_id: String,
    stream_version: u64,
    schema_version: u32,
    metadata: Box<RawValue>,
    recorded_at: DateTime<Utc>,
    prev_hash: String,
    hash: String,
}

/// The log as this node knows it.
#[derive(Default)]
struct Index {
    /// Events known: positions `1..=head`.
    head: u64,
    /// The hash of event `head`.
    last_hash: Hash,
    /// Each stream's events' positions, in version order.
    streams: HashMap<String, Vec<u64>>,
    /// Every event id's position.
    ids: HashMap<Uuid, u64>,
}

impl Index {
    fn version(&self, stream: &str) -> u64 {
        self.streams.get(stream).map_or(0, |p| p.len() as u64)
    }

    fn learn(&mut self, e: &RecordedEvent) {
        debug_assert_eq!(e.global_position, self.head + 1);
        self.head = e.global_position;
        self.last_hash = e.hash;
        self.streams
            .entry(e.stream_id.clone())
            .or_default()
            .push(e.global_position);
        self.ids.insert(e.event_id, e.global_position);
    }
}

/// The KurrentDB store.
pub struct KurrentStore {
    client: Client,
    log: String,
    index: Mutex<Index>,
    wake: Arc<watch::Sender<u64>>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl KurrentStore {
    /// Connects to `url` (`kurrentdb://host:2113?tls=false`, any scheme
    /// the client takes), loads the index from the log and follows it.
    /// `log` names the log stream (default [`DEFAULT_LOG_STREAM`]).
    pub async fn connect(url: &str, log: Option<&str>) -> Result<Arc<Self>, StoreError> {
        let settings: ClientSettings = url
            .parse()
            .map_err(|e: kurrentdb::ClientSettingsParseError| backend(e))?;
        let client = Client::new(settings).map_err(backend)?;
        let store = Arc::new(KurrentStore {
            client,
            log: log.unwrap_or(DEFAULT_LOG_STREAM).to_owned(),
            index: Mutex::new(Index::default()),
            wake: Arc::new(watch::Sender::new(0)),
        });
        {
            let mut index = store.index.lock().await;
            store.catch_up(&mut index).await?;
        }
        tokio::spawn(follow(
            store.client.clone(),
            store.log.clone(),
            Arc::downgrade(&store.wake),
        ));
        Ok(store)
    }

    /// Reads the log from `position` (1-based), at most `limit` events.
    async fn read_from(
        &self,
        position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if position == 0 || limit == 0 {
            return Ok(Vec::new());
        }
        let options = ReadStreamOptions::default()
            .position(StreamPosition::Position(position - 1))
            .forwards()
            .max_count(limit);
        let mut read = self
            .client
            .read_stream(self.log.as_str(), &options)
            .await
            .map_err(backend)?;
        let mut out = Vec::new();
        loop {
            match read.next().await {
                Ok(Some(resolved)) => out.push(decode(resolved.get_original_event())?),
                Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(out),
                Err(e) => return Err(backend(e)),
            }
        }
    }

    /// Learns every event after the index's head.
    async fn catch_up(&self, index: &mut Index) -> Result<(), StoreError> {
        loop {
            let page = self.read_from(index.head + 1, PAGE).await?;
            for e in &page {
                if e.global_position != index.head + 1 {
                    return Err(StoreError::Corrupt {
                        position: e.global_position,
                        reason: format!("expected position {}", index.head + 1),
                    });
                }
                index.learn(e);
            }
            if page.len() < PAGE {
                return Ok(());
            }
        }
    }

    /// The events at `positions` (ascending), reading runs of consecutive
    /// positions in one round trip each.
    async fn events_at(&self, positions: &[u64]) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut out = Vec::with_capacity(positions.len());
        let mut i = 0;
        while i < positions.len() {
            let mut j = i + 1;
            while j < positions.len() && positions[j] == positions[j - 1] + 1 {
                j += 1;
            }
            out.extend(self.read_from(positions[i], j - i).await?);
            i = j;
        }
        Ok(out)
    }

    /// The answer to an append whose events are all in the log already
    /// (a retry after an unknown outcome); `None` when none is.
    fn already(index: &Index, appends: &[StreamAppend]) -> Option<Result<Appended, AppendError>> {
        let ids: Vec<Uuid> = appends
            .iter()
            .flat_map(|a| a.events.iter().map(|e| e.event_id))
            .collect();
        let found: Vec<u64> = ids
            .iter()
            .filter_map(|id| index.ids.get(id).copied())
            .collect();
        if found.is_empty() {
            return None;
        }
        let same_streams = appends.iter().all(|a| {
            a.events.iter().all(|e| {
                index.ids.get(&e.event_id).is_some_and(|p| {
                    index
                        .streams
                        .get(&a.stream_id)
                        .is_some_and(|s| s.binary_search(p).is_ok())
                })
            })
        });
        if found.len() != ids.len() || !same_streams {
            let dup = ids.iter().find(|id| index.ids.contains_key(id)).copied();
            return Some(Err(AppendError::DuplicateEventId(dup.unwrap_or(ids[0]))));
        }
        let stream_versions = appends
            .iter()
            .map(|a| {
                let last = a.events.last().and_then(|e| index.ids.get(&e.event_id));
                let positions = index.streams.get(&a.stream_id);
                match (last, positions) {
                    (Some(p), Some(s)) => s.binary_search(p).map_or(0, |i| i as u64 + 1),
                    _ => 0,
                }
            })
            .collect();
        Some(Ok(Appended {
            first_position: found.iter().copied().min().unwrap_or(0),
            last_position: found.iter().copied().max().unwrap_or(0),
            stream_versions,
        }))
    }
}

/// Builds the records an append would write after `index`'s head.
fn records(index: &Index, appends: &[StreamAppend], at: DateTime<Utc>) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut position = index.head;
    let mut prev = index.last_hash;
    for a in appends {
        let first = index.version(&a.stream_id) + 1;
        for (version, e) in (first..).zip(&a.events) {
            position += 1;
            let metadata = serde_json::value::to_raw_value(&e.metadata)
                .expect("metadata is plain data and always serialises");
            let mut rec = RecordedEvent {
                global_position: position,
                stream_id: a.stream_id.clone(),
                stream_version: version,
                event_id: e.event_id,
                event_type: e.event_type.clone(),
                schema_version: e.schema_version,
                data: e.data.clone(),
                metadata,
                recorded_at: at,
                prev_hash: prev,
                hash: GENESIS_HASH,
            };
            rec.hash = event_hash(&prev, &CanonicalEvent::of(&rec));
            prev = rec.hash;
            out.push(rec);
        }
    }
    out
}

fn encode(rec: &RecordedEvent) -> Result<EventData, StoreError> {
    let envelope = Envelope {
        stream_id: rec.stream_id.clone(),
        stream_version: rec.stream_version,
        schema_version: rec.schema_version,
        metadata: rec.metadata.clone(),
        recorded_at: rec.recorded_at,
        prev_hash: hex::encode(rec.prev_hash),
        hash: hex::encode(rec.hash),
    };
    let meta = serde_json::to_vec(&envelope).map_err(backend)?;
    Ok(EventData::json(&rec.event_type, &rec.data)
        .map_err(backend)?
        .id(rec.event_id)
        .metadata(Bytes::from(meta)))
}

fn decode(e: &kurrentdb::RecordedEvent) -> Result<RecordedEvent, StoreError> {
    let position = e.revision + 1;
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let envelope: Envelope = serde_json::from_slice(&e.custom_metadata)
        .map_err(|x| corrupt(format!("envelope: {x}")))?;
    let data = std::str::from_utf8(&e.data)
        .ok()
        .and_then(|s| RawValue::from_string(s.to_owned()).ok())
        .ok_or_else(|| corrupt("the payload is not JSON".into()))?;
    Ok(RecordedEvent {
        global_position: position,
        stream_id: envelope.stream_id,
        stream_version: envelope.stream_version,
        event_id: e.id,
        event_type: e.event_type.clone(),
        schema_version: envelope.schema_version,
        data,
        metadata: envelope.metadata,
        recorded_at: envelope.recorded_at,
        prev_hash: unhex(&envelope.prev_hash).ok_or_else(|| corrupt("prev_hash".into()))?,
        hash: unhex(&envelope.hash).ok_or_else(|| corrupt("hash".into()))?,
    })
}

fn unhex(s: &str) -> Option<Hash> {
    hex::decode(s).ok()?.try_into().ok()
}

/// Bumps `wake` on every event appended to the log, by any node, until
/// the store is dropped; resubscribes after an error.
async fn follow(client: Client, log: String, wake: std::sync::Weak<watch::Sender<u64>>) {
    loop {
        let options = SubscribeToStreamOptions::default().start_from(StreamPosition::End);
        let mut sub = client.subscribe_to_stream(log.as_str(), &options).await;
        loop {
            match sub.next().await {
                Ok(_) => match wake.upgrade() {
                    Some(w) => w.send_modify(|n| *n += 1),
                    None => return,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "following the KurrentDB log failed; resubscribing");
                    break;
                }
            }
        }
        if wake.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[async_trait]
impl EventStore for KurrentStore {
    async fn append_all(&self, appends: Vec<StreamAppend>) -> Result<Appended, AppendError> {
        validate(&appends)?;
        // One decision at a time in this node; other nodes are ordered by
        // the log's expected revision.
        let mut index = self.index.lock().await;
        loop {
            self.catch_up(&mut index).await?;
            if let Some(answer) = Self::already(&index, &appends) {
                return answer;
            }
            for a in &appends {
                let actual = index.version(&a.stream_id);
                if !version_matches(a.expected, actual) {
                    return Err(AppendError::Conflict {
                        stream_id: a.stream_id.clone(),
                        expected: a.expected,
                        actual,
                    });
                }
            }
            let recs = records(&index, &appends, crate::memory::now_micros());
            let data = recs.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
            let expected = match index.head {
                0 => StreamState::NoStream,
                head => StreamState::StreamRevision(head - 1),
            };
            let options = AppendToStreamOptions::default().stream_state(expected);
            match self
                .client
                .append_to_stream(self.log.as_str(), &options, data)
                .await
            {
                Ok(_) => {
                    let mut versions: HashMap<&str, u64> = HashMap::new();
                    for r in &recs {
                        index.learn(r);
                        versions.insert(&r.stream_id, r.stream_version);
                    }
                    drop(index);
                    self.wake.send_modify(|n| *n += 1);
                    return Ok(Appended {
                        first_position: recs[0].global_position,
                        last_position: recs[recs.len() - 1].global_position,
                        stream_versions: appends
                            .iter()
                            .map(|a| versions.get(a.stream_id.as_str()).copied().unwrap_or(0))
                            .collect(),
                    });
                }
                // Another node wrote first: learn what it wrote, decide again.
                Err(kurrentdb::Error::WrongExpectedVersion { .. }) => continue,
                // Unknown outcome: a retry with the same ids finds them.
                Err(e) => return Err(backend(e).into()),
            }
        }
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let positions: Vec<u64> = {
            let mut index = self.index.lock().await;
            self.catch_up(&mut index).await?;
            index
                .streams
                .get(stream_id)
                .map(|p| {
                    p.iter()
                        .skip(from_version.saturating_sub(1) as usize)
                        .take(limit)
                        .copied()
                        .collect()
                })
                .unwrap_or_default()
        };
        self.events_at(&positions).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_from(after + 1, limit).await
    }

    async fn event_by_id(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let position = {
            let mut index = self.index.lock().await;
            self.catch_up(&mut index).await?;
            index.ids.get(&event_id).copied()
        };
        match position {
            Some(p) => Ok(self.read_from(p, 1).await?.pop()),
            None => Ok(None),
        }
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let mut index = self.index.lock().await;
        self.catch_up(&mut index).await?;
        Ok(index.head)
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_through_hex() {
        let h: Hash = std::array::from_fn(|i| i as u8 * 7);
        assert_eq!(unhex(&hex::encode(h)), Some(h));
        assert_eq!(unhex("zz"), None);
    }
}
