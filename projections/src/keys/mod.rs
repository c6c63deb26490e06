//! API keys and what verification needs of their apps and organisations:
//! the key table (`api_keys`, with usage count and last use written from
//! `usage.recorded`, never per call), each app's status and granted scopes
//! (`key_apps`), each organisation's plan window (`key_orgs`) and the calls
//! counted in each billing window (`org_usage`).
//!
//! A node's verification index loads from these tables together with this
//! projection's checkpoint, in one snapshot, then follows the log from
//! there; so they hold exactly what `verifier` folds from the same events.

pub mod read;

use std::sync::LazyLock;

use async_trait::async_trait;
use event_schemas::app::AppEvent;
use event_schemas::key::{KeyEvent, KeyRotationEvent, UsageEvent};
use event_schemas::oauth::{OAuthClientEvent, SigningKeyEvent};
use event_schemas::org::OrgEvent;
use event_schemas::RecordedEvent;
use serde_json::json;
use tokio_postgres::types::Json;
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::{stream_uuid, Projection, ProjectionError};

/// The keys read model.
pub struct Keys;

static TYPES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    KeyEvent::TYPES
        .iter()
        .chain(UsageEvent::TYPES)
        .chain(&[
            "app.created",
            "app.updated",
            "app.deleted",
            "app.suspended",
            "app.reinstated",
            "product_access.requested",
            "product_access.approved",
            "product_access.rejected",
            "plan.set",
        ])
        .chain(OAuthClientEvent::TYPES)
        .chain(SigningKeyEvent::TYPES)
        .chain(KeyRotationEvent::TYPES)
        .copied()
        .collect()
});

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

#[async_trait]
impl Projection for Keys {
    fn name(&self) -> &'static str {
        "keys"
    }

    fn version(&self) -> u32 {
        // 2: leak reports. 3: OAuth clients and signing keys. 4: mass
        // rotations. 5: apps' browser origins, clients' secret hashes.
        5
    }

    fn schema(&self) -> &'static str {
        "CREATE TABLE api_keys (
             key_id           UUID PRIMARY KEY,
             app_id           UUID NOT NULL,
             org_id           UUID NOT NULL,
             name             TEXT NOT NULL,
             mode             TEXT NOT NULL,
             kind             TEXT NOT NULL,
             scopes           JSONB NOT NULL,
             prefix           TEXT NOT NULL,
             hash             TEXT NOT NULL,
             expires_at       TIMESTAMPTZ,
             rate_limit       INT,
             rate_window_secs INT,
             rotated_from     UUID,
             replaced_by      UUID,
             stops_at         TIMESTAMPTZ,
             revoked_at       TIMESTAMPTZ,
             revoke_reason    TEXT,
             leak_reported_at TIMESTAMPTZ,
             rotation_job     UUID,
             imported         BOOLEAN NOT NULL,
             usage_count      BIGINT NOT NULL DEFAULT 0,
             last_used_at     TIMESTAMPTZ,
             created_by       TEXT NOT NULL,
             created_at       TIMESTAMPTZ NOT NULL
         );
         CREATE INDEX api_keys_app_idx ON api_keys (app_id, created_at, key_id);
         CREATE INDEX api_keys_hash_idx ON api_keys (hash);
         CREATE TABLE key_apps (
             app_id    UUID PRIMARY KEY,
             org_id    UUID NOT NULL,
             deleted   BOOLEAN NOT NULL DEFAULT false,
             suspended BOOLEAN NOT NULL DEFAULT false,
             access    JSONB NOT NULL DEFAULT '{}',
             origins   JSONB NOT NULL DEFAULT '[]'
         );
         CREATE TABLE key_orgs (
             org_id             UUID PRIMARY KEY,
             monthly_call_limit BIGINT NOT NULL,
             window_start       TIMESTAMPTZ NOT NULL,
             window_end         TIMESTAMPTZ NOT NULL
         );
         CREATE TABLE oauth_clients (
             client_id  UUID PRIMARY KEY,
             app_id     UUID NOT NULL,
             org_id     UUID NOT NULL,
             name       TEXT NOT NULL,
             mode       TEXT NOT NULL,
             scopes     JSONB NOT NULL,
             secret_rotated_at TIMESTAMPTZ,
             previous_secret_stops_at TIMESTAMPTZ,
             secret_hash TEXT NOT NULL,
             previous_secret_hash TEXT,
             revoked_at TIMESTAMPTZ,
             created_by TEXT NOT NULL,
             created_at TIMESTAMPTZ NOT NULL
         );
         CREATE INDEX oauth_clients_app_idx ON oauth_clients (app_id, created_at, client_id);
         CREATE INDEX oauth_clients_secret_idx ON oauth_clients (secret_hash);
         CREATE INDEX oauth_clients_previous_secret_idx ON oauth_clients (previous_secret_hash);
         CREATE TABLE signing_keys (
             position   BIGINT PRIMARY KEY,
             kid        TEXT NOT NULL,
             public_key TEXT NOT NULL,
             retires_at TIMESTAMPTZ,
             added_at   TIMESTAMPTZ NOT NULL
         );
         CREATE TABLE key_rotations (
             job_id          UUID PRIMARY KEY,
             criteria        JSONB NOT NULL,
             created_before  TIMESTAMPTZ NOT NULL,
             grace_period_secs BIGINT NOT NULL,
             reason          TEXT NOT NULL,
             requested_by    TEXT NOT NULL,
             requested_at    TIMESTAMPTZ NOT NULL,
             completed_at    TIMESTAMPTZ,
             keys            BIGINT
         );
         CREATE INDEX api_keys_rotation_job_idx ON api_keys (rotation_job);
         CREATE TABLE org_usage (
             org_id       UUID NOT NULL,
             window_start TIMESTAMPTZ NOT NULL,
             window_end   TIMESTAMPTZ NOT NULL,
             calls        BIGINT NOT NULL,
             PRIMARY KEY (org_id, window_start)
         );"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "api_keys",
            "key_apps",
            "key_orgs",
            "org_usage",
            "oauth_clients",
            "signing_keys",
            "key_rotations",
        ]
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(TYPES.as_slice())
    }

    async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for e in events {
            if let Some(k) = crate::decode(e, KeyEvent::decode)? {
                apply_key(tx, e, &k).await?;
            } else if let Some(UsageEvent::Recorded(u)) = crate::decode(e, UsageEvent::decode)? {
                apply_usage(tx, &u).await?;
            } else if let Some(j) = crate::decode(e, KeyRotationEvent::decode)? {
                apply_job(tx, e, &j).await?;
            } else if let Some(c) = crate::decode(e, OAuthClientEvent::decode)? {
                apply_client(tx, e, &c).await?;
            } else if let Some(SigningKeyEvent::Added(k)) =
                crate::decode(e, SigningKeyEvent::decode)?
            {
                tx.execute(
                    "UPDATE signing_keys SET retires_at = $1 \
                     WHERE position = (SELECT max(position) FROM signing_keys)",
                    &[&k.previous_retires_at],
                )
                .await?;
                tx.execute(
                    "INSERT INTO signing_keys (position, kid, public_key, added_at) VALUES ($1, $2, $3, $4)",
                    &[&(e.global_position as i64), &k.kid, &k.public_key, &e.recorded_at],
                )
                .await?;
            } else if let Some(a) = crate::decode(e, AppEvent::decode)? {
                apply_app(tx, e, &a).await?;
            } else if let Some(OrgEvent::PlanSet(p)) = crate::decode(e, OrgEvent::decode)? {
                let org = stream_uuid(e, "org-")?;
                tx.execute(
                    "INSERT INTO key_orgs (org_id, monthly_call_limit, window_start, window_end) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (org_id) DO UPDATE SET \
                     monthly_call_limit = $2, window_start = $3, window_end = $4",
                    &[
                        &org,
                        &i64::try_from(p.monthly_call_limit).unwrap_or(i64::MAX),
                        &p.billing_window_start,
                        &p.billing_window_end,
                    ],
                )
                .await?;
            }
        }
        Ok(())
    }
}

async fn apply_key(
    tx: &Transaction<'_>,
    e: &RecordedEvent,
    k: &KeyEvent,
) -> Result<(), ProjectionError> {
    let key = stream_uuid(e, "api_key-")?;
    let changed = match k {
        KeyEvent::Issued(i) => {
            tx.execute(
                "INSERT INTO api_keys (key_id, app_id, org_id, name, mode, kind, scopes, prefix, \
                     hash, expires_at, rate_limit, rate_window_secs, rotated_from, imported, \
                     created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                &[
                    &i.key_id,
                    &i.app_id,
                    &i.org_id,
                    &i.name,
                    &i.mode,
                    &i.kind,
                    &Json(&i.scopes),
                    &i.prefix,
                    &i.hash,
                    &i.expires_at,
                    &i.rate_limit.map(|l| i64::from(l) as i32),
                    &i.rate_limit_window_secs.map(|w| w as i32),
                    &i.rotated_from,
                    &i.imported,
                    &actor(e),
                    &e.recorded_at,
                ],
            )
            .await?
        }
        KeyEvent::Rotated(r) => {
            tx.execute(
                "UPDATE api_keys SET replaced_by = $2, stops_at = LEAST(COALESCE(stops_at, $3), $3) \
                 WHERE key_id = $1",
                &[&key, &r.replaced_by, &r.stops_at],
            )
            .await?
        }
        KeyEvent::Revoked(r) => {
            tx.execute(
                "UPDATE api_keys SET revoked_at = $2, revoke_reason = $3 WHERE key_id = $1",
                &[&key, &e.recorded_at, &r.reason],
            )
            .await?
        }
        KeyEvent::RotationRequired(r) => {
            tx.execute(
                "UPDATE api_keys SET stops_at = LEAST(COALESCE(stops_at, $2), $2), rotation_job = $3 \
                 WHERE key_id = $1",
                &[&key, &r.stops_at, &r.job_id],
            )
            .await?
        }
        KeyEvent::LeakReported(_) => {
            tx.execute(
                "UPDATE api_keys SET leak_reported_at = $2 WHERE key_id = $1",
                &[&key, &e.recorded_at],
            )
            .await?
        }
    };
    if changed != 1 {
        return Err(ProjectionError::Invariant {
            position: e.global_position,
            reason: format!("an event of key {key} before its issue"),
        });
    }
    Ok(())
}

/// A key's count and last use; its organisation's calls in the billing
/// window the interval starts in (the same window the index counts).
async fn apply_usage(
    tx: &Transaction<'_>,
    u: &event_schemas::key::UsageRecorded,
) -> Result<(), ProjectionError> {
    if u.source != "verify" {
        return Ok(());
    }
    tx.execute(
        "UPDATE api_keys SET usage_count = usage_count + $2, \
             last_used_at = GREATEST(last_used_at, $3) WHERE key_id = $1",
        &[&u.key_id, &(u.calls as i64), &u.last_at],
    )
    .await?;
    let Some(row) = tx
        .query_opt(
            "SELECT window_start, window_end FROM key_orgs WHERE org_id = $1",
            &[&u.org_id],
        )
        .await?
    else {
        return Ok(());
    };
    let (start, end): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        (row.get(0), row.get(1));
    let Some((from, to)) = domain::orgs::billing_window(
        start.timestamp_millis(),
        end.timestamp_millis(),
        u.from.timestamp_millis(),
    ) else {
        return Ok(());
    };
    let at = |ms| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    tx.execute(
        "INSERT INTO org_usage (org_id, window_start, window_end, calls) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, window_start) DO UPDATE SET calls = org_usage.calls + $4",
        &[&u.org_id, &at(from), &at(to), &(u.calls as i64)],
    )
    .await?;
    Ok(())
}

async fn apply_app(
    tx: &Transaction<'_>,
    e: &RecordedEvent,
    a: &AppEvent,
) -> Result<(), ProjectionError> {
    let app = stream_uuid(e, "app-")?;
    match a {
        AppEvent::Created(c) => {
            tx.execute(
                "INSERT INTO key_apps (app_id, org_id, origins) VALUES ($1, $2, $3)",
                &[&app, &c.org_id, &Json(&c.origins)],
            )
            .await?;
        }
        AppEvent::Updated(u) => {
            if let Some(origins) = &u.origins {
                tx.execute(
                    "UPDATE key_apps SET origins = $2 WHERE app_id = $1",
                    &[&app, &Json(origins)],
                )
                .await?;
            }
        }
        AppEvent::Deleted(_) => {
            tx.execute(
                "UPDATE key_apps SET deleted = true WHERE app_id = $1",
                &[&app],
            )
            .await?;
        }
        AppEvent::Suspended(_) | AppEvent::Reinstated(_) => {
            let suspended = matches!(a, AppEvent::Suspended(_));
            tx.execute(
                "UPDATE key_apps SET suspended = $2 WHERE app_id = $1",
                &[&app, &suspended],
            )
            .await?;
        }
        AppEvent::AccessRequested(r) => {
            let access = json!({"mode": r.mode, "product_id": r.product_id, "state": "pending"});
            tx.execute(
                "UPDATE key_apps SET access = jsonb_set(access, ARRAY[$2::text], $3) \
                 WHERE app_id = $1",
                &[&app, &r.request_id.to_string(), &Json(access)],
            )
            .await?;
        }
        AppEvent::AccessApproved(d) => {
            let change = json!({"state": "approved", "scopes": d.scopes});
            decide(tx, app, d.request_id, change).await?;
        }
        AppEvent::AccessRejected(d) => {
            decide(tx, app, d.request_id, json!({"state": "rejected"})).await?;
        }
        _ => {}
    }
    Ok(())
}

async fn decide(
    tx: &Transaction<'_>,
    app: Uuid,
    request: Uuid,
    change: serde_json::Value,
) -> Result<(), ProjectionError> {
    tx.execute(
        "UPDATE key_apps SET access = jsonb_set(access, ARRAY[$2::text], \
             (access -> $2::text) || $3) WHERE app_id = $1",
        &[&app, &request.to_string(), &Json(change)],
    )
    .await?;
    Ok(())
}

async fn apply_client(
    tx: &Transaction<'_>,
    e: &RecordedEvent,
    c: &OAuthClientEvent,
) -> Result<(), ProjectionError> {
    let client = stream_uuid(e, "oauth_client-")?;
    let changed = match c {
        OAuthClientEvent::Created(c) => {
            tx.execute(
                "INSERT INTO oauth_clients (client_id, app_id, org_id, name, mode, scopes, created_by, created_at, secret_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[&c.client_id, &c.app_id, &c.org_id, &c.name, &c.mode, &Json(&c.scopes), &actor(e), &e.recorded_at, &c.secret_hash],
            )
            .await?
        }
        OAuthClientEvent::SecretRotated(r) => {
            tx.execute(
                "UPDATE oauth_clients SET secret_rotated_at = $2, previous_secret_stops_at = $3, \
                 previous_secret_hash = secret_hash, secret_hash = $4 WHERE client_id = $1",
                &[&client, &e.recorded_at, &r.previous_stops_at, &r.secret_hash],
            )
            .await?
        }
        OAuthClientEvent::Revoked(_) => {
            tx.execute(
                "UPDATE oauth_clients SET revoked_at = $2 WHERE client_id = $1",
                &[&client, &e.recorded_at],
            )
            .await?
        }
        OAuthClientEvent::LeakReported(_) => 1,
    };
    if changed != 1 {
        return Err(ProjectionError::Invariant {
            position: e.global_position,
            reason: format!("an event of OAuth client {client} before its creation"),
        });
    }
    Ok(())
}

async fn apply_job(
    tx: &Transaction<'_>,
    e: &RecordedEvent,
    j: &KeyRotationEvent,
) -> Result<(), ProjectionError> {
    match j {
        KeyRotationEvent::Requested(r) => {
            let criteria = json!({"org_id": r.org_id, "app_id": r.app_id, "mode": r.mode});
            tx.execute(
                "INSERT INTO key_rotations (job_id, criteria, created_before, grace_period_secs, reason, \
                     requested_by, requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &r.job_id,
                    &Json(criteria),
                    &r.created_before,
                    &(r.grace_period_secs as i64),
                    &r.reason,
                    &actor(e),
                    &e.recorded_at,
                ],
            )
            .await?;
        }
        KeyRotationEvent::Completed(c) => {
            let job = stream_uuid(e, "key_rotation-")?;
            tx.execute(
                "UPDATE key_rotations SET completed_at = $2, keys = $3 WHERE job_id = $1",
                &[&job, &e.recorded_at, &(c.keys as i64)],
            )
            .await?;
        }
    }
    Ok(())
}
