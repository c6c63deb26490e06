//! OAuth client credentials (RFC 6749 §4.4) of an app, and the keys the
//! deployment signs access tokens with. A client follows the key rules:
//! its mode's permission to create, rotate or revoke it, live clients only
//! in production, scopes among the app's approved ones.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use event_schemas::oauth::*;
use uuid::Uuid;

use crate::apps::{App, AppError, Mode};
use crate::keys::{permission_for, KeyError};
use crate::orgs::Org;
use crate::validate::Checks;

/// A client, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OAuthClient {
    /// Created.
    pub exists: bool,
    /// Client id.
    pub id: Uuid,
    /// Its app.
    pub app_id: Uuid,
    /// The app's organisation.
    pub org_id: Uuid,
    /// Name.
    pub name: String,
    /// Mode.
    pub mode: Option<Mode>,
    /// Scopes its tokens may carry (empty: the app's approved ones).
    pub scopes: Vec<String>,
    /// SHA-256 of the current secret, hex.
    pub secret_hash: String,
    /// The previous secret and when it stops working.
    pub previous: Option<(String, DateTime<Utc>)>,
    /// Revoked.
    pub revoked: bool,
}

impl OAuthClient {
    /// Applies one event.
    pub fn apply(&mut self, event: &OAuthClientEvent) -> Result<(), String> {
        match event {
            OAuthClientEvent::Created(c) => {
                self.exists = true;
                self.id = c.client_id;
                self.app_id = c.app_id;
                self.org_id = c.org_id;
                self.name.clone_from(&c.name);
                self.mode =
                    Some(Mode::parse(&c.mode).ok_or_else(|| format!("unknown mode {:?}", c.mode))?);
                self.scopes.clone_from(&c.scopes);
                self.secret_hash.clone_from(&c.secret_hash);
            }
            OAuthClientEvent::SecretRotated(r) => {
                let old = std::mem::replace(&mut self.secret_hash, r.secret_hash.clone());
                self.previous = Some((old, r.previous_stops_at));
            }
            OAuthClientEvent::Revoked(_) => self.revoked = true,
            // Recorded; any revocation it led to is its own event.
            OAuthClientEvent::LeakReported(_) => {}
        }
        Ok(())
    }

    /// Whether `hash` (of a presented secret) is the current secret, or the
    /// previous one before its end.
    pub fn accepts(&self, hash: &str, now: DateTime<Utc>) -> bool {
        use subtle_eq as eq;
        !self.revoked
            && (eq(&self.secret_hash, hash)
                || self
                    .previous
                    .as_ref()
                    .is_some_and(|(h, until)| now < *until && eq(h, hash)))
    }
}

/// Equality that looks at every byte (the hashes compared are public
/// lengths; the content should not leak through timing).
fn subtle_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `CreateOAuthClient`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateOAuthClient {
    /// The new client's id.
    pub client_id: Uuid,
    /// Name, trimmed.
    pub name: String,
    /// Mode.
    pub mode: Mode,
    /// Scopes (empty: all the app's approved ones in that mode).
    pub scopes: Vec<String>,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
}

fn authorize(org: &Org, app: &App, actor: Uuid, mode: Mode) -> Result<(), KeyError> {
    app.access_of(org, actor)?;
    org.authorize(actor, permission_for(mode))?;
    Ok(())
}

/// Creates a client for an app that is not suspended.
pub fn create(
    org: &Org,
    app: &App,
    actor: Uuid,
    cmd: CreateOAuthClient,
) -> Result<Vec<OAuthClientEvent>, KeyError> {
    authorize(org, app, actor, cmd.mode)?;
    if app.suspended.is_some() {
        return Err(AppError::Suspended.into());
    }
    if cmd.mode == Mode::Live && !org.in_production() {
        return Err(KeyError::NotInProduction);
    }
    let mut checks = Checks::default();
    checks.display_name("/name", &cmd.name, 100);
    let approved = app.approved_scopes(cmd.mode);
    let mut seen = BTreeSet::new();
    for (i, s) in cmd.scopes.iter().enumerate() {
        checks.check(
            approved.contains(s),
            &format!("/scopes/{i}"),
            format!(
                "{s:?} is not granted in {} mode by an approved product of this app",
                cmd.mode.as_str()
            ),
        );
        checks.check(seen.insert(s), &format!("/scopes/{i}"), "is repeated");
    }
    checks.finish()?;
    Ok(vec![OAuthClientEvent::Created(OAuthClientCreated {
        client_id: cmd.client_id,
        app_id: app.id,
        org_id: app.org_id,
        name: cmd.name,
        mode: cmd.mode.as_str().into(),
        scopes: cmd.scopes,
        secret_hash: cmd.secret_hash,
    })])
}

fn live<'c>(
    org: &Org,
    app: &App,
    client: &'c OAuthClient,
    actor: Uuid,
) -> Result<&'c OAuthClient, KeyError> {
    if !client.exists || client.app_id != app.id {
        return Err(KeyError::NotFound);
    }
    authorize(org, app, actor, client.mode.ok_or(KeyError::NotFound)?)?;
    if client.revoked {
        return Err(KeyError::Revoked);
    }
    Ok(client)
}

/// A new secret; the previous one works until `previous_stops_at` (no
/// earlier than now, at most 30 days later).
pub fn rotate_secret(
    org: &Org,
    app: &App,
    client: &OAuthClient,
    actor: Uuid,
    secret_hash: String,
    previous_stops_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<OAuthClientEvent>, KeyError> {
    live(org, app, client, actor)?;
    let mut checks = Checks::default();
    checks.check(
        previous_stops_at >= now && previous_stops_at <= now + crate::keys::max_grace(),
        "/grace_period_secs",
        "the overlap may last 0 s to 30 days",
    );
    checks.finish()?;
    Ok(vec![OAuthClientEvent::SecretRotated(OAuthSecretRotated {
        secret_hash,
        previous_stops_at,
    })])
}

/// Revokes a client, irreversibly.
pub fn revoke(
    org: &Org,
    app: &App,
    client: &OAuthClient,
    actor: Uuid,
) -> Result<Vec<OAuthClientEvent>, KeyError> {
    live(org, app, client, actor)?;
    Ok(vec![OAuthClientEvent::Revoked(OAuthClientRevoked {
        reason: None,
    })])
}

/// A secret scanner found the client's secret in public: the report is
/// recorded, and a test client revoked (a live one too when the deployment
/// says so). The owners are told either way.
pub fn report_leak(
    client: &OAuthClient,
    report: crate::keys::LeakReport,
    revoke_live: bool,
) -> Result<Vec<OAuthClientEvent>, KeyError> {
    if !client.exists {
        return Err(KeyError::NotFound);
    }
    let revoke = crate::keys::LeakReport::revokes(client.mode, client.revoked, revoke_live);
    let report = report.clipped();
    let mut events = vec![OAuthClientEvent::LeakReported(
        event_schemas::oauth::OAuthClientLeakReported {
            app_id: client.app_id,
            url: report.url,
            source: report.source,
            revoked: revoke,
        },
    )];
    if revoke {
        events.push(OAuthClientEvent::Revoked(OAuthClientRevoked {
            reason: Some("its secret was found in public by secret scanning".into()),
        }));
    }
    Ok(events)
}

/// The longest an access token lives.
pub fn max_token_ttl() -> Duration {
    Duration::hours(1)
}

/// The deployment's signing keys, folded from `signing_keys`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SigningKeys {
    /// Each key: id, public key (base64url) and, once replaced, when it
    /// stops verifying. The last is the one tokens are signed with.
    pub keys: Vec<(String, String, Option<DateTime<Utc>>)>,
}

impl SigningKeys {
    /// Applies one event.
    pub fn apply(&mut self, event: &SigningKeyEvent) {
        let SigningKeyEvent::Added(a) = event;
        if let Some(last) = self.keys.last_mut() {
            last.2 = a.previous_retires_at;
        }
        self.keys.push((a.kid.clone(), a.public_key.clone(), None));
    }

    /// The keys that still verify at `now` (the JWKS).
    pub fn published(
        &self,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = &(String, String, Option<DateTime<Utc>>)> {
        self.keys
            .iter()
            .filter(move |k| k.2.is_none_or(|until| now < until))
    }
}

/// A new signing key; the current one retires once every token it signed
/// has expired.
pub fn add_signing_key(
    keys: &SigningKeys,
    kid: String,
    public_key: String,
    now: DateTime<Utc>,
) -> Vec<SigningKeyEvent> {
    let previous_retires_at = (!keys.keys.is_empty()).then(|| now + max_token_ttl());
    vec![SigningKeyEvent::Added(SigningKeyAdded {
        kid,
        algorithm: "EdDSA".into(),
        public_key,
        previous_retires_at,
    })]
}
