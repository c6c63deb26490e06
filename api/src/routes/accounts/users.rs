//! Users: sign-up (`POST /v1/users`) and the signed-in user's own view
//! (`GET /v1/me`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use domain::accounts::{self, AccountError, SignUp};
use event_schemas::user::{AccountEvent, EmailClaimed, UserSignedUp};
use event_schemas::{Actor, ExpectedVersion};
use event_store::{AppendError, StreamAppend};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::command::{Committed, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, Session};
use crate::idempotency::SealResponseFor;
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users", post(sign_up))
        .route("/v1/me", get(me))
        .route(
            "/v1/users/{id}/personal-data",
            axum::routing::delete(super::erasure::erase_personal_data),
        )
}

/// `POST /v1/users` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    /// Email address; the sign-in name.
    pub email: String,
    /// Display name.
    pub name: String,
    /// At least 10 characters.
    pub password: String,
}

/// A user as shown to themselves.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// User id.
    pub id: Uuid,
    /// Email (`[erased]` after personal-data erasure).
    pub email: String,
    /// Display name (`[erased]` after personal-data erasure).
    pub name: String,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// What the portal shows a signed-in user.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    /// The user.
    pub user: UserView,
    /// Organisation memberships, each with its own next step.
    pub memberships: Vec<MembershipView>,
    /// Where the user stands and the exact next step.
    pub access: AccessView,
}

/// One membership as `/v1/me` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipView {
    /// Organisation id.
    pub org_id: Uuid,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// The user's role there.
    pub role: String,
    /// The accepted developer terms version, if any.
    pub terms_version: Option<String>,
    /// The organisation's next step on its way to production.
    pub next_step: String,
}

/// Access state and the exact next step.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessView {
    /// The state, e.g. `waiting_for_organization`.
    pub state: &'static str,
    /// The next step's stable name, e.g. `attach_to_organization`.
    pub next_step: String,
    /// How to take it.
    pub how: &'static str,
}

/// Create an account.
#[utoipa::path(post, path = "/v1/users", tag = "accounts",
    request_body = SignUpRequest,
    responses(
        (status = 201, description = "Account created", body = UserView,
         headers(("gatehouse-position" = u64, description = "Log position of the sign-up"))),
        (status = 409, description = "Email already registered", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
    ))]
pub async fn sign_up(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<SignUpRequest>,
) -> Result<(Extension<SealResponseFor>, Committed<UserView>), ApiError> {
    let valid = accounts::sign_up(&SignUp {
        email: body.email,
        name: body.name,
        password: body.password.clone(),
    })?;
    let email_index = state.vault.email_index(&valid.email);
    let password = body.password;
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)??;

    let ids = meta.ids();
    let user_id = ids.entity("user");
    let client = state.pool.get().await?;
    let key = state
        .vault
        .ensure_subject_key(&client, user_id)
        .await
        .map_err(ApiError::internal)?;
    drop(client);
    crate::audit::context::seal_for(
        &state,
        &axum::http::Method::POST,
        meta.context.as_ref(),
        user_id,
    )
    .await?;
    let signed_up = AccountEvent::UserSignedUp(UserSignedUp {
        user_id,
        email_index: email_index.clone(),
        email: key.seal(&valid.email),
        name: key.seal(&valid.name),
        password_hash,
    });
    let claimed = AccountEvent::EmailClaimed(EmailClaimed { user_id });
    let metadata = meta.metadata(Actor::user(user_id));
    let (user_stream, email_stream) = (format!("user-{user_id}"), format!("email-{email_index}"));
    let user_events = ids.new_events(&user_stream, &[signed_up], &metadata);
    let first_id = user_events[0].event_id;
    let appended = state
        .store
        .append_all(vec![
            StreamAppend::new(user_stream, ExpectedVersion::NoStream, user_events),
            StreamAppend::new(
                email_stream.clone(),
                ExpectedVersion::NoStream,
                ids.new_events(&email_stream, &[claimed], &metadata),
            ),
        ])
        .await
        .map_err(|e| match e {
            AppendError::Conflict { .. } => ApiError::from(AccountError::EmailTaken),
            other => other.into(),
        })?;
    // The time the log recorded, not this handler's clock.
    let created_at = state
        .store
        .event_by_id(first_id)
        .await?
        .ok_or_else(|| ApiError::Internal("an appended event is not in the log".into()))?
        .recorded_at;
    // The answer holds the email and name in plaintext: a stored copy for
    // Idempotency-Key replays is sealed under the user's own key, so
    // erasing the user erases it too.
    let seal = Extension(SealResponseFor(user_id));
    Ok((
        seal,
        Committed {
            status: StatusCode::CREATED,
            position: appended.last_position,
            body: Some(UserView {
                id: user_id,
                email: valid.email,
                name: valid.name,
                created_at,
            }),
        },
    ))
}

/// argon2id with the crate's default (OWASP-recommended) parameters.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}").into()))
}

/// The signed-in user, memberships, and access state with the next step.
#[utoipa::path(get, path = "/v1/me", tag = "accounts",
    params(("gatehouse-min-position" = Option<u64>, Header, description = "Wait until read models reach this position")),
    responses(
        (status = 200, body = MeView),
        (status = 401, body = Problem),
        (status = 503, description = "Read model behind the requested position", body = Problem),
    ),
    security(("bearer" = [])))]
pub async fn me(
    State(state): State<AppState>,
    min: MinPosition,
    session: Session,
) -> Result<Json<MeView>, ApiError> {
    min.wait(&state, &["accounts", "orgs"]).await?;
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT email_sealed, name_sealed, created_at FROM rm.users WHERE user_id = $1",
            &[&session.user_id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let key = state
        .vault
        .subject_key(&client, session.user_id)
        .await
        .map_err(ApiError::internal)?;
    let open = |sealed: String| {
        key.as_ref()
            .and_then(|k| k.open(&sealed).ok())
            .unwrap_or_else(|| "[erased]".to_owned())
    };
    let memberships: Vec<MembershipView> = client
        .query(
            "SELECT o.org_id, o.slug, o.name, m.role, o.terms_version, o.next_step \
             FROM rm.members m JOIN rm.orgs o USING (org_id) \
             WHERE m.user_id = $1 ORDER BY m.joined_at, o.org_id",
            &[&session.user_id],
        )
        .await?
        .iter()
        .map(|r| MembershipView {
            org_id: r.get(0),
            slug: r.get(1),
            name: r.get(2),
            role: r.get(3),
            terms_version: r.get(4),
            next_step: r.get(5),
        })
        .collect();
    let access = match memberships.first() {
        None => AccessView {
            state: "waiting_for_organization",
            next_step: "attach_to_organization".into(),
            how: "create an organization with POST /v1/orgs, or accept an invitation with POST /v1/invitations/{id}/accept",
        },
        Some(m) => {
            let (state, how) = match m.next_step.as_str() {
                "accept_developer_terms" => ("public_docs_only", "an owner or manager accepts the developer terms: POST /v1/orgs/{org}/developer-terms/accept"),
                "request_sandbox" => ("terms_accepted", "request sandbox access: POST /v1/orgs/{org}/sandbox-access"),
                "await_sandbox_grant" => ("sandbox_requested", "platform staff review the sandbox request"),
                "issue_first_key" => ("sandbox", "issue a test key for an app: POST /v1/apps/{app}/keys"),
                "review_usage" => ("sandbox", "make a call with the key, then review usage: GET /v1/orgs/{org}/usage"),
                "request_production" => ("sandbox", "request production access: POST /v1/orgs/{org}/production-access"),
                "production_granted" => ("production", "production access is granted"),
                _ => ("production_review", "platform staff complete this review step"),
            };
            AccessView {
                state,
                next_step: m.next_step.clone(),
                how,
            }
        }
    };
    Ok(Json(MeView {
        user: UserView {
            id: session.user_id,
            email: open(row.get(0)),
            name: open(row.get(1)),
            created_at: row.get(2),
        },
        memberships,
        access,
    }))
}
