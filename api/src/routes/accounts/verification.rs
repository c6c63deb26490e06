//! Proving an address: `POST /v1/email-verifications` with the token from
//! the mailed link, and `POST /v1/me/email-verification` to mail a new one.
//!
//! Proving an address makes the account its holder: unproven accounts that
//! registered it lose it (they can no longer sign in with it, and their
//! sessions end), so whoever squatted an address never keeps its owner
//! out. An address another account already proved stays with that account.
//!
//! The link works only for the account it was made for, signed in: an
//! attacker who signs up with someone's address and has a link mailed to
//! it gains nothing when the mailbox's owner opens it, since they are not
//! signed in to the attacker's account.

use axum::extract::State;
use axum::http::StatusCode;
use domain::accounts::Verification;
use event_schemas::user::{
    AccountEvent, EmailClaimed, SessionsRevoked, UserEmailReleased, UserEmailVerified,
};
use event_schemas::{Actor, ExpectedVersion};
use event_store::{AppendError, StreamAppend};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::directory::{self, address_stream, user_stream};
use crate::accounts::tokens::{self, Purpose};
use crate::command::{Committed, RequestMeta, ATTEMPTS};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, Session};
use crate::state::AppState;

/// A body carrying a mailed token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The `token` parameter of the mailed link.
    pub token: String,
}

crate::redacted_debug!(TokenRequest);

/// The account whose address was proven.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifiedView {
    /// The account.
    pub user_id: Uuid,
    /// Always true.
    pub email_verified: bool,
}

/// The answer for a link that does not work, whatever the reason.
pub fn dead_link() -> ApiError {
    ApiError::Gone {
        code: "link-expired",
        detail: "this link is unknown, was already used, or has expired; ask for a new one".into(),
    }
}

/// Prove the account's address with the token from the mailed link.
#[utoipa::path(post, path = "/v1/email-verifications", tag = "accounts",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "The address is proven; `Gatehouse-Position` names the proof", body = VerifiedView),
        (status = 401, description = "Sign in to the account the link was mailed for", body = Problem),
        (status = 409, description = "Another account proved this address first", body = Problem),
        (status = 410, description = "The link is unknown, used, expired, or for another account", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = [])))]
pub async fn verify_email(
    State(state): State<AppState>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<Committed<VerifiedView>, ApiError> {
    let client = state.pool.get().await?;
    // Only the account the link was made for may use it; another's leaves
    // it unspent.
    if tokens::subject_of(&client, Purpose::VerifyEmail, &body.token).await?
        != Some(session.user_id)
    {
        return Err(dead_link());
    }
    let spent = tokens::spend(&client, Purpose::VerifyEmail, &body.token)
        .await?
        .ok_or_else(dead_link)?;
    let position = match confirm(&state, &meta, spent.subject, &spent.email_index).await {
        Ok(position) => position,
        // The link stays usable when the failure was not the link's.
        Err(e) if !matches!(e, ApiError::Gone { .. } | ApiError::Conflict { .. }) => {
            tokens::unspend(&client, &spent).await?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(VerifiedView {
            user_id: spent.subject,
            email_verified: true,
        }),
    })
}

/// Records that `user` proved the address `email_index`, releasing it from
/// unproven accounts; returns the position to read from.
async fn confirm(
    state: &AppState,
    meta: &RequestMeta,
    user: Uuid,
    email_index: &str,
) -> Result<u64, ApiError> {
    for _ in 0..ATTEMPTS {
        let account = directory::account(&*state.store, user).await?;
        if !account.can_sign_in() || account.email_index != email_index {
            return Err(dead_link());
        }
        let address = directory::address(&*state.store, email_index).await?;
        let holder_verified = match address.holder {
            Some(h) if h == user => account.email_verified,
            Some(h) => directory::account(&*state.store, h).await?.email_verified,
            None => false,
        };
        let release = match address.verify(user, holder_verified) {
            Verification::AlreadyHeld => return Ok(state.store.head().await?),
            Verification::HeldByAnother => {
                return Err(ApiError::Conflict {
                    code: "address-taken",
                    detail: "another account proved this address first; sign in to it, or \
                             reset its password"
                        .into(),
                })
            }
            Verification::Claim { release } => release,
        };
        let metadata = meta.metadata(Actor::user(user));
        let ids = meta.ids();
        let (users, emails) = (user_stream(user), address_stream(email_index));
        let mut appends = vec![
            StreamAppend::new(
                users.clone(),
                ExpectedVersion::Exact(account.version),
                ids.new_events(
                    &users,
                    &[AccountEvent::UserEmailVerified(UserEmailVerified {
                        user_id: user,
                    })],
                    &metadata,
                ),
            ),
            StreamAppend::new(
                emails.clone(),
                ExpectedVersion::Exact(address.version),
                ids.new_events(
                    &emails,
                    &[AccountEvent::EmailClaimed(EmailClaimed { user_id: user })],
                    &metadata,
                ),
            ),
        ];
        for squatter in &release {
            let stream = user_stream(*squatter);
            appends.push(StreamAppend::new(
                stream.clone(),
                ExpectedVersion::Any,
                ids.new_events(
                    &stream,
                    &[
                        AccountEvent::UserEmailReleased(UserEmailReleased {
                            user_id: *squatter,
                            verified_by: user,
                        }),
                        AccountEvent::SessionsRevoked(SessionsRevoked {
                            user_id: *squatter,
                            reason: "email_released".into(),
                            except: None,
                        }),
                    ],
                    &metadata,
                ),
            ));
        }
        match state.store.append_all(appends).await {
            Ok(done) => {
                let client = state.pool.get().await?;
                for squatter in &release {
                    tokens::void(&client, Purpose::VerifyEmail, *squatter).await?;
                    tokens::void(&client, Purpose::PasswordReset, *squatter).await?;
                }
                state
                    .statuses
                    .wait_for(&["accounts"], done.last_position, state.read_wait)
                    .await?;
                return Ok(done.last_position);
            }
            Err(AppendError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict {
        code: "concurrent-modification",
        detail: "the account kept changing; retry".into(),
    })
}

/// Mail a new verification link to the caller's address (older links stop
/// working).
#[utoipa::path(post, path = "/v1/me/email-verification", tag = "accounts",
    responses(
        (status = 202, description = "A new link is on its way"),
        (status = 401, body = Problem),
        (status = 409, description = "The address is already proven", body = Problem),
    ),
    security(("bearer" = [])))]
pub async fn resend(
    State(state): State<AppState>,
    session: Session,
) -> Result<StatusCode, ApiError> {
    let account = directory::account(&*state.store, session.user_id).await?;
    if account.email_verified {
        return Err(ApiError::Conflict {
            code: "already-verified",
            detail: "this account's address is already proven".into(),
        });
    }
    let client = state.pool.get().await?;
    let row = super::users::own_row(&client, session.user_id).await?;
    let key = state
        .vault
        .subject_key(&client, session.user_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::NotFound)?;
    let open = |sealed: String| key.open(&sealed).map_err(ApiError::internal);
    let (email, name) = (open(row.email_sealed)?, open(row.name_sealed)?);
    super::users::send_verification(
        &state,
        &client,
        session.user_id,
        &account.email_index,
        &email,
        &name,
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}
