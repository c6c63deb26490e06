//! The key aggregate's state: what its stream folds into, and its status
//! at an instant.

#[allow(unused_imports)]
use super::*;

/// A key's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// Everything the app's approved products grant.
    Secret,
    /// Only the scopes it names.
    Restricted,
}

impl KeyKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Secret => "secret",
            KeyKind::Restricted => "restricted",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "secret" => Some(KeyKind::Secret),
            "restricted" => Some(KeyKind::Restricted),
            _ => None,
        }
    }
}

/// A key's status, as the key table shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Verifies.
    Active,
    /// Rotated: verifies until the overlap ends.
    Expiring,
    /// Past its expiry or its rotation's end.
    Expired,
    /// Revoked; never verifies again.
    Revoked,
}

impl KeyStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Expiring => "expiring",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        }
    }
}

/// How often a key may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Verifications per window.
    pub limit: u32,
    /// The window, in seconds: 1 or 60.
    pub window_secs: u32,
}

/// A key, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Key {
    /// Issued (the stream exists).
    pub exists: bool,
    /// Id.
    pub id: Uuid,
    /// Its app.
    pub app_id: Uuid,
    /// The app's organisation.
    pub org_id: Uuid,
    /// Name.
    pub name: String,
    /// Mode (`None` only before issue).
    pub mode: Option<Mode>,
    /// Kind.
    pub kind: Option<KeyKind>,
    /// Scopes of a restricted key.
    pub scopes: Vec<String>,
    /// Display prefix.
    pub prefix: String,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Its rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Replaced by a rotation: the new key and when this one stops.
    pub rotated: Option<(Uuid, DateTime<Utc>)>,
    /// Revoked, with the reason if given.
    pub revoked: Option<Option<String>>,
    /// Imported from another platform.
    pub imported: bool,
    /// Reported found in public by a secret scanner.
    pub leaked: bool,
    /// A staff mass rotation requires it rotated: it stops then.
    pub required_by: Option<DateTime<Utc>>,
}

impl Key {
    /// Applies one event; a value the code does not know is an error.
    pub fn apply(&mut self, event: &KeyEvent) -> Result<(), String> {
        match event {
            KeyEvent::Issued(e) => {
                self.exists = true;
                self.id = e.key_id;
                self.app_id = e.app_id;
                self.org_id = e.org_id;
                self.name.clone_from(&e.name);
                self.mode =
                    Some(Mode::parse(&e.mode).ok_or_else(|| format!("unknown mode {:?}", e.mode))?);
                self.kind = Some(
                    KeyKind::parse(&e.kind).ok_or_else(|| format!("unknown kind {:?}", e.kind))?,
                );
                self.scopes.clone_from(&e.scopes);
                self.prefix.clone_from(&e.prefix);
                self.expires_at = e.expires_at;
                self.rate_limit = match (e.rate_limit, e.rate_limit_window_secs) {
                    (Some(limit), Some(window_secs)) => Some(RateLimit { limit, window_secs }),
                    (None, None) => None,
                    _ => return Err("a rate limit without its window".into()),
                };
                self.imported = e.imported;
            }
            KeyEvent::Rotated(r) => self.rotated = Some((r.replaced_by, r.stops_at)),
            KeyEvent::Revoked(r) => self.revoked = Some(r.reason.clone()),
            KeyEvent::LeakReported(_) => self.leaked = true,
            KeyEvent::RotationRequired(r) => self.required_by = Some(r.stops_at),
        }
        Ok(())
    }

    /// Folds events into a key.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a KeyEvent>) -> Result<Self, String> {
        let mut key = Key::default();
        for e in events {
            key.apply(e)?;
        }
        Ok(key)
    }

    /// Its status at `now`: revoked, else expired once its expiry or its
    /// rotation's end is reached (to the instant), else expiring during a
    /// rotation's overlap, else active.
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        let stops = [self.rotated.map(|(_, at)| at), self.required_by]
            .into_iter()
            .flatten()
            .min();
        status_at(self.revoked.is_some(), self.expires_at, stops, now)
    }
}

/// A key's status at `now` from what the key table keeps: revoked, else
/// expired once its expiry or its rotation's end (`stops_at`) is reached,
/// else expiring during a rotation's overlap, else active.
pub fn status_at(
    revoked: bool,
    expires_at: Option<DateTime<Utc>>,
    stops_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> KeyStatus {
    if revoked {
        return KeyStatus::Revoked;
    }
    let ends = [expires_at, stops_at].into_iter().flatten().min();
    match ends {
        Some(end) if now >= end => KeyStatus::Expired,
        _ if stops_at.is_some() => KeyStatus::Expiring,
        _ => KeyStatus::Active,
    }
}
