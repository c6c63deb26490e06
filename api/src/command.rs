//! The command side: request metadata for events, and responses that carry
//! the position the command's events reached (`Gatehouse-Position`), so the
//! client can read its own writes with `Gatehouse-Min-Position`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use event_schemas::{Actor, DomainEvent, Metadata, NewEvent, RecordedEvent, SchemaError};
use event_store::EventStore;
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;
use crate::POSITION_HEADER;

/// What a request contributes to the metadata of the events it causes.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// The request id (`x-request-id`).
    pub request_id: Option<String>,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
}

impl RequestMeta {
    /// Event metadata for `actor`.
    pub fn metadata(&self, actor: Actor) -> Metadata {
        Metadata {
            request_id: self.request_id.clone(),
            idempotency_key: self.idempotency_key.clone(),
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
            idempotency_key: header("idempotency-key"),
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

/// Most attempts of a command that keeps meeting concurrent changes to its
/// stream before it answers 409 `concurrent-modification`.
pub const ATTEMPTS: u32 = 16;

/// Waits before attempt `attempt` (from 1) of a command that met a
/// concurrent change: a random few milliseconds, doubling, so writers that
/// collided spread out instead of colliding again.
pub async fn backoff(attempt: u32) {
    use rand::Rng;
    let ceiling_ms = 1u64 << attempt.min(6);
    let ms = rand::thread_rng().gen_range(0..=ceiling_ms);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// Reads `stream` from the log and folds the events of one family into a
/// `T`; returns the state, the stream's version and its last position.
pub async fn fold_stream<T: Default, E>(
    state: &AppState,
    stream: &str,
    decode: fn(&RecordedEvent) -> Result<Option<E>, SchemaError>,
    apply: fn(&mut T, &E),
) -> Result<(T, u64, u64), ApiError> {
    const PAGE: usize = 10_000;
    let mut folded = T::default();
    let (mut version, mut position) = (0, 0);
    loop {
        let events = state.store.read_stream(stream, version + 1, PAGE).await?;
        for e in &events {
            if let Some(event) = decode(e).map_err(ApiError::internal)? {
                apply(&mut folded, &event);
            }
            (version, position) = (e.stream_version, e.global_position);
        }
        if events.len() < PAGE {
            return Ok((folded, version, position));
        }
    }
}

/// A command's domain events as new events with its metadata.
pub fn new_events<E: DomainEvent>(events: &[E], metadata: &Metadata) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| NewEvent::from_domain(e, metadata.clone()))
        .collect()
}
