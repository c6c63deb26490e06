//! Usage metering: the entries' counters become one `usage.recorded` per
//! key per interval, never one event per call. A drained batch is
//! appended by the caller; until it commits, its counts are neither lost
//! (restored on failure) nor counted twice (the node skips its own events
//! when they come back through the log).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use chrono::DateTime;
use event_schemas::key::UsageRecorded;
use uuid::Uuid;

use crate::state::Index;

/// A drained interval: the events to append, each with the event id it
/// must be appended under.
#[derive(Debug, Clone)]
pub struct Drained {
    /// `(event id, usage)`, one per key used in the interval.
    pub usage: Vec<(Uuid, UsageRecorded)>,
}

impl Index {
    /// Takes every key's counts since the last drain as one event per key
    /// used, each under an id from `mint_id`. Calls move from the
    /// organisation's unflushed count to its logged count at once.
    pub fn drain_usage(&self, mut mint_id: impl FnMut() -> Uuid) -> Drained {
        let now = self.clock.now_ms();
        let mut inner = self.inner.write();
        let from = inner.interval_start_ms;
        inner.interval_start_ms = now;
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        let mut usage = Vec::new();
        let mut per_org: HashMap<u32, u64> = HashMap::new();
        for entry in &inner.entries {
            let calls = entry.calls.swap(0, Ordering::AcqRel);
            let refused = entry.refused.swap(0, Ordering::AcqRel);
            if calls == 0 && refused == 0 {
                continue;
            }
            let app = &inner.apps[entry.app as usize];
            *per_org.entry(app.org).or_default() += u64::from(calls);
            let last = entry.last_used_ms.load(Ordering::Relaxed);
            usage.push((
                mint_id(),
                UsageRecorded {
                    key_id: entry.key_id,
                    app_id: app.app.id,
                    org_id: app.app.org_id,
                    from: at(from),
                    to: at(now.max(from)),
                    source: "verify".into(),
                    calls: u64::from(calls),
                    errors: u64::from(refused),
                    latency_min_ms: None,
                    latency_max_ms: None,
                    latency_sum_ms: None,
                    last_at: at(if last > 0 { last } else { now }),
                },
            ));
        }
        for (slot, calls) in per_org {
            let org = &inner.orgs[slot as usize];
            org.local.fetch_sub(
                calls.min(org.local.load(Ordering::Acquire)),
                Ordering::AcqRel,
            );
            org.logged.fetch_add(calls, Ordering::AcqRel);
        }
        for (id, _) in &usage {
            inner.own_usage.insert(*id);
        }
        Drained { usage }
    }

    /// Puts a batch that could not be appended back into the counters, so
    /// the next drain carries it.
    pub fn restore(&self, drained: Drained) {
        let mut inner = self.inner.write();
        for (id, u) in drained.usage {
            inner.own_usage.remove(&id);
            let Some(&slot) = inner.by_id.get(&u.key_id) else {
                continue;
            };
            let entry = &inner.entries[slot as usize];
            let calls = u32::try_from(u.calls).unwrap_or(u32::MAX);
            entry.calls.fetch_add(calls, Ordering::AcqRel);
            entry.refused.fetch_add(
                u32::try_from(u.errors).unwrap_or(u32::MAX),
                Ordering::AcqRel,
            );
            let org = &inner.orgs[inner.apps[entry.app as usize].org as usize];
            org.logged.fetch_sub(
                u.calls.min(org.logged.load(Ordering::Acquire)),
                Ordering::AcqRel,
            );
            org.local.fetch_add(u.calls, Ordering::AcqRel);
        }
    }
}
