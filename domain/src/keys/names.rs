//! Warnings for key names that look like what the product page asks users
//! not to put in one: a secret, an email address, a person's name. A warning
//! never refuses the name; it is answered beside the key.

/// The warnings `name` deserves, as stable codes.
pub fn name_warnings(name: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if looks_like_secret(name) {
        out.push("name_looks_like_secret");
    }
    if crate::validate::email(name).is_some()
        || name
            .split_whitespace()
            .any(|w| crate::validate::email(w).is_some())
    {
        out.push("name_looks_like_email");
    }
    if looks_like_person(name) {
        out.push("name_looks_like_person_name");
    }
    out
}

/// A long run of letters and digits mixing cases and digits, or a known
/// secret's shape (`sk_`, `whsec_`, `ghp_`...).
fn looks_like_secret(name: &str) -> bool {
    const MARKERS: [&str; 6] = ["_sk_", "_rk_", "whsec_", "ghp_", "sk_live", "sk_test"];
    if MARKERS.iter().any(|m| name.contains(m)) {
        return true;
    }
    name.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .any(|token| {
            let t: Vec<char> = token.chars().filter(char::is_ascii_alphanumeric).collect();
            t.len() >= 20
                && t.iter().any(char::is_ascii_uppercase)
                && t.iter().any(char::is_ascii_lowercase)
                && t.iter().any(char::is_ascii_digit)
        })
}

/// Two or three capitalised words of letters only ("Ada Lovelace").
fn looks_like_person(name: &str) -> bool {
    let words: Vec<&str> = name.split_whitespace().collect();
    (2..=3).contains(&words.len())
        && words.iter().all(|w| {
            let mut chars = w.chars();
            chars.next().is_some_and(char::is_uppercase)
                && chars.clone().count() >= 1
                && chars.all(|c| c.is_lowercase() || c == '\'' || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_get_no_warning() {
        for name in [
            "CI",
            "production backend",
            "Billing sync",
            "staging-worker 2",
            "iOS app",
        ] {
            assert!(
                name_warnings(name).is_empty(),
                "{name:?}: {:?}",
                name_warnings(name)
            );
        }
    }

    #[test]
    fn secrets_emails_and_people_are_flagged() {
        assert_eq!(name_warnings("gh_live_sk_abc"), ["name_looks_like_secret"]);
        assert_eq!(
            name_warnings("token 9fQ2xLm4Rt7WzP1kB8sVn3"),
            ["name_looks_like_secret"]
        );
        assert_eq!(name_warnings("ada@example.com"), ["name_looks_like_email"]);
        assert_eq!(
            name_warnings("key for ada@example.com"),
            ["name_looks_like_email"]
        );
        assert_eq!(
            name_warnings("Ada Lovelace"),
            ["name_looks_like_person_name"]
        );
    }
}
