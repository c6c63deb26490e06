//! The Apps tab: the organisation's apps, the selected one's name and
//! allowed browser origins (and its shadow test tenant), and a new app.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::{lines, tabs, workspace, Selected, Tab};
use crate::authorize::{AppReader, OrgMember};
use crate::command::RequestMeta;
use crate::console::view::{
    again, done, form_problems, page, to_created, Checked, Form, Frame, PageError, Problems,
    Section, Visitor,
};
use crate::extract::{ApiJson, Path};
use crate::page::Paging;
use crate::routes::apps;
use crate::state::AppState;

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
    /// Whether these are the selected app's edits (their problems go on
    /// its form, not on the new-app form).
    #[serde(skip)]
    editing: bool,
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
        Ok(c) => to_created(c, |created| {
            let id = created.id;
            format!("/orgs/{org}/settings/developers/apps?app={id}")
        }),
        Err(e) => match form_problems(e) {
            Ok((status, problems)) => {
                let paging = Paging::first(crate::page::DEFAULT_LIMIT);
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
                let paging = Paging::first(crate::page::DEFAULT_LIMIT);
                let f = AppForm { editing: true, ..f };
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
