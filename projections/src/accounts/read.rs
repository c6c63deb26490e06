//! Typed queries over the `accounts` read model (the views `rm.<table>`), for the API, the console and the tools.
//!
//! Personal data comes back sealed: the caller opens it with the user's
//! key (and reads `[erased]` once that key is gone).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Error;
use uuid::Uuid;

/// A user's own account.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Their email, sealed under their key.
    pub email_sealed: String,
    /// Their name, sealed under their key.
    pub name_sealed: String,
    /// When they signed up.
    pub created_at: DateTime<Utc>,
    /// Whether they proved their address.
    pub email_verified: bool,
}

/// The account `user`.
pub async fn user(client: &impl GenericClient, user: Uuid) -> Result<Option<UserRow>, Error> {
    Ok(client
        .query_opt(
            "SELECT email_sealed, name_sealed, created_at, email_verified FROM rm.users \
             WHERE user_id = $1",
            &[&user],
        )
        .await?
        .map(|r| UserRow {
            email_sealed: r.get(0),
            name_sealed: r.get(1),
            created_at: r.get(2),
            email_verified: r.get(3),
        }))
}
