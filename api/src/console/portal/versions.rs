//! Versions: the app's drafts and published versions; a version's
//! manifest edited as JSON, validated with its problems by field,
//! published, and install links made for it (the link shown once).

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::{app_head, AppHead};
use crate::authorize::AppReader;
use crate::command::RequestMeta;
use crate::console::view::{
    again, at_position, done, form_problems, page, to_created, Checked, Form, Frame, PageError,
    Problems, Section, Visitor,
};
use crate::error::{ApiError, ProblemField};
use crate::extract::{ApiJson, Path};
use crate::page::Paging;
use crate::routes::versions;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/portal/versions.html")]
struct VersionsPage {
    frame: Frame,
    org: Uuid,
    head: AppHead,
    versions: crate::page::Page<versions::VersionView>,
    problems: Problems,
}

async fn versions_page(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    app: Uuid,
    paging: Paging<(DateTime<Utc>, Uuid)>,
    problems: Problems,
) -> Result<Response, PageError> {
    let head = app_head(state, visitor, org, app, "/versions").await?;
    let reader = AppReader::check(state, app, visitor.session).await?;
    let axum::Json(list) =
        versions::list_versions(State(state.clone()), Path(app), reader, paging).await?;
    let frame = visitor
        .frame(state, "Versions", Section::Portal, Some(org))
        .await?;
    page(&VersionsPage {
        frame,
        org,
        head,
        versions: list,
        problems,
    })
}

/// The app's versions.
pub async fn list(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
    Checked(paging): Checked<Paging<(DateTime<Utc>, Uuid)>>,
) -> Result<Response, PageError> {
    versions_page(&state, &visitor, org, app, paging, Problems::default()).await
}

/// What the new-draft form sends.
#[derive(Deserialize)]
pub struct NewVersion {
    label: String,
}

/// Starts a draft.
pub async fn create(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app)): Path<(Uuid, Uuid)>,
    Form(f): Form<NewVersion>,
) -> Response {
    let body = versions::CreateVersionRequest {
        label: f.label,
        manifest: None,
    };
    match versions::create_version(
        State(state.clone()),
        Path(app),
        meta,
        visitor.session,
        ApiJson(body),
    )
    .await
    {
        Ok(c) => to_created(c, |created| {
            let id = created.id;
            format!("/orgs/{org}/portal/apps/{app}/versions/{id}")
        }),
        Err(e) => match form_problems(e) {
            Ok((status, problems)) => {
                let first = Paging::first(crate::page::DEFAULT_LIMIT);
                again(
                    status,
                    versions_page(&state, &visitor, org, app, first, problems).await,
                )
            }
            Err(e) => e.into_response(),
        },
    }
}

#[derive(Template)]
#[template(path = "console/portal/version.html")]
struct VersionPage {
    frame: Frame,
    org: Uuid,
    head: AppHead,
    version: versions::VersionView,
    manifest: String,
    checked: Option<Vec<ProblemField>>,
    link: Option<versions::InstallLinkView>,
    problems: Problems,
}

struct Shown {
    manifest: Option<String>,
    checked: Option<Vec<ProblemField>>,
    link: Option<versions::InstallLinkView>,
    problems: Problems,
}

async fn version_page(
    state: &AppState,
    visitor: &Visitor,
    org: Uuid,
    app: Uuid,
    id: Uuid,
    shown: Shown,
) -> Result<Response, PageError> {
    let head = app_head(state, visitor, org, app, "/versions").await?;
    let reader = AppReader::check(state, app, visitor.session).await?;
    let axum::Json(version) =
        versions::get_version(State(state.clone()), Path((app, id)), reader).await?;
    let manifest = shown
        .manifest
        .unwrap_or_else(|| serde_json::to_string_pretty(&version.manifest).unwrap_or_default());
    let frame = visitor
        .frame(
            state,
            &format!("Version {}", version.label),
            Section::Portal,
            Some(org),
        )
        .await?;
    page(&VersionPage {
        frame,
        org,
        head,
        version,
        manifest,
        checked: shown.checked,
        link: shown.link,
        problems: shown.problems,
    })
}

/// One version: its manifest, validation, publishing and install links.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, app, id)): Path<(Uuid, Uuid, Uuid)>,
) -> Result<Response, PageError> {
    let shown = Shown {
        manifest: None,
        checked: None,
        link: None,
        problems: Problems::default(),
    };
    version_page(&state, &visitor, org, app, id, shown).await
}

/// What a version's forms send: which action, and the manifest.
#[derive(Deserialize)]
pub struct VersionForm {
    action: String,
    #[serde(default)]
    manifest: String,
    #[serde(default)]
    single_use: Option<String>,
}

/// Saves the manifest, validates, publishes, or makes an install link.
pub async fn act(
    State(state): State<AppState>,
    meta: RequestMeta,
    visitor: Visitor,
    Path((org, app, id)): Path<(Uuid, Uuid, Uuid)>,
    Form(f): Form<VersionForm>,
) -> Response {
    let here = format!("/orgs/{org}/portal/apps/{app}/versions/{id}");
    let st = || State(state.clone());
    let failed = |e: ApiError, manifest: Option<String>| async {
        match form_problems(e) {
            Ok((status, problems)) => {
                let shown = Shown {
                    manifest,
                    checked: None,
                    link: None,
                    problems,
                };
                again(
                    status,
                    version_page(&state, &visitor, org, app, id, shown).await,
                )
            }
            Err(e) => e.into_response(),
        }
    };
    if matches!(f.action.as_str(), "validate" | "publish") && !f.manifest.trim().is_empty() {
        // What is validated or published is the manifest on the screen:
        // an edit not saved yet is saved first.
        let shown: serde_json::Value = match serde_json::from_str(&f.manifest) {
            Ok(v) => v,
            Err(e) => {
                let invalid = ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
                    pointer: "/manifest".into(),
                    detail: format!("is not JSON: {e}"),
                }]));
                return failed(invalid, Some(f.manifest)).await;
            }
        };
        let stored = async {
            let reader = AppReader::check(&state, app, visitor.session).await?;
            versions::get_version(st(), Path((app, id)), reader).await
        }
        .await;
        match stored {
            Ok(axum::Json(v)) if v.manifest != shown => {
                let saved = versions::put_manifest(
                    st(),
                    Path((app, id)),
                    meta.clone(),
                    visitor.session,
                    ApiJson(shown),
                )
                .await;
                if let Err(e) = saved {
                    return failed(e, Some(f.manifest)).await;
                }
            }
            Ok(_) => {}
            Err(e) => return failed(e, Some(f.manifest)).await,
        }
    }
    match f.action.as_str() {
        "save" => {
            let manifest: serde_json::Value = match serde_json::from_str(&f.manifest) {
                Ok(v) => v,
                Err(e) => {
                    let invalid = ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
                        pointer: "/manifest".into(),
                        detail: format!("is not JSON: {e}"),
                    }]));
                    return failed(invalid, Some(f.manifest)).await;
                }
            };
            match versions::put_manifest(
                st(),
                Path((app, id)),
                meta,
                visitor.session,
                ApiJson(manifest),
            )
            .await
            {
                Ok(c) => done(c.position, &here),
                Err(e) => failed(e, Some(f.manifest)).await,
            }
        }
        "validate" => match versions::validate(st(), Path((app, id)), visitor.session).await {
            Ok(axum::Json(v)) => {
                let shown = Shown {
                    manifest: None,
                    checked: Some(v.errors),
                    link: None,
                    problems: Problems::default(),
                };
                version_page(&state, &visitor, org, app, id, shown)
                    .await
                    .unwrap_or_else(IntoResponse::into_response)
            }
            Err(e) => failed(e, None).await,
        },
        "publish" => match versions::publish(st(), Path((app, id)), meta, visitor.session).await {
            Ok(c) => done(c.position, &here),
            Err(e) => failed(e, None).await,
        },
        "install_link" => {
            let body = versions::InstallLinkRequest {
                single_use: f.single_use.is_some(),
                expires_in_hours: 72,
            };
            match versions::create_install_link(
                st(),
                Path((app, id)),
                meta,
                visitor.session,
                ApiJson(body),
            )
            .await
            {
                Ok(c) => {
                    let position = c.position;
                    let shown = Shown {
                        manifest: None,
                        checked: None,
                        link: c.body,
                        problems: Problems::default(),
                    };
                    match version_page(&state, &visitor, org, app, id, shown).await {
                        Ok(res) => at_position(res, position),
                        Err(e) => e.into_response(),
                    }
                }
                Err(e) => failed(e, None).await,
            }
        }
        _ => PageError(ApiError::Invalid(domain::Invalid(vec![
            domain::FieldError {
                pointer: "/action".into(),
                detail: "is not one this form offers".into(),
            },
        ])))
        .into_response(),
    }
}
