//! The API Keys tab (seed 003): the selected app's key table (name,
//! prefix, usage count, last used, expiry, status, actions), the issue form
//! with its naming hints, the plaintext on the one page that answers an
//! issue or a rotation, and a revocation that asks first.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use uuid::Uuid;

use super::{app_choice, lines, tabs, workspace, Selected, Tab};
use crate::authorize::{AppReader, OrgMember};
use crate::command::RequestMeta;
use crate::console::view::{
    again, done, form_problems, page, shown_after, Checked, Form, Frame, PageError, Problems,
    Section, Visitor,
};
use crate::error::ApiError;
use crate::extract::{ApiJson, OptionalJson, Path};
use crate::page::{Paging, TimeKey};
use crate::routes::{keys, plans};
use crate::state::AppState;

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
    let (apps, app) = app_choice(state, visitor, org, selected).await?;
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
        None => crate::page::Page::empty(),
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
                let paging = Paging::first(crate::page::DEFAULT_LIMIT);
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
