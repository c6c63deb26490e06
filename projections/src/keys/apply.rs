//! The keys read model's write side: a batch loads the rows it touches,
//! folds its events in log order, and writes back what changed.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use event_schemas::app::AppEvent;
use event_schemas::key::{KeyEvent, KeyRotationEvent, UsageEvent, UsageRecorded};
use event_schemas::oauth::{OAuthClientEvent, SigningKeyEvent};
use event_schemas::org::OrgEvent;
use event_schemas::RecordedEvent;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::table::{self, row, Table};
use crate::{stream_uuid, ProjectionError};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ApiKey {
    key_id: Uuid,
    app_id: Uuid,
    org_id: Uuid,
    name: String,
    mode: String,
    kind: String,
    scopes: Value,
    prefix: String,
    hash: String,
    expires_at: Option<DateTime<Utc>>,
    rate_limit: Option<i32>,
    rate_window_secs: Option<i32>,
    rotated_from: Option<Uuid>,
    replaced_by: Option<Uuid>,
    stops_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    revoke_reason: Option<String>,
    leak_reported_at: Option<DateTime<Utc>>,
    rotation_job: Option<Uuid>,
    imported: bool,
    usage_count: i64,
    last_used_at: Option<DateTime<Utc>>,
    created_by: String,
    created_at: DateTime<Utc>,
}
row!(ApiKey, "api_keys", [key_id], Uuid, |r: &ApiKey| r.key_id);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyApp {
    app_id: Uuid,
    org_id: Uuid,
    deleted: bool,
    suspended: bool,
    access: Value,
    origins: Value,
}
row!(KeyApp, "key_apps", [app_id], Uuid, |r: &KeyApp| r.app_id);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyOrg {
    org_id: Uuid,
    monthly_call_limit: i64,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
}
row!(KeyOrg, "key_orgs", [org_id], Uuid, |r: &KeyOrg| r.org_id);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrgUsage {
    org_id: Uuid,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    calls: i64,
}
row!(
    OrgUsage,
    "org_usage",
    [org_id, window_start],
    (Uuid, DateTime<Utc>),
    |r: &OrgUsage| (r.org_id, r.window_start)
);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Client {
    client_id: Uuid,
    app_id: Uuid,
    org_id: Uuid,
    name: String,
    mode: String,
    scopes: Value,
    secret_rotated_at: Option<DateTime<Utc>>,
    previous_secret_stops_at: Option<DateTime<Utc>>,
    secret_hash: String,
    previous_secret_hash: Option<String>,
    revoked_at: Option<DateTime<Utc>>,
    created_by: String,
    created_at: DateTime<Utc>,
}
row!(Client, "oauth_clients", [client_id], Uuid, |r: &Client| r
    .client_id);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Rotation {
    job_id: Uuid,
    criteria: Value,
    created_before: DateTime<Utc>,
    grace_period_secs: i64,
    reason: String,
    requested_by: String,
    requested_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    keys: Option<i64>,
}
row!(Rotation, "key_rotations", [job_id], Uuid, |r: &Rotation| r
    .job_id);

/// Who the event names: a user's id, else the actor's kind.
fn actor(e: &RecordedEvent) -> String {
    e.parsed_metadata()
        .ok()
        .map(|m| {
            m.actor
                .id
                .unwrap_or_else(|| format!("{:?}", m.actor.kind).to_lowercase())
        })
        .unwrap_or_default()
}

/// The rows one batch works on.
#[derive(Default)]
struct Batch {
    keys: Table<ApiKey>,
    apps: Table<KeyApp>,
    orgs: Table<KeyOrg>,
    usage: Table<OrgUsage>,
    clients: Table<Client>,
    rotations: Table<Rotation>,
}

/// Applies a batch of events.
pub(super) async fn apply(
    tx: &Transaction<'_>,
    events: &[&RecordedEvent],
) -> Result<(), ProjectionError> {
    table::fold::<Batch>(tx, events).await
}

fn stream_id(e: &RecordedEvent, prefix: &str) -> Option<Uuid> {
    e.stream_id.strip_prefix(prefix)?.parse().ok()
}

#[async_trait::async_trait]
impl table::Batch for Batch {
    /// Loads, in one query per table, the rows the batch's events name.
    async fn prefetch(
        &mut self,
        tx: &Transaction<'_>,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let (mut keys, mut apps, mut orgs, mut clients, mut jobs) = (
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
        );
        let mut usage = Vec::new();
        for e in events {
            keys.extend(stream_id(e, "api_key-"));
            apps.extend(stream_id(e, "app-"));
            orgs.extend(stream_id(e, "org-"));
            clients.extend(stream_id(e, "oauth_client-"));
            jobs.extend(stream_id(e, "key_rotation-"));
            if e.stream_id.starts_with("key_rotation-") {
                #[derive(Deserialize)]
                struct Job {
                    job_id: Option<Uuid>,
                }
                if let Ok(j) = serde_json::from_str::<Job>(e.data.get()) {
                    jobs.extend(j.job_id);
                }
            }
            if let Some(UsageEvent::Recorded(u)) = crate::decode(e, UsageEvent::decode)? {
                if u.source == "verify" {
                    keys.insert(u.key_id);
                    orgs.insert(u.org_id);
                    usage.push((u.org_id, u.from));
                }
            }
        }
        self.keys.load(tx, keys).await?;
        self.apps.load(tx, apps).await?;
        self.orgs.load(tx, orgs).await?;
        self.clients.load(tx, clients).await?;
        self.rotations.load(tx, jobs).await?;
        // The windows usage will count in, as the plans stand now (a plan
        // set in this batch may move some: those load when first used).
        let windows: Vec<_> = usage
            .into_iter()
            .filter_map(|(org, from)| Some((org, self.window_of(org, from)?.0)))
            .collect();
        self.usage.load(tx, windows).await
    }

    async fn flush(&mut self, tx: &Transaction<'_>) -> Result<(), ProjectionError> {
        self.keys.flush(tx).await?;
        self.apps.flush(tx).await?;
        self.orgs.flush(tx).await?;
        self.usage.flush(tx).await?;
        self.clients.flush(tx).await?;
        self.rotations.flush(tx).await
    }

    async fn event(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if let Some(k) = crate::decode(e, KeyEvent::decode)? {
            self.key(tx, e, &k).await
        } else if let Some(UsageEvent::Recorded(u)) = crate::decode(e, UsageEvent::decode)? {
            self.usage(tx, &u).await
        } else if let Some(j) = crate::decode(e, KeyRotationEvent::decode)? {
            self.job(tx, e, &j).await
        } else if let Some(c) = crate::decode(e, OAuthClientEvent::decode)? {
            self.client(tx, e, &c).await
        } else if let Some(SigningKeyEvent::Added(k)) = crate::decode(e, SigningKeyEvent::decode)? {
            // The newest key so far retires: set-based, on a table no batch
            // holds rows of.
            let retire = tx
                .prepare_cached(
                    "UPDATE signing_keys SET retires_at = $1 \
                     WHERE position = (SELECT max(position) FROM signing_keys)",
                )
                .await?;
            tx.execute(&retire, &[&k.previous_retires_at]).await?;
            let add = tx
                .prepare_cached(
                    "INSERT INTO signing_keys (position, kid, public_key, added_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .await?;
            tx.execute(
                &add,
                &[
                    &(e.global_position as i64),
                    &k.kid,
                    &k.public_key,
                    &e.recorded_at,
                ],
            )
            .await?;
            Ok(())
        } else if let Some(a) = crate::decode(e, AppEvent::decode)? {
            self.app(tx, e, &a).await
        } else if let Some(OrgEvent::PlanSet(p)) = crate::decode(e, OrgEvent::decode)? {
            let org = stream_uuid(e, "org-")?;
            self.orgs.put(KeyOrg {
                org_id: org,
                monthly_call_limit: i64::try_from(p.monthly_call_limit).unwrap_or(i64::MAX),
                window_start: p.billing_window_start,
                window_end: p.billing_window_end,
            });
            Ok(())
        } else {
            Ok(())
        }
    }
}

impl Batch {
    /// The billing window of `org` that `from` falls in, if its plan is
    /// loaded and has one.
    fn window_of(&self, org: Uuid, from: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let plan = self.orgs.known(&org)?;
        let (start, end) = domain::orgs::billing_window(
            plan.window_start.timestamp_millis(),
            plan.window_end.timestamp_millis(),
            from.timestamp_millis(),
        )?;
        let at = |ms| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        Some((at(start), at(end)))
    }

    async fn key(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        k: &KeyEvent,
    ) -> Result<(), ProjectionError> {
        let key = stream_uuid(e, "api_key-")?;
        let before_issue = || ProjectionError::Invariant {
            position: e.global_position,
            reason: format!("an event of key {key} before its issue"),
        };
        if let KeyEvent::Issued(i) = k {
            let row = ApiKey {
                key_id: i.key_id,
                app_id: i.app_id,
                org_id: i.org_id,
                name: i.name.clone(),
                mode: i.mode.clone(),
                kind: i.kind.clone(),
                scopes: json!(i.scopes),
                prefix: i.prefix.clone(),
                hash: i.hash.clone(),
                expires_at: i.expires_at,
                rate_limit: i.rate_limit.map(|l| i64::from(l) as i32),
                rate_window_secs: i.rate_limit_window_secs.map(|w| w as i32),
                rotated_from: i.rotated_from,
                replaced_by: None,
                stops_at: None,
                revoked_at: None,
                revoke_reason: None,
                leak_reported_at: None,
                rotation_job: None,
                imported: i.imported,
                usage_count: 0,
                last_used_at: None,
                created_by: actor(e),
                created_at: e.recorded_at,
            };
            if !self.keys.insert(tx, row).await? {
                return Err(ProjectionError::Invariant {
                    position: e.global_position,
                    reason: format!("key {key} issued twice"),
                });
            }
            return Ok(());
        }
        let row = self
            .keys
            .get_mut(tx, &key)
            .await?
            .ok_or_else(before_issue)?;
        let earliest = |held: Option<DateTime<Utc>>, new: DateTime<Utc>| {
            Some(held.map_or(new, |h| h.min(new)))
        };
        match k {
            KeyEvent::Issued(_) => {}
            KeyEvent::Rotated(r) => {
                row.replaced_by = Some(r.replaced_by);
                row.stops_at = earliest(row.stops_at, r.stops_at);
            }
            KeyEvent::Revoked(r) => {
                row.revoked_at = Some(e.recorded_at);
                row.revoke_reason = r.reason.clone();
            }
            KeyEvent::RotationRequired(r) => {
                row.stops_at = earliest(row.stops_at, r.stops_at);
                row.rotation_job = Some(r.job_id);
            }
            KeyEvent::LeakReported(_) => row.leak_reported_at = Some(e.recorded_at),
        }
        Ok(())
    }

    /// A key's count and last use; its organisation's calls in the billing
    /// window the interval starts in (the same window the index counts).
    async fn usage(
        &mut self,
        tx: &Transaction<'_>,
        u: &UsageRecorded,
    ) -> Result<(), ProjectionError> {
        if u.source != "verify" {
            return Ok(());
        }
        if let Some(key) = self.keys.get_mut(tx, &u.key_id).await? {
            key.usage_count += u.calls as i64;
            key.last_used_at = key.last_used_at.max(Some(u.last_at));
        }
        self.orgs.get(tx, &u.org_id).await?;
        let Some((from, to)) = self.window_of(u.org_id, u.from) else {
            return Ok(());
        };
        match self.usage.get_mut(tx, &(u.org_id, from)).await? {
            Some(row) => row.calls += u.calls as i64,
            None => self.usage.put(OrgUsage {
                org_id: u.org_id,
                window_start: from,
                window_end: to,
                calls: u.calls as i64,
            }),
        }
        Ok(())
    }

    async fn app(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        a: &AppEvent,
    ) -> Result<(), ProjectionError> {
        let app = stream_uuid(e, "app-")?;
        if let AppEvent::Created(c) = a {
            let row = KeyApp {
                app_id: app,
                org_id: c.org_id,
                deleted: false,
                suspended: false,
                access: json!({}),
                origins: json!(c.origins),
            };
            if !self.apps.insert(tx, row).await? {
                return Err(ProjectionError::Invariant {
                    position: e.global_position,
                    reason: format!("app {app} created twice"),
                });
            }
            return Ok(());
        }
        let Some(row) = self.apps.get_mut(tx, &app).await? else {
            return Ok(());
        };
        let decide = |row: &mut KeyApp, request: Uuid, change: Value| {
            let held = row.access.get_mut(request.to_string());
            match (held, change) {
                (Some(Value::Object(held)), Value::Object(change)) => {
                    held.extend(change);
                    Ok(())
                }
                _ => Err(ProjectionError::Invariant {
                    position: e.global_position,
                    reason: format!("a decision on access request {request} never requested"),
                }),
            }
        };
        match a {
            AppEvent::Updated(u) => {
                if let Some(origins) = &u.origins {
                    row.origins = json!(origins);
                }
            }
            AppEvent::Deleted(_) => row.deleted = true,
            AppEvent::Suspended(_) => row.suspended = true,
            AppEvent::Reinstated(_) => row.suspended = false,
            AppEvent::AccessRequested(r) => {
                let access =
                    json!({"mode": r.mode, "product_id": r.product_id, "state": "pending"});
                if let Value::Object(map) = &mut row.access {
                    map.insert(r.request_id.to_string(), access);
                }
            }
            AppEvent::AccessApproved(d) => decide(
                row,
                d.request_id,
                json!({"state": "approved", "scopes": d.scopes}),
            )?,
            AppEvent::AccessRejected(d) => decide(row, d.request_id, json!({"state": "rejected"}))?,
            _ => {}
        }
        Ok(())
    }

    async fn client(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        c: &OAuthClientEvent,
    ) -> Result<(), ProjectionError> {
        let client = stream_uuid(e, "oauth_client-")?;
        let before_creation = || ProjectionError::Invariant {
            position: e.global_position,
            reason: format!("an event of OAuth client {client} before its creation"),
        };
        match c {
            OAuthClientEvent::Created(c) => {
                let row = Client {
                    client_id: c.client_id,
                    app_id: c.app_id,
                    org_id: c.org_id,
                    name: c.name.clone(),
                    mode: c.mode.clone(),
                    scopes: json!(c.scopes),
                    secret_rotated_at: None,
                    previous_secret_stops_at: None,
                    secret_hash: c.secret_hash.clone(),
                    previous_secret_hash: None,
                    revoked_at: None,
                    created_by: actor(e),
                    created_at: e.recorded_at,
                };
                if !self.clients.insert(tx, row).await? {
                    return Err(before_creation());
                }
            }
            OAuthClientEvent::SecretRotated(r) => {
                let row = self
                    .clients
                    .get_mut(tx, &client)
                    .await?
                    .ok_or_else(before_creation)?;
                row.secret_rotated_at = Some(e.recorded_at);
                row.previous_secret_stops_at = Some(r.previous_stops_at);
                row.previous_secret_hash = Some(std::mem::replace(
                    &mut row.secret_hash,
                    r.secret_hash.clone(),
                ));
            }
            OAuthClientEvent::Revoked(_) => {
                let row = self
                    .clients
                    .get_mut(tx, &client)
                    .await?
                    .ok_or_else(before_creation)?;
                row.revoked_at = Some(e.recorded_at);
            }
            OAuthClientEvent::LeakReported(_) => {}
        }
        Ok(())
    }

    async fn job(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        j: &KeyRotationEvent,
    ) -> Result<(), ProjectionError> {
        match j {
            KeyRotationEvent::Requested(r) => {
                let criteria = json!({"org_id": r.org_id, "app_id": r.app_id, "mode": r.mode});
                let row = Rotation {
                    job_id: r.job_id,
                    criteria,
                    created_before: r.created_before,
                    grace_period_secs: r.grace_period_secs as i64,
                    reason: r.reason.clone(),
                    requested_by: actor(e),
                    requested_at: e.recorded_at,
                    completed_at: None,
                    keys: None,
                };
                if !self.rotations.insert(tx, row).await? {
                    return Err(ProjectionError::Invariant {
                        position: e.global_position,
                        reason: format!("rotation job {} requested twice", r.job_id),
                    });
                }
            }
            KeyRotationEvent::Completed(c) => {
                let job = stream_uuid(e, "key_rotation-")?;
                if let Some(row) = self.rotations.get_mut(tx, &job).await? {
                    row.completed_at = Some(e.recorded_at);
                    row.keys = Some(c.keys as i64);
                }
            }
        }
        Ok(())
    }
}
