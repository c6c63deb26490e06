//! Standard Webhooks signing: `v1` (HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}` with a `whsec_` secret) and
//! `v1a` (Ed25519 over the same bytes, with a `whsk_` seed whose `whpk_`
//! public key the receiver holds). Several signatures are space-separated
//! in one `webhook-signature` header, as during a secret's rotation.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// The `webhook-id` a receiver sees for a message: `msg_` and the 32 hex
/// digits of its id, the same in every attempt and replay.
pub fn webhook_id(message: Uuid) -> String {
    format!("msg_{}", message.simple())
}

/// A message id as a client may give it back: the id itself, or the
/// `webhook-id` its receiver logged.
pub fn parse_message_id(text: &str) -> Option<Uuid> {
    let text = text.trim();
    match text.strip_prefix("msg_") {
        Some(hex) if hex.len() == 32 => Uuid::try_parse(hex).ok(),
        Some(_) => None,
        None => Uuid::try_parse(text).ok(),
    }
}

/// Bytes of a generated `whsec_` secret (the specification allows 24 to 64).
pub const SECRET_BYTES: usize = 32;

/// A secret that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a webhook signing secret: {0}")]
pub struct BadSecret(&'static str);

/// One endpoint signing key, opened.
#[derive(Clone)]
pub enum SigningSecret {
    /// `v1`: the HMAC key (24 to 64 bytes).
    Hmac(Vec<u8>),
    /// `v1a`: the Ed25519 key.
    Ed25519(SigningKey),
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SigningSecret::Hmac(_) => "SigningSecret::Hmac(..)",
            SigningSecret::Ed25519(_) => "SigningSecret::Ed25519(..)",
        })
    }
}

impl SigningSecret {
    /// A new `v1` secret from `random` bytes.
    pub fn hmac_from(random: [u8; SECRET_BYTES]) -> Self {
        SigningSecret::Hmac(random.to_vec())
    }

    /// A new `v1a` key from a 32-byte `seed`.
    pub fn ed25519_from(seed: [u8; 32]) -> Self {
        SigningSecret::Ed25519(SigningKey::from_bytes(&seed))
    }

    /// Parses `whsec_<base64>` or `whsk_<base64 of a 32-byte seed, or of
    /// seed and public key>`.
    pub fn parse(s: &str) -> Result<Self, BadSecret> {
        if let Some(b) = s.strip_prefix("whsec_") {
            let key = B64
                .decode(b)
                .map_err(|_| BadSecret("whsec_ is not base64"))?;
            if !(24..=64).contains(&key.len()) {
                return Err(BadSecret("a whsec_ secret holds 24 to 64 bytes"));
            }
            return Ok(SigningSecret::Hmac(key));
        }
        if let Some(b) = s.strip_prefix("whsk_") {
            let raw = B64
                .decode(b)
                .map_err(|_| BadSecret("whsk_ is not base64"))?;
            let seed: [u8; 32] = raw
                .get(..32)
                .and_then(|s| s.try_into().ok())
                .ok_or(BadSecret("a whsk_ key holds 32 or 64 bytes"))?;
            let key = SigningKey::from_bytes(&seed);
            match raw.len() {
                32 => {}
                64 if raw[32..] == key.verifying_key().to_bytes() => {}
                _ => return Err(BadSecret("a whsk_ key holds 32 or 64 bytes")),
            }
            return Ok(SigningSecret::Ed25519(key));
        }
        Err(BadSecret("expected whsec_ or whsk_"))
    }

    /// The secret itself, as it is sealed: `whsec_...` or `whsk_...` (the
    /// 32-byte seed). Never shown to a subscriber:
    /// [`SigningSecret::shown_to_subscriber`].
    pub fn expose(&self) -> String {
        match self {
            SigningSecret::Hmac(k) => format!("whsec_{}", B64.encode(k)),
            SigningSecret::Ed25519(k) => format!("whsk_{}", B64.encode(k.to_bytes())),
        }
    }

    /// What the subscriber is shown (once): the shared `whsec_...` of `v1`;
    /// for `v1a` only the public key `whpk_...`, which is all a receiver
    /// needs to verify (the private key never leaves Gatehouse).
    pub fn shown_to_subscriber(&self) -> String {
        match self {
            SigningSecret::Hmac(_) => self.expose(),
            SigningSecret::Ed25519(_) => self.public_key().unwrap_or_default(),
        }
    }

    /// For `v1a`, the public key `whpk_...`.
    pub fn public_key(&self) -> Option<String> {
        match self {
            SigningSecret::Hmac(_) => None,
            SigningSecret::Ed25519(k) => {
                Some(format!("whpk_{}", B64.encode(k.verifying_key().to_bytes())))
            }
        }
    }

    /// One signature, `v1,<base64>` or `v1a,<base64>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut content = Vec::with_capacity(msg_id.len() + body.len() + 24);
        content.extend_from_slice(msg_id.as_bytes());
        content.push(b'.');
        content.extend_from_slice(timestamp.to_string().as_bytes());
        content.push(b'.');
        content.extend_from_slice(body);
        match self {
            SigningSecret::Hmac(key) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(&content);
                format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
            }
            SigningSecret::Ed25519(key) => {
                format!("v1a,{}", B64.encode(key.sign(&content).to_bytes()))
            }
        }
    }
}

/// The `webhook-signature` header: every secret's signature, space-separated.
pub fn signature_header(
    secrets: &[SigningSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    //! Vectors published with the specification's reference libraries
    //! (`libraries/rust/src/lib.rs`, the shared vector of the other seven
    //! libraries) and of its `v1a` proposals (Go #253, JavaScript #308).

    use super::*;

    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn v1_matches_the_reference_libraries() {
        let s = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            s.sign(ID, TS, BODY),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let rust = SigningSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            rust.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn v1a_matches_the_proposals_vectors_in_both_key_forms() {
        let go = SigningSecret::parse("whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=").unwrap();
        assert_eq!(
            go.sign(ID, TS, BODY),
            "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="
        );
        assert_eq!(
            go.public_key().unwrap(),
            "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g="
        );
        let expected = "v1a,Ykcu7AtGZGmZxFEH1Gaa2Nd7feY/CTuruoL4fqgnKwfbHU4DhemoVHZdvGfIvKvn4BIgwktLGGPGIr/i9nK7AA==";
        for form in [
            "whsk_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
            "whsk_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQGKiOPddAnxlf1S2y08ul1yymcJvx2UEhvzdIgBtA9vXA==",
        ] {
            let js = SigningSecret::parse(form).unwrap();
            assert_eq!(js.sign(ID, TS, BODY), expected, "{form}");
            assert_eq!(
                js.public_key().unwrap(),
                "whpk_iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
            );
        }
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        for s in [
            SigningSecret::hmac_from([7; SECRET_BYTES]),
            SigningSecret::ed25519_from([9; 32]),
        ] {
            let again = SigningSecret::parse(&s.expose()).unwrap();
            assert_eq!(again.sign(ID, TS, BODY), s.sign(ID, TS, BODY));
        }
        for bad in [
            "",
            "whsec_",
            "whsec_c2hvcnQ=",
            "whsec_not base64!",
            "whsk_AQEB",
            "sk_live_x",
        ] {
            assert!(SigningSecret::parse(bad).is_err(), "{bad:?}");
        }
        // A 64-byte whsk_ whose public half is not the seed's.
        let mut wrong = [1u8; 64].to_vec();
        wrong[40] ^= 1;
        assert!(SigningSecret::parse(&format!("whsk_{}", B64.encode(wrong))).is_err());
    }

    #[test]
    fn the_header_carries_every_secret_space_separated() {
        let a = SigningSecret::hmac_from([1; SECRET_BYTES]);
        let b = SigningSecret::ed25519_from([2; 32]);
        let h = signature_header(&[a.clone(), b.clone()], ID, TS, BODY);
        assert_eq!(
            h,
            format!("{} {}", a.sign(ID, TS, BODY), b.sign(ID, TS, BODY))
        );
        assert!(
            !format!("{a:?}{b:?}").contains("AQEB"),
            "Debug shows no key"
        );
    }
}
