//! Sessions: sign in (`POST /v1/sessions`), sign out
//! (`DELETE /v1/sessions/current`) and sign out everywhere
//! (`DELETE /v1/sessions`).
//!
//! Sign-in reads the account from the log itself (the address's stream,
//! then the account's), so an account works the moment its sign-up is
//! acknowledged, and its hash from `credentials`. It answers only once the
//! session is in the read model, so the token works on the very next
//! request; sign-out likewise.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::accounts::{self, AccountError};
use event_schemas::user::{AccountEvent, SessionEnded, SessionStarted, SessionsRevoked};
use event_schemas::{Actor, ExpectedVersion, NewEvent};
use event_store::EventStoreExt;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::directory;
use crate::accounts::hashing::DUMMY_HASH;
use crate::command::{Committed, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{token_hash, ApiJson, Session};
use crate::state::AppState;

/// How a session token starts. Its own (GitHub's `ghs_` was used before:
/// a session token pasted in public would have been reported to GitHub as
/// theirs); those earlier tokens stay valid until they expire.
pub const SESSION_PREFIX: &str = "gsess_";

/// `POST /v1/sessions` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

crate::redacted_debug!(SignInRequest);

/// A new session; the token is shown once.
#[derive(Serialize, ToSchema)]
pub struct SessionCreated {
    /// Session id.
    pub session_id: Uuid,
    /// Bearer token for `Authorization: Bearer <token>`.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

crate::redacted_debug!(SessionCreated);

/// Sign in with email and password.
#[utoipa::path(post, path = "/v1/sessions", tag = "accounts",
    request_body = SignInRequest,
    responses(
        (status = 201, body = SessionCreated),
        (status = 401, description = "Wrong email or password (never says which)", body = Problem),
        (status = 429, description = "Too many failed sign-ins from this client address; see Retry-After", body = Problem),
        (status = 503, description = "Busy checking passwords; see Retry-After", body = Problem),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<SignInRequest>,
) -> Result<Committed<SessionCreated>, ApiError> {
    let normalised = domain::validate::email(&body.email);
    // Throttle by the email as typed when it is not an address at all, so
    // garbage cannot dodge the count.
    let account_key = state
        .vault
        .email_index(normalised.as_deref().unwrap_or(body.email.trim()));
    let ip = meta.client_ip();
    // Reserve the attempt before the password is checked, so parallel
    // guesses cannot all slip under the limit.
    state.sign_in_throttle.admit(&ip, &account_key).await?;
    let candidates = match &normalised {
        Some(_) => directory::sign_in_candidates(&*state.store, &account_key).await?,
        None => Vec::new(),
    };
    let mut hashes = Vec::with_capacity(candidates.len());
    if !candidates.is_empty() {
        let client = state.pool.get().await?;
        for (id, account) in &candidates {
            if let Some(hash) = directory::password_hash(&client, *id).await? {
                hashes.push((*id, account.version, hash));
            }
        }
    }
    // Without an account the dummy hash is checked, so the time taken does
    // not tell whether one exists.
    let checks: Vec<(Option<(Uuid, u64)>, String)> = if hashes.is_empty() {
        vec![(None, DUMMY_HASH.clone())]
    } else {
        hashes
            .into_iter()
            .map(|(id, version, hash)| (Some((id, version)), hash))
            .collect()
    };
    let mut matched = None;
    for (account, hash) in checks {
        match state.hasher.verify(body.password.clone(), hash).await {
            Ok(true) => {
                matched = account;
                break;
            }
            Ok(false) => {}
            Err(e) => {
                state.sign_in_throttle.unreserve(&ip, &account_key);
                return Err(e);
            }
        }
    }
    let Some((user_id, checked_at)) = matched else {
        return Err(AccountError::InvalidCredentials.into());
    };
    state.sign_in_throttle.succeed(&ip, &account_key);

    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = format!("{SESSION_PREFIX}{}", B64URL.encode(raw));
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
    // The account may have changed between its check and this session: a
    // password reset, a revocation, a lost address or an erasure recorded
    // meanwhile ended every session but could not end this one, which did
    // not exist yet. End it now rather than hand out a token that
    // outlived what should have stopped it.
    let since = state
        .store
        .read_stream(&directory::user_stream(user_id), checked_at + 1, 1000)
        .await?;
    let revoked = since.iter().any(|e| {
        matches!(
            AccountEvent::decode(e),
            Ok(Some(
                AccountEvent::SessionsRevoked(_)
                    | AccountEvent::PasswordChanged(_)
                    | AccountEvent::UserEmailReleased(_)
                    | AccountEvent::PersonalDataErased(_)
            ))
        )
    });
    if revoked {
        end_session(&state, &meta, session_id, user_id, "revoked").await?;
        return Err(AccountError::InvalidCredentials.into());
    }
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

/// Sign out: the token stops working at once.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "accounts",
    responses((status = 204, description = "Signed out"), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn sign_out(
    State(state): State<AppState>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<()>, ApiError> {
    let position = end_session(
        &state,
        &meta,
        session.session_id,
        session.user_id,
        "signed_out",
    )
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}

/// Sign out everywhere: every session of the caller ends at once, this one
/// too.
#[utoipa::path(delete, path = "/v1/sessions", tag = "accounts",
    responses((status = 204, description = "Every session ended"), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<()>, ApiError> {
    let position = revoke_sessions(
        &state,
        &meta,
        session.user_id,
        "signed_out_everywhere",
        None,
        Vec::new(),
    )
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}

/// Ends every session of `user` but `except`, with `also` (events on the
/// user's stream recorded with it, such as a password change), and waits
/// until the sessions read model has it.
pub async fn revoke_sessions(
    state: &AppState,
    meta: &RequestMeta,
    user: Uuid,
    reason: &str,
    except: Option<Uuid>,
    also: Vec<AccountEvent>,
) -> Result<u64, ApiError> {
    let mut events = also;
    events.push(AccountEvent::SessionsRevoked(SessionsRevoked {
        user_id: user,
        reason: reason.to_owned(),
        except,
    }));
    let stream = directory::user_stream(user);
    let new = meta
        .ids()
        .new_events(&stream, &events, &meta.metadata(Actor::user(user)));
    let appended = state
        .store
        .append(&stream, ExpectedVersion::Any, new)
        .await?;
    state
        .statuses
        .wait_for(&["accounts"], appended.last_position, state.read_wait)
        .await?;
    Ok(appended.last_position)
}

/// Ends one session of `user` (`session.ended` with `reason`); returns the
/// position once the sessions read model has it.
async fn end_session(
    state: &AppState,
    meta: &RequestMeta,
    session_id: Uuid,
    user: Uuid,
    reason: &str,
) -> Result<u64, ApiError> {
    let ended = AccountEvent::SessionEnded(SessionEnded {
        session_id,
        reason: reason.to_owned(),
    });
    append_session_event(
        state,
        session_id,
        ExpectedVersion::Any,
        &ended,
        meta.metadata(Actor::user(user)),
    )
    .await
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
