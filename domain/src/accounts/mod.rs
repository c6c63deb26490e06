//! Accounts: the rules for signing up and signing in.
//!
//! The server hashes passwords and seals personal data; these rules decide
//! what is acceptable and what the outcome is.

mod address;

pub use address::{Account, Address, Verification, SIGN_IN_CANDIDATES};

use chrono::{DateTime, Duration, Utc};

use crate::validate::{self, Checks, Invalid};

/// Longest display name, in characters.
pub const MAX_NAME: usize = 200;
/// Shortest password, in characters.
pub const MIN_PASSWORD: usize = 10;
/// Longest password, in bytes: argon2 hashes anything, but a megabyte
/// password is an attack on the hasher, not a password.
pub const MAX_PASSWORD: usize = 1024;

/// `SignUp`: create an account.
#[derive(Debug, Clone)]
pub struct SignUp {
    /// Email as typed.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Password in plaintext (never stored or logged).
    pub password: String,
}

/// A sign-up that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSignUp {
    /// Normalised email.
    pub email: String,
    /// Trimmed name.
    pub name: String,
}

/// Why an account command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Fields are invalid.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Wrong email or password (deliberately not saying which).
    #[error("the email or password is not correct")]
    InvalidCredentials,
}

/// Validates a sign-up.
pub fn sign_up(cmd: &SignUp) -> Result<ValidSignUp, AccountError> {
    let email = validate::email(&cmd.email);
    let name = cmd.name.trim();
    let mut checks = Checks::default();
    checks
        .check(
            email.is_some(),
            "/email",
            "must be an email address such as ada@example.com",
        )
        .display_name("/name", name, MAX_NAME)
        .check(
            cmd.password.chars().count() >= MIN_PASSWORD,
            "/password",
            format!("must be at least {MIN_PASSWORD} characters"),
        )
        .check(
            cmd.password.len() <= MAX_PASSWORD,
            "/password",
            format!("must be at most {MAX_PASSWORD} bytes"),
        );
    checks.finish()?;
    Ok(ValidSignUp {
        email: email.unwrap_or_default(),
        name: name.to_owned(),
    })
}

/// A session's expiry for a sign-in at `now`.
pub fn session_expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    now + ttl
}

/// Whether a password is acceptable as a new password.
pub fn new_password(pointer: &str, password: &str) -> Result<(), AccountError> {
    let mut checks = Checks::default();
    checks
        .check(
            password.chars().count() >= MIN_PASSWORD,
            pointer,
            format!("must be at least {MIN_PASSWORD} characters"),
        )
        .check(
            password.len() <= MAX_PASSWORD,
            pointer,
            format!("must be at most {MAX_PASSWORD} bytes"),
        );
    checks.finish()?;
    Ok(())
}

/// Whether a session is usable at `now`: not ended, not past its absolute
/// expiry, and used within `idle` of `now` (`last_seen` is its start when
/// it was never used).
pub fn session_is_live(
    expires_at: DateTime<Utc>,
    ended: bool,
    last_seen: DateTime<Utc>,
    idle: Duration,
    now: DateTime<Utc>,
) -> bool {
    !ended && now < expires_at && now < last_seen + idle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(email: &str, name: &str, password: &str) -> SignUp {
        SignUp {
            email: email.into(),
            name: name.into(),
            password: password.into(),
        }
    }

    #[test]
    fn a_valid_sign_up_is_normalised() {
        let ok = sign_up(&cmd(" Ada@Example.com", " Ada Lovelace ", "correct horse")).unwrap();
        assert_eq!(ok.email, "ada@example.com");
        assert_eq!(ok.name, "Ada Lovelace");
    }

    #[test]
    fn every_bad_field_is_named_by_pointer() {
        let err = sign_up(&cmd("nope", "", "short")).unwrap_err();
        let AccountError::Invalid(Invalid(errors)) = err else {
            panic!("expected invalid fields")
        };
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, vec!["/email", "/name", "/password"]);
    }

    #[test]
    fn an_over_long_name_or_password_is_refused() {
        let long_name = "x".repeat(MAX_NAME + 1);
        assert!(sign_up(&cmd("a@b.co", &long_name, "correct horse")).is_err());
        let long_password = "x".repeat(MAX_PASSWORD + 1);
        assert!(sign_up(&cmd("a@b.co", "Ada", &long_password)).is_err());
    }

    #[test]
    fn a_session_stops_at_its_expiry_instant_when_ended_or_when_idle() {
        let now = Utc::now();
        let idle = Duration::minutes(30);
        let exp = session_expiry(now, Duration::hours(1));
        assert!(session_is_live(exp, false, now, idle, now));
        assert!(!session_is_live(exp, false, exp, idle, exp));
        assert!(!session_is_live(exp, true, now, idle, now));
        let later = now + Duration::minutes(31);
        assert!(!session_is_live(exp, false, now, idle, later), "idle");
        assert!(session_is_live(exp, false, later, idle, later), "used");
    }
}
