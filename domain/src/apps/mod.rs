//! Apps: details, status, visibility and distribution, app team members,
//! versions with manifests, install links and installs, and access to API
//! products. One aggregate per app (`app-<id>`), decided against the owning
//! organisation's state for who may do what.
//!
//! Who may act on an app: a member whose org role has `apps.manage`, an
//! admin of the owning team, or an app admin manages it; every other member
//! of the organisation may view it; anyone else does not know it exists.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use event_schemas::app::*;
use serde_json::Value;
use uuid::Uuid;

use crate::manifest;
use crate::orgs::{Org, OrgError};
use crate::products::Product;
use crate::roles::Permission;
use crate::validate::{Checks, FieldError, Invalid};

pub mod installs;

pub use installs::{
    create_install_link, install, install_legacy, uninstall, CreateInstallLink, Install,
    Installation, Link, Uninstall,
};

/// The longest an install link may live.
pub fn max_install_link_ttl() -> Duration {
    Duration::days(30)
}

/// An app's status as the portal shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Usable.
    Active,
    /// Waiting for a product decision, with nothing approved yet.
    Pending,
    /// Stopped by staff; credentials answer `app_suspended`.
    Suspended,
    /// Gone; every credential is invalid.
    Deleted,
}

impl Status {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Pending => "pending",
            Status::Suspended => "suspended",
            Status::Deleted => "deleted",
        }
    }
}

/// Who may install an app.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Visibility {
    /// The owning workspace and its allowlist.
    #[default]
    Private,
    /// Anyone with an install link.
    Unlisted,
    /// Anyone; listed.
    Public,
}

impl Visibility {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Unlisted => "unlisted",
            Visibility::Public => "public",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Visibility::Private,
            Visibility::Unlisted,
            Visibility::Public,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// Roles on one app (its Security page).
pub const APP_ROLES: [&str; 2] = ["admin", "developer"];

/// A role on an app's team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppRole {
    /// Manages the app.
    Admin,
    /// Works on it.
    Developer,
}

impl AppRole {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AppRole::Admin => "admin",
            AppRole::Developer => "developer",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(AppRole::Admin),
            "developer" => Some(AppRole::Developer),
            _ => None,
        }
    }
}

/// A credential mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Test credentials (sandbox).
    Test,
    /// Live credentials (production).
    Live,
}

impl Mode {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "test" => Some(Mode::Test),
            "live" => Some(Mode::Live),
            _ => None,
        }
    }
}

/// A version of an app.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// Its label.
    pub label: String,
    /// Its manifest.
    pub manifest: Value,
    /// Published (immutable).
    pub published: bool,
}

/// An install link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallLink {
    /// The version it installs.
    pub version_id: Uuid,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// Usable once.
    pub single_use: bool,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Times used.
    pub uses: u32,
}

/// Where a product access request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessState {
    /// Waiting for staff.
    Pending,
    /// Granted with these scopes.
    Approved(Vec<String>),
    /// Refused, with the reason.
    Rejected(String),
}

/// A request for a product, for one credential mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The product.
    pub product_id: Uuid,
    /// `test` or `live`.
    pub mode: String,
    /// Its state.
    pub state: AccessState,
}

/// An app, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct App {
    /// Id.
    pub id: Uuid,
    /// Created and not unknown.
    pub exists: bool,
    /// Owning organisation.
    pub org_id: Uuid,
    /// Owning team, if any.
    pub team_id: Option<Uuid>,
    /// Name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// Description.
    pub description: String,
    /// Allowed browser origins.
    pub origins: Vec<String>,
    /// OAuth callback URLs.
    pub callback_urls: Vec<String>,
    /// Custom attributes.
    pub attributes: BTreeMap<String, String>,
    /// The org's sandbox tenant at creation.
    pub sandbox_tenant_id: Option<Uuid>,
    /// Deleted.
    pub deleted: bool,
    /// Suspended, with the reason.
    pub suspended: Option<String>,
    /// Visibility.
    pub visibility: Visibility,
    /// An open distribution request: id and the visibility asked for.
    pub distribution_request: Option<(Uuid, Visibility)>,
    /// Workspaces allowed to install it while private.
    pub allowlist: BTreeSet<Uuid>,
    /// App team members and their role.
    pub members: BTreeMap<Uuid, String>,
    /// Versions.
    pub versions: BTreeMap<Uuid, Version>,
    /// Install links.
    pub links: BTreeMap<Uuid, InstallLink>,
    /// Installs: workspace to version.
    pub installs: BTreeMap<Uuid, Uuid>,
    /// Product access requests.
    pub access: BTreeMap<Uuid, Access>,
}

/// What an app command can be refused for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppError {
    /// A rule of the organisation (not a member, lacking a permission,
    /// terms not accepted).
    #[error(transparent)]
    Org(#[from] OrgError),
    /// Fields failed validation.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No such app (or the caller may not know of it).
    #[error("no such app")]
    NotFound,
    /// The caller may view the app but not change it.
    #[error("you may view this app but not manage it (apps.manage, or admin of its team or app)")]
    ViewOnly,
    /// The app is deleted.
    #[error("this app has been deleted")]
    Deleted,
    /// The app is suspended.
    #[error("this app is suspended")]
    Suspended,
    /// Not suspended.
    #[error("this app is not suspended")]
    NotSuspended,
    /// A distribution request is already open.
    #[error("a distribution request is already waiting for staff")]
    DistributionPending,
    /// No such distribution request open.
    #[error("no distribution request is waiting")]
    NoDistributionRequest,
    /// No such version.
    #[error("no such version")]
    NoSuchVersion,
    /// The label is taken.
    #[error("a version with this label already exists")]
    VersionLabelTaken,
    /// Published versions never change.
    #[error("this version is published and can no longer change")]
    VersionPublished,
    /// Only published versions are installed.
    #[error("this version is a draft; publish it first")]
    VersionNotPublished,
    /// No such install link.
    #[error("no such install link")]
    NoSuchLink,
    /// The link expired.
    #[error("this install link has expired")]
    LinkExpired,
    /// The single-use link was used.
    #[error("this install link has already been used")]
    LinkUsed,
    /// The workspace may not install this private app.
    #[error("this app is private and your workspace is not on its install allowlist")]
    NotAllowlisted,
    /// Already installed at this version.
    #[error("this version is already installed in your workspace")]
    AlreadyInstalled,
    /// Not installed.
    #[error("this app is not installed in your workspace")]
    NotInstalled,
    /// The product is already requested or granted for this mode.
    #[error("this product is already requested or granted for this mode")]
    AccessAlreadyRequested,
    /// No such access request.
    #[error("no such product access request")]
    NoSuchAccessRequest,
    /// The request was already decided.
    #[error("this request has already been decided")]
    AccessDecided,
    /// No such product.
    #[error("no such product")]
    NoSuchProduct,
}

/// The level of access a user has to an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AppAccess {
    /// Read.
    View,
    /// Change.
    Manage,
}

impl App {
    /// Applies one event. An event that refers to something the stream
    /// never created (a version, a request) or carries a value the code
    /// does not know is an error, never silently skipped: the log and the
    /// code disagree and someone must look.
    pub fn apply(&mut self, event: &AppEvent) -> Result<(), String> {
        match event {
            AppEvent::Created(e) => {
                self.id = e.app_id;
                self.exists = true;
                self.org_id = e.org_id;
                self.team_id = e.team_id;
                self.name.clone_from(&e.name);
                self.slug.clone_from(&e.slug);
                self.description.clone_from(&e.description);
                self.origins.clone_from(&e.origins);
                self.callback_urls.clone_from(&e.callback_urls);
                self.attributes.clone_from(&e.attributes);
                self.sandbox_tenant_id = e.sandbox_tenant_id;
            }
            AppEvent::Updated(u) => {
                if let Some(v) = &u.name {
                    self.name.clone_from(v);
                }
                if let Some(v) = &u.slug {
                    self.slug.clone_from(v);
                }
                if let Some(v) = &u.description {
                    self.description.clone_from(v);
                }
                if let Some(v) = &u.origins {
                    self.origins.clone_from(v);
                }
                if let Some(v) = &u.callback_urls {
                    self.callback_urls.clone_from(v);
                }
                for (k, v) in &u.attributes {
                    match v {
                        Some(v) => self.attributes.insert(k.clone(), v.clone()),
                        None => self.attributes.remove(k),
                    };
                }
            }
            AppEvent::Deleted(_) => self.deleted = true,
            AppEvent::Suspended(e) => self.suspended = Some(e.reason.clone()),
            AppEvent::Reinstated(_) => self.suspended = None,
            AppEvent::MemberSet(m) => {
                self.members.insert(m.user_id, m.role.clone());
            }
            AppEvent::MemberRemoved(m) => {
                self.members.remove(&m.user_id);
            }
            AppEvent::DistributionRequested(r) => {
                let v = Visibility::parse(&r.visibility)
                    .ok_or_else(|| format!("unknown visibility {:?}", r.visibility))?;
                self.distribution_request = Some((r.request_id, v));
            }
            AppEvent::DistributionDecided(_) => self.distribution_request = None,
            AppEvent::VisibilityChanged(v) => {
                self.visibility = Visibility::parse(&v.visibility)
                    .ok_or_else(|| format!("unknown visibility {:?}", v.visibility))?;
            }
            AppEvent::AllowlistSet(a) => self.allowlist = a.org_ids.iter().copied().collect(),
            AppEvent::VersionCreated(v) => {
                self.versions.insert(
                    v.version_id,
                    Version {
                        label: v.label.clone(),
                        manifest: v.manifest.clone(),
                        published: false,
                    },
                );
            }
            AppEvent::ManifestUpdated(m) => {
                self.version_mut(m.version_id)?.manifest = m.manifest.clone();
            }
            AppEvent::VersionPublished(p) => {
                self.version_mut(p.version_id)?.published = true;
            }
            AppEvent::InstallLinkCreated(l) => {
                self.links.insert(
                    l.link_id,
                    InstallLink {
                        version_id: l.version_id,
                        token_hash: l.token_hash.clone(),
                        single_use: l.single_use,
                        expires_at: l.expires_at,
                        uses: 0,
                    },
                );
            }
            AppEvent::Installed(i) => {
                self.installs.insert(i.org_id, i.version_id);
                self.links
                    .get_mut(&i.link_id)
                    .ok_or_else(|| format!("install through unknown link {}", i.link_id))?
                    .uses += 1;
            }
            AppEvent::Uninstalled(u) => {
                self.installs.remove(&u.org_id);
            }
            AppEvent::AccessRequested(r) => {
                self.access.insert(
                    r.request_id,
                    Access {
                        product_id: r.product_id,
                        mode: r.mode.clone(),
                        state: AccessState::Pending,
                    },
                );
            }
            AppEvent::AccessApproved(a) => {
                self.access_mut(a.request_id)?.state = AccessState::Approved(a.scopes.clone());
            }
            AppEvent::AccessRejected(a) => {
                self.access_mut(a.request_id)?.state = AccessState::Rejected(a.reason.clone());
            }
        }
        Ok(())
    }

    fn version_mut(&mut self, id: Uuid) -> Result<&mut Version, String> {
        self.versions
            .get_mut(&id)
            .ok_or_else(|| format!("unknown version {id}"))
    }

    fn access_mut(&mut self, id: Uuid) -> Result<&mut Access, String> {
        self.access
            .get_mut(&id)
            .ok_or_else(|| format!("unknown product access request {id}"))
    }

    /// Folds events into an app.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a AppEvent>) -> Result<Self, String> {
        let mut app = App::default();
        for e in events {
            app.apply(e)?;
        }
        Ok(app)
    }

    /// The status the portal shows.
    pub fn status(&self) -> Status {
        let any = |f: fn(&AccessState) -> bool| self.access.values().any(|a| f(&a.state));
        if self.deleted {
            Status::Deleted
        } else if self.suspended.is_some() {
            Status::Suspended
        } else if any(|s| *s == AccessState::Pending)
            && !any(|s| matches!(s, AccessState::Approved(_)))
        {
            Status::Pending
        } else {
            Status::Active
        }
    }

    /// The scopes a credential of this app carries in `mode`: those of its
    /// approved products only.
    pub fn approved_scopes(&self, mode: Mode) -> BTreeSet<String> {
        self.access
            .values()
            .filter(|a| a.mode == mode.as_str())
            .filter_map(|a| match &a.state {
                AccessState::Approved(scopes) => Some(scopes.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// What `user` may do with this app, given the owning organisation.
    /// Outsiders (and everyone, once the app is deleted) get `NotFound`.
    pub fn access_of(&self, org: &Org, user: Uuid) -> Result<AppAccess, AppError> {
        if !self.exists || self.deleted || org.id != self.org_id {
            return Err(AppError::NotFound);
        }
        let role = org.role_of(user).map_err(|_| AppError::NotFound)?;
        let team_admin = self
            .team_id
            .and_then(|t| org.teams.get(&t))
            .and_then(|t| t.members.get(&user))
            .is_some_and(|r| r == "admin");
        let app_admin = self.members.get(&user).is_some_and(|r| r == "admin");
        if crate::roles::allows(role, Permission::ManageApps) || team_admin || app_admin {
            Ok(AppAccess::Manage)
        } else {
            Ok(AppAccess::View)
        }
    }

    /// Checks that `user` may manage this app, and that it may change.
    pub fn authorize_manage(&self, org: &Org, user: Uuid) -> Result<(), AppError> {
        match self.access_of(org, user)? {
            AppAccess::Manage => {}
            AppAccess::View => return Err(AppError::ViewOnly),
        }
        Ok(())
    }
}

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

const MAX_URLS: usize = 20;
const MAX_ATTRIBUTES: usize = 50;

impl Details {
    /// Trims, then checks every given field; errors name each bad field.
    /// `test_mode`: plain `http` is allowed for localhost only then.
    fn checked(mut self, test_mode: bool) -> Result<Self, Invalid> {
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

/// `CreateApp`. The org must have accepted the developer terms.
pub fn create(
    org: &Org,
    actor: Uuid,
    app_id: Uuid,
    team_id: Option<Uuid>,
    details: Details,
) -> Result<Vec<AppEvent>, AppError> {
    let role = org.role_of(actor)?;
    let team_admin = team_id
        .and_then(|t| org.teams.get(&t))
        .and_then(|t| t.members.get(&actor))
        .is_some_and(|r| r == "admin");
    if !crate::roles::allows(role, Permission::ManageApps) && !team_admin {
        return Err(OrgError::Forbidden(Permission::ManageApps).into());
    }
    if let Some(t) = team_id {
        if !org.teams.contains_key(&t) {
            return Err(Invalid(vec![FieldError {
                pointer: "/team_id".into(),
                detail: "no such team in this organization".into(),
            }])
            .into());
        }
    }
    let mut missing = Checks::default();
    missing
        .check(details.name.is_some(), "/name", "is required")
        .check(details.slug.is_some(), "/slug", "is required");
    missing.finish()?;
    let d = details.checked(!org.in_production())?;
    require_terms(org)?;
    Ok(vec![AppEvent::Created(AppCreated {
        app_id,
        org_id: org.id,
        team_id,
        name: d.name.unwrap_or_default(),
        slug: d.slug.unwrap_or_default(),
        description: d.description.unwrap_or_default(),
        origins: d.origins.unwrap_or_default(),
        callback_urls: d.callback_urls.unwrap_or_default(),
        attributes: d
            .attributes
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect(),
        sandbox_tenant_id: match org.sandbox {
            crate::orgs::Sandbox::Granted(tenant) => Some(tenant),
            _ => None,
        },
    })])
}

pub(crate) fn require_terms(org: &Org) -> Result<(), AppError> {
    if !org.terms_accepted() {
        return Err(OrgError::TermsNotAccepted.into());
    }
    Ok(())
}

/// Suspension freezes an app: every command that changes it is refused
/// until staff reinstate it. Reads, deletion (an owner can always end an
/// app, and its credentials stop at once) and uninstalling it from a
/// workspace stay possible.
pub(crate) fn changeable(app: &App) -> Result<(), AppError> {
    if app.suspended.is_some() {
        return Err(AppError::Suspended);
    }
    Ok(())
}

/// `UpdateApp`: only what differs becomes the event; no change, no event.
pub fn update(
    org: &Org,
    app: &App,
    actor: Uuid,
    details: Details,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    let d = details.checked(!org.in_production())?;
    let differs = |new: &Option<String>, old: &String| new.as_ref().filter(|n| *n != old).cloned();
    let vec_differs =
        |new: &Option<Vec<String>>, old: &Vec<String>| new.as_ref().filter(|n| *n != old).cloned();
    let u = AppUpdated {
        name: differs(&d.name, &app.name),
        slug: differs(&d.slug, &app.slug),
        description: differs(&d.description, &app.description),
        origins: vec_differs(&d.origins, &app.origins),
        callback_urls: vec_differs(&d.callback_urls, &app.callback_urls),
        attributes: d
            .attributes
            .into_iter()
            .filter(|(k, v)| app.attributes.get(k) != v.as_ref())
            .collect(),
    };
    let mut applied = app.attributes.len();
    for (k, v) in &u.attributes {
        match (app.attributes.contains_key(k), v) {
            (false, Some(_)) => applied += 1,
            (true, None) => applied -= 1,
            _ => {}
        }
    }
    if applied > MAX_ATTRIBUTES {
        return Err(Invalid(vec![FieldError {
            pointer: "/attributes".into(),
            detail: format!("an app holds at most {MAX_ATTRIBUTES} attributes"),
        }])
        .into());
    }
    if u == AppUpdated::default() {
        return Ok(Vec::new());
    }
    Ok(vec![AppEvent::Updated(u)])
}

/// `DeleteApp`: one event every credential of the app is bound to.
pub fn delete(
    org: &Org,
    app: &App,
    actor: Uuid,
    reason: Option<String>,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    Ok(vec![AppEvent::Deleted(AppDeleted { reason })])
}

/// `SuspendApp` (staff).
pub fn suspend(app: &App, reason: &str) -> Result<Vec<AppEvent>, AppError> {
    live(app)?;
    if app.suspended.is_some() {
        return Err(AppError::Suspended);
    }
    let reason = required_reason(reason)?;
    Ok(vec![AppEvent::Suspended(AppStatusChanged { reason })])
}

/// `ReinstateApp` (staff).
pub fn reinstate(app: &App, reason: &str) -> Result<Vec<AppEvent>, AppError> {
    live(app)?;
    if app.suspended.is_none() {
        return Err(AppError::NotSuspended);
    }
    let reason = required_reason(reason)?;
    Ok(vec![AppEvent::Reinstated(AppStatusChanged { reason })])
}

fn live(app: &App) -> Result<(), AppError> {
    if !app.exists {
        return Err(AppError::NotFound);
    }
    if app.deleted {
        return Err(AppError::Deleted);
    }
    Ok(())
}

fn required_reason(reason: &str) -> Result<String, AppError> {
    let reason = reason.trim();
    let mut checks = Checks::default();
    checks.display_name("/reason", reason, 500);
    checks.finish()?;
    Ok(reason.to_owned())
}

/// `SetAppMember`: an organisation member becomes app admin or developer.
pub fn set_member(
    org: &Org,
    app: &App,
    actor: Uuid,
    user: Uuid,
    role: AppRole,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    if !org.members.contains_key(&user) {
        return Err(OrgError::NoSuchMember.into());
    }
    Ok(vec![AppEvent::MemberSet(AppMemberSet {
        user_id: user,
        role: role.as_str().to_owned(),
    })])
}

/// `RemoveAppMember`.
pub fn remove_member(
    org: &Org,
    app: &App,
    actor: Uuid,
    user: Uuid,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    if !app.members.contains_key(&user) {
        return Err(OrgError::NoSuchMember.into());
    }
    Ok(vec![AppEvent::MemberRemoved(AppMemberRemoved {
        user_id: user,
    })])
}

/// `SetVisibility`: narrowing to private is immediate; broader
/// distribution is a request to staff.
pub fn set_visibility(
    org: &Org,
    app: &App,
    actor: Uuid,
    request_id: Uuid,
    to: Visibility,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    if to == Visibility::Private {
        let mut events = Vec::new();
        if let Some((request_id, _)) = app.distribution_request {
            events.push(AppEvent::DistributionDecided(DistributionDecided {
                request_id,
                approved: false,
                reason: Some("withdrawn: visibility set to private".into()),
            }));
        }
        if app.visibility != Visibility::Private {
            events.push(AppEvent::VisibilityChanged(VisibilityChanged {
                visibility: to.as_str().into(),
            }));
        }
        return Ok(events);
    }
    if app.distribution_request.is_some() {
        return Err(AppError::DistributionPending);
    }
    Ok(vec![AppEvent::DistributionRequested(
        DistributionRequested {
            request_id,
            visibility: to.as_str().into(),
        },
    )])
}

/// `DecideDistribution` (staff): approve or reject (with a reason).
pub fn decide_distribution(
    app: &App,
    request_id: Uuid,
    approve: bool,
    reason: Option<&str>,
) -> Result<Vec<AppEvent>, AppError> {
    live(app)?;
    let Some((open, to)) = app.distribution_request.filter(|(id, _)| *id == request_id) else {
        return Err(AppError::NoDistributionRequest);
    };
    let reason = match (approve, reason) {
        (false, r) => Some(required_reason(r.unwrap_or_default())?),
        (true, Some(r)) if !r.trim().is_empty() => Some(required_reason(r)?),
        (true, _) => None,
    };
    let mut events = vec![AppEvent::DistributionDecided(DistributionDecided {
        request_id: open,
        approved: approve,
        reason,
    })];
    if approve {
        events.push(AppEvent::VisibilityChanged(VisibilityChanged {
            visibility: to.as_str().into(),
        }));
    }
    Ok(events)
}

/// `SetAllowlist`: the workspaces that may install the app while private.
pub fn set_allowlist(
    org: &Org,
    app: &App,
    actor: Uuid,
    org_ids: Vec<Uuid>,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    let mut checks = Checks::default();
    checks.check(
        org_ids.len() <= 1000,
        "/workspaces",
        "at most 1000 workspaces",
    );
    checks.finish()?;
    let set: BTreeSet<Uuid> = org_ids.into_iter().collect();
    Ok(vec![AppEvent::AllowlistSet(AllowlistSet {
        org_ids: set.into_iter().collect(),
    })])
}

/// `CreateVersion`: a draft.
pub fn create_version(
    org: &Org,
    app: &App,
    actor: Uuid,
    version_id: Uuid,
    label: &str,
    manifest: Value,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    let label = label.trim();
    let mut checks = Checks::default();
    checks.check(
        (1..=32).contains(&label.len())
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+-".contains(c)),
        "/label",
        "must be 1 to 32 of a-z, A-Z, 0-9, . + - (such as 1.2.0)",
    );
    check_manifest_size(&mut checks, &manifest);
    checks.finish()?;
    if app.versions.values().any(|v| v.label == label) {
        return Err(AppError::VersionLabelTaken);
    }
    Ok(vec![AppEvent::VersionCreated(VersionCreated {
        version_id,
        label: label.to_owned(),
        manifest,
    })])
}

fn check_manifest_size(checks: &mut Checks, manifest: &Value) {
    checks.check(
        serde_json::to_vec(manifest).map_or(0, |b| b.len()) <= 64 * 1024,
        "/manifest",
        "must be at most 64 KiB",
    );
}

fn draft(app: &App, version_id: Uuid) -> Result<&Version, AppError> {
    let v = app
        .versions
        .get(&version_id)
        .ok_or(AppError::NoSuchVersion)?;
    if v.published {
        return Err(AppError::VersionPublished);
    }
    Ok(v)
}

/// `UpdateManifest`: drafts only.
pub fn update_manifest(
    org: &Org,
    app: &App,
    actor: Uuid,
    version_id: Uuid,
    manifest: Value,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    draft(app, version_id)?;
    let mut checks = Checks::default();
    check_manifest_size(&mut checks, &manifest);
    checks.finish()?;
    Ok(vec![AppEvent::ManifestUpdated(ManifestUpdated {
        version_id,
        manifest,
    })])
}

/// `PublishVersion`: a valid draft, with the terms accepted.
pub fn publish(
    org: &Org,
    app: &App,
    actor: Uuid,
    version_id: Uuid,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    require_terms(org)?;
    let v = draft(app, version_id)?;
    let errors = manifest::validate(&v.manifest);
    if !errors.is_empty() {
        return Err(Invalid(errors).into());
    }
    Ok(vec![AppEvent::VersionPublished(VersionPublished {
        version_id,
    })])
}

/// `RequestProduct`: auto products are approved at once; manual ones wait
/// for staff; conditional ones follow their rule for the mode.
pub fn request_access(
    org: &Org,
    app: &App,
    actor: Uuid,
    request_id: Uuid,
    product: &Product,
    mode: Mode,
) -> Result<Vec<AppEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    let mode = mode.as_str();
    if !product.exists {
        return Err(AppError::NoSuchProduct);
    }
    let open = app.access.values().any(|a| {
        a.product_id == product.id && a.mode == mode && !matches!(a.state, AccessState::Rejected(_))
    });
    if open {
        return Err(AppError::AccessAlreadyRequested);
    }
    let mut events = vec![AppEvent::AccessRequested(AccessRequested {
        request_id,
        product_id: product.id,
        mode: mode.to_owned(),
    })];
    if product.decides(mode) == Decision::Auto {
        events.push(AppEvent::AccessApproved(AccessApproved {
            request_id,
            scopes: product.scopes.clone(),
            automatic: true,
        }));
    }
    Ok(events)
}

/// `DecideAccess` (staff): approve with the product's current scopes, or
/// reject with a reason. A decided request stays decided.
pub fn decide_access(
    app: &App,
    request_id: Uuid,
    approve: bool,
    reason: Option<&str>,
    product: &Product,
) -> Result<Vec<AppEvent>, AppError> {
    live(app)?;
    let request = app
        .access
        .get(&request_id)
        .ok_or(AppError::NoSuchAccessRequest)?;
    if request.state != AccessState::Pending {
        return Err(AppError::AccessDecided);
    }
    if approve {
        Ok(vec![AppEvent::AccessApproved(AccessApproved {
            request_id,
            scopes: product.scopes.clone(),
            automatic: false,
        })])
    } else {
        let reason = required_reason(reason.unwrap_or_default())?;
        Ok(vec![AppEvent::AccessRejected(AccessRejected {
            request_id,
            reason,
        })])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orgs::{Sandbox, Team};
    use crate::roles::Role;
    use serde_json::json;

    const ORG: Uuid = Uuid::from_u128(1);
    const OWNER: Uuid = Uuid::from_u128(10);
    const DEV: Uuid = Uuid::from_u128(11);
    const AUDITOR: Uuid = Uuid::from_u128(12);
    const TEAM_ADMIN: Uuid = Uuid::from_u128(13);
    const STRANGER: Uuid = Uuid::from_u128(14);
    const TEAM: Uuid = Uuid::from_u128(20);
    const APP: Uuid = Uuid::from_u128(30);
    const V1: Uuid = Uuid::from_u128(40);
    const REQ: Uuid = Uuid::from_u128(60);
    const PRODUCT: Uuid = Uuid::from_u128(70);

    fn org(id: Uuid, owner: Uuid) -> Org {
        let mut o = Org {
            id,
            exists: true,
            terms_version: Some(crate::orgs::INITIAL_TERMS.into()),
            sandbox: Sandbox::Granted(Uuid::from_u128(99)),
            ..Org::default()
        };
        o.members.insert(owner, Role::Owner);
        o
    }

    fn acme() -> Org {
        let mut o = org(ORG, OWNER);
        o.members.insert(DEV, Role::Developer);
        o.members.insert(AUDITOR, Role::Compliance);
        o.members.insert(TEAM_ADMIN, Role::Developer);
        let mut team = Team {
            name: "Mobile".into(),
            ..Team::default()
        };
        team.members.insert(TEAM_ADMIN, "admin".into());
        team.members.insert(DEV, "member".into());
        o.teams.insert(TEAM, team);
        o
    }

    fn details(slug: &str) -> Details {
        Details {
            name: Some("Payroll Sync".into()),
            slug: Some(slug.into()),
            origins: Some(vec!["https://app.example.com".into()]),
            callback_urls: Some(vec!["https://app.example.com/cb".into()]),
            ..Details::default()
        }
    }

    /// Decides with the app as it is, then applies what was decided.
    macro_rules! then {
        ($app:ident, $decision:expr $(,)?) => {{
            let events: Vec<AppEvent> = $decision.expect("accepted");
            for e in &events {
                $app.apply(e).expect("applies");
            }
        }};
    }

    fn an_app(team: Option<Uuid>) -> App {
        App::from_events(&create(&acme(), OWNER, APP, team, details("payroll")).unwrap()).unwrap()
    }

    fn pointers(e: AppError) -> Vec<String> {
        match e {
            AppError::Invalid(Invalid(fields)) => fields.into_iter().map(|f| f.pointer).collect(),
            other => panic!("expected invalid fields, got {other:?}"),
        }
    }

    fn good_manifest() -> Value {
        json!({"name": "Payroll Sync", "scopes": ["payroll.read"]})
    }

    fn product(approval: ApprovalMode) -> Product {
        Product {
            id: PRODUCT,
            exists: true,
            name: "Payroll API".into(),
            scopes: vec!["payroll.read".into()],
            approval,
        }
    }

    #[test]
    fn an_app_is_created_by_managers_or_the_admin_of_its_team() {
        let o = acme();
        assert_eq!(
            create(&o, DEV, APP, None, details("x-app")),
            Err(AppError::Org(OrgError::Forbidden(Permission::ManageApps)))
        );
        assert_eq!(
            create(&o, TEAM_ADMIN, APP, None, details("x-app")),
            Err(AppError::Org(OrgError::Forbidden(Permission::ManageApps))),
            "a team admin creates apps of their team only"
        );
        let events = create(&o, TEAM_ADMIN, APP, Some(TEAM), details("x-app")).unwrap();
        let app = App::from_events(&events).unwrap();
        assert_eq!(app.team_id, Some(TEAM));
        assert_eq!(
            app.sandbox_tenant_id,
            Some(Uuid::from_u128(99)),
            "linked to the sandbox"
        );
        assert_eq!(app.status(), Status::Active);
        assert_eq!(
            create(&o, STRANGER, APP, None, details("x-app")),
            Err(AppError::Org(OrgError::NotFound))
        );
    }

    #[test]
    fn creating_an_app_needs_the_developer_terms() {
        let mut o = acme();
        o.terms_version = None;
        assert_eq!(
            create(&o, OWNER, APP, None, details("x-app")),
            Err(AppError::Org(OrgError::TermsNotAccepted))
        );
    }

    #[test]
    fn urls_and_origins_are_checked_field_by_field() {
        let o = acme();
        let bad = Details {
            name: Some("  ".into()),
            slug: Some("Not A Slug".into()),
            origins: Some(vec![
                "https://ok.example.com".into(),
                "https://example.com/path".into(),
                "ftp://example.com".into(),
            ]),
            callback_urls: Some(vec![
                "http://example.com/cb".into(),
                "https://user:pw@example.com/cb".into(),
                "https://example.com/cb#frag".into(),
                "not a url".into(),
            ]),
            ..Details::default()
        };
        let got = pointers(create(&o, OWNER, APP, None, bad).unwrap_err());
        assert_eq!(
            got,
            vec![
                "/name",
                "/slug",
                "/origins/1",
                "/origins/2",
                "/callback_urls/0",
                "/callback_urls/1",
                "/callback_urls/2",
                "/callback_urls/3"
            ]
        );
        let missing = pointers(create(&o, OWNER, APP, None, Details::default()).unwrap_err());
        assert_eq!(missing, vec!["/name", "/slug"]);
    }

    #[test]
    fn plain_http_is_for_localhost_in_test_mode_only() {
        let local = Details {
            callback_urls: Some(vec!["http://localhost:3000/cb".into()]),
            origins: Some(vec!["http://127.0.0.1:3000".into()]),
            ..details("local-app")
        };
        assert!(create(&acme(), OWNER, APP, None, local.clone()).is_ok());
        let mut live = acme();
        live.production = Some(crate::orgs::ProductionReview {
            steps: std::array::from_fn(|_| crate::orgs::StepState::Completed),
            granted: true,
        });
        assert_eq!(
            pointers(create(&live, OWNER, APP, None, local).unwrap_err()),
            vec!["/origins/0", "/callback_urls/0"]
        );
    }

    #[test]
    fn members_view_managers_change_and_nothing_changes_without_a_difference() {
        let o = acme();
        let mut app = an_app(None);
        assert_eq!(app.access_of(&o, AUDITOR), Ok(AppAccess::View));
        assert_eq!(app.access_of(&o, STRANGER), Err(AppError::NotFound));
        assert_eq!(
            update(
                &o,
                &app,
                AUDITOR,
                Details {
                    description: Some("x".into()),
                    ..Details::default()
                }
            ),
            Err(AppError::ViewOnly)
        );
        assert_eq!(update(&o, &app, OWNER, details("payroll")), Ok(vec![]));
        let mut attributes = BTreeMap::new();
        attributes.insert("tier".to_owned(), Some("gold".to_owned()));
        then!(
            app,
            update(
                &o,
                &app,
                OWNER,
                Details {
                    attributes: attributes.clone(),
                    ..Details::default()
                }
            ),
        );
        assert_eq!(app.attributes["tier"], "gold");
        attributes.insert("tier".to_owned(), None);
        then!(
            app,
            update(
                &o,
                &app,
                OWNER,
                Details {
                    attributes,
                    ..Details::default()
                }
            )
        );
        assert!(app.attributes.is_empty(), "null removes an attribute");
    }

    #[test]
    fn team_admins_and_app_admins_manage_team_members_view() {
        let o = acme();
        let mut app = an_app(Some(TEAM));
        assert_eq!(app.access_of(&o, TEAM_ADMIN), Ok(AppAccess::Manage));
        assert_eq!(app.access_of(&o, DEV), Ok(AppAccess::View));
        then!(app, set_member(&o, &app, OWNER, DEV, AppRole::Admin));
        assert_eq!(app.access_of(&o, DEV), Ok(AppAccess::Manage));
        assert_eq!(
            set_member(&o, &app, OWNER, STRANGER, AppRole::Admin),
            Err(AppError::Org(OrgError::NoSuchMember)),
            "app members come from the organisation"
        );
        then!(app, remove_member(&o, &app, OWNER, DEV));
        assert_eq!(app.access_of(&o, DEV), Ok(AppAccess::View));
    }

    #[test]
    fn a_deleted_app_is_gone_and_a_suspended_one_frozen_until_reinstated() {
        let o = acme();
        let mut app = an_app(None);
        then!(app, suspend(&app, "abuse report"));
        assert_eq!(app.status(), Status::Suspended);
        assert_eq!(suspend(&app, "again"), Err(AppError::Suspended));
        assert_eq!(
            create_version(&o, &app, OWNER, V1, "1.0.0", good_manifest()),
            Err(AppError::Suspended)
        );
        assert!(matches!(reinstate(&app, " "), Err(AppError::Invalid(_))));
        then!(app, reinstate(&app, "resolved"));
        assert_eq!(app.status(), Status::Active);
        assert_eq!(reinstate(&app, "again"), Err(AppError::NotSuspended));
        then!(app, delete(&o, &app, OWNER, None));
        assert_eq!(app.status(), Status::Deleted);
        assert_eq!(app.access_of(&o, OWNER), Err(AppError::NotFound));
        assert_eq!(suspend(&app, "late"), Err(AppError::Deleted));
    }

    #[test]
    fn broader_distribution_waits_for_staff_and_private_is_immediate() {
        let o = acme();
        let mut app = an_app(None);
        then!(
            app,
            set_visibility(&o, &app, OWNER, REQ, Visibility::Public)
        );
        assert_eq!(
            app.visibility,
            Visibility::Private,
            "not before staff approve"
        );
        assert_eq!(
            set_visibility(&o, &app, OWNER, Uuid::from_u128(61), Visibility::Unlisted),
            Err(AppError::DistributionPending)
        );
        assert!(
            matches!(
                decide_distribution(&app, REQ, false, None),
                Err(AppError::Invalid(_))
            ),
            "a rejection needs a reason"
        );
        then!(app, decide_distribution(&app, REQ, true, None));
        assert_eq!(app.visibility, Visibility::Public);
        assert_eq!(
            decide_distribution(&app, REQ, true, None),
            Err(AppError::NoDistributionRequest),
            "approve twice refused"
        );
        then!(
            app,
            set_visibility(&o, &app, OWNER, REQ, Visibility::Private)
        );
        assert_eq!(app.visibility, Visibility::Private);
    }

    #[test]
    fn only_a_valid_draft_is_published_and_published_versions_never_change() {
        let o = acme();
        let mut app = an_app(None);
        then!(
            app,
            create_version(&o, &app, OWNER, V1, "1.0.0", json!({"scopes": ["Bad"]}))
        );
        let got = pointers(publish(&o, &app, OWNER, V1).unwrap_err());
        assert!(got.contains(&"/manifest/scopes/0".to_owned()), "{got:?}");
        assert_eq!(
            create_version(&o, &app, OWNER, Uuid::from_u128(41), "1.0.0", json!({})),
            Err(AppError::VersionLabelTaken)
        );
        then!(app, update_manifest(&o, &app, OWNER, V1, good_manifest()));
        let mut no_terms = acme();
        no_terms.terms_version = None;
        assert_eq!(
            publish(&no_terms, &app, OWNER, V1),
            Err(AppError::Org(OrgError::TermsNotAccepted))
        );
        assert_eq!(publish(&o, &app, DEV, V1), Err(AppError::ViewOnly));
        then!(app, publish(&o, &app, OWNER, V1));
        assert_eq!(
            update_manifest(&o, &app, OWNER, V1, json!({"name": "x", "scopes": []})),
            Err(AppError::VersionPublished)
        );
        assert_eq!(
            publish(&o, &app, OWNER, V1),
            Err(AppError::VersionPublished)
        );
        assert_eq!(
            publish(&o, &app, OWNER, Uuid::from_u128(42)),
            Err(AppError::NoSuchVersion)
        );
    }

    #[test]
    fn product_access_follows_the_approval_mode() {
        let o = acme();
        let mut app = an_app(None);
        let auto = product(ApprovalMode::Auto);
        then!(app, request_access(&o, &app, OWNER, REQ, &auto, Mode::Test));
        assert_eq!(
            app.approved_scopes(Mode::Test).len(),
            1,
            "auto: approved at once"
        );
        assert_eq!(
            request_access(&o, &app, OWNER, Uuid::from_u128(61), &auto, Mode::Test),
            Err(AppError::AccessAlreadyRequested)
        );

        let mut app = an_app(None);
        let conditional = product(ApprovalMode::Conditional {
            test: Decision::Auto,
            live: Decision::Manual,
        });
        then!(
            app,
            request_access(&o, &app, OWNER, REQ, &conditional, Mode::Live)
        );
        assert_eq!(app.status(), Status::Pending, "waiting, nothing approved");
        assert!(
            app.approved_scopes(Mode::Live).is_empty(),
            "no scopes until approved"
        );
        assert!(matches!(
            decide_access(&app, REQ, false, Some(""), &conditional),
            Err(AppError::Invalid(_))
        ));
        then!(app, decide_access(&app, REQ, true, None, &conditional));
        assert_eq!(app.status(), Status::Active);
        assert_eq!(
            app.approved_scopes(Mode::Live)
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["payroll.read"]
        );
        assert!(app.approved_scopes(Mode::Test).is_empty(), "per mode");
        assert_eq!(
            decide_access(&app, REQ, true, None, &conditional),
            Err(AppError::AccessDecided),
            "approve twice refused"
        );
        let r2 = Uuid::from_u128(62);
        then!(
            app,
            request_access(&o, &app, OWNER, r2, &conditional, Mode::Test)
        );
        assert_eq!(
            app.access[&r2].state,
            AccessState::Approved(vec!["payroll.read".into()])
        );
        assert_eq!(
            request_access(&o, &app, DEV, Uuid::from_u128(63), &auto, Mode::Test),
            Err(AppError::ViewOnly)
        );
    }
}
