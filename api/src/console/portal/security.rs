//! Security: the app's OAuth client credentials (the secret once, on the
//! page that made or rotated it), revoking a client, and the app's team
//! members with their roles.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::{app_head, AppHead};
use crate::authorize::AppReader;
use crate::command::RequestMeta;
use crate::console::developers::lines;
use crate::console::view::{
    at_position, done, form_again, page, Form, Frame, PageError, Problems, Section, Visitor,
};
use crate::extract::{ApiJson, OptionalJson, Path};
use crate::page::{Paging, TimeKey};
use crate::routes::{apps, oauth};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/portal/security.html")]
struct SecurityPage {
    frame: Frame,
    org: Uuid,
    head: AppHead,
    s: apps::SecurityView,
    clients: crate::page::Page<oauth::ClientView>,
    created: Option<oauth::ClientCreated>,
    problems: Problems,
}

async fn security_page(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    app: Uuid,
    created: Option<oauth::ClientCreated>,
    problems: Problems,
) -> Result<Response, PageError> {
    let head = app_head(state, visitor, org, app, "/security").await?;
    let reader = AppReader::check(state, app, visitor.session).await?;
    let axum::Json(s) = apps::security(State(state.clone()), Path(app), reader).await?;
    let all: Paging<TimeKey> = Paging::first(crate::page::MAX_LIMIT);
    let axum::Json(clients) =
        oauth::list_clients(State(state.clone()), Path(app), visitor.min, reader, all).await?;
    let frame = visitor
        .frame(state, "Security", Section::Portal, Some(org))
        .await?;
    page(&SecurityPage {
        frame,
        org,
        head,
        s,
        clients,
        created,
        problems,
    })
}

/// The Security page.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
) -> Result<Response, PageError> {
    security_page(&state, &visitor, org, app, None, Problems::default()).await
}

/// What the new-client form sends.
#[derive(Deserialize)]
pub struct ClientForm {
    name: String,
    mode: String,
    #[serde(default)]
    scopes: String,
}

/// Makes client credentials; the secret is shown on the answer only.
pub async fn create_client(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
    Form(f): Form<ClientForm>,
) -> Response {
    let body = oauth::CreateClientRequest {
        name: f.name,
        mode: f.mode,
        scopes: lines(&f.scopes),
    };
    let result = oauth::create_client(
        State(state.clone()),
        Path(app),
        meta,
        visitor.session,
        ApiJson(body),
    )
    .await;
    shown(&state, &visitor, org, app, result).await
}

async fn shown(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    app: Uuid,
    result: Result<crate::command::Committed<oauth::ClientCreated>, crate::error::ApiError>,
) -> Response {
    match result {
        Ok(c) => {
            let position = c.position;
            match security_page(state, visitor, org, app, c.body, Problems::default()).await {
                Ok(res) => at_position(res, position),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => {
            form_again(e, |problems| {
                security_page(state, visitor, org, app, None, problems)
            })
            .await
        }
    }
}

/// Rotates a client's secret; the new one is shown once, the old one
/// works for a day.
pub async fn rotate_client(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app, client)): Path<(Uuid, Uuid, Uuid)>,
    Form(_): Form<serde::de::IgnoredAny>,
) -> Response {
    let result = oauth::rotate_client_secret(
        State(state.clone()),
        Path(client),
        meta,
        visitor.session,
        OptionalJson(None),
    )
    .await;
    shown(&state, &visitor, org, app, result).await
}

/// Revokes a client.
pub async fn revoke_client(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app, client)): Path<(Uuid, Uuid, Uuid)>,
    Form(_): Form<serde::de::IgnoredAny>,
) -> Response {
    match oauth::revoke_client(State(state), Path(client), meta, visitor.session).await {
        Ok(c) => done(
            c.position,
            &format!("/orgs/{org}/portal/apps/{app}/security"),
        ),
        Err(e) => PageError(e).into_response(),
    }
}

/// What the team-member form sends.
#[derive(Deserialize)]
pub struct MemberForm {
    user: Uuid,
    role: String,
}

/// Adds a member of the organisation to the app's team, or changes their
/// role there.
pub async fn set_member(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
    Form(f): Form<MemberForm>,
) -> Response {
    let body = apps::AppMemberRequest { role: f.role };
    match apps::set_app_member(
        State(state.clone()),
        Path((app, f.user)),
        meta,
        visitor.session,
        ApiJson(body),
    )
    .await
    {
        Ok(c) => done(
            c.position,
            &format!("/orgs/{org}/portal/apps/{app}/security"),
        ),
        Err(e) => {
            form_again(e, |problems| {
                security_page(&state, &visitor, org, app, None, problems)
            })
            .await
        }
    }
}
