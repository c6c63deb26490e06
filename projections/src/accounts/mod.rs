//! Accounts: users, their sign-in sessions and platform staff, for `/v1/me`
//! and for authenticating bearer tokens. Personal data stays sealed here as in the
//! log; the API opens it with the subject's key at read time, so erasing the
//! key erases it from the read model too, and a rebuild needs no key.

pub mod read;

use async_trait::async_trait;
use event_schemas::user::AccountEvent;
use event_schemas::RecordedEvent;
use tokio_postgres::Transaction;

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
        4
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
         CREATE INDEX users_email_idx ON users (email_index);
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

    fn tables(&self) -> &'static [&'static str] {
        &["users", "sessions", "staff"]
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(AccountEvent::TYPES)
    }

    async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for e in events {
            let decoded = crate::decode(e, AccountEvent::decode)?;
            match decoded {
                Some(AccountEvent::UserSignedUp(u)) => {
                    tx.execute(
                        "INSERT INTO users (user_id, email_index, email_sealed, name_sealed, \
                         created_at, position) VALUES ($1, $2, $3, $4, $5, $6)",
                        &[
                            &u.user_id,
                            &u.email_index,
                            &u.email.0,
                            &u.name.0,
                            &e.recorded_at,
                            &(e.global_position as i64),
                        ],
                    )
                    .await?;
                }
                Some(AccountEvent::SessionStarted(s)) => {
                    tx.execute(
                        "INSERT INTO sessions (session_id, user_id, token_hash, started_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                        &[
                            &s.session_id,
                            &s.user_id,
                            &s.token_hash,
                            &e.recorded_at,
                            &s.expires_at,
                        ],
                    )
                    .await?;
                }
                Some(AccountEvent::SessionEnded(s)) => {
                    tx.execute(
                        "UPDATE sessions SET ended_at = $2 WHERE session_id = $1 AND ended_at IS NULL",
                        &[&s.session_id, &e.recorded_at],
                    )
                    .await?;
                }
                Some(AccountEvent::StaffGranted(g)) => {
                    tx.execute(
                        "INSERT INTO staff (user_id, granted_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        &[&g.user_id, &e.recorded_at],
                    )
                    .await?;
                }
                Some(AccountEvent::PersonalDataErased(x)) => {
                    // The account's data no longer opens: it can no longer
                    // sign in, and its sessions end.
                    tx.execute(
                        "UPDATE users SET erased_at = $2 WHERE user_id = $1",
                        &[&x.user_id, &e.recorded_at],
                    )
                    .await?;
                    tx.execute(
                        "UPDATE sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL",
                        &[&x.user_id, &e.recorded_at],
                    )
                    .await?;
                }
                Some(AccountEvent::UserEmailVerified(v)) => {
                    tx.execute(
                        "UPDATE users SET email_verified = true, email_released = false \
                         WHERE user_id = $1",
                        &[&v.user_id],
                    )
                    .await?;
                }
                Some(AccountEvent::UserEmailReleased(r)) => {
                    tx.execute(
                        "UPDATE users SET email_verified = false, email_released = true \
                         WHERE user_id = $1",
                        &[&r.user_id],
                    )
                    .await?;
                }
                Some(AccountEvent::SessionsRevoked(r)) => {
                    tx.execute(
                        "UPDATE sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL \
                         AND session_id IS DISTINCT FROM $3",
                        &[&r.user_id, &e.recorded_at, &r.except],
                    )
                    .await?;
                }
                Some(AccountEvent::StaffRevoked(r)) => {
                    tx.execute("DELETE FROM staff WHERE user_id = $1", &[&r.user_id])
                        .await?;
                }
                Some(
                    AccountEvent::EmailClaimed(_)
                    | AccountEvent::EmailRegistered(_)
                    | AccountEvent::PasswordChanged(_),
                )
                | None => {}
            }
        }
        Ok(())
    }
}
