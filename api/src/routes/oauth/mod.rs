//! OAuth client credentials (RFC 6749 §4.4): an app's clients (the id,
//! a secret shown once, rotation with an overlap, revocation), the token
//! endpoint answering short-lived RFC 9068 JWTs signed with Ed25519, and
//! the signing keys published as a JWKS, rotated with an overlap by staff.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::apps::Mode;
use domain::keys::format;
use domain::oauth::{self, OAuthClient};
use event_schemas::oauth::oauth_client_stream;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::apps::wire;
use super::keys::app_and_org;
use crate::authorize::AppReader;
use crate::command::{Committed, Plan, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, OptionalJson, Path, Session};
use crate::page::{Page, PageQuery, Paging, TimeKey};
use crate::state::AppState;

mod token;

pub use token::*;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/apps/{app}/oauth-clients",
            post(create_client).get(list_clients),
        )
        .route(
            "/v1/oauth-clients/{client}/rotate-secret",
            post(rotate_client_secret),
        )
        .route("/v1/oauth-clients/{client}/revoke", post(revoke_client))
        .route("/v1/oauth/token", post(token))
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/v1/staff/oauth/signing-keys/rotate",
            post(rotate_signing_key),
        )
}

/// `POST /v1/apps/{app}/oauth-clients` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// `live` or `test`.
    pub mode: String,
    /// Scopes its tokens may carry, among the app's approved ones in that
    /// mode (none: all of those).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A client with its secret, shown in this answer only.
#[derive(Serialize, ToSchema)]
pub struct ClientCreated {
    /// The client id.
    pub client_id: Uuid,
    /// The secret. Shown once: Gatehouse keeps only its SHA-256.
    pub client_secret: String,
    /// Name.
    pub name: String,
    /// `live` or `test`.
    pub mode: String,
    /// Scopes its tokens may carry.
    pub scopes: Vec<String>,
    /// When the previous secret stops working (a rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_stops_at: Option<DateTime<Utc>>,
}

crate::redacted_debug!(ClientCreated);

impl ClientCreated {
    fn of(c: &OAuthClient, secret: String) -> Self {
        ClientCreated {
            client_id: c.id,
            client_secret: secret,
            name: c.name.clone(),
            mode: c.mode.map(Mode::as_str).unwrap_or_default().into(),
            scopes: c.scopes.clone(),
            previous_secret_stops_at: c.previous.as_ref().map(|p| p.1),
        }
    }
}

/// Create an OAuth client for an app (client credentials grant).
#[utoipa::path(post, path = "/v1/apps/{app}/oauth-clients", tag = "oauth",
    params(("app" = Uuid, Path, description = "App id")),
    request_body = CreateClientRequest,
    responses((status = 201, body = ClientCreated), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_client(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<CreateClientRequest>,
) -> Result<Committed<ClientCreated>, ApiError> {
    let mode = wire(&body.mode, "/mode", Mode::parse, "live or test")?;
    let ids = meta.ids();
    let client_id = ids.entity("oauth_client");
    let secret = format::mint_tagged(state.index.prefix(), "cs", &ids.secret("oauth_client"));
    let cmd = oauth::CreateOAuthClient {
        client_id,
        name: body.name.trim().to_owned(),
        mode,
        scopes: body.scopes,
        secret_hash: format::hash_hex(&secret.hash),
    };
    let (state_ref, cmd, meta_ref) = (&state, &cmd, &meta);
    let executed = state
        .commands
        .execute::<OAuthClient, _>(
            &oauth_client_stream(client_id),
            &ids,
            move |loaded| async move {
                let (app, org) = app_and_org(state_ref, app_id, session.user_id).await?;
                let metadata = meta_ref.in_org(session.actor(), app.org_id);
                if loaded.exists {
                    return Ok(Plan::new(Vec::new(), metadata));
                }
                Ok(Plan::new(
                    oauth::create(&org, &app, session.user_id, cmd.clone())?,
                    metadata,
                ))
            },
        )
        .await?;
    state.verifiable(executed.position).await;
    Ok(Committed {
        status: StatusCode::CREATED,
        position: executed.position,
        body: Some(ClientCreated::of(executed.state(), secret.plaintext)),
    })
}

/// A row of an app's OAuth clients.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    /// The client id.
    pub client_id: Uuid,
    /// Name.
    pub name: String,
    /// `live` or `test`.
    pub mode: String,
    /// Scopes its tokens may carry.
    pub scopes: Vec<String>,
    /// `active` or `revoked`.
    pub status: String,
    /// When the secret was last rotated.
    pub secret_rotated_at: Option<DateTime<Utc>>,
    /// When the previous secret stops (stopped) working.
    pub previous_secret_stops_at: Option<DateTime<Utc>>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An app's OAuth clients, oldest first (never their secrets).
#[utoipa::path(get, path = "/v1/apps/{app}/oauth-clients", tag = "oauth",
    params(("app" = Uuid, Path, description = "App id"), PageQuery),
    responses((status = 200, body = Page<ClientView>), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_clients(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    min: MinPosition,
    _reader: AppReader,
    paging: Paging<TimeKey>,
) -> Result<Json<Page<ClientView>>, ApiError> {
    min.wait(&state, &["keys"]).await?;
    let client = state.read_models.client().await?;
    let rows = projections::keys::read::app_clients(&client, app, paging.keyset()).await?;
    Ok(Json(paging.page(rows, |c| ClientView {
        client_id: c.client_id,
        name: c.name,
        mode: c.mode,
        scopes: c.scopes,
        status: if c.revoked { "revoked" } else { "active" }.into(),
        secret_rotated_at: c.secret_rotated_at,
        previous_secret_stops_at: c.previous_secret_stops_at,
        created_by: c.created_by,
        created_at: c.created_at,
    })))
}

/// `POST /v1/oauth-clients/{client}/rotate-secret` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateClientSecretRequest {
    /// How long the previous secret keeps working, in seconds (default
    /// 86400; 0: it stops now; at most 30 days).
    #[schema(minimum = 0, maximum = 2_592_000)]
    pub grace_period_secs: Option<u64>,
}

async fn load_client(state: &AppState, client_id: Uuid) -> Result<Uuid, ApiError> {
    let client = state
        .commands
        .load::<OAuthClient>(&oauth_client_stream(client_id))
        .await?;
    if !client.exists {
        return Err(ApiError::NotFound);
    }
    Ok(client.app_id)
}

/// A new client secret (answered once); the previous one keeps working
/// for the grace period.
#[utoipa::path(post, path = "/v1/oauth-clients/{client}/rotate-secret", tag = "oauth",
    params(("client" = Uuid, Path, description = "Client id")),
    request_body(content = Option<RotateClientSecretRequest>),
    responses((status = 200, body = ClientCreated), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn rotate_client_secret(
    State(state): State<AppState>,
    Path(client_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    OptionalJson(body): OptionalJson<RotateClientSecretRequest>,
) -> Result<Committed<ClientCreated>, ApiError> {
    let grace = body.unwrap_or_default().grace_period_secs.unwrap_or(86_400);
    if grace > domain::keys::max_grace().num_seconds() as u64 {
        return Err(domain::Invalid(vec![domain::FieldError {
            pointer: "/grace_period_secs".into(),
            detail: "the overlap may last at most 30 days (2592000 s)".into(),
        }])
        .into());
    }
    let app_id = load_client(&state, client_id).await?;
    let ids = meta.ids();
    let secret = format::mint_tagged(state.index.prefix(), "cs", &ids.secret("oauth_client"));
    let now = crate::command::now();
    let stops = now + chrono::Duration::seconds(grace as i64);
    let hash = format::hash_hex(&secret.hash);
    let (state_ref, meta_ref, hash) = (&state, &meta, &hash);
    let executed = state
        .commands
        .execute::<OAuthClient, _>(
            &oauth_client_stream(client_id),
            &ids,
            move |loaded| async move {
                let (app, org) = app_and_org(state_ref, app_id, session.user_id).await?;
                let events = oauth::rotate_secret(
                    &org,
                    &app,
                    &loaded,
                    session.user_id,
                    hash.clone(),
                    stops,
                    now,
                )?;
                Ok(Plan::new(
                    events,
                    meta_ref.in_org(session.actor(), app.org_id),
                ))
            },
        )
        .await?;
    state.verifiable(executed.position).await;
    Ok(Committed {
        status: StatusCode::OK,
        position: executed.position,
        body: Some(ClientCreated::of(executed.state(), secret.plaintext)),
    })
}

/// What a client revocation answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientRevoked {
    /// The client id.
    pub client_id: Uuid,
    /// `revoked`.
    pub status: String,
}

/// Revoke an OAuth client, irreversibly: its secrets stop working and its
/// tokens stop verifying.
#[utoipa::path(post, path = "/v1/oauth-clients/{client}/revoke", tag = "oauth",
    params(("client" = Uuid, Path, description = "Client id")),
    responses((status = 200, body = ClientRevoked), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn revoke_client(
    State(state): State<AppState>,
    Path(client_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<ClientRevoked>, ApiError> {
    let app_id = load_client(&state, client_id).await?;
    let (state_ref, meta_ref) = (&state, &meta);
    let executed = state
        .commands
        .execute::<OAuthClient, _>(
            &oauth_client_stream(client_id),
            &meta.ids(),
            move |loaded| async move {
                let (app, org) = app_and_org(state_ref, app_id, session.user_id).await?;
                let events = oauth::revoke(&org, &app, &loaded, session.user_id)?;
                Ok(Plan::new(
                    events,
                    meta_ref.in_org(session.actor(), app.org_id),
                ))
            },
        )
        .await?;
    let c = executed.state();
    state.verifiable(executed.position).await;
    Ok(Committed {
        status: StatusCode::OK,
        position: executed.position,
        body: Some(ClientRevoked {
            client_id: c.id,
            status: if c.revoked { "revoked" } else { "active" }.into(),
        }),
    })
}
