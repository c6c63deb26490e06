//! Single-use tokens mailed to a person: the proof that they receive mail
//! at an address. 32 random bytes, shown only in the mail; the table keeps
//! their SHA-256, the purpose, what they act on and when they expire. A
//! token is spent by the one statement that checks it, so two requests
//! racing with one link cannot both use it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ApiError;

/// What a token is for; a token of one purpose never works for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Proves an account's address (`subject`: the user).
    VerifyEmail,
    /// Accepts an invitation (`subject`: the invitation).
    Invitation,
    /// Sets a new password (`subject`: the user).
    PasswordReset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::Invitation => "invitation",
            Purpose::PasswordReset => "password_reset",
        }
    }
}

/// A token's plaintext: shown once, in the mail. Its `Debug` never prints it.
pub struct Token(String);

impl Token {
    /// The plaintext, for the mail's link.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// What a spent token acted on.
#[derive(Debug, Clone)]
pub struct Spent {
    /// The user or invitation.
    pub subject: Uuid,
    /// The keyed hash of the address it was mailed to.
    pub email_index: String,
    hash: Vec<u8>,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.trim().as_bytes()).to_vec()
}

/// Issues a token for `purpose` on `subject`, mailed to `email_index`,
/// valid until `expires_at`.
pub async fn issue(
    client: &impl GenericClient,
    purpose: Purpose,
    subject: Uuid,
    email_index: &str,
    expires_at: DateTime<Utc>,
) -> Result<Token, ApiError> {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = B64URL.encode(raw);
    client
        .execute(
            "INSERT INTO account_tokens (token_hash, purpose, subject, email_index, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &hash(&token),
                &purpose.as_str(),
                &subject,
                &email_index,
                &expires_at,
            ],
        )
        .await?;
    Ok(Token(token))
}

/// Spends a token of `purpose`: `None` when it is unknown, of another
/// purpose, used or expired (the caller cannot tell which, nor can anyone
/// probing).
pub async fn spend(
    client: &impl GenericClient,
    purpose: Purpose,
    token: &str,
) -> Result<Option<Spent>, ApiError> {
    let hash = hash(token);
    let row = client
        .query_opt(
            "UPDATE account_tokens SET used_at = now() \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now() \
             RETURNING subject, email_index",
            &[&hash, &purpose.as_str()],
        )
        .await?;
    Ok(row.map(|r| Spent {
        subject: r.get(0),
        email_index: r.get(1),
        hash,
    }))
}

/// Whether a token of `purpose` is live (known, unused, unexpired), without
/// spending it.
pub async fn live(
    client: &impl GenericClient,
    purpose: Purpose,
    token: &str,
) -> Result<bool, ApiError> {
    Ok(subject_of(client, purpose, token).await?.is_some())
}

/// What a live token of `purpose` acts on, without spending it.
pub async fn subject_of(
    client: &impl GenericClient,
    purpose: Purpose,
    token: &str,
) -> Result<Option<Uuid>, ApiError> {
    Ok(client
        .query_opt(
            "SELECT subject FROM account_tokens \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()",
            &[&hash(token), &purpose.as_str()],
        )
        .await?
        .map(|r| r.get(0)))
}

/// Gives back a token whose action failed after it was spent (the log
/// refused the append, say), so the person can try the link again.
pub async fn unspend(client: &impl GenericClient, spent: &Spent) -> Result<(), ApiError> {
    client
        .execute(
            "UPDATE account_tokens SET used_at = NULL WHERE token_hash = $1",
            &[&spent.hash],
        )
        .await?;
    Ok(())
}

/// Voids every unused token of `purpose` on `subject` (a newer one was
/// mailed, or what it acts on is gone).
pub async fn void(
    client: &impl GenericClient,
    purpose: Purpose,
    subject: Uuid,
) -> Result<u64, ApiError> {
    Ok(client
        .execute(
            "UPDATE account_tokens SET used_at = now() \
             WHERE subject = $1 AND purpose = $2 AND used_at IS NULL",
            &[&subject, &purpose.as_str()],
        )
        .await?)
}

/// Forgets tokens a day past their expiry.
pub async fn sweep(client: &impl GenericClient) -> Result<u64, ApiError> {
    Ok(client
        .execute(
            "DELETE FROM account_tokens WHERE expires_at < now() - interval '1 day'",
            &[],
        )
        .await?)
}
