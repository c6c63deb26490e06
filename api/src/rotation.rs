//! The mass rotation worker: carries out the staff's key rotation jobs
//! (`key_rotation-<job>`, requested through `routes::staff_keys`), batch by
//! batch, on every node that runs it. Each key of a job gets
//! `api_key.rotation_required` with the staff actor; when no key is left,
//! the job gets `key_rotation.completed`.
//!
//! A job survives a crash: the worker's ids for a key are derived from the
//! job and the key, so a batch redone after a restart appends nothing
//! twice, and a key already required is skipped.

use std::time::Duration;

use domain::keys::{self, Key};
use event_schemas::key::{key_rotation_stream, key_stream, KeyRotationCompleted, KeyRotationEvent};
use event_schemas::{Actor, ActorKind, ExpectedVersion};
use event_store::AppendError;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use uuid::Uuid;

use crate::command::{CommandIds, CommandSeed, Plan};
use crate::error::ApiError;
use crate::extract::MinPosition;
use crate::state::AppState;

/// How the rotation worker paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Keys per batch.
    pub batch: i64,
    /// Pause between batches.
    pub pause: Duration,
}

/// The rotation worker of a node: carries out open jobs, batch by batch,
/// until `stop`. Several nodes may run it; they repeat nothing.
pub async fn run_worker(state: AppState, pace: Pace, mut stop: watch::Receiver<bool>) {
    loop {
        let wait = match step(&state, pace.batch).await {
            Ok(true) => pace.pause,
            Ok(false) => Duration::from_secs(1),
            Err(e) => {
                tracing::warn!(error = %e, "a mass rotation batch failed; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One batch of the oldest open job; whether there was one.
async fn step(state: &AppState, batch: i64) -> Result<bool, ApiError> {
    let client = state.read_models.client().await?;
    let Some(job) = projections::keys::read::oldest_open_rotation(&client).await? else {
        return Ok(false);
    };
    let job_id = job.job_id;
    let criteria = &job.criteria;
    let id = |k: &str| criteria[k].as_str().and_then(|s| s.parse::<Uuid>().ok());
    let mode = criteria["mode"].as_str().map(String::from);
    let requested_by = job.requested_by.clone();
    let stops_at = job.requested_at + chrono::Duration::seconds(job.grace_period_secs);
    let keys = projections::keys::read::keys_to_rotate(
        &client,
        job.created_before,
        id("org_id"),
        id("app_id"),
        mode.as_deref(),
        batch,
    )
    .await?;
    drop(client);
    let actor = Actor {
        kind: ActorKind::Staff,
        id: Some(requested_by),
    };
    let mut last = 0;
    for key_id in &keys {
        let seed: [u8; 32] = Sha256::new()
            .chain_update(b"key-rotation")
            .chain_update(job_id.as_bytes())
            .chain_update(key_id.as_bytes())
            .finalize()
            .into();
        let ids = CommandIds::new(Some(CommandSeed(seed)));
        let actor = &actor;
        let executed = state
            .commands
            .execute::<Key, _>(&key_stream(*key_id), &ids, move |loaded| async move {
                let events =
                    keys::require_rotation(&loaded, job_id, stops_at, crate::command::now());
                let metadata = event_schemas::Metadata {
                    org_id: Some(loaded.org_id),
                    ..event_schemas::Metadata::by(actor.clone())
                };
                Ok(Plan::new(events, metadata))
            })
            .await?;
        last = last.max(executed.position);
    }
    // Let the read model see this batch before the next is chosen.
    MinPosition(Some(last.max(state.store.head().await?)))
        .wait(state, &["keys"])
        .await?;
    if keys.is_empty() {
        let client = state.read_models.client().await?;
        let count = projections::keys::read::rotation_key_count(&client, job_id).await?;
        let stream = key_rotation_stream(job_id);
        let done = [KeyRotationEvent::Completed(KeyRotationCompleted {
            keys: count as u64,
        })];
        let metadata = event_schemas::Metadata::by(actor);
        let events = crate::command::new_events(&done, &metadata);
        match state
            .store
            .append_all(vec![event_store::StreamAppend::new(
                stream,
                ExpectedVersion::Exact(1),
                events,
            )])
            .await
        {
            // Another node completed it first.
            Ok(_) | Err(AppendError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let head = state.store.head().await?;
        MinPosition(Some(head)).wait(state, &["keys"]).await?;
    }
    Ok(true)
}
