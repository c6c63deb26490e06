//! Issuing, rotating and revoking keys.

#[allow(unused_imports)]
use super::*;

/// Why a key command is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyError {
    /// A rule of the app (not found, suspended) or of its organisation
    /// (not a member, lacking a permission).
    #[error(transparent)]
    App(#[from] AppError),
    /// Fields failed validation.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No such key (or the caller may not know of it).
    #[error("no such key")]
    NotFound,
    /// Live keys wait for production access.
    #[error("live keys need production access (next step: request_production)")]
    NotInProduction,
    /// The key is revoked.
    #[error("this key is revoked")]
    Revoked,
    /// The key was already rotated.
    #[error("this key has already been rotated; rotate its replacement")]
    AlreadyRotated,
    /// The key has expired.
    #[error("this key has expired")]
    Expired,
}

impl From<OrgError> for KeyError {
    fn from(e: OrgError) -> Self {
        KeyError::App(AppError::Org(e))
    }
}

/// The longest a rotation's overlap may last.
pub fn max_grace() -> Duration {
    Duration::days(30)
}

/// The overlap of a rotation without one given.
pub fn default_grace() -> Duration {
    Duration::hours(24)
}

/// The permission acting on keys of `mode` needs.
pub fn permission_for(mode: Mode) -> Permission {
    match mode {
        Mode::Live => Permission::ManageLiveCredentials,
        Mode::Test => Permission::ManageTestCredentials,
    }
}

/// Checks that `actor` may manage `mode` keys of `app` in `org`, and that
/// the app can take new credentials.
fn authorize(org: &Org, app: &App, actor: Uuid, mode: Mode) -> Result<(), KeyError> {
    app.access_of(org, actor)?;
    org.authorize(actor, permission_for(mode))?;
    Ok(())
}

/// `IssueKey`: a new key for an app, or a key imported from the platform
/// that issued it (then only its hash and prefix are known).
#[derive(Debug, Clone, PartialEq)]
pub struct IssueKey {
    /// The new key's id.
    pub key_id: Uuid,
    /// Name, trimmed.
    pub name: String,
    /// Mode.
    pub mode: Mode,
    /// Kind.
    pub kind: KeyKind,
    /// Scopes (restricted keys only).
    pub scopes: Vec<String>,
    /// Expiry, in the future.
    pub expires_at: Option<DateTime<Utc>>,
    /// Optional rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Display prefix.
    pub prefix: String,
    /// SHA-256 of the key.
    pub hash: format::KeyHash,
    /// Imported rather than minted here.
    pub imported: bool,
}

/// Validates an issue's fields; `pointer` is where the key sits in the
/// body (`""` for one key, `/keys/3` for an import's fourth).
pub fn check_issue(
    app: &App,
    cmd: &IssueKey,
    now: DateTime<Utc>,
    pointer: &str,
) -> Result<(), Invalid> {
    let mut checks = Checks::default();
    checks.display_name(&format!("{pointer}/name"), &cmd.name, 100);
    match cmd.kind {
        KeyKind::Secret => {
            checks.check(
                cmd.scopes.is_empty(),
                &format!("{pointer}/scopes"),
                "a secret key carries every scope its app's approved products grant; name scopes only for a restricted key",
            );
        }
        KeyKind::Restricted => {
            let approved = app.approved_scopes(cmd.mode);
            checks.check(
                !cmd.scopes.is_empty(),
                &format!("{pointer}/scopes"),
                "a restricted key needs at least one scope",
            );
            let mut seen = BTreeSet::new();
            for (i, s) in cmd.scopes.iter().enumerate() {
                checks.check(
                    approved.contains(s),
                    &format!("{pointer}/scopes/{i}"),
                    format!(
                        "{s:?} is not granted in {} mode by an approved product of this app",
                        cmd.mode.as_str()
                    ),
                );
                checks.check(
                    seen.insert(s),
                    &format!("{pointer}/scopes/{i}"),
                    "is repeated",
                );
            }
        }
    }
    if let Some(at) = cmd.expires_at {
        checks.check(
            at > now,
            &format!("{pointer}/expires_at"),
            "must be in the future",
        );
    }
    if let Some(r) = cmd.rate_limit {
        checks.check(
            r.limit >= 1 && r.limit <= 1_000_000,
            &format!("{pointer}/rate_limit/limit"),
            "must be 1 to 1000000",
        );
        checks.check(
            r.window_secs == 1 || r.window_secs == 60,
            &format!("{pointer}/rate_limit/per"),
            "must be second or minute",
        );
    }
    checks.finish()
}

/// The `api_key.issued` event for `cmd`.
fn issued(app: &App, cmd: IssueKey, rotated_from: Option<Uuid>) -> KeyEvent {
    KeyEvent::Issued(KeyIssued {
        key_id: cmd.key_id,
        app_id: app.id,
        org_id: app.org_id,
        name: cmd.name,
        mode: cmd.mode.as_str().into(),
        kind: cmd.kind.as_str().into(),
        scopes: cmd.scopes,
        prefix: cmd.prefix,
        hash: format::hash_hex(&cmd.hash),
        expires_at: cmd.expires_at,
        rate_limit: cmd.rate_limit.map(|r| r.limit),
        rate_limit_window_secs: cmd.rate_limit.map(|r| r.window_secs),
        rotated_from,
        imported: cmd.imported,
    })
}

/// Issues a key: the caller may manage keys of its mode, the app is not
/// suspended, live keys wait for production, restricted scopes are among
/// those the app's approved products grant in that mode.
pub fn issue(
    org: &Org,
    app: &App,
    actor: Uuid,
    cmd: IssueKey,
    now: DateTime<Utc>,
) -> Result<Vec<KeyEvent>, KeyError> {
    authorize(org, app, actor, cmd.mode)?;
    if app.suspended.is_some() {
        return Err(AppError::Suspended.into());
    }
    if cmd.mode == Mode::Live && !org.in_production() {
        return Err(KeyError::NotInProduction);
    }
    check_issue(app, &cmd, now, "")?;
    Ok(vec![issued(app, cmd, None)])
}

/// A key that can still be rotated or revoked by `actor`.
fn live_key<'k>(
    org: &Org,
    app: &App,
    key: &'k Key,
    actor: Uuid,
) -> Result<(&'k Key, Mode), KeyError> {
    if !key.exists || key.app_id != app.id {
        return Err(KeyError::NotFound);
    }
    let mode = key.mode.ok_or(KeyError::NotFound)?;
    authorize(org, app, actor, mode)?;
    if key.revoked.is_some() {
        return Err(KeyError::Revoked);
    }
    Ok((key, mode))
}

/// `RotateKey`: replace a key with a new one that keeps its name, kind,
/// scopes, expiry and rate limit; the old key verifies until `stops_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct RotateKey {
    /// The new key's id.
    pub new_key_id: Uuid,
    /// The new key's display prefix.
    pub prefix: String,
    /// The new key's hash.
    pub hash: format::KeyHash,
    /// When the old key stops verifying (now for no overlap).
    pub stops_at: DateTime<Utc>,
}

/// What a rotation appends: to the old key's stream and the new key's.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    /// `api_key.rotated`, for the old key.
    pub old: Vec<KeyEvent>,
    /// `api_key.issued`, for the new key.
    pub new: Vec<KeyEvent>,
}

/// Rotates a key that is neither revoked, rotated nor expired; the overlap
/// ends no earlier than now and at most [`max_grace`] later.
pub fn rotate(
    org: &Org,
    app: &App,
    key: &Key,
    actor: Uuid,
    cmd: RotateKey,
    now: DateTime<Utc>,
) -> Result<Rotation, KeyError> {
    let (key, mode) = live_key(org, app, key, actor)?;
    if key.rotated.is_some() {
        return Err(KeyError::AlreadyRotated);
    }
    if key.status(now) == KeyStatus::Expired {
        return Err(KeyError::Expired);
    }
    if app.suspended.is_some() {
        return Err(AppError::Suspended.into());
    }
    // A required rotation's deadline bounds the overlap.
    let stops_at = key
        .required_by
        .map_or(cmd.stops_at, |d| d.min(cmd.stops_at));
    let cmd = RotateKey { stops_at, ..cmd };
    let mut checks = Checks::default();
    checks.check(cmd.stops_at >= now, "/at", "must not be in the past");
    checks.check(
        cmd.stops_at <= now + max_grace(),
        "/grace_period_secs",
        "the overlap may last at most 30 days",
    );
    checks.finish()?;
    let replacement = IssueKey {
        key_id: cmd.new_key_id,
        name: key.name.clone(),
        mode,
        kind: key.kind.ok_or(KeyError::NotFound)?,
        scopes: key.scopes.clone(),
        expires_at: key.expires_at,
        rate_limit: key.rate_limit,
        prefix: cmd.prefix,
        hash: cmd.hash,
        imported: false,
    };
    Ok(Rotation {
        old: vec![KeyEvent::Rotated(KeyRotated {
            replaced_by: cmd.new_key_id,
            stops_at: cmd.stops_at,
        })],
        new: vec![issued(app, replacement, Some(key.id))],
    })
}

/// Revokes a key, irreversibly. Allowed on a suspended app (stopping a
/// credential is always possible).
pub fn revoke(
    org: &Org,
    app: &App,
    key: &Key,
    actor: Uuid,
    reason: Option<String>,
) -> Result<Vec<KeyEvent>, KeyError> {
    live_key(org, app, key, actor)?;
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if let Some(r) = &reason {
        let mut checks = Checks::default();
        checks.display_name("/reason", r, 500);
        checks.finish()?;
    }
    Ok(vec![KeyEvent::Revoked(KeyRevoked { reason })])
}

/// The most keys one import may carry.
pub const MAX_IMPORT: usize = 1000;
/// The most key families (`sk_live_`, `pk_test_`: see
/// [`format::family_of`]) one import may name: a migration brings a few
/// formats, and every family makes other-format keys worth a lookup.
pub const MAX_IMPORT_FAMILIES: usize = 8;

/// Imports keys another platform issued (their hashes and visible starts;
/// Gatehouse never sees the plaintexts), all or none. Each obeys the rules
/// of [`issue`]; a visible start is 4 to 32 printable characters and no
/// hash appears twice. Returns each new key's events.
pub fn import(
    org: &Org,
    app: &App,
    actor: Uuid,
    keys: Vec<IssueKey>,
    now: DateTime<Utc>,
) -> Result<Vec<Vec<KeyEvent>>, KeyError> {
    let mut checks = Checks::default();
    checks.check(
        !keys.is_empty() && keys.len() <= MAX_IMPORT,
        "/keys",
        format!("must hold 1 to {MAX_IMPORT} keys"),
    );
    checks.finish()?;
    if app.suspended.is_some() {
        return Err(AppError::Suspended.into());
    }
    let mut errors = Vec::new();
    let mut hashes = BTreeSet::new();
    for (i, k) in keys.iter().enumerate() {
        authorize(org, app, actor, k.mode)?;
        if k.mode == Mode::Live && !org.in_production() {
            return Err(KeyError::NotInProduction);
        }
        let pointer = format!("/keys/{i}");
        if let Err(Invalid(mut e)) = check_issue(app, k, now, &pointer) {
            errors.append(&mut e);
        }
        let mut more = Checks::default();
        more.check(
            (4..=format::MAX_IMPORTED_PREFIX).contains(&k.prefix.len())
                && k.prefix.bytes().all(|b| b.is_ascii_graphic()),
            &format!("{pointer}/prefix"),
            "must be the key's first 4 to 32 printable characters",
        )
        .check(
            hashes.insert(k.hash),
            &format!("{pointer}/hash"),
            "appears twice in this import",
        );
        if let Err(Invalid(mut e)) = more.finish() {
            errors.append(&mut e);
        }
    }
    let families: BTreeSet<&str> = keys.iter().map(|k| format::family_of(&k.prefix)).collect();
    if families.len() > MAX_IMPORT_FAMILIES {
        errors.push(crate::FieldError {
            pointer: "/keys".into(),
            detail: format!(
                "names {} key families (visible starts up to their last `_`); at most \
                 {MAX_IMPORT_FAMILIES} in one import",
                families.len()
            ),
        });
    }
    if !errors.is_empty() {
        return Err(Invalid(errors).into());
    }
    Ok(keys
        .into_iter()
        .map(|k| {
            vec![issued(
                app,
                IssueKey {
                    imported: true,
                    ..k
                },
                None,
            )]
        })
        .collect())
}

/// Where a secret scanner found a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakReport {
    /// The public URL.
    pub url: Option<String>,
    /// What found it.
    pub source: Option<String>,
}

impl LeakReport {
    /// The report as it is recorded: each field cut to 2,000 characters.
    pub fn clipped(self) -> LeakReport {
        let clip = |s: Option<String>| s.map(|s| s.chars().take(2000).collect::<String>());
        LeakReport {
            url: clip(self.url),
            source: clip(self.source),
        }
    }

    /// Whether a leaked credential of `mode`, revoked already or not, is
    /// revoked for it: a test one always, a live one when the deployment
    /// says so. The one rule for keys and OAuth clients alike.
    pub fn revokes(mode: Option<Mode>, revoked: bool, revoke_live: bool) -> bool {
        !revoked && (mode == Some(Mode::Test) || revoke_live)
    }
}

/// A scanner reports `key` public: recorded, and revoked when it is a test
/// key or `revoke_live` (a revoked key stays revoked; the report is still
/// recorded). No member acts, so no role is checked.
pub fn report_leak(
    key: &Key,
    report: LeakReport,
    revoke_live: bool,
) -> Result<Vec<KeyEvent>, KeyError> {
    if !key.exists {
        return Err(KeyError::NotFound);
    }
    let revoke = LeakReport::revokes(key.mode, key.revoked.is_some(), revoke_live);
    let report = report.clipped();
    let mut events = vec![KeyEvent::LeakReported(KeyLeakReported {
        app_id: key.app_id,
        url: report.url,
        source: report.source,
        revoked: revoke,
    })];
    if revoke {
        events.push(KeyEvent::Revoked(KeyRevoked {
            reason: Some("found in public by secret scanning".into()),
        }));
    }
    Ok(events)
}

/// A staff mass rotation reaches `key`: it stops at `stops_at` unless its
/// owners rotate it before. Nothing for a key already revoked, rotated,
/// required or expired (so a resumed job decides the same).
pub fn require_rotation(
    key: &Key,
    job_id: Uuid,
    stops_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<KeyEvent> {
    let done = !key.exists
        || key.revoked.is_some()
        || key.rotated.is_some()
        || key.required_by.is_some()
        || key.status(now) == KeyStatus::Expired;
    if done {
        return Vec::new();
    }
    vec![KeyEvent::RotationRequired(KeyRotationRequired {
        job_id,
        app_id: key.app_id,
        stops_at,
    })]
}
