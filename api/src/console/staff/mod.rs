//! Platform staff's pages: the queue (sandbox grants, production review
//! steps, distribution requests, product approvals with bulk approve and
//! reject with a reason), the reports, and the operations (suspend by
//! criteria, mass key rotation and its progress, plans, developer terms,
//! erasure of a person's data). Only staff reach them: every handler
//! takes the API's `Staff`.
//!
//! # Layout
//! - this module: the queue and its decisions.
//! - [`reports`]: inventory, inactive apps, high-usage apps, the export.
//! - [`operations`]: suspend, rotate, plans, terms, erasure.

pub mod operations;
pub mod reports;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::view::{page, then, Checked, Form, Frame, PageError, Section, Visitor};
use crate::command::RequestMeta;
use crate::error::ApiError;
use crate::extract::{ApiJson, Path, Staff};
use crate::page::{Page, Paging};
use crate::routes::{environments, products, staff_apps};
use crate::state::AppState;

/// Staff's pages: label and route.
pub const TABS: &[(&str, &str)] = &[
    ("Queue", "/staff"),
    ("Reports", "/staff/reports"),
    ("Operations", "/staff/operations"),
];

/// Staff's tabs, `current` marked.
pub fn tabs(current: &str) -> Vec<(&'static str, &'static str, bool)> {
    TABS.iter()
        .map(|(label, href)| (*label, *href, *href == current))
        .collect()
}

#[derive(Template)]
#[template(path = "console/staff/queue.html")]
struct QueuePage {
    frame: Frame,
    tabs: Vec<(&'static str, &'static str, bool)>,
    lane: Page<environments::QueueItem>,
    approvals: Page<products::AccessRequestView>,
    distribution: Page<staff_apps::DistributionQueueItem>,
}

fn all() -> Paging<(DateTime<Utc>, Uuid)> {
    Paging::first(crate::page::MAX_LIMIT)
}

/// The queue.
pub async fn queue(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(staff): Checked<Staff>,
) -> Result<Response, PageError> {
    let st = || State(state.clone());
    let axum::Json(lane) = environments::staff_queue(st(), visitor.min, staff, all()).await?;
    let axum::Json(approvals) = products::approval_queue(st(), visitor.min, staff, all()).await?;
    let axum::Json(distribution) =
        staff_apps::distribution_queue(st(), visitor.min, staff, all()).await?;
    let frame = visitor
        .frame(&state, "Staff queue", Section::Staff, None)
        .await?;
    page(&QueuePage {
        frame,
        tabs: tabs("/staff"),
        lane,
        approvals,
        distribution,
    })
}

/// What a lane decision sends: which, for which organisation, and why.
#[derive(Deserialize)]
pub struct LaneDecision {
    org: Uuid,
    action: String,
    #[serde(default)]
    step: String,
    #[serde(default)]
    reason: String,
}

/// Grants sandbox access, or completes or rejects a production step.
pub async fn decide_lane(
    State(state): State<AppState>,
    meta: RequestMeta,
    Checked(staff): Checked<Staff>,
    Form(f): Form<LaneDecision>,
) -> Response {
    let st = State(state);
    let result = match f.action.as_str() {
        "grant_sandbox" => environments::grant_sandbox(st, Path(f.org), meta, staff).await,
        "complete" => environments::complete_step(st, Path((f.org, f.step)), meta, staff).await,
        "reject" => {
            let body = environments::RejectRequest { reason: f.reason };
            environments::reject_step(st, Path((f.org, f.step)), meta, staff, ApiJson(body)).await
        }
        _ => Err(ApiError::Invalid(domain::Invalid(vec![
            domain::FieldError {
                pointer: "/action".into(),
                detail: "is not one this form offers".into(),
            },
        ]))),
    };
    then(result, "/staff")
}

/// What the product approvals form sends: the ticked requests, the
/// decision and its reason.
pub struct BulkForm {
    decision: String,
    reason: String,
    items: Vec<products::BulkItem>,
}

impl BulkForm {
    fn of(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let mut f = BulkForm {
            decision: String::new(),
            reason: String::new(),
            items: Vec::new(),
        };
        for (k, v) in pairs {
            match k.as_str() {
                "decision" => f.decision = v,
                "reason" => f.reason = v,
                // `app_id:request_id`, one per ticked box.
                "request" => {
                    let parsed = v.split_once(':').and_then(|(a, r)| {
                        Some((Uuid::try_parse(a).ok()?, Uuid::try_parse(r).ok()?))
                    });
                    let Some((app_id, request_id)) = parsed else {
                        return Err(ApiError::Invalid(domain::Invalid(vec![
                            domain::FieldError {
                                pointer: "/request".into(),
                                detail: "is not one this form offers".into(),
                            },
                        ])));
                    };
                    f.items.push(products::BulkItem { app_id, request_id });
                }
                _ => {}
            }
        }
        Ok(f)
    }
}

/// Approves or rejects every ticked product request at once.
pub async fn decide_products(
    State(state): State<AppState>,
    meta: RequestMeta,
    Checked(staff): Checked<Staff>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let result = async {
        let f = BulkForm::of(pairs)?;
        let body = products::BulkRequest {
            decision: f.decision,
            reason: Some(f.reason.trim().to_owned()).filter(|r| !r.is_empty()),
            items: f.items,
        };
        products::bulk_decide(State(state), meta, staff, ApiJson(body)).await
    }
    .await;
    then(result, "/staff")
}

/// What a distribution decision sends.
#[derive(Deserialize)]
pub struct DistributionDecision {
    app: Uuid,
    request: Uuid,
    approve: bool,
    #[serde(default)]
    reason: String,
}

/// Approves or rejects a request for a wider distribution.
pub async fn decide_distribution(
    State(state): State<AppState>,
    meta: RequestMeta,
    Checked(staff): Checked<Staff>,
    Form(f): Form<DistributionDecision>,
) -> Response {
    let body = staff_apps::ReasonRequest {
        reason: Some(f.reason.trim().to_owned()).filter(|r| !r.is_empty()),
    };
    let path = Path((f.app, f.request));
    let result = if f.approve {
        staff_apps::approve_distribution(State(state), path, meta, staff, ApiJson(body)).await
    } else {
        staff_apps::reject_distribution(State(state), path, meta, staff, ApiJson(body)).await
    };
    then(result, "/staff")
}
