//! Personal data erasure (`DELETE /v1/users/{id}/personal-data`, staff):
//! crypto-shredding. The user's key is destroyed, so their email, name and
//! the request context of everything they did read `[erased]` in every read
//! model, the audit trail and exports, and in every backup of the log; the
//! facts stay, and the chain, which covers ciphertext, still verifies.
//! Invitations sent to the same address lose their keys too.
//!
//! The erasure is recorded first (`user.personal_data_erased`), then the
//! keys are deleted: a crash between the two leaves an erasure the next
//! call, or the next start ([`crate::accounts::erasure::reconcile`]),
//! completes; never a deleted key with no record of why. What a shred
//! deletes is [`crate::accounts::erasure::shred`].

use axum::extract::State;
use axum::http::StatusCode;
use event_schemas::user::{AccountEvent, PersonalDataErased};
use event_schemas::ExpectedVersion;
use event_store::{AppendError, StreamAppend};
use uuid::Uuid;

use crate::command::{Committed, RequestMeta, ATTEMPTS};
use crate::error::{ApiError, Problem};
use crate::extract::{Path, Staff};
use crate::state::AppState;

/// Erase a user's personal data.
#[utoipa::path(delete, path = "/v1/users/{id}/personal-data", tag = "accounts",
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 204, description = "Erased (or already erased); `Gatehouse-Position` names the erasure event"),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn erase_personal_data(
    State(state): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    Path(user): Path<Uuid>,
) -> Result<Committed<()>, ApiError> {
    let stream = format!("user-{user}");
    let ids = meta.ids();
    let mut position = None;
    for _ in 0..ATTEMPTS {
        let events = state.store.read_stream(&stream, 1, 10_000).await?;
        let mut signed_up = None;
        for e in &events {
            match AccountEvent::decode(e).map_err(ApiError::internal)? {
                Some(AccountEvent::UserSignedUp(u)) => signed_up = Some(u.email_index),
                Some(AccountEvent::PersonalDataErased(_)) => position = Some(e.global_position),
                _ => {}
            }
        }
        let Some(email_index) = signed_up else {
            return Err(ApiError::NotFound);
        };
        if position.is_none() {
            let event = AccountEvent::PersonalDataErased(PersonalDataErased { user_id: user });
            let version = events.last().map_or(0, |e| e.stream_version);
            let append = StreamAppend::new(
                &stream,
                ExpectedVersion::Exact(version),
                ids.new_events(&stream, &[event], &meta.metadata(staff.actor())),
            );
            match state.store.append_all(vec![append]).await {
                Ok(done) => position = Some(done.last_position),
                Err(AppendError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let client = state.pool.get().await?;
        crate::accounts::erasure::shred(&client, user, &email_index).await?;
        break;
    }
    let position = position.ok_or(ApiError::Conflict {
        code: "concurrent-modification",
        detail: "the account kept changing while it was erased; retry".into(),
    })?;
    state
        .statuses
        .wait_for(&["accounts", "audit"], position, state.read_wait)
        .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}
