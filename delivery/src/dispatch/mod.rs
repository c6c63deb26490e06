//! The dispatcher: leases endpoints, not single deliveries, and works each
//! leased endpoint as a lane that sends its due deliveries in log order.
//! Many lanes run at once, so a slow or failing endpoint holds only its
//! own lane. A lease is a row update (`lease_owner`, `lease_until`) taken
//! `FOR UPDATE SKIP LOCKED`; it expires, so a dead worker's endpoints pass
//! to another. Results are recorded per batch in one transaction, and a
//! lane sends for at most a third of its lease before recording, so a
//! lease never runs out under a live worker and no success is sent twice.

mod record;
pub mod send;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use event_schemas::webhook::SealedSecret;
use event_store::SharedStore;
use tokio::sync::{watch, Notify, Semaphore};
use uuid::Uuid;

use crate::keyring::Keyring;
use crate::schedule::Schedule;
use crate::sign::SigningSecret;
use crate::ssrf::Policy;

/// How the dispatcher works.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Endpoints worked at once.
    pub workers: usize,
    /// Endpoints of one organisation worked at once on this node (0: a
    /// quarter of `workers`, at least 1), so one tenant's slow endpoints
    /// cannot hold every worker.
    pub per_org: usize,
    /// How long a lease lasts (at least three attempt timeouts).
    pub lease: Duration,
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Delays between attempts.
    pub schedule: Schedule,
    /// An endpoint failing without a success for this long is disabled.
    pub disable_after: chrono::Duration,
    /// Which destinations may be reached.
    pub policy: Policy,
    /// The proxy deliveries go through, if one is configured explicitly
    /// (the environment's `HTTP(S)_PROXY` is never used).
    pub proxy: Option<reqwest::Url>,
    /// Deliveries a lane reads at once.
    pub batch: i64,
    /// The longest sleep between looks for due work.
    pub poll: Duration,
    /// When attempts happen, and so how long an endpoint has failed.
    pub clock: crate::Clock,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workers: 32,
            per_org: 0,
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(15),
            schedule: Schedule::default(),
            disable_after: chrono::Duration::days(5),
            policy: Policy::default(),
            proxy: None,
            batch: 100,
            poll: Duration::from_secs(1),
            clock: crate::Clock::default(),
        }
    }
}

/// An endpoint this worker leased.
#[derive(Debug, Clone)]
struct Leased {
    id: Uuid,
    org_id: Uuid,
    url: String,
    rate_limit: Option<i32>,
    secrets: Vec<(SealedSecret, Option<DateTime<Utc>>)>,
    failing_since: Option<DateTime<Utc>>,
}

/// The dispatcher of one node.
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    store: SharedStore,
    keyring: Arc<dyn Keyring>,
    client: reqwest::Client,
    settings: Settings,
    owner: Uuid,
    kick: Notify,
    /// Lanes this node works now, by organisation.
    busy: std::sync::Mutex<HashMap<Uuid, i32>>,
}

impl Dispatcher {
    /// A dispatcher with its own lease identity.
    pub fn new(
        pool: Pool,
        store: SharedStore,
        keyring: Arc<dyn Keyring>,
        mut settings: Settings,
    ) -> Self {
        settings.lease = settings.lease.max(settings.timeout * 3);
        settings.workers = settings.workers.max(1);
        if settings.per_org == 0 {
            settings.per_org = (settings.workers / 4).max(1);
        }
        Dispatcher {
            inner: Arc::new(Inner {
                client: crate::ssrf::client(
                    settings.policy,
                    settings.timeout,
                    settings.proxy.as_ref(),
                ),
                pool,
                store,
                keyring,
                settings,
                owner: Uuid::now_v7(),
                kick: Notify::new(),
                busy: Default::default(),
            }),
        }
    }

    /// Works until `stop`; wakes on `wake` (the feeder's NOTIFY, or this
    /// node's feeder directly), on a lane finishing, and every `poll`.
    pub async fn run(self, wake: Vec<watch::Receiver<u64>>, mut stop: watch::Receiver<bool>) {
        let lanes = Arc::new(Semaphore::new(self.inner.settings.workers));
        for mut rx in wake {
            let (inner, mut stop) = (self.inner.clone(), stop.clone());
            // Ends with the dispatcher: holding `rx` past it would keep the
            // LISTEN connection behind it open while the database stops.
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        changed = rx.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            inner.kick.notify_one();
                        }
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            });
        }
        loop {
            let free = lanes.available_permits();
            let mut claimed = 0;
            if free > 0 {
                match self.inner.claim(free as i64).await {
                    Ok(endpoints) => {
                        claimed = endpoints.len();
                        for ep in endpoints {
                            let permit = lanes
                                .clone()
                                .try_acquire_owned()
                                .expect("no more leases than free lanes");
                            let inner = self.inner.clone();
                            let org = ep.org_id;
                            *inner.busy().entry(org).or_default() += 1;
                            tokio::spawn(async move {
                                inner.lane(ep).await;
                                inner.lane_done(org);
                                drop(permit);
                                inner.kick.notify_one();
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "leasing webhook endpoints failed"),
                }
            }
            if claimed > 0 && claimed == free {
                // Every lane busy: wait for one to finish.
                tokio::select! {
                    _ = self.inner.kick.notified() => continue,
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            let pause = self
                .inner
                .next_due()
                .await
                .unwrap_or(self.inner.settings.poll);
            tokio::select! {
                _ = self.inner.kick.notified() => {}
                _ = tokio::time::sleep(pause.min(self.inner.settings.poll)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

impl Inner {
    fn busy(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, i32>> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lane_done(&self, org: Uuid) {
        let mut busy = self.busy();
        if let Some(n) = busy.get_mut(&org) {
            *n -= 1;
            if *n <= 0 {
                busy.remove(&org);
            }
        }
    }

    /// Leases up to `n` enabled endpoints that have due deliveries and no
    /// live lease, fairly: round robin over organisations (each one's
    /// longest-waiting endpoint first, then each one's second...), and no
    /// organisation past its share of this node's lanes.
    async fn claim(&self, n: i64) -> Result<Vec<Leased>, crate::feed::FeedError> {
        let (orgs, lanes): (Vec<Uuid>, Vec<i32>) =
            self.busy().iter().map(|(o, n)| (*o, *n)).unzip();
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client
                    .prepare_cached(
                        "UPDATE delivery.endpoints e SET lease_owner = $1, \
                   lease_until = now() + make_interval(secs => $2) \
                 WHERE e.endpoint_id IN ( \
                   SELECT c.endpoint_id FROM delivery.endpoints c \
                   WHERE c.endpoint_id IN ( \
                     SELECT ranked.endpoint_id FROM ( \
                       SELECT x.endpoint_id, x.org_id, x.lease_until, row_number() OVER \
                         (PARTITION BY x.org_id ORDER BY x.lease_until NULLS FIRST) AS turn \
                       FROM delivery.endpoints x \
                       WHERE x.status = 'enabled' \
                         AND (x.lease_until IS NULL OR x.lease_until < now()) \
                         AND EXISTS (SELECT 1 FROM delivery.deliveries d \
                                     WHERE d.endpoint_id = x.endpoint_id \
                                       AND d.status = 'pending' AND d.next_at <= now())) ranked \
                     LEFT JOIN unnest($4::uuid[], $5::int[]) AS busy(org_id, lanes) \
                       USING (org_id) \
                     WHERE ranked.turn + COALESCE(busy.lanes, 0) <= $6 \
                     ORDER BY ranked.turn, ranked.lease_until NULLS FIRST LIMIT $3) \
                   AND c.status = 'enabled' \
                   AND (c.lease_until IS NULL OR c.lease_until < now()) \
                   FOR UPDATE SKIP LOCKED) \
                 RETURNING endpoint_id, org_id, url, rate_limit, secrets, failing_since",
                    )
                    .await?,
                &[
                    &self.owner,
                    &self.settings.lease.as_secs_f64(),
                    &n,
                    &orgs,
                    &lanes,
                    &(self.settings.per_org as i64),
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let secrets: tokio_postgres::types::Json<Vec<serde_json::Value>> = r.get(4);
                Leased {
                    id: r.get(0),
                    org_id: r.get(1),
                    url: r.get(2),
                    rate_limit: r.get(3),
                    secrets: secrets
                        .0
                        .into_iter()
                        .filter_map(|v| {
                            let until = v
                                .get("until")
                                .and_then(|u| u.as_str())
                                .and_then(|u| DateTime::parse_from_rfc3339(u).ok())
                                .map(|u| u.with_timezone(&Utc));
                            serde_json::from_value(v).ok().map(|s| (s, until))
                        })
                        .collect(),
                    failing_since: r.get(5),
                }
            })
            .collect())
    }

    /// How long until a delivery falls due that this worker could lease:
    /// one of an enabled endpoint of an organisation below its share of
    /// lanes, once that endpoint's lease (if any) has run out. A lane of
    /// this node kicks the loop when it lets go.
    async fn next_due(&self) -> Option<Duration> {
        let full: Vec<Uuid> = self
            .busy()
            .iter()
            .filter(|(_, n)| **n as usize >= self.settings.per_org)
            .map(|(o, _)| *o)
            .collect();
        let client = self.pool.get().await.ok()?;
        let row = client
            .query_one(
                &client
                    .prepare_cached(
                        "SELECT EXTRACT(EPOCH FROM (min(GREATEST(d.next_at, \
                   COALESCE(e.lease_until, d.next_at))) - now()))::float8 \
                 FROM delivery.deliveries d JOIN delivery.endpoints e USING (endpoint_id) \
                 WHERE d.status = 'pending' AND e.status = 'enabled' \
                   AND e.org_id <> ALL($1::uuid[])",
                    )
                    .await
                    .ok()?,
                &[&full],
            )
            .await
            .ok()?;
        let secs: Option<f64> = row.get(0);
        Some(Duration::from_secs_f64(secs?.max(0.0)))
    }

    /// Works one leased endpoint until nothing is due, a delivery fails, or
    /// a third of the lease is spent; then lets the lease go.
    async fn lane(&self, mut ep: Leased) {
        let started = Instant::now();
        let now = Utc::now();
        let secrets: Vec<SigningSecret> = ep
            .secrets
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| now < u))
            .filter_map(|(s, _)| match self.keyring.open_secret(ep.id, s) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(endpoint = %ep.id, error = %e, "a signing secret does not open");
                    None
                }
            })
            .collect();
        let budget = self.settings.lease / 3;
        let pace = ep
            .rate_limit
            .filter(|r| *r > 0)
            .map(|r| Duration::from_secs_f64(1.0 / r as f64));
        loop {
            let due = match self.due(ep.id).await {
                Ok(d) if !d.is_empty() => d,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(endpoint = %ep.id, error = %e, "reading due deliveries failed");
                    break;
                }
            };
            let mut results = Vec::with_capacity(due.len());
            let mut healthy = true;
            for d in due {
                if started.elapsed() > budget {
                    break;
                }
                let sent_at = Instant::now();
                let outcome = match &d.body {
                    Some(body) if !secrets.is_empty() => {
                        send::attempt(
                            &send::Channel {
                                client: &self.client,
                                clock: &self.settings.clock,
                                policy: self.settings.policy,
                                proxied: self.settings.proxy.is_some(),
                            },
                            &ep.url,
                            &secrets,
                            &crate::sign::webhook_id(d.message_id),
                            body,
                        )
                        .await
                    }
                    Some(_) => record::unsendable(&self.settings.clock, "no signing secret opens"),
                    None => record::unsendable(
                        &self.settings.clock,
                        "the payload was purged by retention",
                    ),
                };
                healthy = outcome.succeeded();
                results.push((d, outcome));
                if !healthy {
                    break;
                }
                if let Some(p) = pace {
                    tokio::time::sleep(p.saturating_sub(sent_at.elapsed())).await;
                }
            }
            let more = match self.record(&mut ep, results).await {
                Ok(keep_going) => keep_going,
                Err(e) => {
                    tracing::warn!(endpoint = %ep.id, error = %e, "recording deliveries failed");
                    false
                }
            };
            if !healthy || !more || started.elapsed() > budget {
                break;
            }
        }
        self.release(ep.id).await;
    }

    async fn release(&self, endpoint: Uuid) {
        if let Err(e) = self.try_release(endpoint).await {
            tracing::warn!(%endpoint, error = %e, "releasing a lease failed; it expires");
        }
    }

    async fn try_release(&self, endpoint: Uuid) -> Result<(), crate::feed::FeedError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE delivery.endpoints SET lease_owner = NULL, lease_until = NULL \
                 WHERE endpoint_id = $1 AND lease_owner = $2",
            )
            .await?;
        client.execute(&stmt, &[&endpoint, &self.owner]).await?;
        Ok(())
    }

    /// The endpoint's due deliveries, in log order.
    async fn due(&self, endpoint: Uuid) -> Result<Vec<record::Due>, crate::feed::FeedError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client
                    .prepare_cached(
                        "SELECT d.id, d.message_id, d.attempts, m.event_type, m.body \
                 FROM delivery.deliveries d JOIN delivery.messages m USING (message_id) \
                 WHERE d.endpoint_id = $1 AND d.status = 'pending' AND d.next_at <= now() \
                 ORDER BY d.seq, d.id LIMIT $2",
                    )
                    .await?,
                &[&endpoint, &self.settings.batch],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| record::Due {
                id: r.get(0),
                message_id: r.get(1),
                attempts: r.get::<_, i32>(2) as u32,
                event_type: r.get(3),
                body: r.get(4),
            })
            .collect())
    }
}
