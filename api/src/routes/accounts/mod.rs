//! Accounts over HTTP: sign-up and the caller's own view (`users`),
//! sessions, proving an address (`verification`), and passwords. The
//! state beside the log they use is in `crate::accounts`.

pub mod passwords;
pub mod sessions;
pub mod users;
pub mod verification;

use axum::routing::{delete, get, post};
use axum::Router;

use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users", post(users::sign_up))
        .route("/v1/me", get(users::me))
        .route(
            "/v1/users/{id}/personal-data",
            delete(super::erasure::erase_personal_data),
        )
        .route(
            "/v1/sessions",
            post(sessions::sign_in).delete(sessions::sign_out_everywhere),
        )
        .route("/v1/sessions/current", delete(sessions::sign_out))
        .route("/v1/email-verifications", post(verification::verify_email))
        .route("/v1/me/email-verification", post(verification::resend))
        .route("/v1/me/password", post(passwords::change_password))
        .route("/v1/password-resets", post(passwords::request_reset))
        .route(
            "/v1/password-resets/confirm",
            post(passwords::confirm_reset),
        )
}
