//! Accounts: users, their sign-in sessions and platform staff, for `/v1/me`
//! and for authenticating bearer tokens. Personal data stays sealed here as in the
//! log; the API opens it with the subject's key at read time, so erasing the
//! key erases it from the read model too, and a rebuild needs no key.

mod apply;
pub mod read;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use event_schemas::user::AccountEvent;
use event_schemas::RecordedEvent;

use crate::{Projection, ProjectionError};

/// The accounts read model.
pub struct Accounts;

#[async_trait]
impl Projection for Accounts {
    fn name(&self) -> &'static str {
        "accounts"
    }

    fn version(&self) -> u32 {
        // 4: proven addresses (several unproven accounts may register one),
        // no password hash, staff revoked, sessions revoked at once.
        // 5: batch-shaped (the same rows, written set-wise).
        5
    }

    fn schema(&self) -> &'static str {
        "CREATE TABLE users (
             user_id       UUID PRIMARY KEY,
             email_index   TEXT NOT NULL,
             email_sealed  TEXT NOT NULL,
             name_sealed   TEXT NOT NULL,
             email_verified BOOLEAN NOT NULL DEFAULT false,
             email_released BOOLEAN NOT NULL DEFAULT false,
             created_at    TIMESTAMPTZ NOT NULL,
             position      BIGINT NOT NULL,
             erased_at     TIMESTAMPTZ
         );
         CREATE TABLE sessions (
             session_id UUID PRIMARY KEY,
             user_id    UUID NOT NULL,
             token_hash TEXT NOT NULL UNIQUE,
             started_at TIMESTAMPTZ NOT NULL,
             expires_at TIMESTAMPTZ NOT NULL,
             ended_at   TIMESTAMPTZ
         );
         CREATE INDEX sessions_user_idx ON sessions (user_id);
         CREATE TABLE staff (
             user_id    UUID PRIMARY KEY,
             granted_at TIMESTAMPTZ NOT NULL
         );"
    }

    fn indexes(&self) -> &'static str {
        "CREATE INDEX IF NOT EXISTS users_email_idx ON users (email_index);"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["users", "sessions", "staff"]
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(AccountEvent::TYPES)
    }

    async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        apply::apply(tx, events).await
    }
}
