//! The developer portal (seed 001), app-centric: the dashboard (app,
//! published app and draft version counts, the app list, a new app), then
//! one app's pages, General, Versions, Security, Webhooks and Products
//! (seed 002), each a route of its own. The developer terms gate creating
//! apps, publishing and install links: the API refuses with the reason and
//! the page shows it.
//!
//! # Layout
//! - this module: the dashboard, the app's header and tabs, General
//!   (details, visibility and distribution, the private-install
//!   allowlist), deleting an app.
//! - [`versions`]: drafts, the manifest, validation by field, publish,
//!   install links.
//! - [`security`]: OAuth client credentials (the secret once), rotation,
//!   the app's team members.
//! - [`delivery`]: delivery health, failure patterns, what the published
//!   version declares.
//! - [`products`]: the catalogue, subscribing, approval state and reason.

pub mod delivery;
pub mod products;
pub mod security;
pub mod versions;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::developers::lines;
use super::view::{
    again, done, form_again, form_problems, page, then, to_created, Checked, Form, Frame,
    PageError, Problems, Section, Visitor,
};
use crate::authorize::{AppReader, WorkspaceReader};
use crate::command::RequestMeta;
use crate::error::ApiError;
use crate::extract::{ApiJson, Path};
use crate::page::Paging;
use crate::routes::apps;
use crate::state::AppState;

/// An app's pages: label and path under `/orgs/{org}/portal/apps/{app}`.
pub const APP_TABS: &[(&str, &str)] = &[
    ("General", ""),
    ("Versions", "/versions"),
    ("Security", "/security"),
    ("Webhooks", "/webhooks"),
    ("Products", "/products"),
];

/// An app page's header: the app and its tabs.
pub struct AppHead {
    /// The app.
    pub app: apps::AppView,
    /// Its tabs: label, route, whether current.
    pub tabs: Vec<(&'static str, String, bool)>,
}

/// The header of `app`'s page `current`, for a visitor who may read it.
pub async fn app_head(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    app: Uuid,
    current: &str,
) -> Result<AppHead, ApiError> {
    let reader = AppReader::check(state, app, visitor.session).await?;
    if reader.org != org {
        return Err(ApiError::NotFound);
    }
    let axum::Json(view) = apps::get_app(
        State(state.clone()),
        Path(app),
        reader,
        axum::extract::Query(Default::default()),
    )
    .await?;
    let tabs = APP_TABS
        .iter()
        .map(|(label, path)| {
            (
                *label,
                format!("/orgs/{org}/portal/apps/{app}{path}"),
                *path == current,
            )
        })
        .collect();
    Ok(AppHead { app: view, tabs })
}

#[derive(Template)]
#[template(path = "console/portal/dashboard.html")]
struct DashboardPage {
    frame: Frame,
    org: Uuid,
    d: apps::DashboardView,
    form: NewApp,
    problems: Problems,
}

/// What the new-app form sends.
#[derive(Deserialize, Default, Clone)]
pub struct NewApp {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    description: String,
}

async fn dashboard_page(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    paging: Paging<(DateTime<Utc>, Uuid)>,
    form: NewApp,
    problems: Problems,
) -> Result<Response, PageError> {
    let reader = WorkspaceReader::check(state, org, visitor.session).await?;
    let axum::Json(d) = apps::dashboard(State(state.clone()), Path(org), reader, paging).await?;
    let frame = visitor
        .frame(state, "Developer portal", Section::Portal, Some(org))
        .await?;
    page(&DashboardPage {
        frame,
        org,
        d,
        form,
        problems,
    })
}

/// The dashboard.
pub async fn dashboard(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(org): Path<Uuid>,
    Checked(paging): Checked<Paging<(DateTime<Utc>, Uuid)>>,
) -> Response {
    let render = dashboard_page(
        &state,
        &visitor,
        org,
        paging,
        NewApp::default(),
        Problems::default(),
    )
    .await;
    super::developers::workspace(&state, &visitor, org, "Developer portal", render).await
}

/// Creates an app from the dashboard.
pub async fn create(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path(org): Path<Uuid>,
    Form(f): Form<NewApp>,
) -> Response {
    let body = apps::AppRequest {
        name: Some(f.name.clone()),
        slug: Some(f.slug.clone()),
        description: Some(f.description.clone()),
        ..Default::default()
    };
    match apps::create_app(
        State(state.clone()),
        Path(org),
        meta,
        visitor.session,
        ApiJson(body),
    )
    .await
    {
        Ok(c) => to_created(c, |created| {
            let id = created.id;
            format!("/orgs/{org}/portal/apps/{id}")
        }),
        Err(e) => match form_problems(e) {
            Ok((status, problems)) => {
                let first = Paging::first(crate::page::DEFAULT_LIMIT);
                let render = dashboard_page(&state, &visitor, org, first, f, problems).await;
                again(
                    status,
                    Ok(super::developers::workspace(
                        &state,
                        &visitor,
                        org,
                        "Developer portal",
                        render,
                    )
                    .await),
                )
            }
            Err(e) => e.into_response(),
        },
    }
}

#[derive(Template)]
#[template(path = "console/portal/general.html")]
struct GeneralPage {
    frame: Frame,
    org: Uuid,
    head: AppHead,
    problems: Problems,
}

async fn general_page(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    app: Uuid,
    problems: Problems,
) -> Result<Response, PageError> {
    let head = app_head(state, visitor, org, app, "").await?;
    let frame = visitor
        .frame(state, &head.app.name, Section::Portal, Some(org))
        .await?;
    page(&GeneralPage {
        frame,
        org,
        head,
        problems,
    })
}

/// General: name, slug, description, callback URLs, custom attributes,
/// visibility, distribution, allowlist.
pub async fn general(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
) -> Result<Response, PageError> {
    general_page(&state, &visitor, org, app, Problems::default()).await
}

/// What General's forms send.
#[derive(Deserialize, Default)]
pub struct GeneralForm {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    allowlist: Option<String>,
    /// OAuth callback URLs, one per line.
    #[serde(default)]
    callback_urls: Option<String>,
    /// Custom attributes, `key=value` per line.
    #[serde(default)]
    attributes: Option<String>,
    /// The attributes the page showed, space-separated: one left out of
    /// `attributes` is removed.
    #[serde(default)]
    attribute_keys: String,
}

/// `key=value` lines as the API's attribute changes: every key shown on
/// the page but gone from the text is removed (`None`).
fn attribute_changes(
    text: &str,
    shown: &str,
) -> Result<std::collections::BTreeMap<String, Option<String>>, ApiError> {
    let mut changes = std::collections::BTreeMap::new();
    for key in shown.split_whitespace() {
        changes.insert(key.to_owned(), None);
    }
    for line in lines(text) {
        let Some((k, v)) = line.split_once('=') else {
            return Err(ApiError::Invalid(domain::Invalid(vec![
                domain::FieldError {
                    pointer: "/attributes".into(),
                    detail: format!("{line:?} is not key=value"),
                },
            ])));
        };
        changes.insert(k.trim().to_owned(), Some(v.trim().to_owned()));
    }
    Ok(changes)
}

/// Saves General: the details, a visibility (asking staff for a wider
/// distribution), or the allowlist, whichever the form sent.
pub async fn save_general(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
    Form(f): Form<GeneralForm>,
) -> Response {
    let st = || State(state.clone());
    let result = if let Some(visibility) = f.visibility {
        apps::set_visibility(
            st(),
            Path(app),
            meta,
            visitor.session,
            ApiJson(apps::VisibilityRequest { visibility }),
        )
        .await
        .map(|c| c.position)
    } else if let Some(list) = f.allowlist {
        let parsed: Result<Vec<Uuid>, _> =
            lines(&list).iter().map(|l| Uuid::try_parse(l)).collect();
        match parsed {
            Ok(workspaces) => apps::set_allowlist(
                st(),
                Path(app),
                meta,
                visitor.session,
                ApiJson(apps::AllowlistRequest { workspaces }),
            )
            .await
            .map(|c| c.position),
            Err(_) => Err(ApiError::Invalid(domain::Invalid(vec![
                domain::FieldError {
                    pointer: "/allowlist".into(),
                    detail: "one workspace id (a UUID) per line".into(),
                },
            ]))),
        }
    } else {
        let attributes = match &f.attributes {
            Some(text) => attribute_changes(text, &f.attribute_keys),
            None => Ok(Default::default()),
        };
        match attributes {
            Ok(attributes) => {
                let body = apps::AppRequest {
                    name: f.name,
                    slug: f.slug,
                    description: f.description,
                    callback_urls: f.callback_urls.map(|t| lines(&t)),
                    attributes,
                    ..Default::default()
                };
                apps::update_app(
                    st(),
                    Path(app),
                    Default::default(),
                    meta,
                    visitor.session,
                    ApiJson(body),
                )
                .await
                .map(|c| c.position)
            }
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(position) => done(position, &format!("/orgs/{org}/portal/apps/{app}")),
        Err(e) => {
            form_again(e, |problems| {
                general_page(&state, &visitor, org, app, problems)
            })
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "console/portal/delete.html")]
struct DeletePage {
    frame: Frame,
    org: Uuid,
    head: AppHead,
}

/// Asks to confirm deleting an app, saying what it revokes.
pub async fn delete_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
) -> Result<Response, PageError> {
    let head = app_head(&state, &visitor, org, app, "").await?;
    let frame = visitor
        .frame(&state, "Delete an app", Section::Portal, Some(org))
        .await?;
    page(&DeletePage { frame, org, head })
}

/// Deletes the app: every credential revoked, access stops at once, its
/// history kept.
pub async fn delete(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
    Form(_): Form<serde::de::IgnoredAny>,
) -> Response {
    then(
        apps::delete_app(State(state), Path(app), meta, visitor.session).await,
        &format!("/orgs/{org}/portal"),
    )
}

#[derive(Template)]
#[template(path = "console/portal/install.html")]
struct InstallPage {
    frame: Frame,
    token: String,
}

/// An install link, opened: choose the workspace to install the app into.
pub async fn install_page(
    State(state): State<AppState>,
    visitor: Visitor,
    axum::extract::Query(t): axum::extract::Query<super::access::LinkToken>,
) -> Result<Response, PageError> {
    let frame = visitor
        .frame(&state, "Install an app", Section::Portal, None)
        .await?;
    page(&InstallPage {
        frame,
        token: t.token().to_owned(),
    })
}

/// What the install form sends.
#[derive(Deserialize)]
pub struct InstallForm {
    token: String,
    workspace: Uuid,
}

crate::redacted_debug!(InstallForm);

/// Installs the link's app into the chosen workspace.
pub async fn install(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Form(f): Form<InstallForm>,
) -> Response {
    let body = crate::routes::versions::InstallWithTokenRequest {
        token: f.token,
        workspace_id: f.workspace,
    };
    let result = crate::routes::versions::install_with_body(
        State(state),
        meta,
        visitor.session,
        ApiJson(body),
    )
    .await;
    then(result, &format!("/orgs/{}/installations", f.workspace))
}

#[derive(Template)]
#[template(path = "console/portal/installations.html")]
struct InstallationsPage {
    frame: Frame,
    org: Uuid,
    installed: crate::page::Page<crate::routes::versions::InstallationView>,
}

/// The apps installed into an organisation.
pub async fn installations(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<crate::authorize::OrgMember>,
    Checked(paging): Checked<Paging<(DateTime<Utc>, Uuid)>>,
) -> Result<Response, PageError> {
    let org = member.org;
    let axum::Json(installed) = crate::routes::versions::list_installations(
        State(state.clone()),
        Path(org),
        member,
        visitor.min,
        paging,
    )
    .await?;
    let frame = visitor
        .frame(&state, "Installed apps", Section::Portal, Some(org))
        .await?;
    page(&InstallationsPage {
        frame,
        org,
        installed,
    })
}

/// Uninstalls an app from the organisation.
pub async fn uninstall(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
    Form(_): Form<serde::de::IgnoredAny>,
) -> Response {
    let result =
        crate::routes::versions::uninstall(State(state), Path((org, app)), meta, visitor.session)
            .await;
    then(result, &format!("/orgs/{org}/installations"))
}
