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
//! - [`retention`]: the payload retention job; [`quota`]: the publish
//!   quota.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::{DateTime, Utc};
use delivery::keyring::{Keyring, KeyringError};
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
use crate::page::{self, Page, PageQuery, Paging, TimeKey};
use crate::state::AppState;
use crate::vault::Vault;

mod commands;
mod deliveries;
mod endpoints;
mod messages;
pub mod quota;
mod replay;
pub mod retention;
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

/// Webhook settings of this deployment.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookSettings {
    /// Which destinations endpoints may name.
    pub policy: delivery::ssrf::Policy,
}

/// The context a signing secret is sealed under: its endpoint.
pub(crate) fn secret_context(endpoint_id: Uuid) -> Vec<u8> {
    [b"webhook-secret/".as_slice(), endpoint_id.as_bytes()].concat()
}

/// The context a message payload is sealed under.
fn payload_context(message_id: Uuid) -> Vec<u8> {
    [b"webhook-payload/".as_slice(), message_id.as_bytes()].concat()
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

/// The retention keys of recent days, so publishing and feeding a
/// message does not read its day's key from the database each time.
/// Entries live a minute: a key destroyed by retention stops opening
/// within that.
#[derive(Default)]
pub struct RetentionKeys {
    keys: std::sync::Mutex<std::collections::HashMap<Uuid, (Instant, crate::vault::SubjectKey)>>,
}

impl RetentionKeys {
    const TTL: Duration = Duration::from_secs(60);

    /// Drops destroyed keys.
    pub fn forget(&self, ids: &[Uuid]) {
        let mut keys = self.keys.lock().expect("not poisoned");
        for id in ids {
            keys.remove(id);
        }
    }

    /// The key `id`: from the cache, else the database (created, and
    /// registered for retention, when a day is given); `None` when it was
    /// destroyed.
    pub async fn get(
        &self,
        vault: &Vault,
        pool: &deadpool_postgres::Pool,
        (id, day): (Uuid, Option<chrono::NaiveDate>),
    ) -> Result<Option<crate::vault::SubjectKey>, ApiError> {
        if let Some((at, key)) = self.keys.lock().expect("not poisoned").get(&id) {
            if at.elapsed() < Self::TTL {
                return Ok(Some(key.clone()));
            }
        }
        let client = pool.get().await?;
        let key = if let Some(day) = day {
            client
                .execute(
                    "INSERT INTO webhook_retention_keys (day, subject_id) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                    &[&day, &id],
                )
                .await?;
            Some(
                vault
                    .ensure_subject_key(&client, id)
                    .await
                    .map_err(ApiError::internal)?,
            )
        } else {
            vault
                .subject_key(&client, id)
                .await
                .map_err(ApiError::internal)?
        };
        let mut keys = self.keys.lock().expect("not poisoned");
        keys.retain(|_, (at, _)| at.elapsed() < Self::TTL);
        if let Some(k) = &key {
            keys.insert(id, (Instant::now(), k.clone()));
        }
        Ok(key)
    }
}

/// Opens what this module sealed, for the dispatcher.
pub struct VaultKeyring {
    /// The vault.
    pub vault: Vault,
    /// For the retention keys of message payloads.
    pub pool: deadpool_postgres::Pool,
    /// Recent retention keys.
    pub retention: Arc<RetentionKeys>,
}

#[async_trait]
impl Keyring for VaultKeyring {
    fn open_secret(
        &self,
        endpoint_id: Uuid,
        secret: &SealedSecret,
    ) -> Result<SigningSecret, KeyringError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&secret.sealed)
            .map_err(|_| KeyringError("a sealed secret is not base64".into()))?;
        let plain = self
            .vault
            .open_service(&secret_context(endpoint_id), &bytes)
            .map_err(|e| KeyringError(e.to_string()))?;
        let text = String::from_utf8(plain).map_err(|_| KeyringError("not text".into()))?;
        SigningSecret::parse(&text).map_err(|e| KeyringError(e.to_string()))
    }

    async fn open_payload(
        &self,
        message: &MessagePublished,
    ) -> Result<Option<Vec<u8>>, KeyringError> {
        let Some(key) = self
            .retention
            .get(&self.vault, &self.pool, (message.retention_key, None))
            .await
            .map_err(|e| KeyringError(e.to_string()))?
        else {
            return Ok(None);
        };
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&message.payload)
            .map_err(|_| KeyringError("a sealed payload is not base64".into()))?;
        key.open_bytes(&payload_context(message.message_id), &sealed)
            .map(Some)
            .map_err(|e| KeyringError(e.to_string()))
    }
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
        let at: i64 = client
            .query_one("SELECT position FROM delivery.feed WHERE id = 1", &[])
            .await?
            .get(0);
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
