//! Webhooks: an app's endpoints (`/v1/apps/{app}/webhooks`, `/v1/webhooks/{id}`),
//! messages other services publish (`POST /v1/apps/{app}/events`), the
//! catalog of deliverable types (`GET /v1/event-types`), and each
//! endpoint's delivery log, health and replay.
//!
//! Every endpoint has its own stream (`webhook-<id>`); the `delivery` crate
//! follows the log, keeps its working copy in the `delivery` schema and
//! sends. Lists and the log are read from that copy, after the feeder has
//! reached the position the caller asks for (`Gatehouse-Min-Position`).
//!
//! # Layout
//! - `endpoints`: create, list, read; `commands`: update, disable, enable,
//!   delete, rotate the secret.
//! - `messages`: publishing, and the catalog of types.
//! - `deliveries`: the delivery log and health; `replay`: replay and
//!   recover; `summary`: the app's Webhooks page.
//!
//! The settings, the publish quota and the retention job are in
//! `crate::webhooks`; what webhooks seal (secrets, payloads) and the
//! dispatcher's keyring in `crate::vault::webhooks`; the dispatcher's
//! tables are read through `delivery::read`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::{DateTime, Utc};
use delivery::sign::SigningSecret;
use domain::apps::{App, Mode};
use domain::orgs::Org;
use domain::webhooks::{self, Endpoint};
use event_schemas::webhook::{webhook_stream, MessagePublished, SealedSecret};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::apps::wire;
use crate::authorize::AppReader;
use crate::command::{Committed, Plan, RequestMeta};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, MinPosition, OptionalJson, Path, Session};
use crate::page::{Page, PageQuery, Paging, TimeKey};
use crate::state::AppState;
use crate::vault::webhooks::{payload_context, secret_context};
use crate::vault::Vault;

mod commands;
mod deliveries;
mod endpoints;
mod messages;
mod replay;
mod summary;

pub use commands::*;
pub use deliveries::*;
pub use endpoints::*;
pub use messages::*;
pub use replay::*;
pub use summary::*;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/apps/{app}/webhooks",
            post(create_endpoint).get(list_endpoints),
        )
        .route("/v1/apps/{app}/webhooks/summary", get(summary))
        .route("/v1/apps/{app}/events", post(publish_message))
        .route("/v1/event-types", get(event_types))
        .route(
            "/v1/webhooks/{id}",
            get(get_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
        .route("/v1/webhooks/{id}/disable", post(disable_endpoint))
        .route("/v1/webhooks/{id}/enable", post(enable_endpoint))
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            post(rotate_endpoint_secret),
        )
        .route("/v1/webhooks/{id}/replay", post(replay))
        .route("/v1/webhooks/{id}/recover", post(recover))
        .route("/v1/webhooks/{id}/deliveries", get(list_deliveries))
        .route("/v1/webhooks/{id}/health", get(health))
}

/// A new signing secret for `scheme`, derived from the command's secret
/// seed (so a retry with the same `Idempotency-Key` answers the same one),
/// and its sealed form.
pub(crate) fn new_secret(
    state: &AppState,
    ids: &crate::command::CommandIds,
    endpoint_id: Uuid,
    scheme: webhooks::Scheme,
    purpose: &str,
) -> (SigningSecret, SealedSecret) {
    let seed: [u8; 32] = ids.secret(purpose);
    let secret = match scheme {
        webhooks::Scheme::Hmac => SigningSecret::hmac_from(seed),
        webhooks::Scheme::Ed25519 => SigningSecret::ed25519_from(seed),
    };
    let sealed = state
        .vault
        .seal_service(&secret_context(endpoint_id), secret.expose().as_bytes());
    let sealed = SealedSecret {
        sealed: base64::engine::general_purpose::STANDARD.encode(sealed),
        kek_id: state.vault.kek_id().to_owned(),
        public_key: secret.public_key(),
    };
    (secret, sealed)
}

/// An endpoint as its stream holds it, with its app and organisation, for
/// a caller who may read the app (404 otherwise).
async fn load_endpoint(
    state: &AppState,
    id: Uuid,
    user: Uuid,
) -> Result<
    (
        Arc<crate::command::Loaded<Endpoint>>,
        Arc<crate::command::Loaded<App>>,
        Org,
    ),
    ApiError,
> {
    let endpoint = state.commands.load::<Endpoint>(&webhook_stream(id)).await?;
    if !endpoint.exists || endpoint.status == webhooks::EndpointStatus::Deleted {
        return Err(ApiError::NotFound);
    }
    let (app, org) = super::keys::app_and_org(state, endpoint.app_id, user).await?;
    if !webhooks::readable(&org, &app, &endpoint, user) {
        return Err(ApiError::NotFound);
    }
    Ok((endpoint, app, org))
}

/// Waits (up to the read wait) until the feeder has reached `position`.
pub(crate) async fn fed(state: &AppState, min: MinPosition) -> Result<(), ApiError> {
    let Some(wanted) = min.0 else { return Ok(()) };
    min.within_log(state).await?;
    let started = Instant::now();
    loop {
        let client = state.pool.get().await?;
        let at = delivery::read::feed_position(&client).await?;
        drop(client);
        if at as u64 >= wanted {
            return Ok(());
        }
        if started.elapsed() >= state.read_wait {
            return Err(projections::NotCaughtUp {
                projection: "delivery",
                position: at as u64,
                wanted,
            }
            .into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// When the stream's first event was recorded: an endpoint's creation.
pub(crate) async fn created_at(state: &AppState, id: Uuid) -> Result<DateTime<Utc>, ApiError> {
    Ok(state
        .store
        .read_stream(&webhook_stream(id), 1, 1)
        .await?
        .first()
        .ok_or(ApiError::NotFound)?
        .recorded_at)
}
