//! The `user.*`, `email.*`, `session.*` and `staff.*` families: accounts,
//! sign-in and platform staff.
//!
//! Personal data (email, name) is [`Sealed`] under the user's own key. The
//! email is also recorded as a keyed hash (`email_index`) so that uniqueness
//! and sign-in can find an account without the plaintext.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::sealed::Sealed;

/// `user.signed_up` v2: an account was created. Stream `user-<user_id>`.
/// Its address is not yet proven: see [`UserEmailVerified`]. Version 1
/// carried the argon2 hash of the password; credentials now live outside
/// the log (they are state that must change and be destroyed, which an
/// immutable log cannot do), and [`upcast_signed_up`] drops the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserSignedUp {
    /// The new user's id.
    pub user_id: Uuid,
    /// Keyed hash of the normalised email (hex), for lookups.
    pub email_index: String,
    /// The email, sealed under the user's key.
    pub email: Sealed,
    /// The display name, sealed under the user's key.
    pub name: Sealed,
}

/// Reads `user.signed_up` v1 as v2: the password hash stays in the old
/// event (the log is immutable) but is never read from it again.
pub fn upcast_signed_up(
    version: u32,
    mut payload: serde_json::Value,
) -> Result<serde_json::Value, String> {
    match version {
        1 => {
            if let Some(fields) = payload.as_object_mut() {
                fields.remove("password_hash");
            }
            Ok(payload)
        }
        v => Err(format!("no upcaster from version {v}")),
    }
}

/// `email.registered` v1: an account signed up with this address, not yet
/// proven. Stream `email-<email_index>`. Several accounts may register one
/// address; none of them holds it until one verifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EmailRegistered {
    /// The account that registered.
    pub user_id: Uuid,
}

/// `email.claimed` v1: an account holds this address. Stream
/// `email-<email_index>`. Since addresses are verified it is appended when
/// an account proves the address (beside [`UserEmailVerified`]); in logs
/// from before, it was appended at sign-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EmailClaimed {
    /// The account that holds the address.
    pub user_id: Uuid,
}

/// `session.started` v1: a user signed in. Stream `session-<session_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionStarted {
    /// The session's id.
    pub session_id: Uuid,
    /// Who signed in.
    pub user_id: Uuid,
    /// SHA-256 of the bearer token (hex); the token itself is never stored.
    pub token_hash: String,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
}

/// `session.ended` v1: a session was signed out or revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionEnded {
    /// The session's id.
    pub session_id: Uuid,
    /// Why: `signed_out`, `revoked`.
    pub reason: String,
}

event_family! {
    /// Every event of this module's families.
    pub enum AccountEvent {
        /// `user.signed_up`
        UserSignedUp(UserSignedUp) = "user.signed_up" @ v 2 from upcast_signed_up,
        /// `email.registered`
        EmailRegistered(EmailRegistered) = "email.registered",
        /// `email.claimed`
        EmailClaimed(EmailClaimed) = "email.claimed",
        /// `user.email_verified`
        UserEmailVerified(UserEmailVerified) = "user.email_verified",
        /// `user.email_released`
        UserEmailReleased(UserEmailReleased) = "user.email_released",
        /// `user.password_changed`
        PasswordChanged(PasswordChanged) = "user.password_changed",
        /// `user.sessions_revoked`
        SessionsRevoked(SessionsRevoked) = "user.sessions_revoked",
        /// `session.started`
        SessionStarted(SessionStarted) = "session.started",
        /// `session.ended`
        SessionEnded(SessionEnded) = "session.ended",
        /// `staff.granted`
        StaffGranted(StaffGranted) = "staff.granted",
        /// `staff.revoked`
        StaffRevoked(StaffRevoked) = "staff.revoked",
        /// `user.personal_data_erased`
        PersonalDataErased(PersonalDataErased) = "user.personal_data_erased",
    }
}

/// `staff.granted` v1: a user became platform staff. Stream `staff-<user_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StaffGranted {
    /// The user.
    pub user_id: Uuid,
}

/// `user.personal_data_erased` v1: staff destroyed the user's key, so every
/// value sealed under it (email, name, request context) reads `[erased]`
/// from now on, in every copy of the log. The account can no longer sign
/// in. Stream `user-<user_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PersonalDataErased {
    /// The user.
    pub user_id: Uuid,
}

/// `user.email_verified` v1: the account proved it receives mail at its
/// address (a link mailed to it was opened). Stream `user-<user_id>`,
/// appended with `email.claimed` on the address's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserEmailVerified {
    /// The user.
    pub user_id: Uuid,
}

/// `user.email_released` v1: an unverified account lost its address to the
/// account that proved it; it can no longer sign in with it, and its
/// sessions end. Stream `user-<user_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserEmailReleased {
    /// The account that lost the address.
    pub user_id: Uuid,
    /// The account that proved it.
    pub verified_by: Uuid,
}

/// `user.password_changed` v1: the password changed. The hash is kept
/// outside the log; this records only that, and how, it changed. Stream
/// `user-<user_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PasswordChanged {
    /// The user.
    pub user_id: Uuid,
    /// `changed` (with the current password) or `reset` (by a mailed link).
    pub via: String,
}

/// `user.sessions_revoked` v1: every session of the user ended at once,
/// but `except` (the one that asked, when it keeps working). Stream
/// `user-<user_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionsRevoked {
    /// The user.
    pub user_id: Uuid,
    /// Why: `signed_out_everywhere`, `password_changed`, `password_reset`,
    /// `email_released`, `staff_revoked`.
    pub reason: String,
    /// A session that stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<Uuid>,
}

/// `staff.revoked` v1: a user is no longer platform staff. Stream
/// `staff-<user_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StaffRevoked {
    /// The user.
    pub user_id: Uuid,
}
