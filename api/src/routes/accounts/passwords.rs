//! Passwords: change with the current one (`POST /v1/me/password`; other
//! sessions end), or reset by a mailed link (`POST /v1/password-resets`,
//! then `POST /v1/password-resets/confirm`; every session ends). The hash
//! lives in `credentials`; the log records only that it changed.

use axum::extract::State;
use axum::http::StatusCode;
use domain::accounts;
use event_schemas::user::{AccountEvent, PasswordChanged};
use serde::Deserialize;
use utoipa::ToSchema;

use super::sessions::revoke_sessions;
use super::verification::dead_link;
use crate::accounts::directory;
use crate::accounts::tokens::{self, Purpose};
use crate::command::{Committed, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, Session};
use crate::mail::Letter;
use crate::state::AppState;

/// How long a reset link works.
pub const RESET_MINUTES: i64 = 30;

/// `POST /v1/me/password` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The password now.
    pub current_password: String,
    /// The new one: at least 10 characters.
    pub new_password: String,
}

crate::redacted_debug!(ChangePassword);

/// `POST /v1/password-resets` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The account's address.
    pub email: String,
}

/// `POST /v1/password-resets/confirm` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmReset {
    /// The `token` parameter of the mailed link.
    pub token: String,
    /// The new password: at least 10 characters.
    pub new_password: String,
}

crate::redacted_debug!(ConfirmReset);

/// Change the password; every other session of the account ends.
#[utoipa::path(post, path = "/v1/me/password", tag = "accounts",
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed; other sessions ended"),
        (status = 401, body = Problem),
        (status = 422, description = "The current password is wrong, or the new one too short", body = Problem),
        (status = 429, body = Problem), (status = 503, body = Problem),
    ),
    security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<Committed<()>, ApiError> {
    accounts::new_password("/new_password", &body.new_password)?;
    let account = directory::account(&*state.store, session.user_id).await?;
    let ip = meta.client_ip();
    // Guessing the current password from a stolen session is throttled
    // like signing in.
    state
        .sign_in_throttle
        .admit(&ip, &account.email_index)
        .await?;
    let client = state.pool.get().await?;
    let current = directory::password_hash(&client, session.user_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    if !state.hasher.verify(body.current_password, current).await? {
        return Err(ApiError::Invalid(domain::Invalid(vec![
            domain::FieldError {
                pointer: "/current_password".into(),
                detail: "is not the account's password".into(),
            },
        ])));
    }
    state.sign_in_throttle.succeed(&ip, &account.email_index);
    let hash = state.hasher.hash(body.new_password).await?;
    directory::set_password_hash(&client, session.user_id, &hash).await?;
    tokens::void(&client, Purpose::PasswordReset, session.user_id).await?;
    let position = revoke_sessions(
        &state,
        &meta,
        session.user_id,
        "password_changed",
        Some(session.session_id),
        vec![AccountEvent::PasswordChanged(PasswordChanged {
            user_id: session.user_id,
            via: "changed".into(),
        })],
    )
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}

/// Ask for a password reset link. The answer is the same whether or not
/// an account has the address.
#[utoipa::path(post, path = "/v1/password-resets", tag = "accounts",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "If an account has this address, a link is on its way"),
        (status = 422, body = Problem),
    ))]
pub async fn request_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    let email = domain::validate::email(&body.email).ok_or_else(|| {
        ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
            pointer: "/email".into(),
            detail: "must be an email address such as ada@example.com".into(),
        }]))
    })?;
    let index = state.vault.email_index(&email);
    let account = directory::for_sign_in(&*state.store, &index).await?;
    // Past the address's share of mail, the link already sent stays good.
    if let Some((user, _)) =
        account.filter(|_| crate::mail::outbox::allowance(&state, "password_reset", &index))
    {
        let client = state.pool.get().await?;
        tokens::void(&client, Purpose::PasswordReset, user).await?;
        let expires = crate::command::now() + chrono::Duration::minutes(RESET_MINUTES);
        let token = tokens::issue(&client, Purpose::PasswordReset, user, &index, expires).await?;
        let link = state.link(&format!("/reset-password?token={}", token.reveal()));
        let letter = Letter::password_reset(&email, &link, RESET_MINUTES);
        crate::mail::outbox::send(&state, &client, "password_reset", &index, &letter).await?;
    }
    Ok(StatusCode::ACCEPTED)
}

/// Set a new password with the token from the mailed link; every session
/// of the account ends.
#[utoipa::path(post, path = "/v1/password-resets/confirm", tag = "accounts",
    request_body = ConfirmReset,
    responses(
        (status = 204, description = "The password is set; every session ended"),
        (status = 410, description = "The link is unknown, used or expired", body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem),
    ))]
pub async fn confirm_reset(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<ConfirmReset>,
) -> Result<Committed<()>, ApiError> {
    accounts::new_password("/new_password", &body.new_password)?;
    let client = state.pool.get().await?;
    // A live link is checked before anything is hashed, so made-up tokens
    // cost no hashing; the hash comes before the token is spent, so a busy
    // server leaves the link usable.
    if !tokens::live(&client, Purpose::PasswordReset, &body.token).await? {
        return Err(dead_link());
    }
    drop(client);
    let hash = state.hasher.hash(body.new_password).await?;
    let client = state.pool.get().await?;
    let spent = tokens::spend(&client, Purpose::PasswordReset, &body.token)
        .await?
        .ok_or_else(dead_link)?;
    let user = spent.subject;
    let account = directory::account(&*state.store, user).await?;
    if !account.can_sign_in() || account.email_index != spent.email_index {
        return Err(dead_link());
    }
    directory::set_password_hash(&client, user, &hash).await?;
    let position = revoke_sessions(
        &state,
        &meta,
        user,
        "password_reset",
        None,
        vec![AccountEvent::PasswordChanged(PasswordChanged {
            user_id: user,
            via: "reset".into(),
        })],
    )
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}
