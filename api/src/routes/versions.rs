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
use domain::apps::{self, App};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_postgres::types::Json as PgJson;
use utoipa::ToSchema;
use uuid::Uuid;

use super::apps::{app_org_for, by_member, execute, By};
use super::orgs::load as load_org;
use crate::command::{Committed, RequestMeta};
use crate::error::{ApiError, Problem, ProblemField};
use crate::extract::{ApiJson, MinPosition, Path, Session};
use crate::page::{self, Page, PageQuery, Paging};
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

    fn from_row(r: &tokio_postgres::Row) -> Self {
        let PgJson(manifest) = r.get("manifest");
        VersionView {
            id: r.get("version_id"),
            label: r.get("label"),
            state: r.get("state"),
            manifest,
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
    let (app, _, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::create_version(
            org,
            app,
            session.user_id,
            version_id,
            &body.label,
            manifest.clone(),
        )
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
    min: MinPosition,
    session: Session,
) -> Result<Json<VersionView>, ApiError> {
    min.wait(&state, &["orgs", "apps"]).await?;
    app_org_for(&state, app, session.user_id).await?;
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT version_id, label, state, manifest FROM rm.app_versions \
             WHERE app_id = $1 AND version_id = $2",
            &[&app, &version],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(VersionView::from_row(&row)))
}

/// The app's versions, oldest first (the Versions page).
#[utoipa::path(get, path = "/v1/apps/{app}/versions", tag = "versions",
    params(PageQuery),
    responses((status = 200, body = Page<VersionView>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_versions(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    min: MinPosition,
    session: Session,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<VersionView>>, ApiError> {
    min.wait(&state, &["orgs", "apps"]).await?;
    app_org_for(&state, app, session.user_id).await?;
    let client = state.pool.get().await?;
    let select = "SELECT version_id, label, state, manifest, created_at FROM rm.app_versions \
         WHERE app_id = $1";
    let key = ("created_at", "version_id");
    let page = page::fetch(
        &client,
        &paging,
        select,
        key,
        &[&app],
        VersionView::from_row,
    )
    .await?;
    Ok(Json(page))
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
#[derive(Debug, Serialize, ToSchema)]
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

const TOKEN_PREFIX: &str = "gil_";

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The app an install token belongs to, if it has the right shape.
fn token_app(token: &str) -> Option<Uuid> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (app, secret) = rest.split_once('_')?;
    (secret.len() >= 32).then_some(())?;
    Uuid::try_parse(app).ok()
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
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let token = format!("{TOKEN_PREFIX}{}_{}", app_id.simple(), B64.encode(secret));
    let hash = token_hash(&token);
    let link_id = meta.ids().entity("install_link");
    let now = crate::command::now();
    let expires_at = now + Duration::hours(body.expires_in_hours.clamp(-1, 100_000));
    let (_, _, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::create_install_link(
            org,
            app,
            session.user_id,
            link_id,
            version_id,
            hash.clone(),
            body.single_use,
            expires_at,
            now,
        )
    })
    .await?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position,
        body: Some(InstallLinkView {
            id: link_id,
            version_id,
            token,
            single_use: body.single_use,
            expires_at,
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallWithTokenRequest {
    /// The install link's token (`gil_...`).
    pub token: String,
    /// The caller's workspace (organisation) to install into.
    pub workspace_id: Uuid,
}

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
    let app_id = token_app(token).ok_or(ApiError::NotFound)?;
    let hash = token_hash(token);
    let (workspace, _, _) = load_org(state, workspace_id).await?;
    let now = crate::command::now();
    let (app, _, position) = execute(
        state,
        app_id,
        By::Anyone,
        None,
        meta,
        session.actor(),
        |_, app| apps::install(&workspace, app, session.user_id, &hash, now),
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
    let (_, _, position) = execute(
        &state,
        app_id,
        By::Anyone,
        None,
        &meta,
        session.actor(),
        |_, app| apps::uninstall(&workspace, app, session.user_id),
    )
    .await?;
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
    min: MinPosition,
    session: Session,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<InstallationView>>, ApiError> {
    min.wait(&state, &["orgs", "apps"]).await?;
    super::orgs::authorize_read(
        &state,
        org,
        session.user_id,
        domain::roles::Permission::ViewApps,
    )
    .await?;
    let client = state.pool.get().await?;
    let select = "SELECT app_id, version_id, installed_at FROM rm.installations WHERE org_id = $1";
    let key = ("installed_at", "app_id");
    let page = page::fetch(&client, &paging, select, key, &[&org], |r| {
        InstallationView {
            app_id: r.get(0),
            workspace_id: org,
            version_id: r.get(1),
        }
    })
    .await?;
    Ok(Json(page))
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
