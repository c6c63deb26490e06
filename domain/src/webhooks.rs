//! Webhook endpoints of an app: who may create and change them, what a
//! valid endpoint is, and the rules of its life (disable, enable, delete,
//! a secret rotated with an overlap). Delivery itself is the `delivery`
//! crate's; this is only the endpoint's state, folded from its stream.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use event_schemas::webhook::*;
use uuid::Uuid;

use crate::apps::{App, AppError, Mode};
use crate::orgs::{Org, OrgError};
use crate::roles::Permission;
use crate::validate::Checks;
use crate::Invalid;

/// How deliveries are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `v1`: HMAC-SHA256 with a shared `whsec_` secret.
    Hmac,
    /// `v1a`: Ed25519; the receiver holds only the `whpk_` public key.
    Ed25519,
}

impl Scheme {
    /// The wire name, also the signature's version tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Hmac => "v1",
            Scheme::Ed25519 => "v1a",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "v1" => Some(Scheme::Hmac),
            "v1a" => Some(Scheme::Ed25519),
            _ => None,
        }
    }
}

/// Where an endpoint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointStatus {
    /// Receiving.
    #[default]
    Enabled,
    /// Receiving nothing until enabled.
    Disabled,
    /// Gone for good.
    Deleted,
}

impl EndpointStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Enabled => "enabled",
            EndpointStatus::Disabled => "disabled",
            EndpointStatus::Deleted => "deleted",
        }
    }
}

/// An endpoint, folded from `webhook-<id>`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Endpoint {
    /// Created.
    pub exists: bool,
    /// Its id.
    pub id: Uuid,
    /// Its app.
    pub app_id: Uuid,
    /// The app's organisation.
    pub org_id: Uuid,
    /// `live` or `test`.
    pub mode: Option<Mode>,
    /// Signature scheme.
    pub scheme: Option<Scheme>,
    /// Where, which types, how fast.
    pub settings: Option<EndpointSettings>,
    /// Status.
    pub status: EndpointStatus,
    /// Why it was disabled, if it is.
    pub disabled_reason: Option<String>,
    /// The current secret.
    pub secret: Option<SealedSecret>,
    /// The previous secret and when it stops signing.
    pub previous: Option<(SealedSecret, DateTime<Utc>)>,
    /// An organisation's audit log stream ([`audit_streams`]), of no app
    /// (`app_id` is nil).
    pub audit: bool,
}

impl Endpoint {
    /// Applies one event.
    pub fn apply(&mut self, event: &WebhookEvent) -> Result<(), String> {
        match event {
            WebhookEvent::Created(c) => {
                self.exists = true;
                self.id = c.endpoint_id;
                self.app_id = c.app_id;
                self.org_id = c.org_id;
                self.mode =
                    Some(Mode::parse(&c.mode).ok_or_else(|| format!("unknown mode {:?}", c.mode))?);
                self.scheme = Some(
                    Scheme::parse(&c.signature)
                        .ok_or_else(|| format!("unknown signature {:?}", c.signature))?,
                );
                self.settings = Some(c.settings.clone());
                self.secret = Some(c.secret.clone());
            }
            WebhookEvent::AuditStreamCreated(c) => {
                self.exists = true;
                self.audit = true;
                self.id = c.endpoint_id;
                self.org_id = c.org_id;
                self.mode = Some(Mode::Live);
                self.scheme = Some(Scheme::Hmac);
                self.settings = Some(EndpointSettings {
                    url: c.url.clone(),
                    event_types: vec![AUDIT_ENTRY_TYPE.to_owned()],
                    description: c.description.clone(),
                    rate_limit: None,
                });
                self.secret = Some(c.secret.clone());
            }
            WebhookEvent::Updated(u) => self.settings = Some(u.settings.clone()),
            WebhookEvent::Disabled(d) => {
                if self.status == EndpointStatus::Enabled {
                    self.status = EndpointStatus::Disabled;
                    self.disabled_reason = Some(d.reason.clone());
                }
            }
            WebhookEvent::Enabled(_) => {
                if self.status == EndpointStatus::Disabled {
                    self.status = EndpointStatus::Enabled;
                    self.disabled_reason = None;
                }
            }
            WebhookEvent::Deleted(_) => self.status = EndpointStatus::Deleted,
            WebhookEvent::SecretRotated(r) => {
                let old = self.secret.replace(r.secret.clone());
                self.previous = old.map(|s| (s, r.previous_expires_at));
            }
            WebhookEvent::SecretsResealed(r) => {
                self.secret = Some(r.secret.clone());
                if let (Some(p), Some((_, until))) = (&r.previous, &self.previous) {
                    self.previous = Some((p.clone(), *until));
                }
            }
            WebhookEvent::MessageExhausted(_) | WebhookEvent::ReplayRequested(_) => {}
        }
        Ok(())
    }

    /// The secrets that sign at `now`: the current one, then the previous
    /// one during its overlap.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&SealedSecret> {
        let mut out: Vec<&SealedSecret> = self.secret.iter().collect();
        if let Some((s, until)) = &self.previous {
            if now < *until {
                out.push(s);
            }
        }
        out
    }
}

/// Why an endpoint command is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookError {
    /// A rule of the app or its organisation.
    #[error(transparent)]
    App(#[from] AppError),
    /// Fields failed validation.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No such endpoint (or the caller may not know of it).
    #[error("no such webhook endpoint")]
    NotFound,
    /// Live endpoints wait for production access.
    #[error("live webhook endpoints need production access (next step: request_production)")]
    NotInProduction,
}

impl From<OrgError> for WebhookError {
    fn from(e: OrgError) -> Self {
        WebhookError::App(AppError::Org(e))
    }
}

/// The most endpoints' event type filters an endpoint may list.
pub const MAX_EVENT_TYPES: usize = 100;
/// The highest `rate_limit`, messages per second.
pub const MAX_RATE_LIMIT: u32 = 10_000;
/// The longest overlap of a secret rotation.
pub fn max_overlap() -> Duration {
    Duration::days(7)
}
/// The overlap of a rotation without one given.
pub fn default_overlap() -> Duration {
    Duration::hours(24)
}

/// Whether `t` is a well-formed type name: dot-separated parts of
/// `[a-z0-9_]`, at least two, at most 100 characters.
pub fn is_type_name(t: &str) -> bool {
    t.len() <= 100 && t.split('.').count() >= 2 && t.split('.').all(is_part)
}

fn is_part(p: &str) -> bool {
    !p.is_empty()
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `filter` (an exact type, `family.*` or `*`) takes `event_type`.
pub fn filter_matches(filter: &str, event_type: &str) -> bool {
    match filter.strip_suffix(".*") {
        Some(family) => event_type
            .strip_prefix(family)
            .is_some_and(|rest| rest.starts_with('.')),
        None => filter == "*" || filter == event_type,
    }
}

/// Whether an endpoint subscribed to `filters` takes `event_type` (no
/// filters: every type).
pub fn subscribed(filters: &[String], event_type: &str) -> bool {
    filters.is_empty() || filters.iter().any(|f| filter_matches(f, event_type))
}

pub mod audit_streams;

fn check_settings(checks: &mut Checks, s: &EndpointSettings) {
    checks.check(
        valid_url(&s.url),
        "/url",
        "must be an absolute http or https URL with a host and no credentials, at most 2,048 \
         characters",
    );
    checks.check(
        (1..=MAX_EVENT_TYPES).contains(&s.event_types.len()),
        "/event_types",
        format!("1 to {MAX_EVENT_TYPES} types (* for every type)"),
    );
    let mut seen = BTreeSet::new();
    for (i, t) in s.event_types.iter().enumerate() {
        let shape = t == "*"
            || is_type_name(t)
            || t.strip_suffix(".*")
                .is_some_and(|family| family.split('.').all(is_part));
        checks.check(
            shape,
            &format!("/event_types/{i}"),
            "an exact type (app.created), a family (app.*) or *",
        );
        checks.check(seen.insert(t), &format!("/event_types/{i}"), "is repeated");
    }
    checks.check(
        s.description.chars().count() <= 500 && !s.description.chars().any(char::is_control),
        "/description",
        "at most 500 characters, no control characters",
    );
    if let Some(r) = s.rate_limit {
        checks.check(
            (1..=MAX_RATE_LIMIT).contains(&r),
            "/rate_limit",
            format!("1 to {MAX_RATE_LIMIT} messages per second"),
        );
    }
}

pub(crate) fn valid_url(raw: &str) -> bool {
    raw.len() <= 2048
        && url::Url::parse(raw).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some_and(|h| !h.is_empty())
                && u.username().is_empty()
                && u.password().is_none()
        })
}

fn authorize(org: &Org, app: &App, actor: Uuid) -> Result<(), WebhookError> {
    app.access_of(org, actor)?;
    org.authorize(actor, Permission::ManageWebhooks)?;
    Ok(())
}

/// `CreateEndpoint`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateEndpoint {
    /// The new endpoint's id.
    pub endpoint_id: Uuid,
    /// Mode.
    pub mode: Mode,
    /// Signature scheme.
    pub scheme: Scheme,
    /// Where, which types, how fast.
    pub settings: EndpointSettings,
    /// The generated secret, sealed.
    pub secret: SealedSecret,
}

/// Creates an endpoint for an app that is not suspended.
pub fn create(
    org: &Org,
    app: &App,
    actor: Uuid,
    cmd: CreateEndpoint,
) -> Result<Vec<WebhookEvent>, WebhookError> {
    authorize(org, app, actor)?;
    if app.suspended.is_some() {
        return Err(AppError::Suspended.into());
    }
    if cmd.mode == Mode::Live && !org.in_production() {
        return Err(WebhookError::NotInProduction);
    }
    let mut checks = Checks::default();
    check_settings(&mut checks, &cmd.settings);
    checks.finish()?;
    Ok(vec![WebhookEvent::Created(EndpointCreated {
        endpoint_id: cmd.endpoint_id,
        app_id: app.id,
        org_id: app.org_id,
        mode: cmd.mode.as_str().into(),
        signature: cmd.scheme.as_str().into(),
        settings: cmd.settings,
        secret: cmd.secret,
    })])
}

/// The endpoint, if it belongs to `app`, is not deleted, and the actor may
/// manage it.
fn managed<'e>(
    org: &Org,
    app: &App,
    endpoint: &'e Endpoint,
    actor: Uuid,
) -> Result<&'e Endpoint, WebhookError> {
    if !endpoint.exists || endpoint.app_id != app.id || endpoint.status == EndpointStatus::Deleted {
        return Err(WebhookError::NotFound);
    }
    authorize(org, app, actor)?;
    Ok(endpoint)
}

/// New settings; nothing when they are the same.
pub fn update(
    org: &Org,
    app: &App,
    endpoint: &Endpoint,
    actor: Uuid,
    settings: EndpointSettings,
) -> Result<Vec<WebhookEvent>, WebhookError> {
    let e = managed(org, app, endpoint, actor)?;
    let mut checks = Checks::default();
    check_settings(&mut checks, &settings);
    checks.finish()?;
    if e.settings.as_ref() == Some(&settings) {
        return Ok(Vec::new());
    }
    Ok(vec![WebhookEvent::Updated(EndpointUpdated { settings })])
}

/// Disables by hand; nothing if already disabled.
pub fn disable(
    org: &Org,
    app: &App,
    endpoint: &Endpoint,
    actor: Uuid,
) -> Result<Vec<WebhookEvent>, WebhookError> {
    let e = managed(org, app, endpoint, actor)?;
    if e.status == EndpointStatus::Disabled {
        return Ok(Vec::new());
    }
    Ok(vec![WebhookEvent::Disabled(EndpointDisabled {
        reason: "manual".into(),
        failing_since: None,
    })])
}

/// Enables again; nothing if enabled. A live endpoint re-enabled needs
/// production still.
pub fn enable(
    org: &Org,
    app: &App,
    endpoint: &Endpoint,
    actor: Uuid,
) -> Result<Vec<WebhookEvent>, WebhookError> {
    let e = managed(org, app, endpoint, actor)?;
    if e.status == EndpointStatus::Enabled {
        return Ok(Vec::new());
    }
    if app.suspended.is_some() {
        return Err(AppError::Suspended.into());
    }
    Ok(vec![WebhookEvent::Enabled(EndpointEnabled {})])
}

/// Deletes, irreversibly.
pub fn delete(
    org: &Org,
    app: &App,
    endpoint: &Endpoint,
    actor: Uuid,
) -> Result<Vec<WebhookEvent>, WebhookError> {
    managed(org, app, endpoint, actor)?;
    Ok(vec![WebhookEvent::Deleted(EndpointDeleted {})])
}

/// A new secret; the previous one keeps signing (beside it) until
/// `previous_expires_at`, at most a week away.
pub fn rotate_secret(
    org: &Org,
    app: &App,
    endpoint: &Endpoint,
    actor: Uuid,
    secret: SealedSecret,
    previous_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<WebhookEvent>, WebhookError> {
    managed(org, app, endpoint, actor)?;
    rotation(secret, previous_expires_at, now)
}

/// A rotation to `secret`, the previous one signing until
/// `previous_expires_at`, at most a week away.
fn rotation(
    secret: SealedSecret,
    previous_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<WebhookEvent>, WebhookError> {
    let mut checks = Checks::default();
    checks.check(
        previous_expires_at >= now && previous_expires_at <= now + max_overlap(),
        "/overlap_secs",
        "the overlap may last 0 s to 7 days",
    );
    checks.finish()?;
    Ok(vec![WebhookEvent::SecretRotated(SecretRotated {
        secret,
        previous_expires_at,
    })])
}

/// Replays messages to an endpoint that can receive them.
pub fn replay(
    org: &Org,
    app: &App,
    endpoint: &Endpoint,
    actor: Uuid,
    replay: ReplayRequested,
) -> Result<Vec<WebhookEvent>, WebhookError> {
    managed(org, app, endpoint, actor)?;
    let mut checks = Checks::default();
    match (&replay.since, &replay.until) {
        (None, None) => {
            checks.check(
                !replay.message_ids.is_empty() && replay.message_ids.len() <= 1000,
                "/message_ids",
                "1 to 1,000 message ids, or a window (since, until) to recover",
            );
        }
        (since, until) => {
            checks.check(
                replay.message_ids.is_empty(),
                "/message_ids",
                "either message ids or a window, not both",
            );
            checks.check(
                since.is_some() && until.is_none_or(|u| since.is_some_and(|s| s < u)),
                "/since",
                "a window needs since, before until",
            );
        }
    }
    checks.finish()?;
    Ok(vec![WebhookEvent::ReplayRequested(replay)])
}

/// Whether an endpoint is the app's to read.
pub fn readable(org: &Org, app: &App, endpoint: &Endpoint, user: Uuid) -> bool {
    endpoint.exists
        && endpoint.app_id == app.id
        && endpoint.status != EndpointStatus::Deleted
        && app.access_of(org, user).is_ok()
}

#[cfg(test)]
mod tests;
