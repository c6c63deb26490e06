//! Keeping the dispatcher's copy of an endpoint as its stream says, and
//! the deliveries a replay asks for.

use deadpool_postgres::Transaction;
use event_schemas::webhook::{SealedSecret, WebhookEvent, AUDIT_ENTRY_TYPE};
use event_schemas::RecordedEvent;
use serde_json::{json, Value};
use uuid::Uuid;

use super::batch::{Batch, Lane};
use super::FeedError;

impl Batch {
    pub(super) async fn endpoint_event(
        &mut self,
        tx: &Transaction<'_>,
        id: Uuid,
        e: &RecordedEvent,
        event: &WebhookEvent,
    ) -> Result<(), FeedError> {
        match event {
            WebhookEvent::Created(c) => {
                let secrets = json!([secret_json(&c.secret)]);
                tx.execute(&tx.prepare_cached("INSERT INTO delivery.endpoints (endpoint_id, app_id, org_id, mode, scheme, \
                     url, event_types, rate_limit, status, secrets, created_at, description) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'enabled', $9, $10, $11) \
                     ON CONFLICT DO NOTHING").await?,
                    &[
                        &id,
                        &c.app_id,
                        &c.org_id,
                        &c.mode,
                        &c.signature,
                        &c.settings.url,
                        &tokio_postgres::types::Json(&c.settings.event_types),
                        &c.settings.rate_limit.map(|r| r as i32),
                        &tokio_postgres::types::Json(&secrets),
                        &e.recorded_at,
                        &c.settings.description,
                    ],
                )
                .await?;
                self.endpoints.insert(
                    id,
                    Lane {
                        app_id: Some(c.app_id),
                        org_id: c.org_id,
                        mode: c.mode.clone(),
                        types: c.settings.event_types.clone(),
                        receiving: true,
                    },
                );
            }
            WebhookEvent::AuditStreamCreated(c) => {
                let secrets = json!([secret_json(&c.secret)]);
                let types = vec![AUDIT_ENTRY_TYPE.to_owned()];
                // Entries after this event are the stream's; the audit
                // feeder sends them.
                tx.execute(&tx.prepare_cached("INSERT INTO delivery.endpoints (endpoint_id, app_id, org_id, mode, scheme, \
                     url, event_types, status, secrets, created_at, description, kind, from_position) \
                     VALUES ($1, NULL, $2, 'live', 'v1', $3, $4, 'enabled', $5, $6, $7, 'audit', $8) \
                     ON CONFLICT DO NOTHING").await?,
                    &[
                        &id,
                        &c.org_id,
                        &c.url,
                        &tokio_postgres::types::Json(&types),
                        &tokio_postgres::types::Json(&secrets),
                        &e.recorded_at,
                        &c.description,
                        &(e.global_position as i64),
                    ],
                )
                .await?;
                self.endpoints.insert(
                    id,
                    Lane {
                        app_id: None,
                        org_id: c.org_id,
                        mode: "live".into(),
                        types,
                        receiving: true,
                    },
                );
            }
            WebhookEvent::Updated(u) => {
                tx.execute(&tx.prepare_cached("UPDATE delivery.endpoints SET url = $2, event_types = $3, rate_limit = $4, \
                     description = $5 \
                     WHERE endpoint_id = $1").await?,
                    &[
                        &id,
                        &u.settings.url,
                        &tokio_postgres::types::Json(&u.settings.event_types),
                        &u.settings.rate_limit.map(|r| r as i32),
                        &u.settings.description,
                    ],
                )
                .await?;
                if let Some(l) = self.endpoints.get_mut(&id) {
                    l.types = u.settings.event_types.clone();
                }
            }
            WebhookEvent::Disabled(_) | WebhookEvent::Enabled(_) | WebhookEvent::Deleted(_) => {
                // The feeder alone writes an endpoint's status, in log order,
                // so the copy never disagrees with the stream.
                let (from, to, reason) = match event {
                    WebhookEvent::Disabled(d) => ("enabled", "disabled", Some(d.reason.as_str())),
                    WebhookEvent::Enabled(_) => ("disabled", "enabled", None),
                    _ => ("", "deleted", None),
                };
                tx.execute(
                    &tx.prepare_cached(
                        "UPDATE delivery.endpoints SET status = $3, disabled_reason = $4, \
                           failing_since = NULL \
                         WHERE endpoint_id = $1 AND (status = $2 OR $3 = 'deleted')",
                    )
                    .await?,
                    &[&id, &from, &to, &reason],
                )
                .await?;
                if let Some(l) = self.endpoints.get_mut(&id) {
                    l.receiving = to != "deleted";
                }
            }
            WebhookEvent::SecretRotated(r) => {
                tx.execute(&tx.prepare_cached("UPDATE delivery.endpoints SET secrets = \
                     jsonb_build_array($2::jsonb, secrets->0 || jsonb_build_object('until', $3::text)) \
                     WHERE endpoint_id = $1").await?,
                    &[
                        &id,
                        &tokio_postgres::types::Json(secret_json(&r.secret)),
                        &r.previous_expires_at.to_rfc3339(),
                    ],
                )
                .await?;
            }
            WebhookEvent::SecretsResealed(r) => {
                tx.execute(&tx.prepare_cached("UPDATE delivery.endpoints SET secrets = CASE \
                       WHEN $3::jsonb IS NULL OR jsonb_array_length(secrets) < 2 \
                         THEN jsonb_build_array($2::jsonb) \
                       ELSE jsonb_build_array($2::jsonb, $3::jsonb || jsonb_build_object('until', secrets->1->'until')) END \
                     WHERE endpoint_id = $1").await?,
                    &[
                        &id,
                        &tokio_postgres::types::Json(secret_json(&r.secret)),
                        &r.previous
                            .as_ref()
                            .map(|p| tokio_postgres::types::Json(secret_json(p))),
                    ],
                )
                .await?;
            }
            WebhookEvent::ReplayRequested(r) => {
                // A replay may name messages this very batch fans out.
                self.flush(tx).await?;
                let round = e.global_position as i64;
                let n = if r.message_ids.is_empty() {
                    tx.execute(&tx.prepare_cached("INSERT INTO delivery.deliveries \
                           (endpoint_id, message_id, round, seq, next_at, created_at) \
                         SELECT $1, m.message_id, $2, $2, now(), now() FROM delivery.messages m \
                         WHERE m.created_at >= $3 AND ($4::timestamptz IS NULL OR m.created_at < $4) \
                           AND EXISTS (SELECT 1 FROM delivery.deliveries d WHERE d.endpoint_id = $1 \
                                       AND d.message_id = m.message_id AND d.status = 'failed') \
                           AND NOT EXISTS (SELECT 1 FROM delivery.deliveries d WHERE d.endpoint_id = $1 \
                                       AND d.message_id = m.message_id AND d.status <> 'failed') \
                         ON CONFLICT DO NOTHING").await?,
                        &[&id, &round, &r.since, &r.until],
                    )
                    .await?
                } else {
                    tx.execute(&tx.prepare_cached("INSERT INTO delivery.deliveries \
                           (endpoint_id, message_id, round, seq, next_at, created_at) \
                         SELECT $1, m.message_id, $2, $2, now(), now() FROM delivery.messages m \
                         JOIN delivery.endpoints ep ON ep.endpoint_id = $1 AND ep.app_id = m.app_id \
                         WHERE m.message_id = ANY($3) ON CONFLICT DO NOTHING").await?,
                        &[&id, &round, &r.message_ids],
                    )
                    .await?
                };
                self.inserted += n;
            }
            WebhookEvent::MessageExhausted(_) => {}
        }
        Ok(())
    }
}

fn secret_json(s: &SealedSecret) -> Value {
    let mut v = json!({"sealed": s.sealed, "kek_id": s.kek_id});
    if let Some(p) = &s.public_key {
        v["public_key"] = p.clone().into();
    }
    v
}
