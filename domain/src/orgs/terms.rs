//! Developer terms: the platform's versions in force and each organisation's acceptance.

#[allow(unused_imports)]
use super::*;

/// `AcceptDeveloperTerms`: idempotent for the version already accepted.
pub fn accept_terms(org: &Org, actor: Uuid, version: &str) -> Result<Vec<OrgEvent>, OrgError> {
    org.authorize(actor, Permission::AcceptTerms)?;
    let mut checks = Checks::default();
    let current = org.current_terms();
    checks.check(
        version == current,
        "/version",
        format!("must be the current terms version, {current}"),
    );
    checks.finish()?;
    if org.terms_version.as_deref() == Some(version) {
        return Ok(Vec::new());
    }
    Ok(vec![OrgEvent::TermsAccepted(TermsAccepted {
        version: version.to_owned(),
        user_id: actor,
    })])
}

/// The platform's developer terms, folded from `developer_terms`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformTerms {
    /// Every version published, oldest first.
    pub published: Vec<String>,
}

impl PlatformTerms {
    /// Applies one event.
    pub fn apply(&mut self, event: &TermsEvent) {
        let TermsEvent::Published(p) = event;
        self.published.push(p.version.clone());
    }

    /// The version in force.
    pub fn current(&self) -> &str {
        self.published.last().map_or(INITIAL_TERMS, String::as_str)
    }
}

/// `PublishTerms` (staff): a version never in force before (1 to 32 of
/// `A-Z a-z 0-9 . -`, such as `2027-01`).
pub fn publish_terms(
    terms: &PlatformTerms,
    staff: Uuid,
    version: &str,
) -> Result<Vec<TermsEvent>, OrgError> {
    let mut checks = Checks::default();
    checks.check(
        (1..=32).contains(&version.len())
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
        "/version",
        "must be 1 to 32 of A-Z, a-z, 0-9, . and - (such as 2027-01)",
    );
    checks.finish()?;
    if version == INITIAL_TERMS || terms.published.iter().any(|v| v == version) {
        return Err(OrgError::TermsVersionUsed);
    }
    Ok(vec![TermsEvent::Published(TermsPublished {
        version: version.to_owned(),
        by: staff,
    })])
}
