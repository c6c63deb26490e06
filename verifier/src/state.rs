//! The index's state and its memory layout. Entries are kept small (the
//! target is at most 256 bytes per key at a million keys): a key is its
//! hash in one map pointing at a slot of a vector, apps and organisations
//! are slots referred to by number, and scope lists are shared.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use domain::apps::{App, Mode};
use domain::keys::format::KeyHash;
use domain::keys::KeyKind;
use parking_lot::RwLock;
use uuid::Uuid;

use crate::clock::Clock;

/// Hashes a SHA-256 by its first eight bytes: they are already uniform.
#[derive(Default)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, _: usize) {}
}

pub(crate) type DigestMap<V> = HashMap<KeyHash, V, BuildHasherDefault<DigestHasher>>;

/// No expiry.
pub(crate) const NEVER: i64 = i64::MAX;

/// A credential's counts since the last flush.
#[derive(Default)]
pub(crate) struct Meter {
    /// Valid verifications.
    pub calls: AtomicU32,
    /// Refused verifications of this (known) credential.
    pub refused: AtomicU32,
    /// The last valid verification, for `last_used_at`.
    pub last_used_ms: AtomicI64,
}

impl Meter {
    /// Counts one verdict.
    pub fn count(&self, valid: bool, now: i64) {
        if valid {
            self.calls.fetch_add(1, Ordering::Relaxed);
            // A store, not a read-modify-write: racing callers may leave a
            // time a few microseconds older, never a wrong day.
            self.last_used_ms.store(now, Ordering::Relaxed);
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes the counts: (valid, refused, last use).
    pub fn take(&self) -> (u32, u32, i64) {
        let calls = self.calls.swap(0, Ordering::AcqRel);
        let refused = self.refused.swap(0, Ordering::AcqRel);
        (calls, refused, self.last_used_ms.load(Ordering::Relaxed))
    }

    /// Puts counts back (a flush that did not land).
    pub fn restore(&self, calls: u32, refused: u32) {
        self.calls.fetch_add(calls, Ordering::AcqRel);
        self.refused.fetch_add(refused, Ordering::AcqRel);
    }
}

/// One key.
pub(crate) struct Entry {
    pub key_id: Uuid,
    /// Its expiry, or [`NEVER`].
    pub expires_ms: i64,
    /// The end of a rotation's overlap, or [`NEVER`].
    pub stops_ms: i64,
    /// Rate limit window number (high 32 bits) and count in it (low 32).
    pub rate_state: AtomicU64,
    /// Its counts since the last flush.
    pub meter: Meter,
    /// Slot of its app.
    pub app: u32,
    /// Slot of its scope list (restricted keys; 0 is the empty list).
    pub scopes: u32,
    /// Verifications per window; 0 for none.
    pub rate_limit: u32,
    /// The rate limit's window, in seconds.
    pub rate_window_secs: u8,
    pub mode: Mode,
    pub kind: KeyKind,
    pub revoked: bool,
}

/// One app: the fold of its status events (creation, deletion,
/// suspension, product access), by the domain's own rules.
pub(crate) struct AppEntry {
    pub app: App,
    pub org: u32,
    /// What a secret key carries, per mode: test, live.
    pub scopes: [Arc<[String]>; 2],
    /// The browser origins the app allows (for the gateway to check a
    /// call's `Origin` against).
    pub origins: Arc<[String]>,
}

/// One organisation's quota.
pub(crate) struct OrgEntry {
    pub org_id: Uuid,
    /// Platform calls per billing window, if a plan is set.
    pub limit: Option<u64>,
    /// The plan's billing window, in milliseconds.
    pub window: (i64, i64),
    /// The start of the window the counters below count in.
    pub counted_window: AtomicI64,
    /// Calls in that window the log holds (every node's flushes).
    pub logged: AtomicU64,
    /// This node's calls not yet flushed.
    pub local: AtomicU64,
}

impl OrgEntry {
    /// The billing window containing `now`, if a plan is set; when the
    /// counters still count an earlier window, they start again at zero
    /// (whoever wins the exchange resets them once).
    pub fn roll(&self, now: i64) -> Option<(i64, i64)> {
        self.limit?;
        let current = domain::orgs::billing_window(self.window.0, self.window.1, now)?;
        let counted = self.counted_window.load(Ordering::Acquire);
        if counted != current.0
            && self
                .counted_window
                .compare_exchange(counted, current.0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.logged.store(0, Ordering::Release);
            self.local.store(0, Ordering::Release);
        }
        Some(current)
    }
}

pub(crate) struct Inner {
    /// The last log position applied.
    pub position: u64,
    pub keys: DigestMap<u32>,
    pub entries: Vec<Entry>,
    pub by_id: HashMap<Uuid, u32>,
    pub apps: Vec<AppEntry>,
    pub app_ids: HashMap<Uuid, u32>,
    pub orgs: Vec<OrgEntry>,
    pub org_ids: HashMap<Uuid, u32>,
    pub scope_sets: Vec<Arc<[String]>>,
    pub scope_ids: HashMap<Arc<[String]>, u32>,
    /// Ids of `usage.recorded` events this node appended: their counts
    /// are already in `logged`, so following the log skips them.
    pub own_usage: HashSet<Uuid>,
    /// Start of the interval the entries' counters cover.
    pub interval_start_ms: i64,
    /// How imported keys start (`sk_live_`): a key in another format is
    /// looked up only when it starts like one of these. A set, probed with
    /// at most 33 candidates a key ([`starts_like_imported`]), so the cost
    /// of a verification does not grow with the families imported.
    pub imported_families: HashSet<Box<str>>,
    /// OAuth clients, by client id.
    pub clients: HashMap<Uuid, ClientEntry>,
    /// Token signing keys: id, public key, when it stops verifying.
    pub signing: Vec<(String, ed25519_dalek::VerifyingKey, i64)>,
}

/// One OAuth client.
pub(crate) struct ClientEntry {
    pub app: u32,
    pub mode: Mode,
    pub revoked: bool,
    /// Its tokens' verifications since the last flush.
    pub meter: Meter,
}

/// Whether `key` starts like a family in `families`: a bounded number of
/// set probes (`domain::keys::format::family_candidates`).
pub(crate) fn starts_like_imported(families: &HashSet<Box<str>>, key: &str) -> bool {
    !families.is_empty()
        && domain::keys::format::family_candidates(key).any(|start| families.contains(start))
}

impl Inner {
    fn new(now_ms: i64) -> Self {
        let empty: Arc<[String]> = Arc::from(Vec::new());
        Inner {
            position: 0,
            keys: DigestMap::default(),
            entries: Vec::new(),
            by_id: HashMap::new(),
            apps: Vec::new(),
            app_ids: HashMap::new(),
            orgs: Vec::new(),
            org_ids: HashMap::new(),
            scope_sets: vec![empty.clone()],
            scope_ids: HashMap::from([(empty, 0)]),
            own_usage: HashSet::new(),
            interval_start_ms: now_ms,
            imported_families: HashSet::new(),
            clients: HashMap::new(),
            signing: Vec::new(),
        }
    }

    /// The slot of a scope list, shared with every key carrying the same.
    pub fn intern(&mut self, scopes: &[String]) -> u32 {
        if let Some(&id) = self.scope_ids.get(scopes) {
            return id;
        }
        let list: Arc<[String]> = Arc::from(scopes.to_vec());
        let id = self.scope_sets.len() as u32;
        self.scope_sets.push(list.clone());
        self.scope_ids.insert(list, id);
        id
    }

    /// The slot of an organisation, created empty when first seen.
    pub fn org_slot(&mut self, org_id: Uuid) -> u32 {
        if let Some(&slot) = self.org_ids.get(&org_id) {
            return slot;
        }
        let slot = self.orgs.len() as u32;
        self.orgs.push(OrgEntry {
            org_id,
            limit: None,
            window: (0, 0),
            counted_window: AtomicI64::new(0),
            logged: AtomicU64::new(0),
            local: AtomicU64::new(0),
        });
        self.org_ids.insert(org_id, slot);
        slot
    }

    /// The slot of an app, created (not existing) when first seen.
    pub fn app_slot(&mut self, app_id: Uuid, org_id: Uuid) -> u32 {
        if let Some(&slot) = self.app_ids.get(&app_id) {
            return slot;
        }
        let org = self.org_slot(org_id);
        let slot = self.apps.len() as u32;
        let empty: Arc<[String]> = self.scope_sets[0].clone();
        self.apps.push(AppEntry {
            app: App {
                id: app_id,
                org_id,
                ..App::default()
            },
            org,
            scopes: [empty.clone(), empty.clone()],
            origins: empty,
        });
        self.app_ids.insert(app_id, slot);
        slot
    }
}

/// What the index holds and has done, for `/readyz`, tests and benches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexStats {
    /// Keys indexed.
    pub keys: usize,
    /// Apps known.
    pub apps: usize,
    /// Last log position applied.
    pub position: u64,
    /// Whether it has loaded and verifies.
    pub ready: bool,
    /// Keys refused for their shape or checksum, before any lookup.
    pub malformed: u64,
    /// Verifications that looked a key up.
    pub lookups: u64,
}

/// The in-memory verification index of one node.
pub struct Index {
    pub(crate) prefix: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) inner: RwLock<Inner>,
    ready: AtomicBool,
    pub(crate) malformed: AtomicU64,
    pub(crate) lookups: AtomicU64,
    /// The issuer and audience access tokens must name.
    pub(crate) tokens: (String, String),
    /// The position applied, for writers waiting to read their own write.
    pub(crate) applied: tokio::sync::watch::Sender<u64>,
}

impl Index {
    /// An empty index for keys starting with the deployment's `prefix`,
    /// telling time by `clock`. Not ready until [`Index::mark_ready`].
    pub fn new(prefix: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        let now = clock.now_ms();
        Index {
            prefix: prefix.into(),
            clock,
            inner: RwLock::new(Inner::new(now)),
            ready: AtomicBool::new(false),
            malformed: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
            tokens: ("gatehouse".into(), "platform".into()),
            applied: tokio::sync::watch::Sender::new(0),
        }
    }

    /// The issuer and audience access tokens must carry.
    pub fn with_tokens(mut self, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        self.tokens = (issuer.into(), audience.into());
        self
    }

    /// The deployment's key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the index has loaded and may answer.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Declares the index unable to answer (it stopped following the log),
    /// so the node answers 503 rather than verdicts from a frozen index.
    pub fn mark_not_ready(&self) {
        self.ready.store(false, Ordering::Release);
    }

    /// Declares the index loaded.
    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// The last log position applied.
    pub fn position(&self) -> u64 {
        self.inner.read().position
    }

    /// Waits until the index has applied `position`, for at most `limit`;
    /// whether it did. A node that committed a key answers only once its
    /// own gateway calls see it, so "create, then call" never fails.
    pub async fn reached(&self, position: u64, limit: std::time::Duration) -> bool {
        let mut applied = self.applied.subscribe();
        tokio::time::timeout(limit, applied.wait_for(|p| *p >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Counts, for `/readyz` and tests.
    pub fn stats(&self) -> IndexStats {
        let inner = self.inner.read();
        IndexStats {
            keys: inner.entries.len(),
            apps: inner.apps.len(),
            position: inner.position,
            ready: self.is_ready(),
            malformed: self.malformed.load(Ordering::Relaxed),
            lookups: self.lookups.load(Ordering::Relaxed),
        }
    }

    /// The app and organisation of a key, if the index holds it (for the
    /// gateway's usage reports, checked without a database round trip).
    pub fn key_owner(&self, key_id: Uuid) -> Option<(Uuid, Uuid)> {
        let inner = self.inner.read();
        let slot = *inner.by_id.get(&key_id)?;
        let app = &inner.apps[inner.entries[slot as usize].app as usize];
        Some((app.app.id, app.app.org_id))
    }

    /// Whether a key with this hash is indexed.
    pub fn contains_hash(&self, hash: &KeyHash) -> bool {
        self.inner.read().keys.contains_key(hash)
    }

    /// Reserves room for `keys` more keys (a load knows how many).
    pub fn reserve(&self, keys: usize) {
        let mut inner = self.inner.write();
        inner.keys.reserve(keys);
        inner.entries.reserve_exact(keys);
        inner.by_id.reserve(keys);
    }
}
