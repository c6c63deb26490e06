//! The keys access tokens are signed with, and how tokens are issued
//! ([`settings`]). A signing key is a random Ed25519 seed, sealed under the
//! KEK (`vault::signing`); the log carries only its id and public half. The
//! endpoint itself is `routes::oauth`.

pub mod settings;

use domain::oauth::SigningKeys;
use ed25519_dalek::SigningKey;
use event_schemas::oauth::SIGNING_KEYS_STREAM;
use uuid::Uuid;
use verifier::token;

use crate::command::Plan;
use crate::error::ApiError;
use crate::state::AppState;
use crate::vault::signing::{self, seed_context};

/// The private half of signing key `kid`: its sealed seed (cached once
/// opened), or, for a key made before seeds were stored, the seed derived
/// from the index key.
pub async fn signing_key(state: &AppState, kid: &str) -> Result<SigningKey, ApiError> {
    if let Some(key) = state.signing_seeds.get(kid) {
        return Ok(key);
    }
    let client = state.pool.get().await?;
    let sealed = signing::sealed_seed(&client, kid).await?;
    let key = match sealed {
        Some(sealed) => {
            let seed: [u8; 32] = state
                .vault
                .open_service(&seed_context(kid), &sealed)?
                .try_into()
                .map_err(|_| ApiError::Internal("a signing seed is not 32 bytes".into()))?;
            SigningKey::from_bytes(&seed)
        }
        None => SigningKey::from_bytes(
            &state
                .vault
                .fingerprint("token-signing-key", &[kid.as_bytes()]),
        ),
    };
    state.signing_seeds.put(kid, key.clone());
    Ok(key)
}

/// Adds a signing key: a random seed, sealed and stored before its public
/// half is appended, so whichever node reads the event finds the seed.
/// With `only_if_none`, only when the deployment has none (a first start)
/// or its newest is a derived one (an upgrade).
pub async fn add_signing_key(
    state: &AppState,
    only_if_none: bool,
) -> Result<(String, u64), ApiError> {
    if only_if_none {
        let keys = state
            .commands
            .load::<SigningKeys>(SIGNING_KEYS_STREAM)
            .await?;
        if let Some((kid, _, _)) = keys.keys.last() {
            if has_stored_seed(state, kid).await? {
                return Ok((kid.clone(), 0));
            }
            tracing::warn!(
                kid,
                "the newest token signing key is derived, not random: rotating"
            );
        }
    }
    let kid = Uuid::now_v7().simple().to_string();
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let key = SigningKey::from_bytes(&seed);
    let sealed = state.vault.seal_service(&seed_context(&kid), &seed);
    signing::store_seed(&state.pool.get().await?, &kid, &sealed).await?;
    let public = token::public_key_x(&key.verifying_key());
    let (kid_ref, public_ref) = (&kid, &public);
    let ids = crate::command::CommandIds::default();
    let executed = state
        .commands
        .execute::<SigningKeys, _>(SIGNING_KEYS_STREAM, &ids, move |loaded| async move {
            let metadata = event_schemas::Metadata::by(event_schemas::Actor::system());
            let events = domain::oauth::add_signing_key(
                &loaded,
                kid_ref.clone(),
                public_ref.clone(),
                crate::command::now(),
            );
            Ok(Plan::new(events, metadata))
        })
        .await?;
    state.signing_seeds.put(&kid, key);
    Ok((kid, executed.position))
}

/// Whether signing key `kid` is a random one, its seed stored.
async fn has_stored_seed(state: &AppState, kid: &str) -> Result<bool, ApiError> {
    Ok(signing::has_seed(&state.pool.get().await?, kid).await?)
}

/// Makes sure the deployment signs with a random key: the first node to
/// start creates one; a deployment whose newest key is a derived one
/// rotates to a random one.
pub async fn ensure_signing_key(state: &AppState) -> Result<(), ApiError> {
    add_signing_key(state, true).await.map(|_| ())
}
