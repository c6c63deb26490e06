//! Settings > Developers (seed 000), for owners and managers: the tabs
//! Overview, Apps, API Keys, Webhooks, Usage and Docs, each a route of its
//! own, working on the app selected with `?app=`. Without `platform.api`
//! every tab is the locked page (and the navigation shows the Pro badge).
//!
//! # Layout
//! - this module: the tabs, the locked page, the Overview and Docs tabs,
//!   the app picker.
//! - [`apps`]: create an app, edit its name and allowed origins.
//! - [`keys`]: the key table; issue, rotate (the plaintext once, seed 003),
//!   revoke after a confirmation.
//! - [`webhooks`]: destinations, their secret once, the delivery log and
//!   replay.
//! - [`usage`]: plan, billing window, calls per day as SVG.

pub mod apps;
pub mod keys;
pub mod usage;
pub mod webhooks;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::view::{again, page, Checked, Frame, PageError, Section, Visitor};
use crate::authorize::OrgMember;
use crate::error::ApiError;
use crate::extract::{MinPosition, Path};
use crate::page::Paging;
use crate::routes::plans;
use crate::state::AppState;

/// The workspace's tabs, in order: label and path under
/// `/orgs/{org}/settings/developers`.
pub const TABS: &[(&str, &str)] = &[
    ("Overview", ""),
    ("Apps", "/apps"),
    ("API Keys", "/keys"),
    ("Webhooks", "/webhooks"),
    ("Usage", "/usage"),
    ("Docs", "/docs"),
];

/// A tab as the template shows it.
pub struct Tab {
    /// Its label.
    pub label: &'static str,
    /// Its route.
    pub href: String,
    /// Whether it is the page shown.
    pub current: bool,
}

/// The tabs of organisation `org`'s workspace, `current` marked.
pub fn tabs(org: Uuid, current: &str) -> Vec<Tab> {
    TABS.iter()
        .map(|(label, path)| Tab {
            label,
            href: format!("/orgs/{org}/settings/developers{path}"),
            current: *path == current,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/developers/locked.html")]
struct LockedPage {
    frame: Frame,
    module: &'static str,
}

/// A workspace page, or the locked page when the plan lacks the module.
pub async fn workspace(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    title: &str,
    render: Result<Response, PageError>,
) -> Response {
    match render {
        Err(PageError(ApiError::UpgradeRequired { module })) => {
            let page = async {
                let frame = visitor
                    .frame(state, title, Section::Developers, Some(org))
                    .await?;
                page(&LockedPage { frame, module })
            }
            .await;
            again(StatusCode::PAYMENT_REQUIRED, page)
        }
        Err(e) => e.into_response(),
        Ok(res) => res,
    }
}

#[derive(Template)]
#[template(path = "console/developers/overview.html")]
struct OverviewPage {
    frame: Frame,
    tabs: Vec<Tab>,
    o: plans::OverviewView,
}

/// The selected app of the tabs, from `?app=`.
#[derive(Deserialize, Default)]
pub struct Selected {
    app: Option<Uuid>,
}

/// The Overview tab: plan and paywall, platform calls against the limit,
/// counts, and the selected app.
pub async fn overview(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
    Checked(min): Checked<MinPosition>,
    axum::extract::Query(q): axum::extract::Query<Selected>,
) -> Response {
    let org = member.org;
    let render = async {
        let axum::Json(o) = plans::overview(
            State(state.clone()),
            Path(org),
            member,
            min,
            axum::extract::Query(plans::OverviewQuery {
                app: q.app,
                as_of: None,
            }),
        )
        .await?;
        let frame = visitor
            .frame(&state, "Developers", Section::Developers, Some(org))
            .await?;
        page(&OverviewPage {
            frame,
            tabs: tabs(org, ""),
            o,
        })
    }
    .await;
    workspace(&state, &visitor, org, "Developers", render).await
}

/// A textarea's non-empty lines, trimmed (scopes, origins).
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The organisation's apps for a tab's picker, and the one selected:
/// `?app=`, else the first.
pub async fn app_choice(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    selected: Option<Uuid>,
) -> Result<(Vec<plans::SelectedApp>, Option<plans::SelectedApp>), ApiError> {
    let reader = crate::authorize::WorkspaceReader::check(state, org, visitor.session).await?;
    let all = Paging::first(crate::page::MAX_LIMIT);
    let axum::Json(list) =
        crate::routes::apps::list_apps(State(state.clone()), Path(org), reader, all).await?;
    let apps: Vec<plans::SelectedApp> = list
        .items
        .into_iter()
        .map(|a| plans::SelectedApp {
            id: a.id,
            name: a.name,
            slug: a.slug,
            status: a.status,
        })
        .collect();
    let app = selected
        .and_then(|id| apps.iter().find(|a| a.id == id))
        .or(apps.first())
        .cloned();
    Ok((apps, app))
}

#[derive(Template)]
#[template(path = "console/developers/docs_tab.html")]
struct DocsTab {
    frame: Frame,
    tabs: Vec<Tab>,
    docs: &'static [(&'static str, &'static str)],
}

/// The Docs tab: the public documentation to hand customers to.
pub async fn docs(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
) -> Response {
    let org = member.org;
    let render = async {
        crate::authorize::WorkspaceReader::check(&state, org, visitor.session).await?;
        let frame = visitor
            .frame(&state, "Docs", Section::Developers, Some(org))
            .await?;
        page(&DocsTab {
            frame,
            tabs: tabs(org, "/docs"),
            docs: crate::console::docs::PAGES,
        })
    }
    .await;
    workspace(&state, &visitor, org, "Docs", render).await
}

/// `/orgs/{org}/settings`: the Developers workspace is its one page yet.
pub async fn settings(Path(org): Path<Uuid>) -> Redirect {
    Redirect::to(&format!("/orgs/{org}/settings/developers"))
}
