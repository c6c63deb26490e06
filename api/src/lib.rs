//! The Gatehouse server: HTTP API, command service and background roles over
//! the event store and projections.
//!
//! # Layout
//! - [`admin`]: `gatehouse admin` (create the first staff member).
//! - [`audit`]: signed checkpoints of the chain; request context sealed per user.
//! - [`config`]: every option, as clap flags with `GATEHOUSE_*` environment
//!   variables.
//! - [`server`]: [`server::run`] wires the store, projection runners and
//!   router, and serves until shutdown; [`server::Database`] resolves the
//!   database (a URL, or the embedded local PostgreSQL).
//! - [`error`]: one error type, rendered as RFC 9457 problem+json.
//! - [`extract`]: JSON bodies, bearer sessions, read-your-writes headers.
//! - [`authorize`]: reads authorised as extractors (an app, a workspace).
//! - [`command`]: the command service: one executor with a bounded cache
//!   of folded state, per-stream queues and ids derived from the
//!   `Idempotency-Key`.
//! - [`idempotency`]: `Idempotency-Key` on POST (first response replayed).
//! - [`notices`]: usage thresholds and approaching key expiries, raised once.
//! - [`oauth`]: how access tokens are issued (issuer, audience, lifetime,
//!   rates).
//! - [`page`]: cursor pagination for every list, over the read layer's
//!   keysets.
//! - [`rotation`]: the worker carrying out staff's mass key rotations.
//! - [`secret_scanning`]: the keys GitHub signs its leak reports with.
//! - [`tenancy`]: outsiders get 404 on every organisation and app route.
//! - [`throttle`]: sign-in throttling.
//! - [`vault`]: the key-encryption key, per-subject keys, sealing (personal
//!   data, signing seeds, webhook secrets and payloads).
//! - [`webhooks`]: webhook settings, the publish quota, payload retention.
//! - [`console`]: the portal's pages at `/`, over the same handlers and
//!   read layer as the JSON API.
//! - [`routes`]: one module per resource, each with its `router()`. Routes
//!   hold no SQL: they read through `projections::<model>::read` (with
//!   `state.read_models`), `delivery::read`, and the modules above.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod authorize;
pub mod command;
pub mod config;
pub mod console;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod mail;
pub mod notices;
pub mod oauth;
pub mod page;
pub mod rotation;
pub mod routes;
pub mod secret_scanning;
pub mod server;
pub mod state;
pub mod tenancy;
pub mod vault;
pub mod webhooks;

/// Header carrying the log position a command's events reached.
pub const POSITION_HEADER: &str = "gatehouse-position";
/// Header a read sends to wait until read models reach a position.
pub const MIN_POSITION_HEADER: &str = "gatehouse-min-position";

/// `Debug` for a type that holds a secret (a password, a token, a key shown
/// once): it prints the type's name and nothing of its fields, so no log
/// line or panic message can carry the secret.
#[macro_export]
macro_rules! redacted_debug {
    ($ty:ident) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($ty)).finish_non_exhaustive()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    /// What a handler might log of a request or an answer holding a secret.
    #[test]
    fn secret_bearing_requests_and_answers_print_no_secret() {
        let printed = [
            format!(
                "{:?}",
                serde_json::from_value::<crate::routes::keys::VerifyRequest>(
                    serde_json::json!({"key": "gh_test_sk_SECRETSECRET"})
                )
                .unwrap()
            ),
            format!(
                "{:?}",
                serde_json::from_value::<crate::routes::accounts::users::SignUpRequest>(
                    serde_json::json!({"email": "a@example.com", "name": "A",
                                       "password": "SECRETSECRET"})
                )
                .unwrap()
            ),
            format!(
                "{:?}",
                serde_json::from_value::<crate::routes::oauth::OAuthTokenRequest>(
                    serde_json::json!({"grant_type": "client_credentials",
                                       "client_secret": "SECRETSECRET"})
                )
                .unwrap()
            ),
        ];
        for p in &printed {
            assert!(!p.contains("SECRET"), "{p}");
            assert!(p.ends_with(".. }"), "{p}");
        }
    }
}
