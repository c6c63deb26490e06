//! The published checkpoints and the key that verifies them. Both are
//! public: whoever keeps a copy of a checkpoint (an auditor, a witness
//! service, a backup) can later show that the log still holds, at that
//! position, the history that was signed.

#[allow(unused_imports)]
use super::*;

use base64::Engine;
use event_schemas::audit::{key_id, CheckpointSigned};

/// A signed checkpoint of the chain.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckpointView {
    /// The global position signed.
    pub position: u64,
    /// The chain's hash at that position, hex.
    pub hash: String,
    /// When it was signed.
    pub signed_at: DateTime<Utc>,
    /// The signing key's id.
    pub key_id: String,
    /// Ed25519 signature, base64, over `"gatehouse/checkpoint/v1" ||
    /// position (u64 BE) || hash (32 bytes) || signed_at (µs since the
    /// epoch, i64 BE)`.
    pub signature: String,
    /// Where the checkpoint itself sits in the log.
    pub recorded_at_position: i64,
}

impl CheckpointView {
    /// The view of a checkpoint recorded at `at`.
    pub fn of(c: CheckpointSigned, at: i64) -> Self {
        CheckpointView {
            position: c.position,
            hash: c.hash,
            signed_at: c.signed_at,
            key_id: c.key_id,
            signature: c.signature,
            recorded_at_position: at,
        }
    }
}

/// The audit signing key.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeyView {
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    /// The key's id: the first 8 bytes of its SHA-256, hex.
    pub key_id: String,
    /// The 32-byte public key, base64.
    pub public_key: String,
}

/// The signed checkpoints, newest first.
#[utoipa::path(get, path = "/v1/audit/checkpoints", tag = "audit",
    params(PageQuery),
    responses((status = 200, body = Page<CheckpointView>), (status = 400, body = Problem)))]
pub async fn checkpoints(
    State(state): State<AppState>,
    paging: Paging<i64>,
) -> Result<Json<Page<CheckpointView>>, ApiError> {
    let client = state.pool.get().await?;
    let items = crate::audit::log::checkpoints(&client, paging.after, paging.fetch())
        .await?
        .into_iter()
        .map(|(at, c)| CheckpointView::of(c, at))
        .collect();
    Ok(Json(Page::new(items, &paging, |c| c.recorded_at_position)))
}

/// The public key checkpoints and export manifests are signed with.
#[utoipa::path(get, path = "/v1/audit/public-key", tag = "audit",
    responses((status = 200, body = PublicKeyView)))]
pub async fn public_key(State(state): State<AppState>) -> Json<PublicKeyView> {
    let public = state.audit_key.public();
    Json(PublicKeyView {
        algorithm: "Ed25519",
        key_id: key_id(&public),
        public_key: base64::engine::general_purpose::STANDARD.encode(public.as_bytes()),
    })
}
