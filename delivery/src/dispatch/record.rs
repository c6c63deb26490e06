//! Recording a lane's batch: every attempt, each delivery's new state, the
//! endpoint's failing streak, in one transaction; and the events people act
//! on (an exhausted message, an endpoint disabled after a 410 or days of
//! failures) appended first, with ids derived from what they record, so a
//! batch recorded again after a crash appends nothing twice.

use std::time::Duration;

use crate::derived_id;
use event_schemas::webhook::{webhook_stream, EndpointDisabled, MessageExhausted, WebhookEvent};
use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
use event_store::{AppendError, EventStoreExt};
use rand::SeedableRng;
use uuid::Uuid;

use super::send::Outcome;
use super::{Inner, Leased};
use crate::feed::FeedError;

/// A delivery due now.
#[derive(Debug, Clone)]
pub(super) struct Due {
    pub id: i64,
    pub message_id: Uuid,
    pub attempts: u32,
    pub event_type: String,
    pub body: Option<Vec<u8>>,
}

/// The outcome of a delivery that cannot be sent at all.
pub(super) fn unsendable(clock: &crate::Clock, why: &str) -> Outcome {
    Outcome {
        at: clock.now(),
        status: None,
        latency: Duration::ZERO,
        error_class: Some("unsendable"),
        excerpt: Some(why.into()),
        retry_after: None,
    }
}

impl Inner {
    /// Records `results`; answers whether the lane may go on (the endpoint
    /// is still enabled).
    pub(super) async fn record(
        &self,
        ep: &mut Leased,
        results: Vec<(Due, Outcome)>,
    ) -> Result<bool, FeedError> {
        if results.is_empty() {
            return Ok(true);
        }
        let s = &self.settings;
        let mut rng = rand::rngs::StdRng::from_entropy();
        let mut events = Vec::new();
        let (mut ids, mut statuses, mut nexts, mut codes, mut ats) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut ns, mut latencies, mut classes, mut excerpts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut gone = false;
        for (d, o) in &results {
            let n = d.attempts + 1;
            let (status, next) = if o.succeeded() {
                ep.failing_since = None;
                ("delivered", None)
            } else {
                ep.failing_since.get_or_insert(o.at);
                gone |= o.status == Some(410);
                let delay = if o.error_class == Some("unsendable") || o.status == Some(410) {
                    None
                } else {
                    s.schedule.next(n, o.retry_after, &mut rng)
                };
                match delay {
                    Some(delay) => (
                        "pending",
                        Some(o.at + chrono::Duration::from_std(delay).unwrap_or_default()),
                    ),
                    None => {
                        events.push(NewEvent {
                            event_id: derived_id(&[b"exhausted", &d.id.to_be_bytes()]),
                            ..NewEvent::from_domain(
                                &WebhookEvent::MessageExhausted(MessageExhausted {
                                    message_id: d.message_id,
                                    message_type: d.event_type.clone(),
                                    attempts: n,
                                    last_status: o.status,
                                }),
                                self.metadata(ep),
                            )
                        });
                        ("failed", None)
                    }
                }
            };
            ids.push(d.id);
            statuses.push(status);
            nexts.push(next);
            codes.push(o.status.map(i32::from));
            ats.push(o.at);
            ns.push(n as i32);
            latencies.push(o.latency.as_millis().min(i32::MAX as u128) as i32);
            classes.push(o.error_class);
            excerpts.push(o.excerpt.clone());
        }
        let failing_too_long = ep
            .failing_since
            .is_some_and(|since| s.clock.now() - since >= s.disable_after);
        let disable = if gone {
            Some(("gone", None))
        } else if failing_too_long {
            Some(("failing", ep.failing_since))
        } else {
            None
        };
        if let Some((reason, failing_since)) = disable {
            let since = failing_since.map(|t| t.timestamp_micros()).unwrap_or(0);
            events.push(NewEvent {
                event_id: derived_id(&[
                    b"disabled",
                    ep.id.as_bytes(),
                    reason.as_bytes(),
                    &since.to_be_bytes(),
                    &ids[ids.len() - 1].to_be_bytes(),
                ]),
                ..NewEvent::from_domain(
                    &WebhookEvent::Disabled(EndpointDisabled {
                        reason: reason.into(),
                        failing_since,
                    }),
                    self.metadata(ep),
                )
            });
        }
        if !events.is_empty() {
            match self
                .store
                .append(&webhook_stream(ep.id), ExpectedVersion::Any, events)
                .await
            {
                Ok(_) | Err(AppendError::DuplicateEventId(_)) => {}
                Err(e) => {
                    return Err(FeedError::Event {
                        position: 0,
                        reason: e.to_string(),
                    })
                }
            }
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // A record lost to a crash of PostgreSQL leaves its deliveries
        // pending: they are sent again (at least once), never dropped. So
        // it need not wait for fsync.
        tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
            .await?;
        let rows = tx.query(&tx.prepare_cached("UPDATE delivery.deliveries d SET attempts = d.attempts + 1, status = u.status, \
                   next_at = u.next_at, last_status = u.code, \
                   finished_at = CASE WHEN u.status = 'pending' THEN NULL ELSE u.at END \
                 FROM UNNEST($1::int8[], $2::text[], $3::timestamptz[], $4::int4[], \
                             $5::timestamptz[]) AS u(id, status, next_at, code, at) \
                 WHERE d.id = u.id RETURNING d.id, d.attempts").await?,
                &[&ids, &statuses, &nexts, &codes, &ats],
            )
            .await?;
        // The numbers the rows hold win over this lane's: another worker
        // may have recorded an attempt meanwhile.
        for r in &rows {
            let (id, n): (i64, i32) = (r.get(0), r.get(1));
            if let Some(i) = ids.iter().position(|x| *x == id) {
                ns[i] = n;
            }
        }
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO delivery.attempts (delivery_id, n, endpoint_id, at, status_code, \
               latency_ms, error_class, body_excerpt, next_at) \
             SELECT u.id, u.n, $9, u.at, u.code, u.latency, u.class, u.excerpt, u.next_at \
             FROM UNNEST($1::int8[], $2::int4[], $3::timestamptz[], $4::int4[], $5::int4[], \
                         $6::text[], $7::text[], $8::timestamptz[]) \
               AS u(id, n, at, code, latency, class, excerpt, next_at) \
             ON CONFLICT DO NOTHING",
            )
            .await?,
            &[
                &ids, &ns, &ats, &codes, &latencies, &classes, &excerpts, &nexts, &ep.id,
            ],
        )
        .await?;
        tx.execute(
            &tx.prepare_cached(
                "UPDATE delivery.endpoints SET failing_since = $2, \
               lease_until = CASE WHEN lease_owner = $3 \
                 THEN now() + make_interval(secs => $4) ELSE lease_until END \
             WHERE endpoint_id = $1",
            )
            .await?,
            &[
                &ep.id,
                &ep.failing_since,
                &self.owner,
                &s.lease.as_secs_f64(),
            ],
        )
        .await?;
        tx.commit().await?;
        // A disabled endpoint's lane stops here; the feeder marks it
        // disabled when it reads the event, so no lane takes it again.
        Ok(disable.is_none())
    }

    fn metadata(&self, ep: &Leased) -> Metadata {
        Metadata {
            org_id: Some(ep.org_id),
            ..Metadata::by(Actor::system())
        }
    }
}
