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
        // Keys, and OAuth clients (whose usage is recorded under the
        // client id, in `usage-<client id>`).
        let keys = inner.entries.iter().map(|e| (e.key_id, e.app, &e.meter));
        let clients = inner.clients.iter().map(|(id, c)| (*id, c.app, &c.meter));
        for (key_id, app, meter) in keys.chain(clients) {
            let (calls, refused, last) = meter.take();
            if calls == 0 && refused == 0 {
                continue;
            }
            let app = &inner.apps[app as usize];
            *per_org.entry(app.org).or_default() += u64::from(calls);
            usage.push((
                mint_id(),
                UsageRecorded {
                    key_id,
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
            let (meter, app) = match inner.by_id.get(&u.key_id) {
                Some(&slot) => {
                    let entry = &inner.entries[slot as usize];
                    (&entry.meter, entry.app)
                }
                None => match inner.clients.get(&u.key_id) {
                    Some(c) => (&c.meter, c.app),
                    None => continue,
                },
            };
            let calls = u32::try_from(u.calls).unwrap_or(u32::MAX);
            meter.restore(calls, u32::try_from(u.errors).unwrap_or(u32::MAX));
            let org = &inner.orgs[inner.apps[app as usize].org as usize];
            org.logged.fetch_sub(
                u.calls.min(org.logged.load(Ordering::Acquire)),
                Ordering::AcqRel,
            );
            org.local.fetch_add(u.calls, Ordering::AcqRel);
        }
    }
}
