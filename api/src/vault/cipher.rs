//! The vault's ciphers. What the KEK seals (subject keys, the index key,
//! service data such as stored answers, mail and signing keys) is sealed
//! with XChaCha20-Poly1305: its 192-bit random nonces never collide in
//! practice, so the KEK may seal without counting (AES-GCM's 96-bit random
//! nonces allow about 2^32 seals a key). Its key is derived from the KEK,
//! never the KEK itself, and each sealed value starts with a version byte.
//! Values sealed before, with AES-256-GCM under the KEK, still open.
//!
//! A subject's own key seals only that subject's few values, and a day's
//! retention key one day of payloads: AES-256-GCM, far below its limit.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::VaultError;

/// The first byte of a value the KEK sealed with XChaCha20-Poly1305.
const VERSION: u8 = 1;
/// Bytes of an XChaCha20 nonce.
const XNONCE: usize = 24;
/// Bytes of an AES-GCM nonce.
const NONCE: usize = 12;

/// The KEK's cipher: seals with XChaCha20-Poly1305, opens that and the
/// AES-256-GCM values sealed before.
#[derive(Clone)]
pub(super) struct KekCipher {
    sealer: XChaCha20Poly1305,
    legacy: Aes256Gcm,
}

impl KekCipher {
    pub(super) fn new(kek: &[u8; 32]) -> Self {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(kek).expect("HMAC takes keys of any length");
        mac.update(b"gatehouse/kek-seal/xchacha20poly1305/v1");
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        KekCipher {
            sealer: XChaCha20Poly1305::new(&key.into()),
            legacy: Aes256Gcm::new(&(*kek).into()),
        }
    }

    pub(super) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; XNONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .sealer
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption of in-memory data cannot fail");
        let mut out = Vec::with_capacity(1 + XNONCE + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub(super) fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.first() == Some(&VERSION) && sealed.len() > 1 + XNONCE {
            let (nonce, ct) = sealed[1..].split_at(XNONCE);
            if let Ok(plain) = self
                .sealer
                .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            {
                return Ok(plain);
            }
        }
        // Sealed before the version byte: one in 256 of those starts with
        // it by chance, so a failed open above falls through to here too.
        open_gcm(&self.legacy, aad, sealed)
    }
}

/// Seals with AES-256-GCM (a subject's key): a random nonce, then the
/// ciphertext.
pub(super) fn seal_gcm(cipher: &Aes256Gcm, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of in-memory data cannot fail");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    out
}

/// Opens what [`seal_gcm`] sealed.
pub(super) fn open_gcm(
    cipher: &Aes256Gcm,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, VaultError> {
    if sealed.len() < NONCE {
        return Err(VaultError::Unseal);
    }
    let (nonce, ct) = sealed.split_at(NONCE);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| VaultError::Unseal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kek_seals_with_xchacha_and_still_opens_what_aes_gcm_sealed() {
        let kek = [9u8; 32];
        let c = KekCipher::new(&kek);
        let sealed = c.seal(b"ctx", b"secret");
        assert_eq!(sealed[0], VERSION);
        assert_eq!(sealed.len(), 1 + XNONCE + 6 + 16);
        assert_eq!(c.open(b"ctx", &sealed).unwrap(), b"secret");
        assert!(c.open(b"other", &sealed).is_err(), "bound to its context");
        // What the KEK sealed before, with AES-GCM directly, opens too,
        // also when its random nonce happens to start with the version.
        let legacy = Aes256Gcm::new(&kek.into());
        for _ in 0..2000 {
            let old = seal_gcm(&legacy, b"ctx", b"older");
            assert_eq!(c.open(b"ctx", &old).unwrap(), b"older");
        }
        assert!(KekCipher::new(&[8u8; 32]).open(b"ctx", &sealed).is_err());
    }
}
