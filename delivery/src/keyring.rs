//! What delivery needs from the key-encryption key without holding it:
//! opening an endpoint's sealed signing secret, and a published message's
//! sealed payload. The HTTP crate's vault implements it.

use async_trait::async_trait;
use event_schemas::webhook::{MessagePublished, SealedSecret};
use uuid::Uuid;

use crate::sign::SigningSecret;

/// Sealed data did not open.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyringError(pub String);

/// Opens what the API sealed.
#[async_trait]
pub trait Keyring: Send + Sync + 'static {
    /// The signing secret sealed for `endpoint_id`.
    fn open_secret(
        &self,
        endpoint_id: Uuid,
        secret: &SealedSecret,
    ) -> Result<SigningSecret, KeyringError>;

    /// A published message's payload (JSON text), or `None` once retention
    /// destroyed its key.
    async fn open_payload(
        &self,
        message: &MessagePublished,
    ) -> Result<Option<Vec<u8>>, KeyringError>;
}
