//! Folded aggregate state kept between commands, so a command reads only
//! the events after the cached version instead of its whole stream.
//!
//! The cache is an optimisation, never a source of truth: every append
//! still carries the version it decided on, so a stale entry (another node
//! wrote meanwhile) costs one refused append and a refresh from the tail,
//! never a wrong decision.
//!
//! Memory is bounded twice: by [`CacheLimits::entries`] and by
//! [`CacheLimits::bytes`], an estimate of the folded state each aggregate
//! reports ([`super::Aggregate::weight`]). The least recently used entries
//! go first when either bound is passed; an entry heavier than a quarter
//! of the byte budget is not kept at all (it is folded again when needed).

use std::any::Any;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

/// How much the cache may hold.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Most streams held.
    pub entries: usize,
    /// Most bytes of folded state held (estimated).
    pub bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            entries: 10_000,
            bytes: 256 * 1024 * 1024,
        }
    }
}

/// One stream's folded state: what the log held up to `version`.
#[derive(Debug, Clone, Default)]
pub struct Loaded<A> {
    /// The folded state.
    pub state: A,
    /// The stream's version it reflects (0: no stream).
    pub version: u64,
    /// Global position of the stream's event at `version` (0: none).
    pub position: u64,
}

/// A loaded state reads as the state itself (`&loaded` is an `&A`), so a
/// command's answer is built from the shared state without copying it.
impl<A> std::ops::Deref for Loaded<A> {
    type Target = A;
    fn deref(&self) -> &A {
        &self.state
    }
}

struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    weight: usize,
}

struct Inner {
    lru: LruCache<String, Entry>,
    bytes: usize,
}

/// The bounded cache, shared by every command of this process.
pub struct StateCache {
    inner: Mutex<Inner>,
    limits: CacheLimits,
}

impl StateCache {
    /// An empty cache within `limits`.
    pub fn new(limits: CacheLimits) -> Self {
        StateCache {
            inner: Mutex::new(Inner {
                lru: LruCache::new(
                    NonZeroUsize::new(limits.entries.max(1)).unwrap_or(NonZeroUsize::MIN),
                ),
                bytes: 0,
            }),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Plain bookkeeping: a panic elsewhere cannot leave it inconsistent
        // in a way that matters (a wrong byte count only evicts early).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached state of `stream`, if any.
    pub fn get<A: Send + Sync + 'static>(&self, stream: &str) -> Option<Arc<Loaded<A>>> {
        let mut inner = self.lock();
        let value = inner.lru.get(stream)?.value.clone();
        value.downcast::<Loaded<A>>().ok()
    }

    /// Takes the entry out, so a writer holding the stream's lock can
    /// update it in place when no reader shares it.
    pub fn take<A: Send + Sync + 'static>(&self, stream: &str) -> Option<Arc<Loaded<A>>> {
        let mut inner = self.lock();
        let entry = inner.lru.pop(stream)?;
        inner.bytes -= entry.weight;
        entry.value.downcast::<Loaded<A>>().ok()
    }

    /// Stores `loaded` for `stream`, unless a newer version is already
    /// there, evicting the least recently used entries past the limits.
    pub fn put<A: Send + Sync + 'static>(
        &self,
        stream: &str,
        loaded: Arc<Loaded<A>>,
        weight: usize,
    ) {
        if weight > self.limits.bytes / 4 {
            return;
        }
        let mut inner = self.lock();
        if let Some(existing) = inner.lru.peek(stream) {
            let newer = existing
                .value
                .clone()
                .downcast::<Loaded<A>>()
                .is_ok_and(|e| e.version > loaded.version);
            if newer {
                return;
            }
        }
        let entry = Entry {
            value: loaded,
            weight,
        };
        if let Some((_, old)) = inner.lru.push(stream.to_owned(), entry) {
            // Either the replaced entry of this stream or an evicted one.
            inner.bytes -= old.weight;
        }
        inner.bytes += weight;
        while inner.bytes > self.limits.bytes {
            match inner.lru.pop_lru() {
                Some((_, old)) => inner.bytes -= old.weight,
                None => break,
            }
        }
    }

    /// Entries and estimated bytes held.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.lru.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(version: u64) -> Arc<Loaded<String>> {
        Arc::new(Loaded {
            state: format!("v{version}"),
            version,
            position: version,
        })
    }

    #[test]
    fn entries_and_bytes_stay_within_the_limits() {
        let cache = StateCache::new(CacheLimits {
            entries: 3,
            bytes: 1000,
        });
        for i in 0..10 {
            cache.put(&format!("s-{i}"), loaded(1), 100);
        }
        assert_eq!(cache.usage(), (3, 300), "entry bound");
        for i in 0..10 {
            cache.put(&format!("t-{i}"), loaded(1), 240);
        }
        let (entries, bytes) = cache.usage();
        assert!(bytes <= 1000 && entries <= 3, "{entries} {bytes}");
        cache.put("huge", loaded(1), 251);
        assert!(
            cache.get::<String>("huge").is_none(),
            "over a quarter of the budget"
        );
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let cache = StateCache::new(CacheLimits::default());
        cache.put("s", loaded(5), 10);
        cache.put("s", loaded(3), 10);
        assert_eq!(cache.get::<String>("s").map(|l| l.version), Some(5));
        assert_eq!(cache.usage().1, 10, "the byte count follows replacements");
    }

    #[test]
    fn a_wrong_type_is_a_miss() {
        let cache = StateCache::new(CacheLimits::default());
        cache.put("s", loaded(1), 10);
        assert!(cache.get::<u64>("s").is_none());
        assert!(cache.take::<String>("s").is_some());
        assert_eq!(cache.usage(), (0, 0));
    }
}
