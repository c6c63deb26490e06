//! The accounts read model's write side: a batch loads the rows it
//! touches, folds its events in log order, and writes back what changed.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use event_schemas::user::AccountEvent;
use event_schemas::RecordedEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::table::{self, row, Table};
use crate::ProjectionError;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    user_id: Uuid,
    email_index: String,
    email_sealed: String,
    name_sealed: String,
    email_verified: bool,
    email_released: bool,
    created_at: DateTime<Utc>,
    position: i64,
    erased_at: Option<DateTime<Utc>>,
}
row!(User, "users", [user_id], Uuid, |r: &User| r.user_id);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    session_id: Uuid,
    user_id: Uuid,
    token_hash: String,
    started_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
}
row!(Session, "sessions", [session_id], Uuid, |r: &Session| r
    .session_id);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Staff {
    user_id: Uuid,
    granted_at: DateTime<Utc>,
}
row!(Staff, "staff", [user_id], Uuid, |r: &Staff| r.user_id);

/// The rows one batch works on.
#[derive(Default)]
struct Batch {
    users: Table<User>,
    sessions: Table<Session>,
    staff: Table<Staff>,
}

/// Applies a batch of events.
pub(super) async fn apply(
    tx: &Transaction<'_>,
    events: &[&RecordedEvent],
) -> Result<(), ProjectionError> {
    table::fold::<Batch>(tx, events).await
}

#[async_trait::async_trait]
impl table::Batch for Batch {
    async fn prefetch(
        &mut self,
        tx: &Transaction<'_>,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let (mut users, mut sessions) = (HashSet::new(), HashSet::new());
        for e in events {
            #[derive(Deserialize)]
            struct Ids {
                user_id: Option<Uuid>,
                session_id: Option<Uuid>,
            }
            if let Ok(ids) = serde_json::from_str::<Ids>(e.data.get()) {
                users.extend(ids.user_id);
                sessions.extend(ids.session_id);
            }
        }
        self.users.load(tx, users.iter().copied()).await?;
        self.staff.load(tx, users).await?;
        self.sessions.load(tx, sessions).await
    }

    async fn flush(&mut self, tx: &Transaction<'_>) -> Result<(), ProjectionError> {
        self.users.flush(tx).await?;
        self.sessions.flush(tx).await?;
        self.staff.flush(tx).await
    }

    async fn event(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        self.account_event(tx, e).await
    }
}

impl Batch {
    /// Ends the user's open sessions but `except`: set-based over the
    /// user's sessions, so a barrier.
    async fn end_sessions(
        &mut self,
        tx: &Transaction<'_>,
        user: Uuid,
        at: DateTime<Utc>,
        except: Option<Uuid>,
    ) -> Result<(), ProjectionError> {
        self.sessions.flush(tx).await?;
        let stmt = tx
            .prepare_cached(
                "UPDATE sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL \
                 AND session_id IS DISTINCT FROM $3",
            )
            .await?;
        tx.execute(&stmt, &[&user, &at, &except]).await?;
        self.sessions.reload(tx).await
    }

    async fn account_event(
        &mut self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let at = e.recorded_at;
        let twice = |what: &str| ProjectionError::Invariant {
            position: e.global_position,
            reason: format!("{what} recorded twice"),
        };
        match crate::decode(e, AccountEvent::decode)? {
            Some(AccountEvent::UserSignedUp(u)) => {
                let row = User {
                    user_id: u.user_id,
                    email_index: u.email_index,
                    email_sealed: u.email.0,
                    name_sealed: u.name.0,
                    email_verified: false,
                    email_released: false,
                    created_at: at,
                    position: e.global_position as i64,
                    erased_at: None,
                };
                if !self.users.insert(tx, row).await? {
                    return Err(twice("a sign-up"));
                }
            }
            Some(AccountEvent::SessionStarted(s)) => {
                let row = Session {
                    session_id: s.session_id,
                    user_id: s.user_id,
                    token_hash: s.token_hash,
                    started_at: at,
                    expires_at: s.expires_at,
                    ended_at: None,
                };
                if !self.sessions.insert(tx, row).await? {
                    return Err(twice("a session"));
                }
            }
            Some(AccountEvent::SessionEnded(s)) => {
                if let Some(row) = self.sessions.get_mut(tx, &s.session_id).await? {
                    row.ended_at.get_or_insert(at);
                }
            }
            Some(AccountEvent::StaffGranted(g)) => {
                if self.staff.get(tx, &g.user_id).await?.is_none() {
                    self.staff.put(Staff {
                        user_id: g.user_id,
                        granted_at: at,
                    });
                }
            }
            Some(AccountEvent::PersonalDataErased(x)) => {
                // The account's data no longer opens: it can no longer sign
                // in, and its sessions end.
                if let Some(row) = self.users.get_mut(tx, &x.user_id).await? {
                    row.erased_at = Some(at);
                }
                self.end_sessions(tx, x.user_id, at, None).await?;
            }
            Some(AccountEvent::UserEmailVerified(v)) => {
                if let Some(row) = self.users.get_mut(tx, &v.user_id).await? {
                    row.email_verified = true;
                    row.email_released = false;
                }
            }
            Some(AccountEvent::UserEmailReleased(r)) => {
                if let Some(row) = self.users.get_mut(tx, &r.user_id).await? {
                    row.email_verified = false;
                    row.email_released = true;
                }
            }
            Some(AccountEvent::SessionsRevoked(r)) => {
                self.end_sessions(tx, r.user_id, at, r.except).await?
            }
            Some(AccountEvent::StaffRevoked(r)) => self.staff.delete(tx, &r.user_id).await?,
            Some(
                AccountEvent::EmailClaimed(_)
                | AccountEvent::EmailRegistered(_)
                | AccountEvent::PasswordChanged(_),
            )
            | None => {}
        }
        Ok(())
    }
}
