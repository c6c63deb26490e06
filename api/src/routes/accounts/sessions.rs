//! Sessions: sign in (`POST /v1/sessions`) and sign out
//! (`DELETE /v1/sessions/current`).
//!
//! Sign-in reads the account from the log itself (the email's claim stream,
//! then the user's stream), so an account works the moment its sign-up is
//! acknowledged. It answers only once the session is in the read model, so
//! the token works on the very next request; sign-out likewise.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::{delete, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::accounts::{self, AccountError};
use event_schemas::user::{AccountEvent, SessionEnded, SessionStarted};
use event_schemas::{Actor, ExpectedVersion, NewEvent};
use event_store::EventStoreExt;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::command::{Committed, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{token_hash, ApiJson, Session};
use crate::state::AppState;
use crate::throttle::Verdict;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", post(sign_in))
        .route("/v1/sessions/current", delete(sign_out))
}

/// `POST /v1/sessions` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// A new session; the token is shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionCreated {
    /// Session id.
    pub session_id: Uuid,
    /// Bearer token for `Authorization: Bearer <token>`.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A hash checked when the email is unknown, so that timing does not
/// reveal whether an account exists.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    crate::routes::users::hash_password("not a password of any account").unwrap_or_default()
});

/// Sign in with email and password.
#[utoipa::path(post, path = "/v1/sessions", tag = "accounts",
    request_body = SignInRequest,
    responses(
        (status = 201, body = SessionCreated),
        (status = 401, description = "Wrong email or password (never says which)", body = Problem),
        (status = 429, description = "Too many failed sign-ins for this email; see Retry-After", body = Problem),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<SignInRequest>,
) -> Result<Committed<SessionCreated>, ApiError> {
    let normalised = domain::validate::email(&body.email);
    // Throttle by the email as typed when it is not an address at all, so
    // garbage cannot dodge the count.
    let throttle_key = state
        .vault
        .email_index(normalised.as_deref().unwrap_or(body.email.trim()));
    // Reserve the attempt before the password is checked, so parallel
    // guesses cannot all slip under the limit.
    match state.sign_in_throttle.reserve(&throttle_key) {
        Verdict::Refuse(retry) => {
            return Err(ApiError::TooManyRequests {
                retry_after: retry.as_secs().max(1),
            })
        }
        Verdict::Proceed(delay) if !delay.is_zero() => tokio::time::sleep(delay).await,
        Verdict::Proceed(_) => {}
    }
    let account = match &normalised {
        Some(email) => find_account(&state, &state.vault.email_index(email)).await?,
        None => None,
    };
    let (user_id, hash) = match account {
        Some((id, hash)) => (Some(id), hash),
        None => (None, DUMMY_HASH.clone()),
    };
    let password = body.password;
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    let user_id = match (user_id, ok) {
        (Some(id), true) => id,
        _ => return Err(AccountError::InvalidCredentials.into()),
    };
    state.sign_in_throttle.succeed(&throttle_key);

    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = format!("ghs_{}", B64URL.encode(raw));
    let session_id = Uuid::now_v7();
    let expires_at = accounts::session_expiry(crate::command::now(), state.session_ttl);
    let event = AccountEvent::SessionStarted(SessionStarted {
        session_id,
        user_id,
        token_hash: token_hash(&token),
        expires_at,
    });
    crate::audit::context::seal_for(&state, &Method::POST, meta.context.as_ref(), user_id).await?;
    let position = append_session_event(
        &state,
        session_id,
        ExpectedVersion::NoStream,
        &event,
        meta.metadata(Actor::user(user_id)),
    )
    .await?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position,
        body: Some(SessionCreated {
            session_id,
            token,
            expires_at,
        }),
    })
}

/// The user id and password hash of the account holding an email, read
/// from the log.
async fn find_account(
    state: &AppState,
    email_index: &str,
) -> Result<Option<(Uuid, String)>, ApiError> {
    let claim = state
        .store
        .read_stream(&format!("email-{email_index}"), 1, 1)
        .await?;
    let Some(claim) = claim.first() else {
        return Ok(None);
    };
    let Some(AccountEvent::EmailClaimed(c)) =
        AccountEvent::decode(claim).map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    // A user stream is short: its sign-up, and an erasure if any.
    let events = state
        .store
        .read_stream(&format!("user-{}", c.user_id), 1, 1000)
        .await?;
    let mut account = None;
    for e in &events {
        match AccountEvent::decode(e).map_err(ApiError::internal)? {
            Some(AccountEvent::UserSignedUp(u)) => account = Some((u.user_id, u.password_hash)),
            // An erased account can no longer sign in.
            Some(AccountEvent::PersonalDataErased(_)) => return Ok(None),
            _ => {}
        }
    }
    Ok(account)
}

fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc)
        .map(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Sign out: the token stops working at once.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "accounts",
    responses((status = 204, description = "Signed out"), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn sign_out(
    State(state): State<AppState>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<()>, ApiError> {
    let event = AccountEvent::SessionEnded(SessionEnded {
        session_id: session.session_id,
        reason: "signed_out".into(),
    });
    let position = append_session_event(
        &state,
        session.session_id,
        ExpectedVersion::Any,
        &event,
        meta.metadata(Actor::user(session.user_id)),
    )
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}

/// Appends a session event and waits until the sessions read model has it,
/// so the token's new state holds from the caller's very next request.
async fn append_session_event(
    state: &AppState,
    session_id: Uuid,
    expected: ExpectedVersion,
    event: &AccountEvent,
    metadata: event_schemas::Metadata,
) -> Result<u64, ApiError> {
    let appended = state
        .store
        .append(
            &format!("session-{session_id}"),
            expected,
            vec![NewEvent::from_domain(event, metadata)],
        )
        .await?;
    state
        .statuses
        .wait_for(&["accounts"], appended.last_position, state.read_wait)
        .await?;
    Ok(appended.last_position)
}
