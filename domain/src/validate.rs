//! Field validation with errors that name the offending field by JSON
//! pointer, so a client can show each problem next to its field.

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer into the request body, e.g. `/email`.
    pub pointer: String,
    /// What is wrong, for a person.
    pub detail: String,
}

/// A command with one or more invalid fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", .0.iter().map(|e| format!("{} {}", e.pointer, e.detail)).collect::<Vec<_>>().join("; "))]
pub struct Invalid(pub Vec<FieldError>);

/// Collects field errors.
#[derive(Debug, Default)]
pub struct Checks(Vec<FieldError>);

impl Checks {
    /// Records an error for `pointer` when `ok` is false.
    pub fn check(&mut self, ok: bool, pointer: &str, detail: impl Into<String>) -> &mut Self {
        if !ok {
            self.0.push(FieldError {
                pointer: pointer.to_owned(),
                detail: detail.into(),
            });
        }
        self
    }

    /// Checks a display name (already trimmed): not empty, at most `max`
    /// characters, no control characters.
    pub fn display_name(&mut self, pointer: &str, name: &str, max: usize) -> &mut Self {
        self.check(!name.is_empty(), pointer, "must not be empty")
            .check(
                name.chars().count() <= max,
                pointer,
                format!("must be at most {max} characters"),
            )
            .check(
                !name.chars().any(char::is_control),
                pointer,
                "must not contain control characters",
            )
    }

    /// A slug: 3 to 40 of `a-z`, `0-9`, `-`, not starting or ending with `-`.
    pub fn slug(&mut self, pointer: &str, slug: &str) -> &mut Self {
        self.check(
            valid_slug(slug),
            pointer,
            "must be 3 to 40 characters of a-z, 0-9 and -, not starting or ending with -",
        )
    }

    /// The errors, if any.
    pub fn finish(self) -> Result<(), Invalid> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.0))
        }
    }
}

/// Normalises an email address (trim, lower-case) and checks its shape:
/// `local@domain.tld`, at most 254 characters, no spaces or control chars.
pub fn email(raw: &str) -> Option<String> {
    let e = raw.trim().to_lowercase();
    if e.is_empty() || e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = e.rsplit_once('@')?;
    let labels_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    let ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && domain.contains('.')
        && labels_ok
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
    ok.then_some(e)
}

/// Checks a slug: 3 to 40 of `a-z`, `0-9`, `-`, not starting or ending with `-`.
pub fn valid_slug(slug: &str) -> bool {
    (3..=40).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(email("  Ada@Example.COM "), Some("ada@example.com".into()));
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@-x.com",
            "a@b@c.com",
        ] {
            assert_eq!(email(bad), None, "{bad:?} should be refused");
        }
        assert_eq!(email(&format!("{}@example.com", "a".repeat(65))), None);
    }
}
