//! The checkpoint signer: signs the head of the hash chain with the audit
//! key (held outside the database), appends the checkpoint to the log, and
//! keeps the newest one in a witness file beside the key, where whoever
//! can rewrite the database cannot reach it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use event_schemas::audit::{key_id, CheckpointSigned, CHECKPOINT_STREAM};
use event_schemas::{Actor, ExpectedVersion, Hash, Metadata, NewEvent};
use event_store::{AppendError, StreamAppend};
use rand::RngCore;
use tokio::sync::watch;

use crate::error::ApiError;
use crate::state::AppState;

/// The file the generated signing key lives in, under the data directory.
pub const KEY_FILE: &str = "audit-signing.key";
/// The witness file: the newest checkpoint this node signed, as JSON.
pub const WITNESS_FILE: &str = "audit-checkpoint.json";

/// Why the signing key cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not 32 bytes of base64.
    #[error("the audit signing key must be a 32-byte Ed25519 seed, base64-encoded")]
    Malformed,
    /// The key file could not be read or written.
    #[error("audit signing key file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The audit signing key and where this node keeps its witness.
#[derive(Clone)]
pub struct AuditKey {
    key: SigningKey,
    witness: PathBuf,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({})", key_id(&self.key.verifying_key()))
    }
}

fn decode(text: &str) -> Result<SigningKey, KeyError> {
    let seed: [u8; 32] = B64
        .decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(KeyError::Malformed)?;
    Ok(SigningKey::from_bytes(&seed))
}

impl AuditKey {
    /// The key from base64 configuration, or from `<data_dir>/audit-signing.key`,
    /// generated there (mode 0600) the first time.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> Result<Self, KeyError> {
        let witness = data_dir.join(WITNESS_FILE);
        if let Some(text) = configured {
            return Ok(AuditKey {
                key: decode(text)?,
                witness,
            });
        }
        let path = data_dir.join(KEY_FILE);
        let file_err = |source| KeyError::File {
            path: path.clone(),
            source,
        };
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => decode(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::create_dir_all(data_dir).map_err(file_err)?;
                let mut seed = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut seed);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(file_err)?;
                f.write_all(B64.encode(seed).as_bytes()).map_err(file_err)?;
                tracing::warn!(path = %path.display(), "generated an audit signing key; back it up, and give every node the same one (GATEHOUSE_AUDIT_SIGNING_KEY)");
                SigningKey::from_bytes(&seed)
            }
            Err(e) => return Err(file_err(e)),
        };
        Ok(AuditKey { key, witness })
    }

    /// The public half.
    pub fn public(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs `(position, hash)` now.
    pub fn sign(&self, position: u64, hash: &Hash) -> CheckpointSigned {
        CheckpointSigned::sign(&self.key, position, hash, chrono::Utc::now())
    }

    /// Signs an export's manifest.
    pub fn sign_manifest(
        &self,
        manifest: event_schemas::audit::ExportManifest,
    ) -> event_schemas::audit::SignedManifest {
        manifest.sign(&self.key)
    }

    /// The position of the newest checkpoint this node signed, from its
    /// witness file (outside the database, so it outlives a rewind).
    pub fn witnessed(&self) -> Option<u64> {
        let text = std::fs::read_to_string(&self.witness).ok()?;
        serde_json::from_str::<CheckpointSigned>(&text)
            .ok()
            .map(|c| c.position)
    }

    /// Replaces the witness file with `checkpoint` (write, then rename, so a
    /// crash leaves the old one or the new one, never half of either). A
    /// checkpoint older than the witness's is not written.
    fn witness(&self, checkpoint: &CheckpointSigned) -> std::io::Result<()> {
        if let Ok(text) = std::fs::read_to_string(&self.witness) {
            if let Ok(held) = serde_json::from_str::<CheckpointSigned>(&text) {
                if held.position >= checkpoint.position {
                    return Ok(());
                }
            }
        }
        let tmp = self.witness.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(checkpoint)?)?;
        std::fs::rename(&tmp, &self.witness)
    }
}

/// The newest checkpoint in the log, with its own global position.
pub async fn newest(state: &AppState) -> Result<Option<(u64, CheckpointSigned)>, ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT global_position, data::text FROM events WHERE stream_id = $1 \
             ORDER BY stream_version DESC LIMIT 1",
            &[&CHECKPOINT_STREAM],
        )
        .await?;
    row.map(|r| {
        let data: String = r.get(1);
        serde_json::from_str(&data)
            .map(|c| (r.get::<_, i64>(0) as u64, c))
            .map_err(ApiError::internal)
    })
    .transpose()
}

/// Signs the head unless the newest checkpoint already covers everything
/// but itself, and appends the checkpoint. Answers the checkpoint covering
/// the head as it was read (new or the existing one).
pub async fn checkpoint(state: &AppState) -> Result<CheckpointSigned, ApiError> {
    for _ in 0..crate::command::ATTEMPTS {
        let newest = newest(state).await?;
        let (position, hash) = {
            let client = state.pool.get().await?;
            let row = client
                .query_one("SELECT position, hash FROM log_head WHERE id", &[])
                .await?;
            let hash: Vec<u8> = row.get(1);
            let hash: Hash = hash
                .try_into()
                .map_err(|_| ApiError::Internal("the head's hash is not 32 bytes".into()))?;
            (row.get::<_, i64>(0) as u64, hash)
        };
        let version = match &newest {
            // Nothing but the checkpoint itself was appended since it.
            Some((at, c)) if *at >= position || c.position >= position => return Ok(c.clone()),
            Some(_) => {
                let client = state.pool.get().await?;
                let v: i64 = client
                    .query_one(
                        "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = $1",
                        &[&CHECKPOINT_STREAM],
                    )
                    .await?
                    .get(0);
                ExpectedVersion::Exact(v as u64)
            }
            None => ExpectedVersion::NoStream,
        };
        let signed = state.audit_key.sign(position, &hash);
        let event = NewEvent::from_domain(
            &event_schemas::audit::AuditEvent::CheckpointSigned(signed.clone()),
            Metadata::by(Actor::system()),
        );
        match state
            .store
            .append_all(vec![StreamAppend::new(
                CHECKPOINT_STREAM,
                version,
                vec![event],
            )])
            .await
        {
            Ok(_) => {
                if let Err(e) = state.audit_key.witness(&signed) {
                    tracing::error!(error = %e, "cannot write the checkpoint witness file");
                }
                return Ok(signed);
            }
            // Another node signed meanwhile: look again.
            Err(AppendError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict {
        code: "concurrent-modification",
        detail: "checkpoints kept being signed concurrently; retry".into(),
    })
}

/// Signs a checkpoint every `interval` while the head moves, until `stop`.
pub async fn run(state: AppState, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = checkpoint(&state).await {
            tracing::warn!(error = %e, "signing a checkpoint failed; trying again next interval");
        }
    }
}
