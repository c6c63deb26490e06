//! Where `verify` finds what it checks the chain against: the audit public
//! key and the checkpoints kept outside the database.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use event_schemas::audit::{public_key_from_base64, CheckpointSigned};
use replay_tools::Anchors;

/// The server's key file and witness file, under its data directory.
const KEY_FILE: &str = "audit-signing.key";
const WITNESS_FILE: &str = "audit-checkpoint.json";

/// The public key from `given` (base64, or a file of it or of the JSON of
/// `GET /v1/audit/public-key`), else the public half of the data
/// directory's signing key.
pub fn public_key(given: Option<&str>, data_dir: &Path) -> anyhow::Result<Option<VerifyingKey>> {
    if let Some(given) = given {
        let text = match std::fs::read_to_string(given) {
            Ok(text) => text,
            Err(_) => given.to_owned(),
        };
        let text = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => v
                .get("public_key")
                .and_then(|k| k.as_str())
                .map(str::to_owned)
                .unwrap_or(text),
            Err(_) => text,
        };
        return public_key_from_base64(&text)
            .map(Some)
            .context("--public-key is not a base64 Ed25519 public key (nor a file of one)");
    }
    match std::fs::read_to_string(data_dir.join(KEY_FILE)) {
        Ok(text) => {
            let seed: [u8; 32] = B64
                .decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .context("the data directory's audit signing key is not 32 bytes of base64")?;
            Ok(Some(SigningKey::from_bytes(&seed).verifying_key()))
        }
        Err(_) => Ok(None),
    }
}

/// The checkpoints in `file`: one, an array, a page (`{"items": [...]}`)
/// or JSON Lines.
fn read_checkpoints(file: &Path) -> anyhow::Result<Vec<CheckpointSigned>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading checkpoints from {}", file.display()))?;
    let parse = |v: serde_json::Value| -> anyhow::Result<Vec<CheckpointSigned>> {
        let v = match v {
            serde_json::Value::Object(mut m) if m.contains_key("items") => {
                m.remove("items").unwrap_or_default()
            }
            v => v,
        };
        Ok(match v {
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<_, _>>()?,
            v => vec![serde_json::from_value(v)?],
        })
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => parse(v),
        Err(_) => {
            let mut all = Vec::new();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                all.extend(parse(serde_json::from_str(line)?)?);
            }
            Ok(all)
        }
    }
    .with_context(|| format!("{} does not hold checkpoints", file.display()))
}

/// The anchors for `verify`: every key given (else the data directory's).
pub fn load(keys: &[String], files: &[PathBuf], data_dir: &Path) -> anyhow::Result<Anchors> {
    let mut witnesses = Vec::new();
    for f in files {
        witnesses.extend(read_checkpoints(f)?);
    }
    let witness = data_dir.join(WITNESS_FILE);
    if witness.exists() {
        witnesses.extend(read_checkpoints(&witness)?);
    }
    let public_keys = if keys.is_empty() {
        public_key(None, data_dir)?.into_iter().collect()
    } else {
        keys.iter()
            .map(|k| public_key(Some(k), data_dir)?.context("a public key"))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    Ok(Anchors {
        public_keys,
        witnesses,
    })
}
