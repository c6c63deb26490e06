//! Access tokens: RFC 9068 JWTs (`typ: at+jwt`) signed with Ed25519
//! (`alg: EdDSA`), in JWS compact serialisation. Signing is here beside
//! verification so the two cannot drift; the tests check both against an
//! independent JWT library.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: the client id.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Token id.
    pub jti: String,
    /// The client id.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The client's app.
    pub app_id: Uuid,
    /// The app's organisation.
    pub org_id: Uuid,
    /// `live` or `test`.
    pub mode: String,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

/// Signs `claims` with `key`, naming it `kid`.
pub fn sign(claims: &Claims, kid: &str, key: &SigningKey) -> String {
    let header = Header {
        alg: "EdDSA".into(),
        typ: "at+jwt".into(),
        kid: kid.into(),
    };
    // Plain data with string keys: serialising cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let claims = serde_json::to_vec(claims).unwrap_or_default();
    let mut token = format!("{}.{}", B64.encode(header), B64.encode(claims));
    let signature = key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&B64.encode(signature.to_bytes()));
    token
}

/// Whether `token` has the shape of a JWT (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|&b| b == b'.').count() == 2
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of ours: malformed, an unknown key, a bad signature, the
    /// wrong issuer or audience.
    Invalid,
    /// Past its `exp`.
    Expired,
}

/// The key id a token names, if it reads as a JWT header of ours.
pub fn kid(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let header: Header = serde_json::from_slice(&B64.decode(header).ok()?).ok()?;
    (header.alg == "EdDSA").then_some(header.kid)
}

/// Checks `token`'s signature with `key`, then its issuer, audience and
/// expiry at `now_secs` (expired from the `exp` second on).
pub fn verify(
    token: &str,
    key: &VerifyingKey,
    issuer: &str,
    audience: &str,
    now_secs: i64,
) -> Result<Claims, TokenError> {
    let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
    let signature = B64.decode(signature).map_err(|_| TokenError::Invalid)?;
    let signature = Signature::from_slice(&signature).map_err(|_| TokenError::Invalid)?;
    key.verify(signed.as_bytes(), &signature)
        .map_err(|_| TokenError::Invalid)?;
    let payload = signed.split_once('.').ok_or(TokenError::Invalid)?.1;
    let claims: Claims = B64
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or(TokenError::Invalid)?;
    if claims.iss != issuer || claims.aud != audience {
        return Err(TokenError::Invalid);
    }
    if now_secs >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Parses a public key written as base64url (a JWK's `x`).
pub fn public_key(x: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = B64.decode(x).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// A public key as base64url (a JWK's `x`).
pub fn public_key_x(key: &VerifyingKey) -> String {
    B64.encode(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "gatehouse".into(),
            sub: "c".into(),
            aud: "platform".into(),
            exp,
            iat: 0,
            jti: "j".into(),
            client_id: "c".into(),
            scope: "a b".into(),
            app_id: Uuid::nil(),
            org_id: Uuid::nil(),
            mode: "test".into(),
        }
    }

    #[test]
    fn a_signed_token_verifies_until_its_expiry_and_a_tampered_one_never() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let token = sign(&claims(100), "k1", &key);
        assert!(looks_like_jwt(&token));
        assert_eq!(kid(&token).as_deref(), Some("k1"));
        let public = key.verifying_key();
        assert_eq!(
            verify(&token, &public, "gatehouse", "platform", 99),
            Ok(claims(100))
        );
        assert_eq!(
            verify(&token, &public, "gatehouse", "platform", 100),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&token, &public, "other", "platform", 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            verify(&token, &public, "gatehouse", "other", 0),
            Err(TokenError::Invalid)
        );
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert_eq!(
            verify(&token, &other, "gatehouse", "platform", 0),
            Err(TokenError::Invalid)
        );
        let (head, rest) = token.split_once('.').unwrap();
        let forged = format!("{head}.{}", rest.replacen('e', "f", 1));
        assert_eq!(
            verify(&forged, &public, "gatehouse", "platform", 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(public_key(&public_key_x(&public)), Some(public));
    }
}
