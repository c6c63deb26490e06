//! Writing to the outbox.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::Letter;
use crate::error::ApiError;
use crate::state::AppState;
use crate::vault::Vault;

/// The context a mail is sealed under: its own id, so a sealed message
/// opens only in its own row.
pub fn seal_context(mail_id: Uuid) -> Vec<u8> {
    [b"mail:".as_slice(), mail_id.as_bytes()].concat()
}

/// Queues `letter` of `kind` (`verify_email`, `invitation`, ...) to the
/// address whose keyed hash is `recipient_index`; the caller then wakes the
/// sender (`state.mail_wake`).
pub async fn enqueue(
    client: &impl GenericClient,
    vault: &Vault,
    kind: &str,
    recipient_index: &str,
    letter: &Letter,
) -> Result<Uuid, ApiError> {
    let mail_id = Uuid::now_v7();
    let json = serde_json::to_vec(letter).map_err(ApiError::internal)?;
    let sealed = vault.seal_service(&seal_context(mail_id), &json);
    client
        .execute(
            "INSERT INTO mail_outbox (mail_id, kind, recipient_index, sealed) \
             VALUES ($1, $2, $3, $4)",
            &[&mail_id, &kind, &recipient_index, &sealed],
        )
        .await?;
    Ok(mail_id)
}

/// Reserves one mail of `kind` to the address whose keyed hash is
/// `recipient_index`: `false` when the address had its share this hour.
/// Flows that issue a token reserve first, so a refused mail voids no
/// earlier link and stores no new token.
pub fn allowance(state: &AppState, kind: &str, recipient_index: &str) -> bool {
    let allowed = state
        .mail_rate
        .reserve(&format!("{kind} {recipient_index}"))
        .is_ok();
    if !allowed {
        tracing::info!(kind, "mail to an address over its hourly share: not sent");
    }
    allowed
}

/// Queues `letter` (its allowance already reserved) and wakes the sender.
pub async fn send(
    state: &AppState,
    client: &impl GenericClient,
    kind: &str,
    recipient_index: &str,
    letter: &Letter,
) -> Result<(), ApiError> {
    enqueue(client, &state.vault, kind, recipient_index, letter).await?;
    state.mail_wake.notify_one();
    Ok(())
}

/// Queues `letter` and wakes the sender, unless this address had its
/// share of mail of this `kind` this hour: then nothing is queued (`false`),
/// and the caller answers as if it had been, so the answer tells nobody
/// anything and nobody can flood a mailbox through Gatehouse.
pub async fn post(
    state: &AppState,
    client: &impl GenericClient,
    kind: &str,
    recipient_index: &str,
    letter: &Letter,
) -> Result<bool, ApiError> {
    if !allowance(state, kind, recipient_index) {
        return Ok(false);
    }
    send(state, client, kind, recipient_index, letter).await?;
    Ok(true)
}
