//! API keys: issue (`POST /v1/apps/{app}/keys`), list and read, rotate
//! with an overlap, revoke; and the gateway's `POST /v1/keys/verify`.
//!
//! Every key has its own stream (`api_key-<id>`); commands decide against
//! the app and its organisation as the command service holds them. The
//! plaintext exists only in the 201 answer: it is minted from a secret the
//! command's ids derive (so a retried request with the same
//! `Idempotency-Key` answers the same key, from the sealed stored
//! response), and only its SHA-256 reaches the log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::apps::{App, Mode};
use domain::keys::{self, format, Key, KeyKind};
use domain::orgs::Org;
use event_schemas::key::key_stream;
use event_store::{ExpectedVersion, StreamAppend};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::apps::{require_workspace, wire};
use super::orgs::load as load_org;
use crate::authorize::AppReader;
use crate::command::{Committed, Plan, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, OptionalJson, Path, Session};
use crate::page::{Page, PageQuery, Paging, TimeKey};
use crate::state::AppState;

mod issue;
mod manage;
mod verify;
mod views;

pub use issue::*;
pub use manage::*;
pub use verify::*;
pub use views::*;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/apps/{app}/keys", post(create_key).get(list_keys))
        .route("/v1/apps/{app}/keys/import", post(import_keys))
        .route("/v1/keys/verify", post(verify))
        .route("/v1/keys/{key}", get(get_key))
        .route("/v1/keys/{key}/rotate", post(rotate_key))
        .route("/v1/keys/{key}/revoke", post(revoke_key))
}

/// A key's mode, parsed at the edge.
fn mode(value: &str, pointer: &str) -> Result<Mode, ApiError> {
    wire(value, pointer, Mode::parse, "live or test")
}

/// When and by whom the key was issued, as its first event records it.
async fn issued_record(
    state: &AppState,
    key_id: Uuid,
) -> Result<(DateTime<Utc>, String), ApiError> {
    let first = state
        .store
        .read_stream(&key_stream(key_id), 1, 1)
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound)?;
    let by = first
        .parsed_metadata()
        .ok()
        .and_then(|m| m.actor.id)
        .unwrap_or_default();
    Ok((first.recorded_at, by))
}
