//! The checkpoint signer: signs the head of the hash chain with the audit
//! key (held outside the database), appends the checkpoint to the log, and
//! keeps the newest one in a witness file beside the key, where whoever
//! can rewrite the database cannot reach it.

use std::time::Duration;

use event_schemas::audit::{CheckpointSigned, CHECKPOINT_STREAM};
use event_schemas::{Actor, ExpectedVersion, Hash, Metadata, NewEvent};
use event_store::{AppendError, StreamAppend};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::state::AppState;

/// The newest checkpoint in the log, with its own global position.
pub async fn newest(state: &AppState) -> Result<Option<(u64, CheckpointSigned)>, ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT global_position, data::text FROM events WHERE stream_id = $1 \
             ORDER BY stream_version DESC LIMIT 1",
            &[&CHECKPOINT_STREAM],
        )
        .await?;
    row.map(|r| {
        let data: String = r.get(1);
        serde_json::from_str(&data)
            .map(|c| (r.get::<_, i64>(0) as u64, c))
            .map_err(ApiError::internal)
    })
    .transpose()
}

/// Signs the head unless the newest checkpoint already covers everything
/// but itself, and appends the checkpoint. Answers the checkpoint covering
/// the head as it was read (new or the existing one).
pub async fn checkpoint(state: &AppState) -> Result<CheckpointSigned, ApiError> {
    for _ in 0..crate::command::ATTEMPTS {
        let newest = newest(state).await?;
        let (position, hash) = {
            let client = state.pool.get().await?;
            let row = client
                .query_one("SELECT position, hash FROM log_head WHERE id", &[])
                .await?;
            let hash: Vec<u8> = row.get(1);
            let hash: Hash = hash
                .try_into()
                .map_err(|_| ApiError::Internal("the head's hash is not 32 bytes".into()))?;
            (row.get::<_, i64>(0) as u64, hash)
        };
        let version = match &newest {
            // Nothing but the checkpoint itself was appended since it.
            Some((at, c)) if *at >= position || c.position >= position => return Ok(c.clone()),
            Some(_) => {
                let client = state.pool.get().await?;
                let v: i64 = client
                    .query_one(
                        "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = $1",
                        &[&CHECKPOINT_STREAM],
                    )
                    .await?
                    .get(0);
                ExpectedVersion::Exact(v as u64)
            }
            None => ExpectedVersion::NoStream,
        };
        let signed = state.audit_key.sign(position, &hash);
        let event = NewEvent::from_domain(
            &event_schemas::audit::AuditEvent::CheckpointSigned(signed.clone()),
            Metadata::by(Actor::system()),
        );
        match state
            .store
            .append_all(vec![StreamAppend::new(
                CHECKPOINT_STREAM,
                version,
                vec![event],
            )])
            .await
        {
            Ok(_) => {
                if let Err(e) = state.audit_key.witness(&signed) {
                    tracing::error!(error = %e, "cannot write the checkpoint witness file");
                }
                return Ok(signed);
            }
            // Another node signed meanwhile: look again.
            Err(AppendError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict {
        code: "concurrent-modification",
        detail: "checkpoints kept being signed concurrently; retry".into(),
    })
}

/// Signs a checkpoint every `interval` while the head moves, until `stop`.
pub async fn run(state: AppState, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = checkpoint(&state).await {
            tracing::warn!(error = %e, "signing a checkpoint failed; trying again next interval");
        }
    }
}
