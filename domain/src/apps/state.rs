//! The app aggregate's state: what its stream folds into, and who may act on it.

#[allow(unused_imports)]
use super::*;

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
    /// The one rule: deleted, else suspended, else pending while a product
    /// request waits and none is approved, else active. The aggregate and
    /// the apps read model both decide with it.
    pub fn of(deleted: bool, suspended: bool, pending: bool, approved: bool) -> Status {
        if deleted {
            Status::Deleted
        } else if suspended {
            Status::Suspended
        } else if pending && !approved {
            Status::Pending
        } else {
            Status::Active
        }
    }

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
        Status::of(
            self.deleted,
            self.suspended.is_some(),
            any(|s| *s == AccessState::Pending),
            any(|s| matches!(s, AccessState::Approved(_))),
        )
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
        // App and team roles are intersected with the organisation role's
        // permissions: an `admin` app or team role never lifts a developer,
        // finance or compliance member above the permission table (SPEC:
        // developers manage test credentials and webhooks only; compliance
        // changes nothing).
        if crate::roles::allows(role, Permission::ManageApps) {
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
