//! What erasing a user's personal data deletes beside the log, and the
//! erasures a crash left unfinished, completed at start. The staff
//! endpoint and the log's record of each erasure are `routes::erasure`.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Deletes the keys of `user` and of the invitations sent to their address
/// (`email_index`), their credentials and their unused mailed tokens.
pub async fn shred(
    client: &impl GenericClient,
    user: Uuid,
    email_index: &str,
) -> Result<(), ApiError> {
    super::directory::forget_credentials(client, user).await?;
    client
        .execute(
            "DELETE FROM account_tokens WHERE subject = $1 OR email_index = $2",
            &[&user, &email_index],
        )
        .await?;
    client
        .execute(
            "DELETE FROM subject_keys WHERE subject_id = $1 OR subject_id IN ( \
               SELECT (data->>'invitation_id')::uuid FROM events \
               WHERE event_type = 'invitation.created' AND data->>'email_index' = $2)",
            &[&user, &email_index],
        )
        .await?;
    Ok(())
}

/// The users the log says were erased whose key still exists, each with
/// the keyed hash of the address they signed up with.
pub async fn unfinished(client: &impl GenericClient) -> Result<Vec<(Uuid, String)>, ApiError> {
    Ok(client
        .query(
            "SELECT (x.data->>'user_id')::uuid, s.data->>'email_index' FROM events x \
             JOIN events s ON s.stream_id = x.stream_id AND s.event_type = 'user.signed_up' \
             WHERE x.event_type = 'user.personal_data_erased' \
               AND EXISTS (SELECT 1 FROM subject_keys k WHERE k.subject_id = (x.data->>'user_id')::uuid)",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Completes erasures a crash interrupted: every user the log says was
/// erased loses their key (and their invitations'), if it still exists.
/// Answers how many it completed.
pub async fn reconcile(state: &AppState) -> Result<u64, ApiError> {
    let client = state.pool.get().await?;
    let unfinished = unfinished(&client).await?;
    drop(client);
    for (user, email_index) in &unfinished {
        let client = state.pool.get().await?;
        shred(&client, *user, email_index).await?;
    }
    Ok(unfinished.len() as u64)
}
