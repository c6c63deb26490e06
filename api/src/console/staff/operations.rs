//! Staff's operations: suspend apps by criteria (a dry run first), rotate
//! every key matching criteria and follow the job, set an organisation's
//! plan, put a new version of the developer terms in force, and erase a
//! person's personal data after a confirmation.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::tabs;
use crate::command::RequestMeta;
use crate::console::developers::lines;
use crate::console::view::{
    again, at_position, form_problems, page, Checked, Form, Frame, PageError, Problems, Section,
    Visitor,
};
use crate::error::ApiError;
use crate::extract::{ApiJson, Path, Staff};
use crate::routes::{erasure, orgs, plans, staff_apps, staff_keys};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/staff/operations.html")]
struct OperationsPage {
    frame: Frame,
    tabs: Vec<(&'static str, &'static str, bool)>,
    terms: String,
    suspended: Option<staff_apps::SuspendMatchingView>,
    job: Option<staff_keys::RotationJob>,
    problems: Problems,
    done: Option<&'static str>,
}

async fn operations_page(
    state: &AppState,
    visitor: &Visitor,
    shown: Shown,
) -> Result<Response, PageError> {
    let axum::Json(terms) = orgs::current_terms(State(state.clone())).await?;
    let frame = visitor
        .frame(state, "Operations", Section::Staff, None)
        .await?;
    page(&OperationsPage {
        frame,
        tabs: tabs("/staff/operations"),
        terms: terms.version,
        suspended: shown.suspended,
        job: shown.job,
        problems: shown.problems,
        done: shown.done,
    })
}

#[derive(Default)]
struct Shown {
    suspended: Option<staff_apps::SuspendMatchingView>,
    job: Option<staff_keys::RotationJob>,
    problems: Problems,
    done: Option<&'static str>,
}

/// The operations page.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(_staff): Checked<Staff>,
) -> Result<Response, PageError> {
    operations_page(&state, &visitor, Shown::default()).await
}

/// Shows `result`'s page: the operation's answer, or its problems on the
/// form.
async fn answer(
    state: &AppState,
    visitor: &Visitor,
    result: Result<(u64, Shown), ApiError>,
) -> Response {
    match result {
        Ok((position, shown)) => match operations_page(state, visitor, shown).await {
            Ok(res) => at_position(res, position),
            Err(e) => e.into_response(),
        },
        Err(e) => match form_problems(e) {
            Ok((status, problems)) => {
                let shown = Shown {
                    problems,
                    ..Shown::default()
                };
                again(status, operations_page(state, visitor, shown).await)
            }
            Err(e) => e.into_response(),
        },
    }
}

fn uuid_or_none(text: &str, field: &str) -> Result<Option<Uuid>, ApiError> {
    match text.trim() {
        "" => Ok(None),
        t => Uuid::try_parse(t)
            .map(Some)
            .map_err(|_| invalid(field, "must be an id (a UUID)")),
    }
}

fn invalid(field: &str, detail: &str) -> ApiError {
    ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
        pointer: format!("/{field}"),
        detail: detail.into(),
    }]))
}

/// What the suspend form sends.
#[derive(Deserialize)]
pub struct SuspendForm {
    reason: String,
    #[serde(default)]
    org_id: String,
    #[serde(default)]
    inactive_days: String,
    #[serde(default)]
    dry_run: Option<String>,
}

/// Suspends every app matching the criteria (or, as a dry run, lists them).
pub async fn suspend(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Checked(staff): Checked<Staff>,
    Form(f): Form<SuspendForm>,
) -> Response {
    let result = async {
        let inactive_days = match f.inactive_days.trim() {
            "" => None,
            d => Some(
                d.parse()
                    .map_err(|_| invalid("inactive_days", "must be a number of days"))?,
            ),
        };
        let body = staff_apps::SuspendMatchingRequest {
            reason: f.reason,
            org_id: uuid_or_none(&f.org_id, "org_id")?,
            status: None,
            inactive_days,
            dry_run: f.dry_run.is_some(),
        };
        let c = staff_apps::suspend_matching(
            State(state.clone()),
            meta,
            visitor.min,
            staff,
            ApiJson(body),
        )
        .await?;
        Ok((
            c.position,
            Shown {
                suspended: c.body,
                ..Shown::default()
            },
        ))
    }
    .await;
    answer(&state, &visitor, result).await
}

/// What the rotation form sends.
#[derive(Deserialize)]
pub struct RotateForm {
    reason: String,
    #[serde(default)]
    org_id: String,
    #[serde(default)]
    app_id: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    grace_hours: String,
}

/// Starts a mass key rotation; its progress is on its own page.
pub async fn rotate(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Checked(staff): Checked<Staff>,
    Form(f): Form<RotateForm>,
) -> Response {
    let result = async {
        let grace_period_secs = match f.grace_hours.trim() {
            "" => None,
            h => Some(
                h.parse::<u64>()
                    .map_err(|_| invalid("grace_hours", "must be a number of hours"))?
                    .saturating_mul(3600),
            ),
        };
        let body = staff_keys::RotationRequest {
            org_id: uuid_or_none(&f.org_id, "org_id")?,
            app_id: uuid_or_none(&f.app_id, "app_id")?,
            mode: Some(f.mode).filter(|m| !m.is_empty()),
            created_before: None,
            grace_period_secs,
            reason: f.reason,
        };
        let c =
            staff_keys::request_rotation(State(state.clone()), staff, meta, ApiJson(body)).await?;
        Ok((
            c.position,
            Shown {
                job: c.body,
                ..Shown::default()
            },
        ))
    }
    .await;
    answer(&state, &visitor, result).await
}

#[derive(Template)]
#[template(path = "console/staff/rotation.html")]
struct RotationPage {
    frame: Frame,
    tabs: Vec<(&'static str, &'static str, bool)>,
    job: staff_keys::RotationJob,
}

/// A rotation job's progress (htmx refreshes it until it completes).
pub async fn rotation(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(staff): Checked<Staff>,
    Path(job): Path<Uuid>,
) -> Result<Response, PageError> {
    let axum::Json(job) =
        staff_keys::rotation_job(State(state.clone()), Path(job), staff, visitor.min).await?;
    let frame = visitor
        .frame(&state, "Key rotation", Section::Staff, None)
        .await?;
    page(&RotationPage {
        frame,
        tabs: tabs("/staff/operations"),
        job,
    })
}

/// What the plan form sends.
#[derive(Deserialize)]
pub struct PlanForm {
    org_id: String,
    plan: String,
    #[serde(default)]
    modules: String,
    monthly_call_limit: String,
    subscription_state: String,
    window_start: String,
    window_end: String,
}

fn day(text: &str, field: &str) -> Result<DateTime<Utc>, ApiError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| invalid(field, "must be a date (YYYY-MM-DD)"))
}

/// Sets an organisation's plan.
pub async fn set_plan(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Checked(staff): Checked<Staff>,
    Form(f): Form<PlanForm>,
) -> Response {
    let result = async {
        let org =
            uuid_or_none(&f.org_id, "org_id")?.ok_or_else(|| invalid("org_id", "is required"))?;
        let body = plans::PlanRequest {
            plan: f.plan,
            modules: lines(&f.modules),
            monthly_call_limit: f
                .monthly_call_limit
                .trim()
                .parse()
                .map_err(|_| invalid("monthly_call_limit", "must be a whole number"))?,
            subscription_state: f.subscription_state,
            billing_window_start: day(&f.window_start, "window_start")?,
            billing_window_end: day(&f.window_end, "window_end")?,
        };
        let c =
            plans::set_plan(State(state.clone()), Path(org), meta, staff, ApiJson(body)).await?;
        Ok((
            c.position,
            Shown {
                done: Some("The plan is set."),
                ..Shown::default()
            },
        ))
    }
    .await;
    answer(&state, &visitor, result).await
}

/// What the terms form sends.
#[derive(Deserialize)]
pub struct TermsForm {
    version: String,
}

/// Puts a new version of the developer terms in force.
pub async fn publish_terms(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Checked(staff): Checked<Staff>,
    Form(f): Form<TermsForm>,
) -> Response {
    let result = async {
        let body = orgs::AcceptTermsRequest { version: f.version };
        let c = orgs::publish_terms(State(state.clone()), meta, staff, ApiJson(body)).await?;
        Ok((
            c.position,
            Shown {
                done: Some("The new developer terms are in force."),
                ..Shown::default()
            },
        ))
    }
    .await;
    answer(&state, &visitor, result).await
}

/// What the erasure form sends: the person, and the typed confirmation.
#[derive(Deserialize)]
pub struct EraseForm {
    user_id: String,
    #[serde(default)]
    confirm: String,
}

/// Erases a person's personal data, once confirmed by typing ERASE.
pub async fn erase(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Checked(staff): Checked<Staff>,
    Form(f): Form<EraseForm>,
) -> Response {
    let result = async {
        if f.confirm.trim() != "ERASE" {
            return Err(invalid(
                "confirm",
                "type ERASE to confirm: erasure cannot be undone",
            ));
        }
        let user = uuid_or_none(&f.user_id, "user_id")?
            .ok_or_else(|| invalid("user_id", "is required"))?;
        let c = erasure::erase_personal_data(State(state.clone()), staff, meta, Path(user)).await?;
        Ok((
            c.position,
            Shown {
                done: Some(
                    "The person's personal data is erased; the facts of the history remain.",
                ),
                ..Shown::default()
            },
        ))
    }
    .await;
    answer(&state, &visitor, result).await
}
