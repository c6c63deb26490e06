//! The Usage tab: the plan and subscription state, whether `platform.api`
//! is on, the billing window with its limit and use, and, for the selected
//! app, calls, errors and latency per day, drawn as SVG on the server (no
//! script, no chart library) beside the same figures as a table.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use uuid::Uuid;

use super::{app_choice, tabs, workspace, Selected, Tab};
use crate::authorize::{AppReader, OrgMember};
use crate::console::view::{page, Checked, Frame, Section, Visitor};
use crate::extract::Path;
use crate::routes::{plans, usage};
use crate::state::AppState;

/// One day's bars.
pub struct Bar {
    /// Left edge.
    pub x: u32,
    /// Top of the calls bar, and its height.
    pub calls_y: u32,
    /// Its height.
    pub calls_h: u32,
    /// Top of the errors bar.
    pub errors_y: u32,
    /// Its height.
    pub errors_h: u32,
    /// The day, `MM-DD`.
    pub label: String,
}

/// Calls and errors per day as bars, scaled to the busiest day.
pub struct Chart {
    /// Width of the drawing.
    pub width: u32,
    /// Height of the bars' area.
    pub height: u32,
    /// The busiest day's calls (the scale's top).
    pub top: i64,
    /// The bars.
    pub bars: Vec<Bar>,
}

const BAR: u32 = 14;
const GAP: u32 = 6;
const HEIGHT: u32 = 120;

fn chart(days: &[usage::DayFigures]) -> Chart {
    let top = days
        .iter()
        .map(|d| d.figures.calls)
        .max()
        .unwrap_or(0)
        .max(1);
    let scale =
        |n: i64| -> u32 { ((n.max(0) as f64 / top as f64) * f64::from(HEIGHT)).round() as u32 };
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = u32::try_from(i).unwrap_or(0) * (BAR + GAP);
            let calls_h = scale(d.figures.calls);
            let errors_h = scale(d.figures.errors);
            Bar {
                x,
                calls_y: HEIGHT - calls_h,
                calls_h,
                errors_y: HEIGHT - errors_h,
                errors_h,
                label: d.day.format("%m-%d").to_string(),
            }
        })
        .collect::<Vec<_>>();
    Chart {
        width: (u32::try_from(bars.len()).unwrap_or(0) * (BAR + GAP)).max(BAR + GAP),
        height: HEIGHT,
        top,
        bars,
    }
}

#[derive(Template)]
#[template(path = "console/developers/usage.html")]
struct UsagePage {
    frame: Frame,
    tabs: Vec<Tab>,
    org: Uuid,
    u: usage::OrgUsage,
    apps: Vec<plans::SelectedApp>,
    app: Option<plans::SelectedApp>,
    analytics: Option<usage::AppAnalytics>,
    chart: Option<Chart>,
}

/// The Usage tab.
pub async fn tab(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
    axum::extract::Query(q): axum::extract::Query<Selected>,
) -> Response {
    let org = member.org;
    let render = async {
        let axum::Json(u) =
            usage::org_usage(State(state.clone()), Path(org), member, visitor.min).await?;
        let (apps, app) = app_choice(&state, &visitor, org, q.app).await?;
        let analytics = match &app {
            Some(a) => Some(
                usage::app_analytics(
                    State(state.clone()),
                    Path(a.id),
                    visitor.min,
                    AppReader::check(&state, a.id, visitor.session).await?,
                    axum::extract::Query(usage::AnalyticsQuery {
                        from: None,
                        to: None,
                        window: None,
                    }),
                )
                .await?
                .0,
            ),
            None => None,
        };
        let chart = analytics.as_ref().map(|a| chart(&a.days));
        let frame = visitor
            .frame(&state, "Usage", Section::Developers, Some(org))
            .await?;
        page(&UsagePage {
            frame,
            tabs: tabs(org, "/usage"),
            org,
            u,
            apps,
            app,
            analytics,
            chart,
        })
    }
    .await;
    workspace(&state, &visitor, org, "Usage", render).await
}
