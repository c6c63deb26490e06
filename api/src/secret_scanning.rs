//! GitHub secret scanning's settings: the public keys GitHub signs its
//! reports with, by identifier, and what to do with a leaked live key. The
//! partner endpoint itself is `routes::secret_scanning`.

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};

use crate::error::ApiError;

/// The public keys GitHub signs with, by identifier, and what to do with a
/// leaked live key.
#[derive(Clone, Default)]
pub struct SecretScanning {
    keys: Vec<(String, VerifyingKey)>,
    /// Revoke leaked live keys too (else they are flagged and the owners
    /// told).
    pub revoke_live: bool,
}

impl SecretScanning {
    /// Reads `<identifier>=<base64 DER SubjectPublicKeyInfo>` entries.
    pub fn from_config(entries: &[String], revoke_live: bool) -> Result<Self, String> {
        use p256::pkcs8::DecodePublicKey;
        let mut keys = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let (id, der) = entry.split_once('=').ok_or_else(|| {
                format!("secret scanning key {entry:.20}...: expected <identifier>=<base64 DER>")
            })?;
            let der = B64
                .decode(der.trim())
                .map_err(|_| format!("secret scanning key {id}: not base64"))?;
            let key = VerifyingKey::from_public_key_der(&der)
                .map_err(|_| format!("secret scanning key {id}: not a DER P-256 public key"))?;
            keys.push((id.trim().to_owned(), key));
        }
        Ok(SecretScanning { keys, revoke_live })
    }

    /// Checks that GitHub signed `body` (the headers name the key and carry
    /// the signature); 403 `invalid-signature` otherwise.
    pub fn check(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
        let refused = |detail: &str| ApiError::Forbidden {
            code: "invalid-signature",
            detail: detail.into(),
            permission: None,
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let id = header("github-public-key-identifier")
            .ok_or_else(|| refused("GITHUB-PUBLIC-KEY-IDENTIFIER is missing"))?;
        let signature = header("github-public-key-signature")
            .and_then(|s| B64.decode(s.trim()).ok())
            .and_then(|der| Signature::from_der(&der).ok())
            .ok_or_else(|| {
                refused("GITHUB-PUBLIC-KEY-SIGNATURE is not a base64 DER ECDSA signature")
            })?;
        let (_, key) = self.keys.iter().find(|(k, _)| k == id).ok_or_else(|| {
            refused("the public key identifier is not one this deployment trusts")
        })?;
        key.verify(body, &signature)
            .map_err(|_| refused("the signature does not match the body"))
    }
}
