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

/// `user.signed_up` v1: an account was created. Stream `user-<user_id>`.
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
    /// argon2id PHC string.
    pub password_hash: String,
}

/// `email.claimed` v1: an email address was reserved for one account.
/// Stream `email-<email_index>`, appended with "no stream" so that two
/// sign-ups with one address cannot both succeed.
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
        UserSignedUp(UserSignedUp) = "user.signed_up",
        /// `email.claimed`
        EmailClaimed(EmailClaimed) = "email.claimed",
        /// `session.started`
        SessionStarted(SessionStarted) = "session.started",
        /// `session.ended`
        SessionEnded(SessionEnded) = "session.ended",
        /// `staff.granted`
        StaffGranted(StaffGranted) = "staff.granted",
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
