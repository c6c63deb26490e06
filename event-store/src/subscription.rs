//! A live subscription: catch up from a position, then follow the log, woken
//! by the store's hint and by a slow poll that covers a lost hint. The poll
//! interval is [`Subscription::DEFAULT_POLL`] unless given
//! ([`Subscription::with_poll`]); tests lengthen it so that only the hint
//! can wake a subscriber in time.

use std::{collections::VecDeque, time::Duration};

use event_schemas::RecordedEvent;
use tokio::sync::watch;

use crate::{SharedStore, StoreError};

/// Reads the log in order, each event once, waiting when it reaches the head.
pub struct Subscription {
    store: SharedStore,
    after: u64,
    buffer: VecDeque<RecordedEvent>,
    wake: watch::Receiver<u64>,
    batch: usize,
    poll: Duration,
}

impl Subscription {
    /// How long a subscription at the head waits for a hint before it
    /// re-reads the log anyway.
    pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

    /// A subscription to events after `after`, polling every
    /// [`Self::DEFAULT_POLL`].
    pub fn new(store: SharedStore, after: u64) -> Self {
        Self::with_poll(store, after, Self::DEFAULT_POLL)
    }

    /// A subscription to events after `after` that, at the head, re-reads
    /// the log after `poll` without a hint (e.g. a PostgreSQL store's
    /// `PgStore::poll_interval`).
    pub fn with_poll(store: SharedStore, after: u64, poll: Duration) -> Self {
        let wake = store.wakeups();
        Subscription {
            store,
            after,
            buffer: VecDeque::new(),
            wake,
            batch: 1000,
            poll,
        }
    }

    /// How long this subscription waits for a hint before re-reading.
    pub fn poll_interval(&self) -> Duration {
        self.poll
    }

    /// The position of the last event handed out.
    pub fn position(&self) -> u64 {
        self.after
    }

    /// The next event, waiting for one if the subscription is at the head.
    pub async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        loop {
            if let Some(e) = self.buffer.pop_front() {
                self.after = e.global_position;
                return Ok(e);
            }
            let batch = self.next_batch().await?;
            self.buffer.extend(batch);
            if let Some(e) = self.buffer.front() {
                // next_batch advanced past the whole batch; rewind to hand
                // out events one by one.
                self.after = e.global_position - 1;
            }
        }
    }

    /// The next non-empty batch of events, waiting for one if at the head.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        if !self.buffer.is_empty() {
            let out: Vec<_> = self.buffer.drain(..).collect();
            self.after = out.last().map_or(self.after, |e| e.global_position);
            return Ok(out);
        }
        loop {
            // Mark the hint seen before reading, so a commit that lands
            // after the read wakes us.
            self.wake.borrow_and_update();
            let events = self.store.read_all(self.after, self.batch).await?;
            if let Some(last) = events.last() {
                self.after = last.global_position;
                return Ok(events);
            }
            if let Ok(Err(_)) = tokio::time::timeout(self.poll, self.wake.changed()).await {
                // The store dropped its hint sender: fall back to polling.
                tokio::time::sleep(self.poll).await;
            }
        }
    }
}
