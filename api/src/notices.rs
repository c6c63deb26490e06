//! Notices Gatehouse raises on its own, each exactly once across nodes (its
//! own stream, appended with "no stream" expected): an organisation
//! reaching 80% and 100% of its billing window's calls, and an API key
//! 7 days from its expiry. The webhooks deliver them; the keys' owners see
//! expiry notices among their notifications. The same loop completes the
//! production review's integration verification once an organisation's
//! test key has verified and a webhook of its was delivered.

use std::collections::HashSet;
use std::time::Duration;

use event_schemas::key::{
    expiry_notice_stream, threshold_stream, KeyExpiryApproaching, NoticeEvent,
    UsageThresholdCrossed,
};
use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
use event_store::{AppendError, StreamAppend};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::state::AppState;

/// Looks for due notices every `every` until `stop`.
pub async fn run(state: AppState, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut raised = HashSet::new();
    loop {
        if let Err(e) = raise(&state, &mut raised).await {
            tracing::warn!(error = %e, "raising notices failed; retrying");
        }
        if let Err(e) = verify_integrations(&state).await {
            tracing::warn!(error = %e, "completing integration verifications failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Appends each due notice not yet raised (`raised` remembers this node's,
/// the store refuses another node's twice).
pub async fn raise(state: &AppState, raised: &mut HashSet<String>) -> Result<(), ApiError> {
    let client = state.pool.get().await?;
    let mut due = Vec::new();
    for r in client
        .query(
            "SELECT u.org_id, u.window_start, u.window_end, u.calls, o.monthly_call_limit \
             FROM rm.org_usage u JOIN rm.key_orgs o USING (org_id) \
             WHERE u.window_end > now() AND o.monthly_call_limit > 0 \
               AND u.calls * 100 >= o.monthly_call_limit * 80",
            &[],
        )
        .await?
    {
        let (org_id, start, end): (
            uuid::Uuid,
            chrono::DateTime<chrono::Utc>,
            chrono::DateTime<chrono::Utc>,
        ) = (r.get(0), r.get(1), r.get(2));
        let (used, limit) = (r.get::<_, i64>(3) as u64, r.get::<_, i64>(4) as u64);
        for threshold in domain::orgs::thresholds_reached(used, limit) {
            let event = NoticeEvent::ThresholdCrossed(UsageThresholdCrossed {
                org_id,
                threshold,
                used,
                limit,
                window_start: start,
                window_end: end,
            });
            due.push((
                threshold_stream(org_id, start.timestamp_millis(), threshold),
                org_id,
                event,
            ));
        }
    }
    for r in client
        .query(
            "SELECT key_id, app_id, org_id, expires_at FROM rm.api_keys \
             WHERE revoked_at IS NULL AND expires_at > now() \
               AND expires_at <= now() + interval '7 days' \
               AND (stops_at IS NULL OR stops_at > expires_at)",
            &[],
        )
        .await?
    {
        let event = NoticeEvent::ExpiryApproaching(KeyExpiryApproaching {
            key_id: r.get(0),
            app_id: r.get(1),
            org_id: r.get(2),
            expires_at: r.get(3),
        });
        due.push((expiry_notice_stream(r.get(0)), r.get(2), event));
    }
    drop(client);
    for (stream, org_id, event) in due {
        if raised.contains(&stream) {
            continue;
        }
        let metadata = Metadata {
            org_id: Some(org_id),
            ..Metadata::by(Actor::system())
        };
        let append = StreamAppend::new(
            stream.clone(),
            ExpectedVersion::NoStream,
            vec![NewEvent::from_domain(&event, metadata)],
        );
        match state.store.append_all(vec![append]).await {
            // Raised now, or by another node (or an earlier run) before.
            Ok(_) | Err(AppendError::Conflict { .. }) => {
                raised.insert(stream);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Completes the production review's `integration_verification` step of
/// each organisation that has shown a working integration: a test key
/// verified (its usage counted) and a webhook delivered to one of its
/// endpoints. The step is completed by the system actor, as an event.
pub async fn verify_integrations(state: &AppState) -> Result<(), ApiError> {
    let client = state.pool.get().await?;
    let orgs: Vec<uuid::Uuid> = client
        .query(
            "SELECT s.org_id FROM rm.review_steps s \
             WHERE s.step = 'integration_verification' AND s.state = 'pending' \
               AND EXISTS (SELECT 1 FROM rm.api_keys k WHERE k.org_id = s.org_id \
                           AND k.mode = 'test' AND k.last_used_at IS NOT NULL) \
               AND EXISTS (SELECT 1 FROM delivery.deliveries d \
                           JOIN delivery.endpoints e USING (endpoint_id) \
                           WHERE e.org_id = s.org_id AND e.kind = 'webhook' \
                             AND d.status = 'delivered')",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    drop(client);
    let meta = crate::command::RequestMeta {
        request_id: None,
        client_request_id: None,
        idempotency_key: None,
        context: None,
        seed: None,
    };
    for org in orgs {
        let metadata = Metadata {
            org_id: Some(org),
            ..Metadata::by(Actor::system())
        };
        // The nil id stands for Gatehouse itself in the step's `by`.
        crate::command::orgs::execute(state, org, &meta, metadata, |o| {
            domain::orgs::decide_step(
                o,
                uuid::Uuid::nil(),
                domain::orgs::ReviewStep::IntegrationVerification,
                None,
            )
        })
        .await?;
        tracing::info!(%org, "integration verified: a test key answered and a webhook was delivered");
    }
    Ok(())
}
