//! Plans and the Developers workspace overview. Staff set an organisation's
//! plan, modules, monthly platform-call limit, subscription state and
//! billing window; without the `platform.api` module the Developers
//! workspace answers 402 `upgrade-required` (the portal shows a Pro badge
//! and a locked page).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::orgs::{self, SetPlan, PLATFORM_API};
use domain::roles::Permission;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::orgs::execute;
use crate::authorize::OrgMember;
use crate::command::{Committed, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, Path, Staff};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs/{org}/plan", put(set_plan))
        .route("/v1/orgs/{org}/overview", get(overview))
}

/// `PUT /v1/orgs/{org}/plan` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// Plan name, e.g. `pro`.
    pub plan: String,
    /// Modules, e.g. `["platform.api"]`.
    pub modules: Vec<String>,
    /// Platform calls allowed per billing window.
    pub monthly_call_limit: u64,
    /// `trialing`, `active`, `past_due` or `canceled`.
    pub subscription_state: String,
    /// Start of the current billing window (RFC 3339).
    pub billing_window_start: DateTime<Utc>,
    /// End of the current billing window (RFC 3339).
    pub billing_window_end: DateTime<Utc>,
}

/// A plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    /// Plan name.
    pub plan: String,
    /// Modules.
    pub modules: Vec<String>,
    /// Platform calls per billing window.
    pub monthly_call_limit: i64,
    /// Subscription state.
    pub subscription_state: String,
    /// Billing window start.
    pub billing_window_start: DateTime<Utc>,
    /// Billing window end.
    pub billing_window_end: DateTime<Utc>,
}

/// Set an organisation's plan (staff).
#[utoipa::path(put, path = "/v1/orgs/{org}/plan", tag = "plans",
    request_body = PlanRequest,
    responses((status = 200, body = PlanView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_plan(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    meta: RequestMeta,
    staff: Staff,
    ApiJson(body): ApiJson<PlanRequest>,
) -> Result<Committed<PlanView>, ApiError> {
    let metadata = meta.in_org(staff.actor(), org);
    let cmd = SetPlan {
        plan: body.plan,
        modules: body.modules,
        monthly_call_limit: body.monthly_call_limit,
        subscription_state: body.subscription_state,
        billing_window_start: body.billing_window_start,
        billing_window_end: body.billing_window_end,
    };
    let (_, position) = execute(&state, org, &meta, metadata, |o| {
        orgs::set_plan(o, staff.0.user_id, cmd.clone())
    })
    .await?;
    let (current, _, _) = super::orgs::load(&state, org).await?;
    let plan = current.plan.ok_or(ApiError::NotFound)?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(PlanView {
            plan: plan.plan,
            modules: plan.modules,
            monthly_call_limit: plan.monthly_call_limit.min(i64::MAX as u64) as i64,
            subscription_state: plan.subscription_state,
            billing_window_start: plan.billing_window_start,
            billing_window_end: plan.billing_window_end,
        }),
    })
}

/// The Developers workspace overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewView {
    /// The plan.
    pub plan: PlanView,
    /// `unlocked` (the workspace answers 402 instead when locked).
    pub paywall: &'static str,
    /// The billing window's platform-call limit.
    pub monthly_call_limit: i64,
    /// Platform calls verified in the current billing window (the Usage
    /// tab's `used`).
    pub monthly_usage: i64,
    /// API keys that still verify (neither revoked nor expired).
    pub api_key_count: i64,
    /// Apps (not deleted).
    pub app_count: i64,
    /// Webhook endpoints of its apps (not deleted).
    pub webhook_count: i64,
    /// The app chosen with `?app=`, else the most recently active one.
    pub selected_app: Option<SelectedApp>,
}

/// The app the overview focuses on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SelectedApp {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// `active`, `pending` or `suspended`.
    pub status: String,
}

/// `GET /v1/orgs/{org}/overview` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OverviewQuery {
    /// The app to select.
    pub app: Option<Uuid>,
    /// An instant (RFC 3339): the overview as it was then, folded from
    /// the log up to it.
    pub as_of: Option<DateTime<Utc>>,
}

/// The Developers workspace overview (owners and managers; 402 without
/// `platform.api`).
#[utoipa::path(get, path = "/v1/orgs/{org}/overview", tag = "plans",
    params(OverviewQuery),
    responses((status = 200, body = OverviewView), (status = 400, body = Problem), (status = 402, description = "upgrade-required", body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn overview(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    member: OrgMember,
    min: MinPosition,
    Query(q): Query<OverviewQuery>,
) -> Result<Json<OverviewView>, ApiError> {
    member.require(Permission::ManageApps)?;
    if let Some(as_of) = q.as_of {
        min.wait(&state, &["audit"]).await?;
        return Ok(Json(overview_then(&state, org, q.app, as_of).await?));
    }
    min.wait(&state, &["apps", "keys"]).await?;
    let usage = super::usage::org_usage_of(&state, org).await?;
    let client = state.read_models.client().await?;
    let api_key_count = projections::keys::read::live_key_count(&client, org).await?;
    let row = projections::orgs::read::plan(&client, org).await?;
    let unlocked = orgs::plan_unlocks_workspace(&row.modules, row.subscription_state.as_deref());
    let (Some(plan), true) = (row.plan, unlocked) else {
        return Err(ApiError::UpgradeRequired {
            module: PLATFORM_API,
        });
    };
    let limit: i64 = row.monthly_call_limit.unwrap_or(0);
    let app_count = projections::apps::read::live_app_count(&client, org).await?;
    let webhook_count = delivery::read::org_webhook_count(&client, org).await?;
    let selected_app = projections::apps::read::selected_app(&client, org, q.app)
        .await?
        .map(|a| SelectedApp {
            id: a.app_id,
            name: a.name,
            slug: a.slug,
            status: a.status,
        });
    if q.app.is_some() && selected_app.is_none() {
        return Err(ApiError::NotFound);
    }
    Ok(Json(OverviewView {
        plan: PlanView {
            plan,
            modules: row.modules,
            monthly_call_limit: limit,
            subscription_state: row.subscription_state.unwrap_or_default(),
            billing_window_start: row.billing_window_start.unwrap_or_default(),
            billing_window_end: row.billing_window_end.unwrap_or_default(),
        },
        paywall: "unlocked",
        monthly_call_limit: limit,
        monthly_usage: usage.used,
        api_key_count,
        app_count,
        webhook_count,
        selected_app,
    }))
}

/// The organisation's overview as it was at `as_of`.
pub async fn overview_then(
    state: &AppState,
    org: Uuid,
    selected: Option<Uuid>,
    as_of: DateTime<Utc>,
) -> Result<OverviewView, ApiError> {
    use domain::apps::App;
    let then = super::as_of::fold_org(state, org, as_of).await?;
    let plan = then
        .org
        .plan
        .as_ref()
        .filter(|p| {
            domain::orgs::plan_unlocks_workspace(&p.modules, Some(p.subscription_state.as_str()))
        })
        .ok_or(ApiError::UpgradeRequired {
            module: domain::orgs::PLATFORM_API,
        })?;
    let window = domain::orgs::billing_window(
        plan.billing_window_start.timestamp_millis(),
        plan.billing_window_end.timestamp_millis(),
        as_of.timestamp_millis(),
    );
    let monthly_usage = window.map_or(0, |(from, to)| {
        then.usage
            .iter()
            .filter(|u| (from..to).contains(&u.from.timestamp_millis()))
            .map(|u| u.calls as i64)
            .sum()
    });
    let live = |a: &App| a.exists && !a.deleted;
    let selected_app = then
        .apps
        .values()
        .filter(|(a, _)| live(a) && selected.is_none_or(|id| a.id == id))
        .max_by_key(|(a, last)| (*last, a.id))
        .map(|(a, _)| SelectedApp {
            id: a.id,
            name: a.name.clone(),
            slug: a.slug.clone(),
            status: a.status().as_str().to_owned(),
        });
    if selected.is_some() && selected_app.is_none() {
        return Err(ApiError::NotFound);
    }
    let limit = plan.monthly_call_limit as i64;
    Ok(OverviewView {
        plan: PlanView {
            plan: plan.plan.clone(),
            modules: plan.modules.clone(),
            monthly_call_limit: limit,
            subscription_state: plan.subscription_state.clone(),
            billing_window_start: plan.billing_window_start,
            billing_window_end: plan.billing_window_end,
        },
        paywall: "unlocked",
        monthly_call_limit: limit,
        monthly_usage,
        api_key_count: then
            .keys
            .values()
            .filter(|k| {
                matches!(
                    k.status(as_of),
                    domain::keys::KeyStatus::Active | domain::keys::KeyStatus::Expiring
                )
            })
            .count() as i64,
        app_count: then.apps.values().filter(|(a, _)| live(a)).count() as i64,
        webhook_count: then.endpoints.values().filter(|e| **e).count() as i64,
        selected_app,
    })
}
