//! Staff mass rotation: every key matching criteria (organisation, app,
//! mode, issued before) is required to rotate by a deadline, as a job in
//! the log (`key_rotation-<job>`) that the nodes' rotation worker carries
//! out in batches. Each key gets `api_key.rotation_required` with the
//! staff actor, its owners a notification; the key keeps verifying until
//! the deadline, and its owners rotate it (their new key's overlap ends by
//! the deadline). Keys' plaintexts never leave their owners, so staff do
//! not mint replacements nobody could be shown.
//!
//! A job survives a crash: the worker's ids for a key are derived from the
//! job and the key, so a batch redone after a restart appends nothing
//! twice, and a key already required is skipped.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::apps::Mode;
use domain::keys::{self, Key};
use event_schemas::key::{
    key_rotation_stream, key_stream, KeyRotationCompleted, KeyRotationEvent, KeyRotationRequested,
};
use event_schemas::{Actor, ActorKind, ExpectedVersion};
use event_store::AppendError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use utoipa::ToSchema;
use uuid::Uuid;

use super::apps::wire;
use crate::command::{CommandIds, CommandSeed, Committed, Plan, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, Path, Staff};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/staff/key-rotations", post(request_rotation))
        .route("/v1/staff/key-rotations/{job}", get(rotation_job))
}

/// `POST /v1/staff/key-rotations` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotationRequest {
    /// Keys of this organisation only.
    pub org_id: Option<Uuid>,
    /// Keys of this app only.
    pub app_id: Option<Uuid>,
    /// `live` or `test` keys only.
    pub mode: Option<String>,
    /// Keys issued before this instant (default and at most: now).
    pub created_before: Option<DateTime<Utc>>,
    /// How long each key keeps verifying, in seconds (default 86400, at
    /// most 30 days).
    #[schema(minimum = 0, maximum = 2_592_000)]
    pub grace_period_secs: Option<u64>,
    /// Why, shown to the keys' owners (1 to 500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// A mass rotation and how far it got.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotationJob {
    /// The job.
    pub id: Uuid,
    /// `queued`, `running` or `completed`.
    pub status: String,
    /// Criteria: organisation.
    pub org_id: Option<Uuid>,
    /// Criteria: app.
    pub app_id: Option<Uuid>,
    /// Criteria: mode.
    pub mode: Option<String>,
    /// Criteria: keys issued before.
    pub created_before: DateTime<Utc>,
    /// The overlap each key gets.
    pub grace_period_secs: i64,
    /// Why.
    pub reason: String,
    /// Keys required to rotate so far.
    pub keys_required: i64,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// When every matching key had its rotation required.
    pub completed_at: Option<DateTime<Utc>>,
}

/// Rotate every key matching the criteria (staff): enqueued, carried out
/// in batches by the nodes, resumable after a crash; progress at
/// `GET /v1/staff/key-rotations/{job}`.
#[utoipa::path(post, path = "/v1/staff/key-rotations", tag = "staff",
    request_body = RotationRequest,
    responses((status = 202, body = RotationJob), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn request_rotation(
    State(state): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiJson(body): ApiJson<RotationRequest>,
) -> Result<Committed<RotationJob>, ApiError> {
    let now = crate::command::now();
    let mode = body
        .mode
        .as_deref()
        .map(|m| wire(m, "/mode", Mode::parse, "live or test"))
        .transpose()?;
    let mut checks = domain::validate::Checks::default();
    let reason = body.reason.trim().to_owned();
    checks.display_name("/reason", &reason, 500);
    let created_before = body.created_before.unwrap_or(now);
    checks.check(
        created_before <= now,
        "/created_before",
        "must not be in the future",
    );
    let grace = body.grace_period_secs.unwrap_or(86_400);
    checks.check(
        grace <= keys::max_grace().num_seconds() as u64,
        "/grace_period_secs",
        "must be at most 30 days (2592000 s)",
    );
    checks.finish()?;
    let ids = meta.ids();
    let job_id = ids.entity("key_rotation");
    let stream = key_rotation_stream(job_id);
    let requested = [KeyRotationEvent::Requested(KeyRotationRequested {
        job_id,
        org_id: body.org_id,
        app_id: body.app_id,
        mode: mode.map(|m| m.as_str().to_owned()),
        created_before,
        grace_period_secs: grace,
        reason: reason.clone(),
    })];
    let events = ids.new_events(&stream, &requested, &meta.metadata(staff.actor()));
    let position = match state
        .store
        .append_all(vec![event_store::StreamAppend::new(
            stream,
            ExpectedVersion::NoStream,
            events,
        )])
        .await
    {
        Ok(done) => done.last_position,
        // A retry with the same Idempotency-Key: the job is there.
        Err(AppendError::Conflict { .. }) => state.store.head().await?,
        Err(e) => return Err(e.into()),
    };
    Ok(Committed {
        status: StatusCode::ACCEPTED,
        position,
        body: Some(RotationJob {
            id: job_id,
            status: "queued".into(),
            org_id: body.org_id,
            app_id: body.app_id,
            mode: mode.map(|m| m.as_str().to_owned()),
            created_before,
            grace_period_secs: grace as i64,
            reason,
            keys_required: 0,
            requested_by: staff.0.user_id.to_string(),
            requested_at: now,
            completed_at: None,
        }),
    })
}

/// A mass rotation's progress (staff).
#[utoipa::path(get, path = "/v1/staff/key-rotations/{job}", tag = "staff",
    params(("job" = Uuid, Path, description = "Job id")),
    responses((status = 200, body = RotationJob), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn rotation_job(
    State(state): State<AppState>,
    Path(job): Path<Uuid>,
    _staff: Staff,
    min: MinPosition,
) -> Result<Json<RotationJob>, ApiError> {
    min.wait(&state, &["keys"]).await?;
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT criteria, created_before, grace_period_secs, reason, requested_by, requested_at, \
                    completed_at, (SELECT count(*) FROM rm.api_keys WHERE rotation_job = $1) \
             FROM rm.key_rotations WHERE job_id = $1",
            &[&job],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let criteria: tokio_postgres::types::Json<serde_json::Value> = row.get(0);
    let id = |k: &str| criteria.0[k].as_str().and_then(|s| s.parse().ok());
    let completed_at: Option<DateTime<Utc>> = row.get(6);
    let keys_required: i64 = row.get(7);
    let status = match (completed_at, keys_required) {
        (Some(_), _) => "completed",
        (None, 0) => "queued",
        _ => "running",
    };
    Ok(Json(RotationJob {
        id: job,
        status: status.into(),
        org_id: id("org_id"),
        app_id: id("app_id"),
        mode: criteria.0["mode"].as_str().map(String::from),
        created_before: row.get(1),
        grace_period_secs: row.get(2),
        reason: row.get(3),
        keys_required,
        requested_by: row.get(4),
        requested_at: row.get(5),
        completed_at,
    }))
}

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
    let client = state.pool.get().await?;
    let Some(job) = client
        .query_opt(
            "SELECT job_id, criteria, created_before, grace_period_secs, requested_by, requested_at \
             FROM rm.key_rotations WHERE completed_at IS NULL ORDER BY requested_at, job_id LIMIT 1",
            &[],
        )
        .await?
    else {
        return Ok(false);
    };
    let job_id: Uuid = job.get(0);
    let criteria: tokio_postgres::types::Json<serde_json::Value> = job.get(1);
    let id = |k: &str| criteria.0[k].as_str().and_then(|s| s.parse::<Uuid>().ok());
    let mode = criteria.0["mode"].as_str().map(String::from);
    let created_before: DateTime<Utc> = job.get(2);
    let grace: i64 = job.get(3);
    let requested_by: String = job.get(4);
    let requested_at: DateTime<Utc> = job.get(5);
    let stops_at = requested_at + chrono::Duration::seconds(grace);
    let keys: Vec<Uuid> = client
        .query(
            "SELECT key_id FROM rm.api_keys WHERE created_at < $1 AND revoked_at IS NULL \
               AND replaced_by IS NULL AND rotation_job IS NULL \
               AND ($2::uuid IS NULL OR org_id = $2) AND ($3::uuid IS NULL OR app_id = $3) \
               AND ($4::text IS NULL OR mode = $4) ORDER BY key_id LIMIT $5",
            &[&created_before, &id("org_id"), &id("app_id"), &mode, &batch],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
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
        let client = state.pool.get().await?;
        let count: i64 = client
            .query_one(
                "SELECT count(*) FROM rm.api_keys WHERE rotation_job = $1",
                &[&job_id],
            )
            .await?
            .get(0);
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
