//! Staff mass rotation: every key matching criteria (organisation, app,
//! mode, issued before) is required to rotate by a deadline, as a job in
//! the log (`key_rotation-<job>`) that the nodes' rotation worker carries
//! out in batches. Each key gets `api_key.rotation_required` with the
//! staff actor, its owners a notification; the key keeps verifying until
//! the deadline, and its owners rotate it (their new key's overlap ends by
//! the deadline). Keys' plaintexts never leave their owners, so staff do
//! not mint replacements nobody could be shown.
//!
//! The worker that carries jobs out is `crate::rotation`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::apps::Mode;
use domain::keys;
use event_schemas::key::{key_rotation_stream, KeyRotationEvent, KeyRotationRequested};
use event_schemas::ExpectedVersion;
use event_store::AppendError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::apps::wire;
use crate::command::{Committed, RequestMeta};
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
    let client = state.read_models.client().await?;
    let row = projections::keys::read::rotation_job(&client, job)
        .await?
        .ok_or(ApiError::NotFound)?;
    let criteria = &row.criteria;
    let id = |k: &str| criteria[k].as_str().and_then(|s| s.parse().ok());
    let completed_at = row.completed_at;
    let keys_required = row.keys_required;
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
        mode: criteria["mode"].as_str().map(String::from),
        created_before: row.created_before,
        grace_period_secs: row.grace_period_secs,
        reason: row.reason.clone(),
        keys_required,
        requested_by: row.requested_by.clone(),
        requested_at: row.requested_at,
        completed_at,
    }))
}
