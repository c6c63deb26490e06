//! Settings > Developers (seed 000), for owners and managers: the
//! Overview, Apps and API Keys tabs, each a route of its own. Without
//! `platform.api` every tab is the locked page (and the navigation shows
//! the Pro badge). API keys follow seed 003: the plaintext once, on the
//! page that answers the issue or the rotation, never again.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::view::{
    again, done, form_problems, page, shown_after, Checked, Form, Frame, PageError, Problems,
    Section, Visitor,
};
use crate::authorize::{AppReader, OrgMember};
use crate::command::RequestMeta;
use crate::error::ApiError;
use crate::extract::{ApiJson, MinPosition, OptionalJson, Path};
use crate::page::{Paging, TimeKey};
use crate::routes::{apps, keys, plans};
use crate::state::AppState;

/// The workspace's tabs, in order: label and path under
/// `/orgs/{org}/settings/developers`.
pub const TABS: &[(&str, &str)] = &[("Overview", ""), ("Apps", "/apps"), ("API Keys", "/keys")];

/// A tab as the template shows it.
pub struct Tab {
    /// Its label.
    pub label: &'static str,
    /// Its route.
    pub href: String,
    /// Whether it is the page shown.
    pub current: bool,
}

fn tabs(org: Uuid, current: &str) -> Vec<Tab> {
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
async fn workspace(
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

#[derive(Template)]
#[template(path = "console/developers/apps.html")]
struct AppsPage {
    frame: Frame,
    tabs: Vec<Tab>,
    org: Uuid,
    apps: crate::page::Page<apps::AppView>,
    selected: Option<apps::AppView>,
    form: AppForm,
    problems: Problems,
}

/// What the app forms send: the name, the allowed browser origins one per
/// line, and on create the slug.
#[derive(Deserialize, Default, Clone)]
pub struct AppForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    origins: String,
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn apps_page(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    selected: Option<Uuid>,
    paging: Paging<(DateTime<Utc>, Uuid)>,
    form: AppForm,
    problems: Problems,
) -> Result<Response, PageError> {
    let reader = crate::authorize::WorkspaceReader::check(state, org, visitor.session).await?;
    let axum::Json(list) = apps::list_apps(State(state.clone()), Path(org), reader, paging).await?;
    let selected = selected.and_then(|id| list.items.iter().find(|a| a.id == id));
    let selected = match selected {
        Some(a) => Some(
            apps::get_app(
                State(state.clone()),
                Path(a.id),
                AppReader::check(state, a.id, visitor.session).await?,
                axum::extract::Query(Default::default()),
            )
            .await?
            .0,
        ),
        None => None,
    };
    let frame = visitor
        .frame(state, "Apps", Section::Developers, Some(org))
        .await?;
    page(&AppsPage {
        frame,
        tabs: tabs(org, "/apps"),
        org,
        apps: list,
        selected,
        form,
        problems,
    })
}

/// The Apps tab: the list, the selected app's form, and the create form.
pub async fn apps_tab(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
    axum::extract::Query(q): axum::extract::Query<Selected>,
    Checked(paging): Checked<Paging<(DateTime<Utc>, Uuid)>>,
) -> Response {
    let org = member.org;
    let render = apps_page(
        &state,
        &visitor,
        org,
        q.app,
        paging,
        AppForm::default(),
        Problems::default(),
    )
    .await;
    workspace(&state, &visitor, org, "Apps", render).await
}

/// Creates an app.
pub async fn create_app(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
    Form(f): Form<AppForm>,
) -> Response {
    let org = member.org;
    let request = apps::AppRequest {
        name: Some(f.name.clone()),
        slug: Some(f.slug.clone()),
        origins: Some(lines(&f.origins)),
        ..Default::default()
    };
    match apps::create_app(
        State(state.clone()),
        Path(org),
        meta,
        member.session,
        ApiJson(request),
    )
    .await
    {
        Ok(c) => {
            let id = c.body.as_ref().map(|a| a.id).unwrap_or_default();
            done(
                c.position,
                &format!("/orgs/{org}/settings/developers/apps?app={id}"),
            )
        }
        Err(e) => match form_problems(e) {
            Ok((status, problems)) => {
                let paging = Paging {
                    limit: crate::page::DEFAULT_LIMIT,
                    after: None,
                };
                let render = apps_page(&state, &visitor, org, None, paging, f, problems).await;
                again(
                    status,
                    Ok(workspace(&state, &visitor, org, "Apps", render).await),
                )
            }
            Err(e) => e.into_response(),
        },
    }
}

/// Saves the selected app's name and allowed browser origins.
pub async fn update_app(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
    Form(f): Form<AppForm>,
) -> Response {
    let request = apps::AppRequest {
        name: Some(f.name.clone()),
        origins: Some(lines(&f.origins)),
        ..Default::default()
    };
    match apps::update_app(
        State(state.clone()),
        Path(app),
        Default::default(),
        meta,
        visitor.session,
        ApiJson(request),
    )
    .await
    {
        Ok(c) => done(
            c.position,
            &format!("/orgs/{org}/settings/developers/apps?app={app}"),
        ),
        Err(e) => match form_problems(e) {
            Ok((status, problems)) => {
                let paging = Paging {
                    limit: crate::page::DEFAULT_LIMIT,
                    after: None,
                };
                let render = apps_page(&state, &visitor, org, Some(app), paging, f, problems).await;
                again(
                    status,
                    Ok(workspace(&state, &visitor, org, "Apps", render).await),
                )
            }
            Err(e) => e.into_response(),
        },
    }
}

#[derive(Template)]
#[template(path = "console/developers/keys.html")]
struct KeysPage {
    frame: Frame,
    tabs: Vec<Tab>,
    org: Uuid,
    apps: Vec<plans::SelectedApp>,
    app: Option<plans::SelectedApp>,
    keys: crate::page::Page<keys::KeyView>,
    form: KeyForm,
    problems: Problems,
}

/// What the issue form sends.
#[derive(Deserialize, Clone)]
pub struct KeyForm {
    #[serde(default)]
    name: String,
    #[serde(default = "test")]
    mode: String,
    #[serde(default = "secret", rename = "type")]
    kind: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    expires_on: String,
}

fn test() -> String {
    "test".into()
}

fn secret() -> String {
    "secret".into()
}

impl Default for KeyForm {
    fn default() -> Self {
        KeyForm {
            name: String::new(),
            mode: test(),
            kind: secret(),
            scopes: String::new(),
            expires_on: String::new(),
        }
    }
}

async fn keys_page(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    selected: Option<Uuid>,
    paging: Paging<TimeKey>,
    form: KeyForm,
    problems: Problems,
) -> Result<Response, PageError> {
    let reader = crate::authorize::WorkspaceReader::check(state, org, visitor.session).await?;
    let all = Paging {
        limit: crate::page::MAX_LIMIT,
        after: None,
    };
    let axum::Json(list) = apps::list_apps(State(state.clone()), Path(org), reader, all).await?;
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
    let app_id = selected.or_else(|| apps.first().map(|a| a.id));
    let app = app_id
        .and_then(|id| apps.iter().find(|a| a.id == id))
        .map(|a| plans::SelectedApp {
            id: a.id,
            name: a.name.clone(),
            slug: a.slug.clone(),
            status: a.status.clone(),
        });
    let keys = match &app {
        Some(a) => {
            keys::list_keys(
                State(state.clone()),
                Path(a.id),
                visitor.min,
                AppReader::check(state, a.id, visitor.session).await?,
                paging,
            )
            .await?
            .0
        }
        None => crate::page::Page {
            items: Vec::new(),
            next_cursor: None,
        },
    };
    let frame = visitor
        .frame(state, "API Keys", Section::Developers, Some(org))
        .await?;
    page(&KeysPage {
        frame,
        tabs: tabs(org, "/keys"),
        org,
        apps,
        app,
        keys,
        form,
        problems,
    })
}

/// The API Keys tab: the key table of the selected app and the issue form.
pub async fn keys_tab(
    State(state): State<AppState>,
    visitor: Visitor,
    Checked(member): Checked<OrgMember>,
    axum::extract::Query(q): axum::extract::Query<Selected>,
    Checked(paging): Checked<Paging<TimeKey>>,
) -> Response {
    let org = member.org;
    let render = keys_page(
        &state,
        &visitor,
        org,
        q.app,
        paging,
        KeyForm::default(),
        Problems::default(),
    )
    .await;
    workspace(&state, &visitor, org, "API Keys", render).await
}

#[derive(Template)]
#[template(path = "console/developers/key_secret.html")]
struct SecretPage {
    frame: Frame,
    tabs: Vec<Tab>,
    org: Uuid,
    app: Uuid,
    key: keys::KeyCreated,
    rotated: bool,
}

/// Issues a key and shows its plaintext, this once.
pub async fn issue_key(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
    Form(f): Form<KeyForm>,
) -> Response {
    let expires_at = match f.expires_on.trim() {
        "" => Ok(None),
        day => NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map(|d| Some(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()))
            .map_err(|_| {
                ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
                    pointer: "/expires_on".into(),
                    detail: "must be a date (YYYY-MM-DD)".into(),
                }]))
            }),
    };
    let result = match expires_at {
        Ok(expires_at) => {
            keys::create_key(
                State(state.clone()),
                Path(app),
                meta,
                visitor.session,
                ApiJson(keys::CreateKeyRequest {
                    name: f.name.clone(),
                    mode: f.mode.clone(),
                    kind: f.kind.clone(),
                    scopes: lines(&f.scopes),
                    expires_at,
                    rate_limit: None,
                }),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(c) => reveal(&state, &visitor, org, app, c, false).await,
        Err(e) => match form_problems(e) {
            Ok((status, problems)) => {
                let paging = Paging {
                    limit: crate::page::DEFAULT_LIMIT,
                    after: None,
                };
                let render = keys_page(&state, &visitor, org, Some(app), paging, f, problems).await;
                again(
                    status,
                    Ok(workspace(&state, &visitor, org, "API Keys", render).await),
                )
            }
            Err(e) => e.into_response(),
        },
    }
}

async fn reveal(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    app: Uuid,
    c: crate::command::Committed<keys::KeyCreated>,
    rotated: bool,
) -> Response {
    let result = async {
        let frame = visitor
            .frame(state, "Copy your new key", Section::Developers, Some(org))
            .await?;
        let key = c
            .body
            .ok_or(ApiError::Internal("an issued key has a body".into()))?;
        shown_after(
            c.position,
            &SecretPage {
                frame,
                tabs: tabs(org, "/keys"),
                org,
                app,
                key,
                rotated,
            },
        )
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// What the rotate form sends.
#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    grace_hours: Option<u64>,
}

/// Rotates a key: the replacement's plaintext is shown this once; the old
/// key keeps verifying for the grace period.
pub async fn rotate_key(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app, key)): Path<(Uuid, Uuid, Uuid)>,
    Form(f): Form<RotateForm>,
) -> Response {
    let body = keys::RotateKeyRequest {
        grace_period_secs: f.grace_hours.map(|h| h.saturating_mul(3600)),
        at: None,
    };
    match keys::rotate_key(
        State(state.clone()),
        Path(key),
        meta,
        visitor.session,
        OptionalJson(Some(body)),
    )
    .await
    {
        Ok(c) => reveal(&state, &visitor, org, app, c, true).await,
        Err(e) => PageError(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "console/developers/key_revoke.html")]
struct RevokePage {
    frame: Frame,
    tabs: Vec<Tab>,
    org: Uuid,
    app: Uuid,
    key: keys::KeyView,
}

/// Asks to confirm a revocation, saying it cannot be undone.
pub async fn revoke_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, app, key)): Path<(Uuid, Uuid, Uuid)>,
) -> Result<Response, PageError> {
    let axum::Json(view) = keys::get_key(
        State(state.clone()),
        Path(key),
        visitor.min,
        visitor.session,
        axum::extract::Query(Default::default()),
    )
    .await?;
    let frame = visitor
        .frame(&state, "Revoke a key", Section::Developers, Some(org))
        .await?;
    page(&RevokePage {
        frame,
        tabs: tabs(org, "/keys"),
        org,
        app,
        key: view,
    })
}

/// What the revoke form sends.
#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    reason: String,
}

/// Revokes a key, for good.
pub async fn revoke_key(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app, key)): Path<(Uuid, Uuid, Uuid)>,
    Form(f): Form<RevokeForm>,
) -> Response {
    let reason = Some(f.reason.trim().to_owned()).filter(|r| !r.is_empty());
    match keys::revoke_key(
        State(state),
        Path(key),
        meta,
        visitor.session,
        OptionalJson(Some(keys::RevokeKeyRequest { reason })),
    )
    .await
    {
        Ok(c) => done(
            c.position,
            &format!("/orgs/{org}/settings/developers/keys?app={app}"),
        ),
        Err(e) => PageError(e).into_response(),
    }
}

/// `/orgs/{org}/settings`: the Developers workspace is its one page yet.
pub async fn settings(Path(org): Path<Uuid>) -> Redirect {
    Redirect::to(&format!("/orgs/{org}/settings/developers"))
}
