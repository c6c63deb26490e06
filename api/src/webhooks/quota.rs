//! The publish quota: how many messages, and how many payload bytes, one
//! organisation may publish a minute on this node. Token buckets refilled
//! continuously, bounded in memory by organisations (least recently used
//! go first), reserved before the message is sealed and appended, and
//! given back when the append fails, so parallel publishers never pass the
//! limit together.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use lru::LruCache;
use tokio::time::Instant;
use uuid::Uuid;

/// Organisations whose buckets are kept.
const CAPACITY: usize = 100_000;

/// One organisation's buckets: messages, then bytes.
#[derive(Debug, Clone, Copy)]
struct Buckets {
    messages: f64,
    bytes: f64,
    at: Instant,
}

/// The quota of a node.
#[derive(Debug)]
pub struct PublishQuota {
    per_minute: f64,
    bytes_per_minute: f64,
    buckets: Mutex<LruCache<Uuid, Buckets>>,
}

impl PublishQuota {
    /// `per_minute` messages and `bytes_per_minute` payload bytes an
    /// organisation, each also the most a burst may spend.
    pub fn new(per_minute: u64, bytes_per_minute: u64) -> Self {
        PublishQuota {
            per_minute: per_minute as f64,
            bytes_per_minute: bytes_per_minute as f64,
            buckets: Mutex::new(LruCache::new(
                NonZeroUsize::new(CAPACITY).expect("non-zero"),
            )),
        }
    }

    /// Takes one message of `bytes` from `org`'s buckets, given back when
    /// the reservation is dropped unless [`Reservation::keep`] was called;
    /// or answers how long until both hold enough (nothing is taken then).
    pub fn reserve(&self, org: Uuid, bytes: usize) -> Result<Reservation<'_>, Duration> {
        self.take(org, bytes)?;
        Ok(Reservation {
            quota: self,
            org,
            bytes,
            kept: false,
        })
    }

    fn take(&self, org: Uuid, bytes: usize) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = map.get_or_insert_mut(org, || Buckets {
            messages: self.per_minute,
            bytes: self.bytes_per_minute,
            at: now,
        });
        let minutes = now.saturating_duration_since(b.at).as_secs_f64() / 60.0;
        b.messages = (b.messages + minutes * self.per_minute).min(self.per_minute);
        b.bytes = (b.bytes + minutes * self.bytes_per_minute).min(self.bytes_per_minute);
        b.at = now;
        let bytes = bytes as f64;
        if b.messages >= 1.0 && b.bytes >= bytes {
            b.messages -= 1.0;
            b.bytes -= bytes;
            return Ok(());
        }
        let wait = |have: f64, need: f64, rate: f64| {
            if have >= need || rate <= 0.0 {
                0.0
            } else {
                (need - have) / rate * 60.0
            }
        };
        let secs =
            wait(b.messages, 1.0, self.per_minute).max(wait(b.bytes, bytes, self.bytes_per_minute));
        Err(Duration::from_secs_f64(secs.max(0.001)))
    }

    fn release(&self, org: Uuid, bytes: usize) {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = map.get_mut(&org) {
            b.messages = (b.messages + 1.0).min(self.per_minute);
            b.bytes = (b.bytes + bytes as f64).min(self.bytes_per_minute);
        }
    }
}

/// A message's share of the quota, given back on drop unless kept.
#[derive(Debug)]
pub struct Reservation<'a> {
    quota: &'a PublishQuota,
    org: Uuid,
    bytes: usize,
    kept: bool,
}

impl Reservation<'_> {
    /// The message was published: its share stays spent.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.quota.release(self.org, self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn messages_and_bytes_are_both_limited_and_refill_over_the_minute() {
        let q = PublishQuota::new(3, 1000);
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        for _ in 0..3 {
            q.reserve(a, 10).unwrap().keep();
        }
        let wait = q.reserve(a, 10).unwrap_err();
        assert!(wait <= Duration::from_secs(20), "{wait:?}");
        q.reserve(b, 10).expect("per organisation").keep();
        tokio::time::advance(Duration::from_secs(20)).await;
        q.reserve(a, 10)
            .expect("a third of a minute refills one")
            .keep();
        // Bytes, with messages to spare: 400 left after 600.
        let q = PublishQuota::new(100, 1000);
        q.reserve(a, 600).unwrap().keep();
        assert!(q.reserve(a, 500).is_err(), "500 bytes do not fit in 400");
        drop(q.reserve(a, 400).unwrap());
        q.reserve(a, 400)
            .expect("a failed publish gives its share back")
            .keep();
        assert!(q.reserve(a, 1).is_err());
    }
}
