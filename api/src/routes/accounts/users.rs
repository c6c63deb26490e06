//! Users: sign-up (`POST /v1/users`) and the signed-in user's own view
//! (`GET /v1/me`).
//!
//! Sign-up answers the same whether or not an account holds the address:
//! a new address gets an account and a verification mail; an address an
//! account proved gets no account, and its holder a mail saying someone
//! tried. Nobody learns from the answer which addresses have accounts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use domain::accounts::{self, SignUp};
use event_schemas::user::{AccountEvent, EmailRegistered, UserSignedUp};
use event_schemas::{Actor, ExpectedVersion};
use event_store::{AppendError, StreamAppend};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::directory::{self, address_stream, user_stream};
use crate::accounts::tokens::{self, Purpose};
use crate::command::{Committed, RequestMeta, ATTEMPTS};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, Session};
use crate::idempotency::SealResponseFor;
use crate::mail::Letter;
use crate::state::AppState;

/// How long a verification link works.
pub const VERIFY_HOURS: i64 = 24;

/// `POST /v1/users` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    /// Email address; the sign-in name.
    pub email: String,
    /// Display name.
    pub name: String,
    /// At least 10 characters.
    pub password: String,
}

crate::redacted_debug!(SignUpRequest);

/// A user as shown to themselves.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// User id.
    pub id: Uuid,
    /// Email (`[erased]` after personal-data erasure).
    pub email: String,
    /// Whether the address is proven (a mailed link was opened). Until it
    /// is, the account cannot accept invitations by address nor become
    /// staff, and anyone proving the address takes it.
    pub email_verified: bool,
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
    /// The next step's stable name, e.g. `verify_email`,
    /// `attach_to_organization`.
    pub next_step: String,
    /// How to take it.
    pub how: &'static str,
}

/// Create an account. The answer is the same whether or not an account
/// already holds the address (then no account is made and its holder is
/// told by mail).
#[utoipa::path(post, path = "/v1/users", tag = "accounts",
    request_body = SignUpRequest,
    responses(
        (status = 201, description = "Account created; a verification link is mailed", body = UserView,
         headers(("gatehouse-position" = u64, description = "Log position of the sign-up"))),
        (status = 422, description = "Invalid fields", body = Problem),
        (status = 429, description = "Too many sign-ups from this client address; see Retry-After", body = Problem),
        (status = 503, description = "Busy hashing passwords; see Retry-After", body = Problem),
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
    let ip = meta.client_ip();
    state
        .sign_up_rate
        .reserve(&ip)
        .map_err(|retry| ApiError::TooManyRequests {
            retry_after: retry.as_secs().max(1),
        })?;
    let email_index = state.vault.email_index(&valid.email);
    // Hashed whether or not an account is made, so the time taken does not
    // tell either.
    let password_hash = state.hasher.hash(body.password).await?;

    let ids = meta.ids();
    let user_id = ids.entity("user");
    let client = state.pool.get().await?;
    let key = state
        .vault
        .ensure_subject_key(&client, user_id)
        .await
        .map_err(ApiError::internal)?;
    crate::audit::context::seal_for(
        &state,
        &axum::http::Method::POST,
        meta.context.as_ref(),
        user_id,
    )
    .await?;
    let metadata = meta.metadata(Actor::user(user_id));
    let (users, emails) = (user_stream(user_id), address_stream(&email_index));
    let signed_up = AccountEvent::UserSignedUp(UserSignedUp {
        user_id,
        email_index: email_index.clone(),
        email: key.seal(&valid.email),
        name: key.seal(&valid.name),
    });
    let registered = AccountEvent::EmailRegistered(EmailRegistered { user_id });
    let user_events = ids.new_events(&users, &[signed_up], &metadata);
    let email_events = ids.new_events(&emails, &[registered], &metadata);
    let first_id = user_events[0].event_id;
    let mut appended = None;
    let mut held = false;
    for _ in 0..ATTEMPTS {
        let address = directory::address(&*state.store, &email_index).await?;
        if !address.open_for_sign_up() {
            held = true;
            break;
        }
        directory::set_password_hash(&client, user_id, &password_hash).await?;
        let expected = match address.version {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v),
        };
        let outcome = state
            .store
            .append_all(vec![
                StreamAppend::new(
                    users.clone(),
                    ExpectedVersion::NoStream,
                    user_events.clone(),
                ),
                StreamAppend::new(emails.clone(), expected, email_events.clone()),
            ])
            .await;
        match outcome {
            Ok(done) => {
                appended = Some(done);
                break;
            }
            // Another sign-up or a proof of the address came first: look
            // again.
            Err(AppendError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let seal = Extension(SealResponseFor(user_id));
    let Some(appended) = appended else {
        if !held {
            return Err(ApiError::Conflict {
                code: "concurrent-modification",
                detail: "the address kept changing during the sign-up; retry".into(),
            });
        }
        let letter = Letter::account_exists(
            &valid.email,
            &state.link("/sign-in"),
            &state.link("/reset-password"),
        );
        crate::mail::outbox::post(&state, &client, "account_exists", &email_index, &letter).await?;
        return Ok((
            seal,
            Committed {
                status: StatusCode::CREATED,
                position: state.store.head().await?,
                body: Some(UserView {
                    id: user_id,
                    email: valid.email,
                    email_verified: false,
                    name: valid.name,
                    created_at: crate::command::now(),
                }),
            },
        ));
    };
    send_verification(
        &state,
        &client,
        user_id,
        &email_index,
        &valid.email,
        &valid.name,
    )
    .await?;
    // The time the log recorded, not this handler's clock.
    let created_at = state
        .store
        .event_by_id(first_id)
        .await?
        .map_or_else(crate::command::now, |e| e.recorded_at);
    // The answer holds the email and name in plaintext: a stored copy for
    // Idempotency-Key replays is sealed under the user's own key, so
    // erasing the user erases it too.
    Ok((
        seal,
        Committed {
            status: StatusCode::CREATED,
            position: appended.last_position,
            body: Some(UserView {
                id: user_id,
                email: valid.email,
                email_verified: false,
                name: valid.name,
                created_at,
            }),
        },
    ))
}

/// The caller's own account as the accounts read model has it (404 when
/// it has none).
pub(super) async fn own_row(
    client: &impl deadpool_postgres::GenericClient,
    user: Uuid,
) -> Result<projections::accounts::read::UserRow, ApiError> {
    projections::accounts::read::user(client, user)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Issues a verification token for `user`'s address (voiding older ones)
/// and mails its link.
pub async fn send_verification(
    state: &AppState,
    client: &impl deadpool_postgres::GenericClient,
    user: Uuid,
    email_index: &str,
    email: &str,
    name: &str,
) -> Result<(), ApiError> {
    // Past the address's share of mail, the links already sent stay good.
    if !crate::mail::outbox::allowance(state, "verify_email", email_index) {
        return Ok(());
    }
    tokens::void(client, Purpose::VerifyEmail, user).await?;
    let expires = crate::command::now() + chrono::Duration::hours(VERIFY_HOURS);
    let token = tokens::issue(client, Purpose::VerifyEmail, user, email_index, expires).await?;
    let link = state.link(&format!("/verify-email?token={}", token.reveal()));
    let letter = Letter::verify_email(email, name, &link, VERIFY_HOURS);
    crate::mail::outbox::send(state, client, "verify_email", email_index, &letter).await
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
    let client = state.read_models.client().await?;
    let row = own_row(&client, session.user_id).await?;
    let key = state
        .vault
        .subject_key(&client, session.user_id)
        .await
        .map_err(ApiError::internal)?;
    let open = |sealed: String| crate::vault::reveal(key.as_ref(), &sealed);
    let memberships: Vec<MembershipView> =
        projections::orgs::read::memberships(&client, session.user_id)
            .await?
            .into_iter()
            .map(|m| MembershipView {
                org_id: m.org_id,
                slug: m.slug,
                name: m.name,
                role: m.role,
                terms_version: m.terms_version,
                next_step: m.next_step,
            })
            .collect();
    let email_verified = row.email_verified;
    let access = match memberships.first() {
        _ if !email_verified => AccessView {
            state: if memberships.is_empty() {
                "waiting_for_organization"
            } else {
                "email_unverified"
            },
            next_step: "verify_email".into(),
            how: "open the link mailed to your address (or POST /v1/email-verifications with its \
                  token); mail a new one with POST /v1/me/email-verification",
        },
        None => AccessView {
            state: "waiting_for_organization",
            next_step: "attach_to_organization".into(),
            how: "create an organization with POST /v1/orgs, or accept an invitation with the \
                  link mailed to you (POST /v1/invitations/accept)",
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
            email: open(row.email_sealed)?,
            email_verified,
            name: open(row.name_sealed)?,
            created_at: row.created_at,
        },
        memberships,
        access,
    }))
}
