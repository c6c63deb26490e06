//! One queue per stream within this process: commands on the same stream
//! wait for each other instead of racing to the store, so only writers on
//! different nodes ever meet a version conflict.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Per-stream locks, created on demand and dropped when nobody holds or
/// waits for them (so memory follows the streams in use, not all streams).
#[derive(Default)]
pub struct StreamLocks {
    map: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// Holds one stream's lock until dropped.
pub struct StreamGuard<'a> {
    locks: &'a StreamLocks,
    stream: String,
    lock: Arc<AsyncMutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl StreamLocks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AsyncMutex<()>>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for `stream`'s lock (fair: first come, first served).
    pub async fn lock(&self, stream: &str) -> StreamGuard<'_> {
        let lock = self.map().entry(stream.to_owned()).or_default().clone();
        let guard = lock.clone().lock_owned().await;
        StreamGuard {
            locks: self,
            stream: stream.to_owned(),
            lock,
            guard: Some(guard),
        }
    }

    /// Streams with a lock held or awaited.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no stream is locked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.map();
        // Clones are only made under the map's lock: two references (the
        // map's and ours) mean nobody else holds or waits for it.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_on_one_stream_take_turns_and_locks_are_dropped_after() {
        let locks = Arc::new(StreamLocks::default());
        let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (locks, inside) = (locks.clone(), inside.clone());
                tokio::spawn(async move {
                    let _g = locks.lock("app-1").await;
                    let n = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    assert_eq!(n, 0, "two commands inside one stream's lock");
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(locks.is_empty(), "no lock outlives its users");
    }

    #[tokio::test]
    async fn different_streams_do_not_wait_for_each_other() {
        let locks = StreamLocks::default();
        let _a = locks.lock("app-1").await;
        let b = tokio::time::timeout(std::time::Duration::from_secs(1), locks.lock("app-2")).await;
        assert!(b.is_ok());
    }
}
