//! Accounts and addresses as the log has them, and the credentials kept
//! beside it. Sign-in, sign-up and verification read the log itself (an
//! address's stream, then an account's), so an account works the moment
//! its sign-up is acknowledged, on any node, whatever the read models lag.

use deadpool_postgres::GenericClient;
use domain::accounts::{Account, Address};
use event_schemas::user::AccountEvent;
use event_store::EventStore;
use uuid::Uuid;

use crate::error::ApiError;

/// The log, on a node (`&*state.store`) or in an operator command.
type Log = dyn EventStore;

/// The stream of an address, by its keyed hash.
pub fn address_stream(email_index: &str) -> String {
    format!("email-{email_index}")
}

/// The stream of an account.
pub fn user_stream(user: Uuid) -> String {
    format!("user-{user}")
}

async fn fold<T>(log: &Log, stream: &str, f: impl Fn(&[AccountEvent]) -> T) -> Result<T, ApiError> {
    // Address and account streams are short: a sign-up, a proof, a few
    // password changes.
    let recorded = log.read_stream(stream, 1, 100_000).await?;
    let events = recorded
        .iter()
        .filter_map(|e| AccountEvent::decode(e).transpose())
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    Ok(f(&events))
}

/// The address with this keyed hash.
pub async fn address(log: &Log, email_index: &str) -> Result<Address, ApiError> {
    fold(log, &address_stream(email_index), |e| Address::fold(e)).await
}

/// The account `user`.
pub async fn account(log: &Log, user: Uuid) -> Result<Account, ApiError> {
    fold(log, &user_stream(user), |e| Account::fold(e)).await
}

/// The accounts a sign-in with this address may be for, in the order to
/// try them, with their versions: those that may sign in.
pub async fn sign_in_candidates(
    log: &Log,
    email_index: &str,
) -> Result<Vec<(Uuid, Account)>, ApiError> {
    let mut out = Vec::new();
    for user in address(log, email_index).await?.sign_in_candidates() {
        let account = account(log, user).await?;
        if account.can_sign_in() {
            out.push((user, account));
        }
    }
    Ok(out)
}

/// The account a password reset with this address reaches, if it may sign
/// in.
pub async fn for_sign_in(
    log: &Log,
    email_index: &str,
) -> Result<Option<(Uuid, Account)>, ApiError> {
    let Some(user) = address(log, email_index).await?.account() else {
        return Ok(None);
    };
    let account = account(log, user).await?;
    Ok(account.can_sign_in().then_some((user, account)))
}

/// Stores (or replaces) an account's password hash.
pub async fn set_password_hash(
    client: &impl GenericClient,
    user: Uuid,
    phc: &str,
) -> Result<(), ApiError> {
    client
        .execute(
            "INSERT INTO credentials (user_id, password_hash) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET password_hash = $2, changed_at = now()",
            &[&user, &phc],
        )
        .await?;
    Ok(())
}

/// An account's password hash.
pub async fn password_hash(
    client: &impl GenericClient,
    user: Uuid,
) -> Result<Option<String>, ApiError> {
    Ok(client
        .query_opt(
            "SELECT password_hash FROM credentials WHERE user_id = $1",
            &[&user],
        )
        .await?
        .map(|r| r.get(0)))
}

/// Destroys an account's credentials (erasure).
pub async fn forget_credentials(client: &impl GenericClient, user: Uuid) -> Result<(), ApiError> {
    client
        .execute("DELETE FROM credentials WHERE user_id = $1", &[&user])
        .await?;
    Ok(())
}

/// Copies the password hashes of sign-ups recorded before credentials left
/// the log (`user.signed_up` v1) into `credentials`, once: those accounts
/// keep signing in. Erased accounts are skipped.
pub async fn adopt_logged_hashes(client: &impl GenericClient) -> Result<u64, ApiError> {
    Ok(client
        .execute(
            "INSERT INTO credentials (user_id, password_hash) \
             SELECT (e.data->>'user_id')::uuid, e.data->>'password_hash' \
             FROM events e \
             WHERE e.event_type = 'user.signed_up' AND e.schema_version = 1 \
               AND e.data->>'password_hash' IS NOT NULL \
               AND NOT EXISTS (SELECT 1 FROM events x \
                   WHERE x.stream_id = e.stream_id AND x.event_type = 'user.personal_data_erased') \
             ON CONFLICT (user_id) DO NOTHING",
            &[],
        )
        .await?)
}
