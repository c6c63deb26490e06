//! Environments: sandbox access and the production review, and the staff
//! queue of pending requests. An organisation starts with public docs only;
//! after the developer terms it requests sandbox access (granted by staff,
//! or at once with `--auto-grant-sandbox`), then production, whose four
//! review steps staff complete or reject with a reason; completing the last
//! one records `sandbox.promoted`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::orgs::{self, Org, ReviewStep, Sandbox, StepState, REVIEW_STEPS};
use event_schemas::Metadata;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::orgs::execute;
use crate::authorize::OrgMember;
use crate::command::{Committed, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, Path, Session, Staff};
use crate::page::{Page, PageQuery, Paging};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs/{org}/sandbox-access", post(request_sandbox))
        .route("/v1/orgs/{org}/sandbox-access/grant", post(grant_sandbox))
        .route("/v1/orgs/{org}/production-access", post(request_production))
        .route(
            "/v1/orgs/{org}/production-access/steps/{step}/complete",
            post(complete_step),
        )
        .route(
            "/v1/orgs/{org}/production-access/steps/{step}/reject",
            post(reject_step),
        )
        .route("/v1/orgs/{org}/onboarding", get(onboarding))
        .route("/v1/staff/queue", get(staff_queue))
}

/// Where an organisation stands on its way to production.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentView {
    /// `none`, `requested` or `granted`.
    pub sandbox: &'static str,
    /// The linked sandbox (shadow test) tenant, once granted.
    pub sandbox_tenant_id: Option<Uuid>,
    /// `none`, `in_review` or `granted`.
    pub production: &'static str,
    /// The review steps and their states.
    pub steps: Vec<StepView>,
    /// The exact next step.
    pub next_step: &'static str,
}

/// One review step.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// The step's name.
    pub step: &'static str,
    /// `pending`, `completed` or `rejected`.
    pub state: &'static str,
    /// Why it was rejected.
    pub reason: Option<String>,
}

fn view(org: &orgs::Org, progress: orgs::LaneProgress) -> EnvironmentView {
    let (sandbox, tenant) = match org.sandbox {
        Sandbox::None => ("none", None),
        Sandbox::Requested => ("requested", None),
        Sandbox::Granted(t) => ("granted", Some(t)),
    };
    let (production, steps) = match &org.production {
        None => ("none", Vec::new()),
        Some(p) => (
            if p.granted { "granted" } else { "in_review" },
            REVIEW_STEPS
                .iter()
                .zip(&p.steps)
                .map(|(step, s)| StepView {
                    step,
                    state: match s {
                        StepState::Pending => "pending",
                        StepState::Completed => "completed",
                        StepState::Rejected(_) => "rejected",
                    },
                    reason: match s {
                        StepState::Rejected(r) => Some(r.clone()),
                        _ => None,
                    },
                })
                .collect(),
        ),
    };
    EnvironmentView {
        sandbox,
        sandbox_tenant_id: tenant,
        production,
        steps,
        next_step: org.next_step_with(progress),
    }
}

/// The review step a path names; an unknown one is no resource at all.
fn review_step(step: &str) -> Result<ReviewStep, ApiError> {
    ReviewStep::parse(step).ok_or(ApiError::NotFound)
}

fn staff_meta(meta: &RequestMeta, staff: &Staff, org: Uuid) -> Metadata {
    meta.in_org(staff.actor(), org)
}

/// Answers a command with the organisation's environments after it; the
/// lane's first key and usage come from the read model (they happen in
/// other streams).
async fn answer(
    state: &AppState,
    after: &Org,
    position: u64,
) -> Result<Committed<EnvironmentView>, ApiError> {
    let client = state.read_models.client().await?;
    let progress = projections::orgs::read::lane(&client, after.id)
        .await?
        .map_or(orgs::LaneProgress::default(), |r| orgs::LaneProgress {
            first_key: r.first_key,
            usage: r.usage,
            webhook: r.webhook,
        });
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(view(after, progress)),
    })
}

/// Request sandbox access (after the developer terms).
#[utoipa::path(post, path = "/v1/orgs/{org}/sandbox-access", tag = "environments",
    responses((status = 200, body = EnvironmentView), (status = 403, description = "Terms not accepted, or role lacks environments.request", body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn request_sandbox(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<EnvironmentView>, ApiError> {
    let auto = state
        .auto_grant_sandbox
        .then(|| meta.ids().entity("sandbox_tenant"));
    let (after, position) = execute(&state, org, &meta, meta.in_org(session.actor(), org), |o| {
        orgs::request_sandbox(o, session.user_id, auto)
    })
    .await?;
    answer(&state, &after, position).await
}

/// Grant a requested sandbox (staff).
#[utoipa::path(post, path = "/v1/orgs/{org}/sandbox-access/grant", tag = "environments",
    responses((status = 200, body = EnvironmentView), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn grant_sandbox(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    meta: RequestMeta,
    staff: Staff,
) -> Result<Committed<EnvironmentView>, ApiError> {
    let tenant = meta.ids().entity("sandbox_tenant");
    let (after, position) = execute(&state, org, &meta, staff_meta(&meta, &staff, org), |o| {
        orgs::grant_sandbox(o, staff.0.user_id, tenant)
    })
    .await?;
    answer(&state, &after, position).await
}

/// Open the production review.
#[utoipa::path(post, path = "/v1/orgs/{org}/production-access", tag = "environments",
    responses((status = 200, body = EnvironmentView), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn request_production(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<EnvironmentView>, ApiError> {
    let (after, position) = execute(&state, org, &meta, meta.in_org(session.actor(), org), |o| {
        orgs::request_production(o, session.user_id)
    })
    .await?;
    answer(&state, &after, position).await
}

/// Complete a review step (staff); the last one grants production.
#[utoipa::path(post, path = "/v1/orgs/{org}/production-access/steps/{step}/complete", tag = "environments",
    responses((status = 200, body = EnvironmentView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn complete_step(
    State(state): State<AppState>,
    Path((org, step)): Path<(Uuid, String)>,
    meta: RequestMeta,
    staff: Staff,
) -> Result<Committed<EnvironmentView>, ApiError> {
    let step = review_step(&step)?;
    let (after, position) = execute(&state, org, &meta, staff_meta(&meta, &staff, org), |o| {
        orgs::decide_step(o, staff.0.user_id, step, None)
    })
    .await?;
    answer(&state, &after, position).await
}

/// `POST .../reject` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Why, shown to the organisation.
    pub reason: String,
}

/// Reject a review step with a reason (staff).
#[utoipa::path(post, path = "/v1/orgs/{org}/production-access/steps/{step}/reject", tag = "environments",
    request_body = RejectRequest,
    responses((status = 200, body = EnvironmentView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn reject_step(
    State(state): State<AppState>,
    Path((org, step)): Path<(Uuid, String)>,
    meta: RequestMeta,
    staff: Staff,
    ApiJson(body): ApiJson<RejectRequest>,
) -> Result<Committed<EnvironmentView>, ApiError> {
    let step = review_step(&step)?;
    let (after, position) = execute(&state, org, &meta, staff_meta(&meta, &staff, org), |o| {
        orgs::decide_step(o, staff.0.user_id, step, Some(&body.reason))
    })
    .await?;
    answer(&state, &after, position).await
}

/// A pending request in the staff queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueItem {
    /// Organisation id.
    pub org_id: Uuid,
    /// Its slug.
    pub slug: String,
    /// `sandbox` or `production`.
    pub kind: String,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// Production steps not yet completed.
    pub open_steps: Vec<String>,
}

/// Pending sandbox and production requests, oldest first (staff).
#[utoipa::path(get, path = "/v1/staff/queue", tag = "environments",
    params(PageQuery),
    responses((status = 200, body = Page<QueueItem>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn staff_queue(
    State(state): State<AppState>,
    min: MinPosition,
    _staff: Staff,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<QueueItem>>, ApiError> {
    min.wait(&state, &["orgs"]).await?;
    let client = state.read_models.client().await?;
    let rows = projections::orgs::read::staff_queue(&client, paging.keyset()).await?;
    Ok(Json(paging.page(rows, |q| QueueItem {
        org_id: q.org_id,
        slug: q.slug,
        kind: q.kind,
        requested_at: q.requested_at,
        open_steps: q.open_steps,
    })))
}

/// The onboarding lane as the read model holds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnboardingView {
    /// The exact next step.
    pub next_step: String,
    /// Whether the current developer terms are accepted.
    pub terms_accepted: bool,
    /// `none`, `requested` or `granted`.
    pub sandbox: String,
    /// The linked sandbox tenant, once granted.
    pub sandbox_tenant_id: Option<Uuid>,
    /// `none`, `in_review` or `granted`.
    pub production: String,
    /// The review steps (empty before production is requested).
    pub steps: Vec<OnboardingStep>,
}

/// One review step in the read model.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnboardingStep {
    /// Its name.
    pub step: String,
    /// `pending`, `completed` or `rejected`.
    pub state: String,
    /// Why it was rejected.
    pub reason: Option<String>,
}

/// The organisation's onboarding lane (any member).
#[utoipa::path(get, path = "/v1/orgs/{org}/onboarding", tag = "environments",
    responses((status = 200, body = OnboardingView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn onboarding(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    member: OrgMember,
) -> Result<Json<OnboardingView>, ApiError> {
    member.require(domain::roles::Permission::ViewOrg)?;
    let client = state.read_models.client().await?;
    let row = projections::orgs::read::onboarding(&client, org, orgs::INITIAL_TERMS).await?;
    let steps = projections::orgs::read::review_steps(&client, org, REVIEW_STEPS.as_slice())
        .await?
        .into_iter()
        .map(|r| OnboardingStep {
            step: r.step,
            state: r.state,
            reason: r.reason,
        })
        .collect();
    Ok(Json(OnboardingView {
        next_step: row.next_step,
        terms_accepted: row.terms_accepted,
        sandbox: row.sandbox_state,
        sandbox_tenant_id: row.sandbox_tenant_id,
        production: row.production_state,
        steps,
    }))
}
