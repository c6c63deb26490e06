//! What webhooks seal: each endpoint's signing secrets (under the KEK, in
//! the context of their endpoint) and each message's payload (under the
//! retention key of its day, so destroying that key purges the day), and
//! the [`VaultKeyring`] that opens both for the dispatcher.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use delivery::keyring::{Keyring, KeyringError};
use delivery::sign::SigningSecret;
use event_schemas::webhook::{MessagePublished, SealedSecret};
use uuid::Uuid;

use super::{SubjectKey, Vault};
use crate::error::ApiError;

/// The context a signing secret is sealed under: its endpoint.
pub fn secret_context(endpoint_id: Uuid) -> Vec<u8> {
    [b"webhook-secret/".as_slice(), endpoint_id.as_bytes()].concat()
}

/// The context a message payload is sealed under.
pub fn payload_context(message_id: Uuid) -> Vec<u8> {
    [b"webhook-payload/".as_slice(), message_id.as_bytes()].concat()
}

/// The retention keys of recent days, so publishing and feeding a
/// message does not read its day's key from the database each time.
/// Entries live a minute: a key destroyed by retention stops opening
/// within that.
#[derive(Default)]
pub struct RetentionKeys {
    keys: Mutex<HashMap<Uuid, (Instant, SubjectKey)>>,
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
    ) -> Result<Option<SubjectKey>, ApiError> {
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

/// Opens what webhooks sealed, for the dispatcher.
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
