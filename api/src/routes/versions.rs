//! App versions, install links and installs: drafts with a JSON manifest,
//! validation against the manifest JSON Schema (errors by JSON pointer),
//! publishing (valid drafts only; published versions are immutable),
//! expiring single- or multi-use install links, and installing into (or
//! uninstalling from) the caller's workspace.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use domain::apps::{self, App, Installation, Link};
use event_schemas::app::{install_link_stream, installation_stream};
use event_schemas::ExpectedVersion;
use event_store::StreamAppend;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::apps::{by_member, execute, load as load_app, require_workspace, AppCommand, By};
use super::orgs::load as load_org;
use crate::authorize::AppReader;
use crate::authorize::OrgMember;
use crate::command::{Committed, Plan, RequestMeta};
use crate::error::{ApiError, Problem, ProblemField};
use crate::extract::{ApiJson, MinPosition, Path, Session};
use crate::page::{Page, PageQuery, Paging};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/apps/{app}/versions",
            post(create_version).get(list_versions),
        )
        .route("/v1/apps/{app}/versions/{version}", get(get_version))
        .route(
            "/v1/apps/{app}/versions/{version}/manifest",
            put(put_manifest),
        )
        .route("/v1/apps/{app}/versions/{version}/validate", post(validate))
        .route("/v1/apps/{app}/versions/{version}/publish", post(publish))
        .route(
            "/v1/apps/{app}/versions/{version}/install-links",
            post(create_install_link),
        )
        .route("/v1/install", post(install_with_body))
        .route("/v1/install/{token}", post(install))
        .route("/v1/orgs/{org}/installations", get(list_installations))
        .route("/v1/orgs/{org}/installations/{app}", delete(uninstall))
        .route("/v1/schemas/app-manifest", get(manifest_schema))
}

/// A version.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    /// Id.
    pub id: Uuid,
    /// Label (`1.2.0`).
    pub label: String,
    /// `draft` or `published`.
    pub state: String,
    /// The manifest.
    pub manifest: Value,
}

impl VersionView {
    fn of(app: &App, id: Uuid) -> Option<Self> {
        app.versions.get(&id).map(|v| VersionView {
            id,
            label: v.label.clone(),
            state: if v.published { "published" } else { "draft" }.into(),
            manifest: v.manifest.clone(),
        })
    }

    fn from_row(r: projections::apps::read::VersionRow) -> Self {
        VersionView {
            id: r.version_id,
            label: r.label,
            state: r.state,
            manifest: r.manifest,
        }
    }
}

fn committed_version(
    app: &App,
    id: Uuid,
    status: StatusCode,
    position: u64,
) -> Result<Committed<VersionView>, ApiError> {
    Ok(Committed {
        status,
        position,
        body: Some(VersionView::of(app, id).ok_or(ApiError::NotFound)?),
    })
}

/// `POST /v1/apps/{app}/versions` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVersionRequest {
    /// Label, unique in the app (`1.2.0`).
    pub label: String,
    /// The manifest (see `GET /v1/schemas/app-manifest`); `{}` when absent.
    #[serde(default)]
    pub manifest: Option<Value>,
}

/// Create a draft version.
#[utoipa::path(post, path = "/v1/apps/{app}/versions", tag = "versions",
    request_body = CreateVersionRequest,
    responses((status = 201, body = VersionView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_version(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<CreateVersionRequest>,
) -> Result<Committed<VersionView>, ApiError> {
    let version_id = meta.ids().entity("version");
    let manifest = body
        .manifest
        .unwrap_or_else(|| Value::Object(Default::default()));
    let cmd = apps::CreateVersion {
        version_id,
        label: body.label.clone(),
        manifest,
    };
    let (app, _, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::create_version(org, app, session.user_id, &cmd)
    })
    .await?;
    committed_version(&app, version_id, StatusCode::CREATED, position)
}

/// Replace a draft's manifest.
#[utoipa::path(put, path = "/v1/apps/{app}/versions/{version}/manifest", tag = "versions",
    request_body = Object,
    responses((status = 200, body = VersionView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn put_manifest(
    State(state): State<AppState>,
    Path((app_id, version_id)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
    ApiJson(manifest): ApiJson<Value>,
) -> Result<Committed<VersionView>, ApiError> {
    let (app, _, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::update_manifest(org, app, session.user_id, version_id, manifest.clone())
    })
    .await?;
    committed_version(&app, version_id, StatusCode::OK, position)
}

/// The outcome of validating a manifest.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationView {
    /// No errors.
    pub valid: bool,
    /// Each error, by JSON pointer into the version (`/manifest/...`).
    pub errors: Vec<ProblemField>,
}

/// Validate a version's manifest against the manifest JSON Schema.
#[utoipa::path(post, path = "/v1/apps/{app}/versions/{version}/validate", tag = "versions",
    responses((status = 200, body = ValidationView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn validate(
    State(state): State<AppState>,
    Path((app_id, version_id)): Path<(Uuid, Uuid)>,
    session: Session,
) -> Result<Json<ValidationView>, ApiError> {
    let (app, _, _) = super::apps::load(&state, app_id).await?;
    if !app.exists {
        return Err(ApiError::NotFound);
    }
    let (org, _, _) = load_org(&state, app.org_id).await?;
    app.access_of(&org, session.user_id)?;
    super::apps::require_workspace(&org, session.user_id)?;
    let version = app.versions.get(&version_id).ok_or(ApiError::NotFound)?;
    let errors: Vec<ProblemField> = domain::manifest::validate(&version.manifest)
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(ValidationView {
        valid: errors.is_empty(),
        errors,
    }))
}

/// Publish a valid draft; from then on it never changes.
#[utoipa::path(post, path = "/v1/apps/{app}/versions/{version}/publish", tag = "versions",
    responses((status = 200, body = VersionView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn publish(
    State(state): State<AppState>,
    Path((app_id, version_id)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<VersionView>, ApiError> {
    let (app, _, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::publish(org, app, session.user_id, version_id)
    })
    .await?;
    committed_version(&app, version_id, StatusCode::OK, position)
}

/// A version of an app.
#[utoipa::path(get, path = "/v1/apps/{app}/versions/{version}", tag = "versions",
    responses((status = 200, body = VersionView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_version(
    State(state): State<AppState>,
    Path((app, version)): Path<(Uuid, Uuid)>,
    _reader: AppReader,
) -> Result<Json<VersionView>, ApiError> {
    let client = state.read_models.client().await?;
    let row = projections::apps::read::version(&client, app, version)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(VersionView::from_row(row)))
}

/// The app's versions, oldest first (the Versions page).
#[utoipa::path(get, path = "/v1/apps/{app}/versions", tag = "versions",
    params(PageQuery),
    responses((status = 200, body = Page<VersionView>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_versions(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    _reader: AppReader,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<VersionView>>, ApiError> {
    let client = state.read_models.client().await?;
    let rows = projections::apps::read::versions(&client, app, paging.keyset()).await?;
    Ok(Json(paging.page(rows, VersionView::from_row)))
}

/// `POST .../install-links` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallLinkRequest {
    /// Usable once (default) or until it expires.
    #[serde(default = "yes")]
    pub single_use: bool,
    /// Hours until it expires: 1 to 720 (default 168, a week).
    #[serde(default = "a_week")]
    pub expires_in_hours: i64,
}

fn yes() -> bool {
    true
}

fn a_week() -> i64 {
    168
}

/// A new install link; the token is shown only here.
#[derive(Serialize, ToSchema)]
pub struct InstallLinkView {
    /// The link.
    pub id: Uuid,
    /// The version it installs.
    pub version_id: Uuid,
    /// The token: `POST /v1/install/{token}` installs. Shown once.
    pub token: String,
    /// Usable once.
    pub single_use: bool,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

crate::redacted_debug!(InstallLinkView);

const TOKEN_PREFIX: &str = "gil_";

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The id in an install token of the right shape: its link's (tokens of
/// earlier releases carry their app's id instead).
fn token_id(token: &str) -> Option<Uuid> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (secret.len() >= 32).then_some(())?;
    Uuid::try_parse(id).ok()
}

/// Create an install link for a published version.
#[utoipa::path(post, path = "/v1/apps/{app}/versions/{version}/install-links", tag = "versions",
    request_body = InstallLinkRequest,
    responses((status = 201, body = InstallLinkView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_install_link(
    State(state): State<AppState>,
    Path((app_id, version_id)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<InstallLinkRequest>,
) -> Result<Committed<InstallLinkView>, ApiError> {
    let ids = meta.ids();
    let link_id = ids.entity("install_link");
    // Derived like the link's id, so a retry with the same Idempotency-Key
    // answers the token the first attempt recorded the hash of.
    let secret = ids.secret("install_link");
    let token = format!("{TOKEN_PREFIX}{}_{}", link_id.simple(), B64.encode(secret));
    let now = crate::command::now();
    let cmd = apps::CreateInstallLink {
        link_id,
        version_id,
        token_hash: token_hash(&token),
        single_use: body.single_use,
        expires_at: now + Duration::hours(body.expires_in_hours.clamp(-1, 100_000)),
        now,
    };
    let (state, cmd, user) = (&state, &cmd, session.user_id);
    let actor = session.actor();
    let actor = &actor;
    let meta_ref = &meta;
    let executed = state
        .commands
        .execute::<Link, _>(
            &install_link_stream(link_id),
            &ids,
            move |link| async move {
                let (app, _, _) = load_app(state, app_id).await?;
                let metadata = meta_ref.in_org(actor.clone(), app.org_id);
                if link.state.exists() {
                    // This very request, retried: it happened.
                    return Ok(Plan::new(Vec::new(), metadata));
                }
                let (org, _, _) = load_org(state, app.org_id).await?;
                app.access_of(&org, user)?;
                require_workspace(&org, user)?;
                let events = apps::create_install_link(&org, &app, user, cmd)?;
                Ok(Plan::new(events, metadata))
            },
        )
        .await?;
    let link = executed.state();
    if link.app_id != app_id {
        return Err(ApiError::NotFound);
    }
    Ok(Committed {
        status: StatusCode::CREATED,
        position: executed.position,
        body: Some(InstallLinkView {
            id: link.id,
            version_id: link.version_id,
            token,
            single_use: link.single_use,
            expires_at: link.expires_at,
        }),
    })
}

/// `POST /v1/install/{token}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    /// The caller's workspace (organisation) to install into.
    pub workspace_id: Uuid,
}

/// An installation.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstallationView {
    /// The app.
    pub app_id: Uuid,
    /// The workspace.
    pub workspace_id: Uuid,
    /// The version installed.
    pub version_id: Uuid,
}

/// `POST /v1/install` body: the token in the body keeps it out of URLs
/// (and so out of proxies' and browsers' logs).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallWithTokenRequest {
    /// The install link's token (`gil_...`).
    pub token: String,
    /// The caller's workspace (organisation) to install into.
    pub workspace_id: Uuid,
}

crate::redacted_debug!(InstallWithTokenRequest);

/// Install an app through an install link whose token is in the body; the
/// app's visibility and allowlist decide whether the workspace may.
#[utoipa::path(post, path = "/v1/install", tag = "versions",
    request_body = InstallWithTokenRequest,
    responses((status = 201, body = InstallationView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn install_with_body(
    State(state): State<AppState>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<InstallWithTokenRequest>,
) -> Result<Committed<InstallationView>, ApiError> {
    install_by_token(&state, &meta, &session, &body.token, body.workspace_id).await
}

/// Install an app into the caller's workspace through an install link;
/// the app's visibility and allowlist decide whether the workspace may.
/// `POST /v1/install` takes the token in the body instead, which keeps it
/// out of URLs; Gatehouse itself never logs it either way.
#[utoipa::path(post, path = "/v1/install/{token}", tag = "versions",
    request_body = InstallRequest,
    params(("token" = String, Path, description = "The install link's token")),
    responses((status = 201, body = InstallationView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn install(
    State(state): State<AppState>,
    Path(token): Path<String>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<InstallRequest>,
) -> Result<Committed<InstallationView>, ApiError> {
    install_by_token(&state, &meta, &session, &token, body.workspace_id).await
}

async fn install_by_token(
    state: &AppState,
    meta: &RequestMeta,
    session: &Session,
    token: &str,
    workspace_id: Uuid,
) -> Result<Committed<InstallationView>, ApiError> {
    let id = token_id(token).ok_or(ApiError::NotFound)?;
    let cmd = apps::Install {
        actor: session.user_id,
        token_hash: token_hash(token),
        now: crate::command::now(),
    };
    let link_stream = install_link_stream(id);
    let link = state.commands.load::<Link>(&link_stream).await?;
    if !link.state.exists() {
        return install_through_app_stream(state, meta, session, id, workspace_id, &cmd).await;
    }
    if link.state.token_hash != cmd.token_hash {
        return Err(ApiError::NotFound);
    }
    let app_id = link.state.app_id;
    let ids = meta.ids();
    let (ids_ref, cmd, link_stream) = (&ids, &cmd, &link_stream);
    let actor = session.actor();
    let actor = &actor;
    let executed = state
        .commands
        .execute::<Installation, _>(
            &installation_stream(app_id, workspace_id),
            &ids,
            move |installation| async move {
                // Fresh on every attempt: another install may have spent it.
                let link = state.commands.load::<Link>(link_stream).await?;
                let (app, _, _) = load_app(state, app_id).await?;
                let (workspace, _, _) = load_org(state, workspace_id).await?;
                let decided =
                    apps::install(&workspace, &app, &link.state, &installation.state, cmd)?;
                let metadata = meta.in_org(actor.clone(), workspace_id);
                let mut also = Vec::new();
                if !decided.link.is_empty() {
                    also.push(StreamAppend::new(
                        link_stream.clone(),
                        ExpectedVersion::Exact(link.version),
                        ids_ref.new_events(link_stream, &decided.link, &metadata),
                    ));
                }
                Ok(Plan {
                    events: decided.installation,
                    metadata,
                    also,
                })
            },
        )
        .await?;
    let version_id = executed.state().version_id.ok_or(ApiError::NotFound)?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position: executed.position,
        body: Some(InstallationView {
            app_id,
            workspace_id,
            version_id,
        }),
    })
}

/// An install through a link an earlier release kept in its app's stream
/// (the token carries the app's id).
async fn install_through_app_stream(
    state: &AppState,
    meta: &RequestMeta,
    session: &Session,
    app_id: Uuid,
    workspace_id: Uuid,
    cmd: &apps::Install,
) -> Result<Committed<InstallationView>, ApiError> {
    let (workspace, _, _) = load_org(state, workspace_id).await?;
    let (app, _, position) = execute(
        state,
        AppCommand {
            app: app_id,
            by: By::Anyone,
            if_match: None,
            actor: session.actor(),
        },
        meta,
        |_, app| apps::install_legacy(&workspace, app, cmd),
    )
    .await?;
    let version_id = *app.installs.get(&workspace_id).ok_or(ApiError::NotFound)?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position,
        body: Some(InstallationView {
            app_id,
            workspace_id,
            version_id,
        }),
    })
}

/// Uninstall an app from a workspace.
#[utoipa::path(delete, path = "/v1/orgs/{org}/installations/{app}", tag = "versions",
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn uninstall(
    State(state): State<AppState>,
    Path((org, app_id)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<()>, ApiError> {
    let (workspace, _, _) = load_org(&state, org).await?;
    workspace.role_of(session.user_id)?;
    let stream = installation_stream(app_id, org);
    let recorded = state.commands.load::<Installation>(&stream).await?;
    let user = session.user_id;
    let position = if recorded.state.recorded {
        let actor = session.actor();
        let (state, actor, meta_ref) = (&state, &actor, &meta);
        state
            .commands
            .execute::<Installation, _>(&stream, &meta.ids(), move |installation| async move {
                let (app, _, _) = load_app(state, app_id).await?;
                let (workspace, _, _) = load_org(state, org).await?;
                let events = match apps::uninstall(&workspace, &app, &installation.state, user)? {
                    apps::Uninstall::Installation(events) => events,
                    apps::Uninstall::Legacy(_) => {
                        return Err(ApiError::Internal(
                            "a recorded installation answered for the app's stream".into(),
                        ))
                    }
                };
                Ok(Plan::new(events, meta_ref.in_org(actor.clone(), org)))
            })
            .await?
            .position
    } else {
        // Only an install an earlier release kept in the app's stream.
        let (_, _, position) = execute(
            &state,
            AppCommand {
                app: app_id,
                by: By::Anyone,
                if_match: None,
                actor: session.actor(),
            },
            &meta,
            |_, app| match apps::uninstall(&workspace, app, &Installation::default(), user)? {
                apps::Uninstall::Legacy(events) => Ok(events),
                apps::Uninstall::Installation(_) => Ok(Vec::new()),
            },
        )
        .await?;
        position
    };
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}

/// The apps installed in a workspace.
#[utoipa::path(get, path = "/v1/orgs/{org}/installations", tag = "versions",
    params(("org" = Uuid, Path, description = "Organization id"), PageQuery),
    responses((status = 200, body = Page<InstallationView>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_installations(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    member: OrgMember,
    min: MinPosition,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<InstallationView>>, ApiError> {
    member.require(domain::roles::Permission::ViewApps)?;
    min.wait(&state, &["apps"]).await?;
    let client = state.read_models.client().await?;
    let rows = projections::apps::read::installations(&client, org, paging.keyset()).await?;
    Ok(Json(paging.page(rows, |i| InstallationView {
        app_id: i.app_id,
        workspace_id: org,
        version_id: i.version_id,
    })))
}

/// The JSON Schema app manifests are validated against.
#[utoipa::path(get, path = "/v1/schemas/app-manifest", tag = "versions",
    responses((status = 200, body = Object, content_type = "application/schema+json")))]
pub async fn manifest_schema() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/schema+json")],
        domain::manifest::SCHEMA,
    )
}
