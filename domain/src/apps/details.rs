//! An app's details (name, slug, URLs, attributes) and their checks.

#[allow(unused_imports)]
use super::*;

/// The details of an app, as a create or update gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// Name.
    pub name: Option<String>,
    /// Slug.
    pub slug: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Allowed browser origins.
    pub origins: Option<Vec<String>>,
    /// OAuth callback URLs.
    pub callback_urls: Option<Vec<String>>,
    /// Attributes to set (a value) or remove (`None`).
    pub attributes: BTreeMap<String, Option<String>>,
}

pub(crate) const MAX_URLS: usize = 20;
pub(crate) const MAX_ATTRIBUTES: usize = 50;

impl Details {
    /// Trims, then checks every given field; errors name each bad field.
    /// `test_mode`: plain `http` is allowed for localhost only then.
    pub(crate) fn checked(mut self, test_mode: bool) -> Result<Self, Invalid> {
        let mut checks = Checks::default();
        if let Some(name) = self.name.as_mut() {
            *name = name.trim().to_owned();
            checks.display_name("/name", name, 100);
        }
        if let Some(slug) = &self.slug {
            checks.slug("/slug", slug);
        }
        if let Some(d) = self.description.as_mut() {
            *d = d.trim().to_owned();
            checks.check(
                d.chars().count() <= 2000,
                "/description",
                "must be at most 2000 characters",
            );
        }
        if let Some(origins) = &self.origins {
            checks.check(
                origins.len() <= MAX_URLS,
                "/origins",
                format!("at most {MAX_URLS} origins"),
            );
            for (i, o) in origins.iter().enumerate() {
                if let Err(detail) = check_url(o, test_mode, true) {
                    checks.check(false, &format!("/origins/{i}"), detail);
                }
            }
        }
        if let Some(urls) = &self.callback_urls {
            checks.check(
                urls.len() <= MAX_URLS,
                "/callback_urls",
                format!("at most {MAX_URLS} callback URLs"),
            );
            for (i, u) in urls.iter().enumerate() {
                if let Err(detail) = check_url(u, test_mode, false) {
                    checks.check(false, &format!("/callback_urls/{i}"), detail);
                }
            }
        }
        checks.check(
            self.attributes.len() <= MAX_ATTRIBUTES,
            "/attributes",
            format!("at most {MAX_ATTRIBUTES} attributes"),
        );
        for (k, v) in &self.attributes {
            let pointer = format!("/attributes/{}", k.replace('~', "~0").replace('/', "~1"));
            checks.check(
                !k.is_empty()
                    && k.len() <= 64
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
                &pointer,
                "names are 1 to 64 of a-z, A-Z, 0-9, _ . -",
            );
            if let Some(v) = v {
                checks.check(
                    v.chars().count() <= 1000,
                    &pointer,
                    "values are at most 1000 characters",
                );
            }
        }
        checks.finish()?;
        Ok(self)
    }
}

/// Checks an origin (scheme, host and port only) or a URL: `https`, or
/// `http` for localhost in test mode; never user info or a fragment.
pub fn check_url(raw: &str, test_mode: bool, origin: bool) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("is not an absolute URL ({e})"))?;
    let host = url.host_str().unwrap_or_default();
    let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    match url.scheme() {
        "https" => {}
        "http" if local && test_mode => {}
        "http" if local => {
            return Err("http is allowed for localhost only before production".into())
        }
        "http" => return Err("must use https (http only for localhost in test mode)".into()),
        other => return Err(format!("scheme {other} is not allowed; use https")),
    }
    if host.is_empty() {
        return Err("must have a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    if origin && (url.path() != "/" || url.query().is_some() || raw.ends_with('/')) {
        return Err("an origin is scheme://host[:port] only, without a path".into());
    }
    Ok(())
}
