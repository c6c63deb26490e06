//! The token signing keys' seeds: random Ed25519 seeds sealed under the KEK
//! in `token_signing_keys` (the log carries only each key's id and public
//! half), and the seeds this node has opened. [`super::rotate`] reseals
//! them with every KEK rotation.

use std::collections::HashMap;
use std::sync::Mutex;

use deadpool_postgres::GenericClient;
use ed25519_dalek::SigningKey;

/// What a signing key's seed is sealed with.
pub fn seed_context(kid: &str) -> Vec<u8> {
    [b"token-signing-key/".as_slice(), kid.as_bytes()].concat()
}

/// The signing keys this node has opened, by id. Never printed.
#[derive(Default)]
pub struct SigningSeeds(Mutex<HashMap<String, SigningKey>>);

impl std::fmt::Debug for SigningSeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSeeds(..)")
    }
}

impl SigningSeeds {
    /// The opened key `kid`, if this node has it.
    pub fn get(&self, kid: &str) -> Option<SigningKey> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(kid)
            .cloned()
    }

    /// Keeps the opened key `kid`.
    pub fn put(&self, kid: &str, key: SigningKey) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kid.to_owned(), key);
    }
}

/// The sealed seed of signing key `kid`; `None` for a key made before
/// seeds were stored (derived from the index key).
pub async fn sealed_seed(
    client: &impl GenericClient,
    kid: &str,
) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT sealed_seed FROM token_signing_keys WHERE kid = $1",
            &[&kid],
        )
        .await?
        .map(|r| r.get(0)))
}

/// Stores the sealed seed of a new signing key.
pub async fn store_seed(
    client: &impl GenericClient,
    kid: &str,
    sealed: &[u8],
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO token_signing_keys (kid, sealed_seed) VALUES ($1, $2)",
            &[&kid, &sealed],
        )
        .await?;
    Ok(())
}

/// Whether signing key `kid` has a stored seed (a random key, not one
/// derived from the index key).
pub async fn has_seed(
    client: &impl GenericClient,
    kid: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt("SELECT 1 FROM token_signing_keys WHERE kid = $1", &[&kid])
        .await?
        .is_some())
}
