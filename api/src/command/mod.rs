//! The command service: every command of every aggregate goes through one
//! [`Executor`] (load from a bounded cache plus the stream's tail, decide,
//! append with the expected version, re-decide on a concurrent change),
//! with the request's metadata and ids, and answers with the position its
//! events reached (`Gatehouse-Position`) so the client can read its own
//! writes with `Gatehouse-Min-Position`.
//!
//! # Layout
//! - [`executor`]: the executor, [`Plan`] and [`Executed`].
//! - [`aggregate`]: what an aggregate gives the executor.
//! - [`cache`]: folded state per stream, bounded in entries and bytes.
//! - [`locks`]: one queue per stream within this process.
//! - [`ids`]: event and entity ids, derived from the `Idempotency-Key`.
//! - [`orgs`]: an organisation loaded with the terms in force, and its
//!   commands run (routes, the tenancy guard and the notices share it).

pub mod aggregate;
pub mod cache;
pub mod executor;
pub mod ids;
pub mod locks;
pub mod orgs;

pub use aggregate::{Aggregate, SlugHolder};
pub use cache::{CacheLimits, Loaded};
pub use executor::{Executed, Executor, Plan, ATTEMPTS};
pub use ids::{CommandIds, CommandSeed};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use event_schemas::{Actor, ActorKind, DomainEvent, Metadata, NewEvent};
use serde::Serialize;

use crate::error::ApiError;
use crate::POSITION_HEADER;

/// Where a client's own `X-Request-Id` is kept on the request (set aside
/// by the router, so the request id is always Gatehouse's own).
pub const CLIENT_REQUEST_ID: &str = "x-client-request-id";

/// What a request contributes to the metadata of the events it causes.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// The request id Gatehouse gave the request (`x-request-id`).
    pub request_id: Option<String>,
    /// The `X-Request-Id` the client sent, if any.
    pub client_request_id: Option<String>,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// Set by the idempotency layer when the request has a key: the ids
    /// the command mints repeat when the client retries.
    pub seed: Option<CommandSeed>,
    /// The client's address and user agent, sealed once the user is known.
    pub context: Option<crate::audit::client::RequestContext>,
}

impl RequestMeta {
    /// The client's address, as the throttles key on it.
    pub fn client_ip(&self) -> String {
        self.context
            .as_ref()
            .map_or("unknown", |c| c.client_ip())
            .to_owned()
    }

    /// The ids this request's command mints.
    pub fn ids(&self) -> CommandIds {
        CommandIds::new(self.seed)
    }

    /// Event metadata for `actor`.
    pub fn metadata(&self, actor: Actor) -> Metadata {
        // Only a person's context is personal data sealed under their key.
        let context = match actor.kind {
            ActorKind::User | ActorKind::Staff => self.context.as_ref().and_then(|c| c.sealed()),
            ActorKind::ApiKey | ActorKind::System => None,
        };
        Metadata {
            request_id: self.request_id.clone(),
            client_request_id: self.client_request_id.clone(),
            idempotency_key: self.idempotency_key.clone(),
            context,
            ..Metadata::by(actor)
        }
    }

    /// Event metadata for `actor` acting on organisation `org`.
    pub fn in_org(&self, actor: Actor, org: uuid::Uuid) -> Metadata {
        Metadata {
            org_id: Some(org),
            ..self.metadata(actor)
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(200).collect::<String>())
        };
        Ok(RequestMeta {
            request_id: header("x-request-id"),
            client_request_id: header(CLIENT_REQUEST_ID),
            idempotency_key: header("idempotency-key"),
            seed: parts.extensions.get::<CommandSeed>().copied(),
            context: parts
                .extensions
                .get::<crate::audit::client::RequestContext>()
                .cloned(),
        })
    }
}

/// A command's answer: status, body, and the log position reached.
pub struct Committed<T> {
    /// HTTP status (201 for creations, 200 or 204 otherwise).
    pub status: StatusCode,
    /// Position of the command's last event.
    pub position: u64,
    /// The body; `None` for 204.
    pub body: Option<T>,
}

impl<T: Serialize> IntoResponse for Committed<T> {
    fn into_response(self) -> Response {
        let mut res = match self.body {
            Some(body) => (self.status, Json(body)).into_response(),
            None => self.status.into_response(),
        };
        res.headers_mut().insert(
            POSITION_HEADER,
            HeaderValue::from_str(&self.position.to_string())
                .expect("a decimal number is a valid header value"),
        );
        res
    }
}

/// The time a command decides at, to the microsecond: what PostgreSQL
/// keeps, so an answer, the event and every read model show the same
/// instant (an expiry computed from it included).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    let now = chrono::Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(now)
}

/// A command's domain events as new events with its metadata.
pub fn new_events<E: DomainEvent>(events: &[E], metadata: &Metadata) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| NewEvent::from_domain(e, metadata.clone()))
        .collect()
}
