//! The key vault: the key-encryption key (KEK) from configuration, the
//! per-subject data keys it seals, and sealing of personal data under them.
//!
//! Personal data is sealed with AES-256-GCM under its subject's key before it
//! enters an event; the subject key is stored sealed under the KEK in
//! `subject_keys`. Deleting that row is erasure (crypto-shredding). Emails are
//! also indexed by HMAC-SHA256 under the index key, so lookups and
//! uniqueness work without plaintext. The index key was derived from the
//! first KEK and is kept sealed in `vault_root`, so it outlives a KEK
//! rotation ([`rotate`]): during one the vault opens under the previous KEK
//! too, and seals only under the current one.
//!
//! Service secrets sealed under the KEK have their contexts here too: the
//! token signing keys' seeds ([`signing`]) and the webhooks' signing
//! secrets and payloads ([`webhooks`]).

use std::path::Path;

use aes_gcm::aead::KeyInit;
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use deadpool_postgres::GenericClient;
use event_schemas::sealed::Sealed;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;

mod cipher;
use cipher::{open_gcm, seal_gcm, KekCipher};

/// Why the vault cannot do its work.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The configured KEK is not 32 bytes of base64.
    #[error("the key-encryption key must be 32 bytes, base64-encoded")]
    BadKek,
    /// Reading or writing the generated KEK file failed.
    #[error("key-encryption key file {path}")]
    KekFile {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Ciphertext did not open: wrong key or tampered data.
    #[error("sealed data does not open under its key")]
    Unseal,
    /// Personal data of a subject whose key exists does not open under it:
    /// tampered with or corrupted, never a lawful erasure.
    #[error("personal data of subject {subject} does not open under its key")]
    Tampered {
        /// Whose data.
        subject: Uuid,
    },
    /// The database failed.
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

pub mod rotate;
pub mod signing;
pub mod webhooks;

/// The KEK and what derives from it.
#[derive(Clone)]
pub struct Vault {
    kek: KekCipher,
    kek_id: String,
    previous: Option<KekCipher>,
    index_key: [u8; 32],
}

/// The associated data of the sealed index key.
const ROOT_AAD: &[u8] = b"gatehouse/vault-root/v1";

/// A KEK's public name: a keyed hash of it, never the key.
fn kek_id_of(kek: &[u8; 32]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(kek).expect("HMAC takes keys of any length");
    mac.update(b"gatehouse/kek-id/v1");
    hex::encode(&mac.finalize().into_bytes()[..8])
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

/// A subject's data key, in memory only.
#[derive(Clone)]
pub struct SubjectKey {
    subject: Uuid,
    cipher: Aes256Gcm,
}

impl Vault {
    /// A vault over a 32-byte KEK.
    pub fn new(kek: [u8; 32]) -> Self {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&kek).expect("HMAC takes keys of any length");
        mac.update(b"gatehouse/email-index/v1");
        Vault {
            kek: KekCipher::new(&kek),
            kek_id: kek_id_of(&kek),
            previous: None,
            index_key: mac.finalize().into_bytes().into(),
        }
    }

    /// This vault opening, besides, what `previous` sealed (a rotation in
    /// progress).
    pub fn with_previous(mut self, previous: [u8; 32]) -> Self {
        self.previous = Some(KekCipher::new(&previous));
        self
    }

    /// The current KEK's public name, recorded beside what it seals.
    pub fn kek_id(&self) -> &str {
        &self.kek_id
    }

    /// Takes the index key from `vault_root`, sealing this vault's there
    /// first if the table is empty (a deployment's first start: the key
    /// derived from its KEK, the same as before the table existed).
    pub async fn attach_root(&mut self, client: &impl GenericClient) -> Result<(), VaultError> {
        let sealed = self.kek.seal(ROOT_AAD, &self.index_key);
        client
            .execute(
                "INSERT INTO vault_root (id, sealed_index_key) VALUES (1, $1) \
                 ON CONFLICT (id) DO NOTHING",
                &[&sealed],
            )
            .await?;
        let row = client
            .query_one("SELECT sealed_index_key FROM vault_root WHERE id = 1", &[])
            .await?;
        let key = self.open_kek(ROOT_AAD, row.get(0))?;
        self.index_key = key.try_into().map_err(|_| VaultError::Unseal)?;
        Ok(())
    }

    /// Opens under the current KEK, or the previous one.
    fn open_kek(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.kek
            .open(aad, sealed)
            .or_else(|e| match &self.previous {
                Some(p) => p.open(aad, sealed),
                None => Err(e),
            })
    }

    /// The KEK from base64 configuration, or from `<data_dir>/kek`, generated
    /// there (mode 0600) the first time; and the previous KEK of a rotation
    /// from `previous`, or from `<data_dir>/kek.previous` when that exists.
    pub fn load(
        configured: Option<&str>,
        previous: Option<&str>,
        data_dir: &Path,
    ) -> Result<Self, VaultError> {
        let vault = Self::load_current(configured, data_dir)?;
        let previous = match previous {
            Some(text) => Some(decode_kek(text)?),
            None => match std::fs::read_to_string(data_dir.join("kek.previous")) {
                Ok(text) if configured.is_none() => Some(decode_kek(&text)?),
                _ => None,
            },
        };
        Ok(match previous {
            Some(p) => vault.with_previous(p),
            None => vault,
        })
    }

    fn load_current(configured: Option<&str>, data_dir: &Path) -> Result<Self, VaultError> {
        let decode = decode_kek;
        if let Some(text) = configured {
            return Ok(Vault::new(decode(text)?));
        }
        let path = data_dir.join("kek");
        let file_err = |source| VaultError::KekFile {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Vault::new(decode(&text)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(file_err)?;
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(file_err)?;
                f.write_all(B64.encode(key).as_bytes()).map_err(file_err)?;
                tracing::warn!(path = %path.display(), "generated a key-encryption key; back it up, and give every node the same one (GATEHOUSE_KEK)");
                Ok(Vault::new(key))
            }
            Err(e) => Err(file_err(e)),
        }
    }

    /// The keyed hash of a normalised email, hex.
    pub fn email_index(&self, normalised_email: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key)
            .expect("HMAC takes keys of any length");
        mac.update(normalised_email.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A keyed hash of `parts` for `purpose`: a fingerprint that reveals
    /// nothing about its input to anyone without the KEK.
    pub fn fingerprint(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key)
            .expect("HMAC takes keys of any length");
        for part in std::iter::once(&purpose.as_bytes()).chain(parts) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Seals service data (not personal data) directly under the KEK, bound
    /// to `context` so it opens only where it was sealed.
    pub fn seal_service(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        self.kek.seal(context, plaintext)
    }

    /// Opens what [`Vault::seal_service`] sealed.
    pub fn open_service(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.open_kek(context, sealed)
    }

    /// Creates and stores a new subject key.
    pub async fn create_subject_key(
        &self,
        client: &impl GenericClient,
        subject: Uuid,
    ) -> Result<SubjectKey, VaultError> {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let sealed = self.kek.seal(subject.as_bytes(), &key);
        client
            .execute(
                "INSERT INTO subject_keys (subject_id, sealed_key) VALUES ($1, $2)",
                &[&subject, &sealed],
            )
            .await?;
        Ok(SubjectKey {
            subject,
            cipher: Aes256Gcm::new(&key.into()),
        })
    }

    /// The subject's key, created if it has none: once, even when requests
    /// race for it (a day's retention key), and the same for all of them. A
    /// command retried with the same `Idempotency-Key` mints the same
    /// subject id and must seal with the key its first attempt made.
    pub async fn ensure_subject_key(
        &self,
        client: &impl GenericClient,
        subject: Uuid,
    ) -> Result<SubjectKey, VaultError> {
        if let Some(key) = self.subject_key(client, subject).await? {
            return Ok(key);
        }
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let sealed = self.kek.seal(subject.as_bytes(), &key);
        client
            .execute(
                "INSERT INTO subject_keys (subject_id, sealed_key) VALUES ($1, $2) \
                 ON CONFLICT (subject_id) DO NOTHING",
                &[&subject, &sealed],
            )
            .await?;
        self.subject_key(client, subject)
            .await?
            .ok_or(VaultError::Unseal)
    }

    /// The keys of several subjects in one query; an erased subject is
    /// absent from the map.
    pub async fn subject_keys(
        &self,
        client: &impl GenericClient,
        subjects: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, SubjectKey>, VaultError> {
        let rows = client
            .query(
                "SELECT subject_id, sealed_key FROM subject_keys WHERE subject_id = ANY($1)",
                &[&subjects],
            )
            .await?;
        let mut keys = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let subject: Uuid = row.get(0);
            let sealed: Vec<u8> = row.get(1);
            let key = self.open_kek(subject.as_bytes(), &sealed)?;
            let key: [u8; 32] = key.try_into().map_err(|_| VaultError::Unseal)?;
            keys.insert(
                subject,
                SubjectKey {
                    subject,
                    cipher: Aes256Gcm::new(&key.into()),
                },
            );
        }
        Ok(keys)
    }

    /// The subject's key, or `None` if it was erased (or never existed).
    pub async fn subject_key(
        &self,
        client: &impl GenericClient,
        subject: Uuid,
    ) -> Result<Option<SubjectKey>, VaultError> {
        let row = client
            .query_opt(
                "SELECT sealed_key FROM subject_keys WHERE subject_id = $1",
                &[&subject],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Vec<u8> = row.get(0);
        let key = self.open_kek(subject.as_bytes(), &sealed)?;
        let key: [u8; 32] = key.try_into().map_err(|_| VaultError::Unseal)?;
        Ok(Some(SubjectKey {
            subject,
            cipher: Aes256Gcm::new(&key.into()),
        }))
    }
}

/// What readers show for personal data whose subject key was destroyed.
pub const ERASED: &str = "[erased]";

/// Personal data sealed under a subject's key, for a reader: the plaintext,
/// or [`ERASED`] when the key is gone (`None`: a lawful erasure). Ciphertext
/// that does not open under a key that exists was tampered with or
/// corrupted; it is an error, so it never passes for an erasure.
pub fn reveal(key: Option<&SubjectKey>, sealed: &str) -> Result<String, VaultError> {
    match key {
        None => Ok(ERASED.to_owned()),
        Some(key) => key.open(sealed).map_err(|_| VaultError::Tampered {
            subject: key.subject,
        }),
    }
}

impl SubjectKey {
    /// Seals personal data of this subject.
    pub fn seal(&self, plaintext: &str) -> Sealed {
        Sealed(B64.encode(seal_gcm(
            &self.cipher,
            self.subject.as_bytes(),
            plaintext.as_bytes(),
        )))
    }

    /// Seals bytes of this subject (a stored response holding its data).
    pub fn seal_bytes(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal_gcm(
            &self.cipher,
            &[self.subject.as_bytes(), context].concat(),
            plaintext,
        )
    }

    /// Opens what [`SubjectKey::seal_bytes`] sealed.
    pub fn open_bytes(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        open_gcm(
            &self.cipher,
            &[self.subject.as_bytes(), context].concat(),
            sealed,
        )
    }

    /// Opens personal data of this subject.
    pub fn open(&self, sealed: &str) -> Result<String, VaultError> {
        let bytes = B64.decode(sealed).map_err(|_| VaultError::Unseal)?;
        let plain = open_gcm(&self.cipher, self.subject.as_bytes(), &bytes)?;
        String::from_utf8(plain).map_err(|_| VaultError::Unseal)
    }
}

/// A KEK from its base64 form.
fn decode_kek(text: &str) -> Result<[u8; 32], VaultError> {
    let bytes = B64.decode(text.trim()).map_err(|_| VaultError::BadKek)?;
    bytes.try_into().map_err(|_| VaultError::BadKek)
}

#[cfg(test)]
mod tests;
