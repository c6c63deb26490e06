//! Staff's reports: the app inventory, inactive apps, high-usage apps and
//! the pending approvals (on the queue), with the export of every app as
//! JSON Lines.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::{all, tabs};
use crate::console::view::{page, Checked, Frame, PageError, Section, Visitor};
use crate::extract::Staff;
use crate::page::{Page, Paging};
use crate::routes::{staff_apps, staff_usage};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/staff/reports.html")]
struct ReportsPage {
    frame: Frame,
    tabs: Vec<(&'static str, &'static str, bool)>,
    days: i32,
    inventory: staff_apps::InventoryView,
    inactive: Page<staff_apps::InactiveAppView>,
    high: Page<staff_usage::HighUsageApp>,
}

/// The reports' window.
#[derive(Deserialize)]
pub struct Days {
    days: Option<i32>,
}

/// The reports page.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(staff): Checked<Staff>,
    Query(q): Query<Days>,
) -> Result<Response, PageError> {
    let days = q.days.unwrap_or(30);
    let st = || State(state.clone());
    let axum::Json(inventory) = staff_apps::inventory(st(), visitor.min, staff).await?;
    let axum::Json(inactive) = staff_apps::inactive_apps(
        st(),
        visitor.min,
        staff,
        Query(staff_apps::InactiveQuery { days: Some(days) }),
        all(),
    )
    .await?;
    let top = Paging::first(20);
    let axum::Json(high) = staff_usage::high_usage_apps(
        st(),
        visitor.min,
        staff,
        Query(staff_usage::HighUsageQuery { days: Some(days) }),
        top,
    )
    .await?;
    let frame = visitor
        .frame(&state, "Reports", Section::Staff, None)
        .await?;
    page(&ReportsPage {
        frame,
        tabs: tabs("/staff/reports"),
        days,
        inventory,
        inactive,
        high,
    })
}

/// Every app as JSON Lines, for download.
pub async fn export(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(staff): Checked<Staff>,
) -> Result<Response, PageError> {
    let mut res = staff_apps::export(
        State(state),
        visitor.min,
        staff,
        Query(staff_apps::ExportQuery { org_id: None }),
    )
    .await?;
    res.headers_mut().insert(
        axum::http::header::CONTENT_DISPOSITION,
        axum::http::HeaderValue::from_static("attachment; filename=\"apps.jsonl\""),
    );
    Ok(res)
}
