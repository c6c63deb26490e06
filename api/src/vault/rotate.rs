//! Rotating the key-encryption key. Everything sealed under the KEK is
//! sealed again under the new one: the subject keys (so personal data
//! stays readable), the index key in `vault_root` (so email lookups and
//! fingerprints do not change), the token signing keys' seeds, and each
//! webhook endpoint's signing
//! secrets (a `webhook.secrets_resealed` event per endpoint, with the new
//! `kek_id`). Nodes run with the new KEK and the old one as previous
//! while this runs; afterwards the old one is needed only for what it
//! sealed that expires on its own (stored `Idempotency-Key` answers, a day).
//!
//! The log is immutable: the events that carried a secret sealed under
//! the old KEK still do. Whoever holds the old KEK and a copy of the log
//! can open those; rotate the secrets themselves to take that away.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use domain::webhooks::{Endpoint, EndpointStatus};
use event_schemas::webhook::{webhook_stream, SealedSecret, SecretsResealed, WebhookEvent};
use event_schemas::{Actor, ExpectedVersion, Metadata, NewEvent};
use event_store::postgres::PgStore;
use event_store::{EventStore, EventStoreExt};
use uuid::Uuid;

use super::{Vault, VaultError, ROOT_AAD};

/// What a rotation resealed.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// Subject keys.
    pub subject_keys: usize,
    /// Token signing keys.
    pub signing_keys: usize,
    /// Endpoints whose secrets were resealed (one event each).
    pub endpoints: usize,
    /// The new KEK's id.
    pub kek_id: String,
}

/// Why a rotation stopped (it can be run again: what is done is skipped).
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// Sealed data or the database.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The log.
    #[error(transparent)]
    Store(#[from] event_store::StoreError),
    /// Appending a reseal.
    #[error(transparent)]
    Append(#[from] event_store::AppendError),
    /// A pool connection.
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
    /// An endpoint's stream does not fold.
    #[error("endpoint {0}: {1}")]
    Endpoint(Uuid, String),
}

impl Vault {
    /// A vault over `kek` that keeps this one's index key and opens what
    /// this one sealed.
    pub fn successor(&self, kek: [u8; 32]) -> Vault {
        let mut next = Vault::new(kek);
        next.index_key = self.index_key;
        next.previous = Some(self.kek.clone());
        next
    }

    fn reseal(&self, next: &Vault, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        Ok(next.kek.seal(aad, &self.open_kek(aad, sealed)?))
    }
}

/// Reseals under `next` (made with [`Vault::successor`] of `old`)
/// everything `old` sealed.
pub async fn rotate(store: &PgStore, old: &Vault, next: &Vault) -> Result<Rotated, RotateError> {
    let mut client = store.pool().get().await?;
    let tx = client.transaction().await.map_err(VaultError::from)?;
    let rows = tx
        .query(
            "SELECT subject_id, sealed_key FROM subject_keys FOR UPDATE",
            &[],
        )
        .await
        .map_err(VaultError::from)?;
    for r in &rows {
        let subject: Uuid = r.get(0);
        let sealed = old.reseal(next, subject.as_bytes(), r.get(1))?;
        tx.execute(
            "UPDATE subject_keys SET sealed_key = $2 WHERE subject_id = $1",
            &[&subject, &sealed],
        )
        .await
        .map_err(VaultError::from)?;
    }
    let seeds = tx
        .query(
            "SELECT kid, sealed_seed FROM token_signing_keys FOR UPDATE",
            &[],
        )
        .await
        .map_err(VaultError::from)?;
    for r in &seeds {
        let kid: String = r.get(0);
        let context = super::signing::seed_context(&kid);
        let sealed = old.reseal(next, &context, r.get(1))?;
        tx.execute(
            "UPDATE token_signing_keys SET sealed_seed = $2 WHERE kid = $1",
            &[&kid, &sealed],
        )
        .await
        .map_err(VaultError::from)?;
    }
    let root = next.kek.seal(ROOT_AAD, &old.index_key);
    tx.execute(
        "INSERT INTO vault_root (id, sealed_index_key) VALUES (1, $1) \
         ON CONFLICT (id) DO UPDATE SET sealed_index_key = EXCLUDED.sealed_index_key",
        &[&root],
    )
    .await
    .map_err(VaultError::from)?;
    tx.commit().await.map_err(VaultError::from)?;
    drop(client);

    // Endpoints from the log itself, not from the dispatcher's copy, which
    // may not have caught up.
    let streams: Vec<String> = store
        .pool()
        .get()
        .await?
        .query(
            "SELECT stream_id FROM events WHERE event_type = 'webhook.endpoint_created' \
             ORDER BY global_position",
            &[],
        )
        .await
        .map_err(VaultError::from)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut endpoints = 0;
    for stream in streams {
        let mut endpoint = Endpoint::default();
        for e in store.read_stream(&stream, 1, 100_000).await? {
            if let Some(event) = WebhookEvent::decode(&e)
                .map_err(|x| RotateError::Endpoint(Uuid::nil(), format!("{stream}: {x}")))?
            {
                endpoint
                    .apply(&event)
                    .map_err(|x| RotateError::Endpoint(endpoint.id, x))?;
            }
        }
        if endpoint.status == EndpointStatus::Deleted {
            continue;
        }
        let Some(current) = &endpoint.secret else {
            continue;
        };
        if current.kek_id == next.kek_id {
            continue;
        }
        let context = super::webhooks::secret_context(endpoint.id);
        let reseal = |s: &SealedSecret| -> Result<SealedSecret, VaultError> {
            let bytes = B64.decode(&s.sealed).map_err(|_| VaultError::Unseal)?;
            Ok(SealedSecret {
                sealed: B64.encode(old.reseal(next, &context, &bytes)?),
                kek_id: next.kek_id.clone(),
                public_key: s.public_key.clone(),
            })
        };
        let event = WebhookEvent::SecretsResealed(SecretsResealed {
            secret: reseal(current)?,
            previous: endpoint
                .previous
                .as_ref()
                .map(|(p, _)| reseal(p))
                .transpose()?,
        });
        let metadata = Metadata {
            org_id: Some(endpoint.org_id),
            ..Metadata::by(Actor::system())
        };
        store
            .append(
                &webhook_stream(endpoint.id),
                ExpectedVersion::Any,
                vec![NewEvent::from_domain(&event, metadata)],
            )
            .await?;
        endpoints += 1;
    }
    Ok(Rotated {
        subject_keys: rows.len(),
        signing_keys: seeds.len(),
        endpoints,
        kek_id: next.kek_id.clone(),
    })
}
