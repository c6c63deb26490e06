//! The `audit.*` family: signed checkpoints of the hash chain.
//!
//! A hash chain alone does not stop whoever can write the events table: they
//! can edit an event, recompute every later hash and move the head, or cut
//! the tail off. A checkpoint is the server's Ed25519 signature over the
//! (position, hash) of the head at a moment, made with a key that never
//! enters the database. Whoever holds the public key and one checkpoint can
//! tell whether the log they are shown still contains, at that position, the
//! history that was signed: certificate transparency's signed tree heads,
//! for a linear log.
//!
//! The signed bytes are fixed here, because verifiers outside Gatehouse
//! (`gatehouse-replay verify --export`, an auditor's own script) rebuild them:
//! `"gatehouse/checkpoint/v1" || position (u64, big-endian) || hash (32 bytes)
//! || signed_at (microseconds since the Unix epoch, i64, big-endian)`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Hash;

/// The stream every checkpoint is appended to.
pub const CHECKPOINT_STREAM: &str = "audit-checkpoints";

/// The domain tag at the start of every signed checkpoint.
const TAG: &[u8] = b"gatehouse/checkpoint/v1";

/// `audit.checkpoint_signed` v1: the server signed the head of the chain.
/// Stream [`CHECKPOINT_STREAM`]. The checkpoint covers an earlier head than
/// its own position: it is appended after what it signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckpointSigned {
    /// The global position signed.
    pub position: u64,
    /// The chain's hash at that position, hex.
    pub hash: String,
    /// When it was signed, to the microsecond.
    pub signed_at: DateTime<Utc>,
    /// The signing key's id: [`key_id`] of its public key.
    pub key_id: String,
    /// The Ed25519 signature over the signed bytes, base64.
    pub signature: String,
}

/// Why a checkpoint does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Signed by a key other than the one offered.
    #[error("signed by key {found}, not by {expected}")]
    OtherKey {
        /// The key id the checkpoint names.
        found: String,
        /// The key id of the key offered.
        expected: String,
    },
    /// The hash or signature is not well-formed.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The signature does not match the signed fields.
    #[error("the signature does not match the checkpoint")]
    BadSignature,
}

/// A public key's id: the first 8 bytes of its SHA-256, hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The bytes a checkpoint signs.
pub fn signed_bytes(position: u64, hash: &Hash, signed_at: DateTime<Utc>) -> Vec<u8> {
    let mut out = Vec::with_capacity(TAG.len() + 8 + 32 + 8);
    out.extend_from_slice(TAG);
    out.extend_from_slice(&position.to_be_bytes());
    out.extend_from_slice(hash);
    out.extend_from_slice(&signed_at.timestamp_micros().to_be_bytes());
    out
}

impl CheckpointSigned {
    /// Signs `(position, hash)` at `signed_at` (truncated to microseconds,
    /// the precision that is signed).
    pub fn sign(key: &SigningKey, position: u64, hash: &Hash, signed_at: DateTime<Utc>) -> Self {
        let signed_at = DateTime::from_timestamp_micros(signed_at.timestamp_micros())
            .expect("a time from a clock is in range");
        let signature = key.sign(&signed_bytes(position, hash, signed_at));
        CheckpointSigned {
            position,
            hash: hex::encode(hash),
            signed_at,
            key_id: key_id(&key.verifying_key()),
            signature: B64.encode(signature.to_bytes()),
        }
    }

    /// The signed hash.
    pub fn hash_bytes(&self) -> Result<Hash, CheckpointError> {
        let bytes = hex::decode(&self.hash).map_err(|_| CheckpointError::Malformed("hash"))?;
        bytes
            .try_into()
            .map_err(|_| CheckpointError::Malformed("hash"))
    }

    /// Checks the signature with `key`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let expected = key_id(key);
        if self.key_id != expected {
            return Err(CheckpointError::OtherKey {
                found: self.key_id.clone(),
                expected,
            });
        }
        let signature = B64
            .decode(&self.signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or(CheckpointError::Malformed("signature"))?;
        key.verify(
            &signed_bytes(self.position, &self.hash_bytes()?, self.signed_at),
            &signature,
        )
        .map_err(|_| CheckpointError::BadSignature)
    }
}

/// A public key from its base64 form.
pub fn public_key_from_base64(text: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = B64.decode(text.trim()).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// The format an audit export names in its manifest.
pub const EXPORT_FORMAT: &str = "gatehouse-audit-export/v1";

/// The domain tag of a signed export manifest.
const MANIFEST_TAG: &[u8] = b"gatehouse/export-manifest/v1";

/// What an audit export holds, signed by the server as its last line, so a
/// file can be checked offline with the public key alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExportManifest {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// `platform`, or `org:<uuid>` for one organisation's history.
    pub scope: String,
    /// Entries in the file.
    pub count: u64,
    /// The first entry's position.
    pub first_position: Option<u64>,
    /// The last entry's position.
    pub last_position: Option<u64>,
    /// The last entry's hash, hex.
    pub last_hash: Option<String>,
    /// SHA-256 (hex) of every byte of the file before the manifest line.
    pub sha256: String,
    /// When the export was made.
    pub exported_at: DateTime<Utc>,
    /// The checkpoint signed for this export: no entry lies beyond it.
    pub checkpoint: CheckpointSigned,
}

/// A manifest with the server's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SignedManifest {
    /// What is signed.
    pub manifest: ExportManifest,
    /// The signing key's id.
    pub key_id: String,
    /// Ed25519 over `"gatehouse/export-manifest/v1" || the manifest's JSON`
    /// (its fields in the order above, no whitespace), base64.
    pub signature: String,
}

impl ExportManifest {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = MANIFEST_TAG.to_vec();
        out.extend(serde_json::to_vec(self).expect("a manifest serialises"));
        out
    }

    /// Signs the manifest.
    pub fn sign(self, key: &SigningKey) -> SignedManifest {
        let signature = key.sign(&self.signed_bytes());
        SignedManifest {
            key_id: key_id(&key.verifying_key()),
            signature: B64.encode(signature.to_bytes()),
            manifest: self,
        }
    }
}

impl SignedManifest {
    /// Checks the manifest's signature and its checkpoint's with `key`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let expected = key_id(key);
        if self.key_id != expected {
            return Err(CheckpointError::OtherKey {
                found: self.key_id.clone(),
                expected,
            });
        }
        let signature = B64
            .decode(&self.signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or(CheckpointError::Malformed("signature"))?;
        key.verify(&self.manifest.signed_bytes(), &signature)
            .map_err(|_| CheckpointError::BadSignature)?;
        self.manifest.checkpoint.verify(key)
    }
}

event_family! {
    /// Every event of the `audit.*` family.
    pub enum AuditEvent {
        /// `audit.checkpoint_signed`
        CheckpointSigned(CheckpointSigned) = "audit.checkpoint_signed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn a_checkpoint_verifies_with_its_key_only() {
        let at = DateTime::from_timestamp(1_800_000_000, 123_456_789).expect("in range");
        let c = CheckpointSigned::sign(&key(), 42, &[9u8; 32], at);
        assert_eq!(c.signed_at.timestamp_subsec_nanos(), 123_456_000);
        c.verify(&key().verifying_key()).expect("verifies");
        let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
        assert!(matches!(
            c.verify(&other),
            Err(CheckpointError::OtherKey { .. })
        ));
    }

    #[test]
    fn changing_any_signed_field_breaks_the_signature() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).expect("in range");
        let c = CheckpointSigned::sign(&key(), 42, &[9u8; 32], at);
        let public = key().verifying_key();
        let mut moved = c.clone();
        moved.position = 41;
        assert_eq!(moved.verify(&public), Err(CheckpointError::BadSignature));
        let mut rehashed = c.clone();
        rehashed.hash = hex::encode([1u8; 32]);
        assert_eq!(rehashed.verify(&public), Err(CheckpointError::BadSignature));
        let mut redated = c;
        redated.signed_at += chrono::Duration::microseconds(1);
        assert_eq!(redated.verify(&public), Err(CheckpointError::BadSignature));
    }
}
