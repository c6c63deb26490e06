//! The audit key: the Ed25519 key checkpoints and exports are signed with
//! (held outside the database), and the witness file beside it that keeps
//! the newest checkpoint this node signed.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use event_schemas::audit::{key_id, CheckpointSigned};
use event_schemas::Hash;
use rand::RngCore;

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
    pub(crate) fn witness(&self, checkpoint: &CheckpointSigned) -> std::io::Result<()> {
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
