//! Install links and installations, each in a stream of its own
//! (`install_link-<link>`, `installation-<app>-<org>`), so an app with many
//! installs does not make every edit of the app read them all, and an
//! install reads one link, not all of them.
//!
//! Links and installs of earlier releases were recorded in the app's own
//! stream; they stay readable ([`App::links`], [`App::installs`]) and a
//! link of that kind still installs ([`install_legacy`]) until it expires
//! (at most [`super::max_install_link_ttl`] after it was made).

use chrono::{DateTime, Utc};
use event_schemas::app::{
    AppEvent, AppInstalled, AppUninstalled, InstallLinkEvent, InstallLinkIssued, InstallLinkUsed,
    InstallationAdded, InstallationEvent, InstallationRemoved,
};
use uuid::Uuid;

use super::{changeable, max_install_link_ttl, require_terms, App, AppError, Visibility};
use crate::orgs::Org;
use crate::roles::Permission;
use crate::validate::Checks;

/// An install link, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    /// The link (nil before it is issued).
    pub id: Uuid,
    /// The app it installs.
    pub app_id: Uuid,
    /// The published version it installs.
    pub version_id: Uuid,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// Usable once.
    pub single_use: bool,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// A single-use link that was spent.
    pub used: bool,
}

impl Link {
    /// Whether the link was issued.
    pub fn exists(&self) -> bool {
        !self.id.is_nil()
    }

    /// Applies one event of the link's stream.
    pub fn apply(&mut self, event: &InstallLinkEvent) -> Result<(), String> {
        match event {
            InstallLinkEvent::Issued(l) => {
                if self.exists() {
                    return Err(format!("link {} issued twice", l.link_id));
                }
                *self = Link {
                    id: l.link_id,
                    app_id: l.app_id,
                    version_id: l.version_id,
                    token_hash: l.token_hash.clone(),
                    single_use: l.single_use,
                    expires_at: l.expires_at,
                    used: false,
                };
            }
            InstallLinkEvent::Used(_) => {
                if !self.exists() {
                    return Err("a link used before it was issued".into());
                }
                self.used = true;
            }
        }
        Ok(())
    }
}

/// One app in one workspace, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installation {
    /// The version installed, if it is installed.
    pub version_id: Option<Uuid>,
    /// Whether the stream holds anything: once it does, it alone says
    /// whether the app is installed (over an install an earlier release
    /// recorded in the app's stream).
    pub recorded: bool,
}

impl Installation {
    /// Applies one event of the installation's stream.
    pub fn apply(&mut self, event: &InstallationEvent) -> Result<(), String> {
        self.recorded = true;
        match event {
            InstallationEvent::Added(a) => self.version_id = Some(a.version_id),
            InstallationEvent::Removed(_) => {
                if self.version_id.take().is_none() {
                    return Err("an installation removed while not installed".into());
                }
            }
        }
        Ok(())
    }

    /// The version installed in `workspace`, this stream first, then an
    /// install the app's own stream recorded before installations moved.
    pub fn installed(&self, app: &App, workspace: Uuid) -> Option<Uuid> {
        if self.recorded {
            self.version_id
        } else {
            app.installs.get(&workspace).copied()
        }
    }
}

/// `CreateInstallLink`: a link for a published version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateInstallLink {
    /// The new link's id (also in its token).
    pub link_id: Uuid,
    /// The published version it installs.
    pub version_id: Uuid,
    /// SHA-256 of the token, hex (the token itself never reaches the domain).
    pub token_hash: String,
    /// Usable once, or until it expires.
    pub single_use: bool,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When the command is decided.
    pub now: DateTime<Utc>,
}

/// Decides [`CreateInstallLink`] by `actor`, a manager of the app, with the
/// developer terms accepted.
pub fn create_install_link(
    org: &Org,
    app: &App,
    actor: Uuid,
    cmd: &CreateInstallLink,
) -> Result<Vec<InstallLinkEvent>, AppError> {
    app.authorize_manage(org, actor)?;
    changeable(app)?;
    require_terms(org)?;
    let mut checks = Checks::default();
    checks.check(
        cmd.expires_at > cmd.now && cmd.expires_at <= cmd.now + max_install_link_ttl(),
        "/expires_in_hours",
        "must be in the future and at most 30 days away",
    );
    checks.finish()?;
    let v = app
        .versions
        .get(&cmd.version_id)
        .ok_or(AppError::NoSuchVersion)?;
    if !v.published {
        return Err(AppError::VersionNotPublished);
    }
    Ok(vec![InstallLinkEvent::Issued(InstallLinkIssued {
        link_id: cmd.link_id,
        app_id: app.id,
        version_id: cmd.version_id,
        token_hash: cmd.token_hash.clone(),
        single_use: cmd.single_use,
        expires_at: cmd.expires_at,
    })])
}

/// `Install` into a workspace through a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    /// Who installs: a member of the workspace with `apps.manage`.
    pub actor: Uuid,
    /// SHA-256 of the token presented, hex.
    pub token_hash: String,
    /// When the command is decided.
    pub now: DateTime<Utc>,
}

/// What an install appends: to the link's stream (a single-use link is
/// spent) and to the installation's.
#[derive(Debug, Clone, PartialEq)]
pub struct Installed {
    /// For the link's stream; empty for a multi-use link.
    pub link: Vec<InstallLinkEvent>,
    /// For the installation's stream.
    pub installation: Vec<InstallationEvent>,
}

/// Who may install and whether the link still works: visibility and the
/// allowlist decide the workspace; expiry and single use the link.
fn check_install(
    workspace: &Org,
    app: &App,
    actor: Uuid,
    expires_at: DateTime<Utc>,
    spent: bool,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    workspace.authorize(actor, Permission::ManageApps)?;
    changeable(app)?;
    if now >= expires_at {
        return Err(AppError::LinkExpired);
    }
    if spent {
        return Err(AppError::LinkUsed);
    }
    let allowed = app.visibility != Visibility::Private
        || workspace.id == app.org_id
        || app.allowlist.contains(&workspace.id);
    if !allowed {
        return Err(AppError::NotAllowlisted);
    }
    Ok(())
}

/// Decides [`Install`] through `link` (from its own stream).
pub fn install(
    workspace: &Org,
    app: &App,
    link: &Link,
    installation: &Installation,
    cmd: &Install,
) -> Result<Installed, AppError> {
    if !link.exists() || link.token_hash != cmd.token_hash || link.app_id != app.id {
        return Err(AppError::NoSuchLink);
    }
    if !app.exists || app.deleted {
        return Err(AppError::NoSuchLink);
    }
    check_install(
        workspace,
        app,
        cmd.actor,
        link.expires_at,
        link.used,
        cmd.now,
    )?;
    if installation.installed(app, workspace.id) == Some(link.version_id) {
        return Err(AppError::AlreadyInstalled);
    }
    Ok(Installed {
        link: if link.single_use {
            vec![InstallLinkEvent::Used(InstallLinkUsed {
                org_id: workspace.id,
            })]
        } else {
            Vec::new()
        },
        installation: vec![InstallationEvent::Added(InstallationAdded {
            app_id: app.id,
            org_id: workspace.id,
            version_id: link.version_id,
            link_id: link.id,
        })],
    })
}

/// Decides [`Install`] through a link an earlier release recorded in the
/// app's own stream (found by its token's hash among the app's links).
pub fn install_legacy(
    workspace: &Org,
    app: &App,
    cmd: &Install,
) -> Result<Vec<AppEvent>, AppError> {
    if !app.exists || app.deleted {
        return Err(AppError::NoSuchLink);
    }
    let (link_id, link) = app
        .links
        .iter()
        .find(|(_, l)| l.token_hash == cmd.token_hash)
        .ok_or(AppError::NoSuchLink)?;
    let spent = link.single_use && link.uses > 0;
    check_install(workspace, app, cmd.actor, link.expires_at, spent, cmd.now)?;
    if app.installs.get(&workspace.id) == Some(&link.version_id) {
        return Err(AppError::AlreadyInstalled);
    }
    Ok(vec![AppEvent::Installed(AppInstalled {
        org_id: workspace.id,
        version_id: link.version_id,
        link_id: *link_id,
    })])
}

/// Where an uninstall is recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Uninstall {
    /// In the installation's stream.
    Installation(Vec<InstallationEvent>),
    /// In the app's stream, for an install an earlier release put there.
    Legacy(Vec<AppEvent>),
}

/// `Uninstall` the app from `workspace` by `actor`, a member with
/// `apps.manage`. Allowed while the app is suspended.
pub fn uninstall(
    workspace: &Org,
    app: &App,
    installation: &Installation,
    actor: Uuid,
) -> Result<Uninstall, AppError> {
    workspace.authorize(actor, Permission::ManageApps)?;
    if !app.exists || installation.installed(app, workspace.id).is_none() {
        return Err(AppError::NotInstalled);
    }
    Ok(if installation.recorded {
        Uninstall::Installation(vec![InstallationEvent::Removed(InstallationRemoved {
            app_id: app.id,
            org_id: workspace.id,
        })])
    } else {
        Uninstall::Legacy(vec![AppEvent::Uninstalled(AppUninstalled {
            org_id: workspace.id,
        })])
    })
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use event_schemas::app::*;

    use super::*;
    use crate::orgs::OrgError;
    use crate::testing::{and_then, founded, given, when};

    const OWNER: Uuid = Uuid::from_u128(10);
    const STRANGER: Uuid = Uuid::from_u128(11);
    const MAKER: Uuid = Uuid::from_u128(1);
    const CUSTOMER: Uuid = Uuid::from_u128(2);
    const APP: Uuid = Uuid::from_u128(20);
    const V1: Uuid = Uuid::from_u128(30);
    const LINK: Uuid = Uuid::from_u128(40);

    fn now() -> DateTime<Utc> {
        "2026-11-24T12:00:00Z".parse().expect("a timestamp")
    }

    fn workspace(id: Uuid, owner: Uuid, terms: bool) -> Org {
        given(founded(id, owner, terms))
    }

    /// An app of MAKER's with version V1, published unless `draft`.
    fn app_events(draft: bool) -> Vec<AppEvent> {
        let mut events = vec![
            AppEvent::Created(AppCreated {
                app_id: APP,
                org_id: MAKER,
                team_id: None,
                name: "Payroll Sync".into(),
                slug: "payroll".into(),
                description: String::new(),
                origins: vec![],
                callback_urls: vec![],
                attributes: Default::default(),
                sandbox_tenant_id: None,
            }),
            AppEvent::VersionCreated(VersionCreated {
                version_id: V1,
                label: "1.0.0".into(),
                manifest: serde_json::json!({"name": "Payroll Sync", "scopes": []}),
            }),
        ];
        if !draft {
            events.push(AppEvent::VersionPublished(VersionPublished {
                version_id: V1,
            }));
        }
        events
    }

    fn issued(single_use: bool) -> InstallLinkEvent {
        InstallLinkEvent::Issued(InstallLinkIssued {
            link_id: LINK,
            app_id: APP,
            version_id: V1,
            token_hash: "h".into(),
            single_use,
            expires_at: now() + Duration::days(1),
        })
    }

    fn create(expires_at: DateTime<Utc>) -> CreateInstallLink {
        CreateInstallLink {
            link_id: LINK,
            version_id: V1,
            token_hash: "h".into(),
            single_use: true,
            expires_at,
            now: now(),
        }
    }

    fn install_by(actor: Uuid, token_hash: &str, at: DateTime<Utc>) -> Install {
        Install {
            actor,
            token_hash: token_hash.into(),
            now: at,
        }
    }

    fn added() -> InstallationEvent {
        InstallationEvent::Added(InstallationAdded {
            app_id: APP,
            org_id: CUSTOMER,
            version_id: V1,
            link_id: LINK,
        })
    }

    #[test]
    fn an_install_link_is_issued_for_a_published_version_into_its_own_stream() {
        let maker = workspace(MAKER, OWNER, true);
        let app: App = given(app_events(false));
        let soon = now() + Duration::days(1);
        when(create_install_link(&maker, &app, OWNER, &create(soon))).then([issued(true)]);
    }

    #[test]
    fn an_install_link_needs_a_published_version_accepted_terms_and_at_most_thirty_days() {
        let maker = workspace(MAKER, OWNER, true);
        let soon = now() + Duration::days(1);
        let draft: App = given(app_events(true));
        when(create_install_link(&maker, &draft, OWNER, &create(soon)))
            .then_err(AppError::VersionNotPublished);
        let app: App = given(app_events(false));
        let far = now() + Duration::days(31);
        let refused = create_install_link(&maker, &app, OWNER, &create(far));
        assert!(matches!(refused, Err(AppError::Invalid(_))), "{refused:?}");
        let no_terms = workspace(MAKER, OWNER, false);
        when(create_install_link(&no_terms, &app, OWNER, &create(soon)))
            .then_err(AppError::Org(OrgError::TermsNotAccepted));
    }

    #[test]
    fn a_private_app_installs_only_into_its_own_or_allowlisted_workspaces() {
        let customer = workspace(CUSTOMER, STRANGER, true);
        let link: Link = given([issued(false)]);
        let mut installation = Installation::default();
        let private: App = given(app_events(false));
        let cmd = install_by(STRANGER, "h", now());
        let decided = install(&customer, &private, &link, &installation, &cmd);
        assert_eq!(decided, Err(AppError::NotAllowlisted));

        let mut events = app_events(false);
        events.push(AppEvent::AllowlistSet(AllowlistSet {
            org_ids: vec![CUSTOMER],
        }));
        let app: App = given(events);
        let decided = install(&customer, &app, &link, &installation, &cmd).expect("installs");
        assert_eq!(decided.link, vec![], "a multi-use link records nothing");
        let installed = when(Ok::<_, AppError>(decided.installation)).then([added()]);
        and_then(&mut installation, &installed);
        assert_eq!(
            install(&customer, &app, &link, &installation, &cmd),
            Err(AppError::AlreadyInstalled)
        );
        assert_eq!(
            install(
                &customer,
                &app,
                &link,
                &installation,
                &install_by(STRANGER, "nope", now())
            ),
            Err(AppError::NoSuchLink)
        );
        let later = install_by(STRANGER, "h", now() + Duration::days(2));
        assert_eq!(
            install(&customer, &app, &link, &Installation::default(), &later),
            Err(AppError::LinkExpired)
        );
        let outsider = install_by(OWNER, "h", now());
        assert_eq!(
            install(&customer, &app, &link, &Installation::default(), &outsider),
            Err(AppError::Org(OrgError::NotFound)),
            "only members of the workspace install into it"
        );
    }

    #[test]
    fn a_single_use_link_is_spent_on_its_own_stream_and_works_once() {
        let customer = workspace(CUSTOMER, STRANGER, true);
        let mut events = app_events(false);
        events.push(AppEvent::VisibilityChanged(VisibilityChanged {
            visibility: "public".into(),
        }));
        let app: App = given(events);
        let mut link: Link = given([issued(true)]);
        let cmd = install_by(STRANGER, "h", now());
        let decided =
            install(&customer, &app, &link, &Installation::default(), &cmd).expect("installs");
        let used = when(Ok::<_, AppError>(decided.link))
            .then([InstallLinkEvent::Used(InstallLinkUsed { org_id: CUSTOMER })]);
        and_then(&mut link, &used);
        let other = workspace(Uuid::from_u128(3), Uuid::from_u128(15), true);
        let again = install_by(Uuid::from_u128(15), "h", now());
        assert_eq!(
            install(&other, &app, &link, &Installation::default(), &again),
            Err(AppError::LinkUsed)
        );
    }

    #[test]
    fn uninstalling_writes_where_the_install_was_recorded() {
        let customer = workspace(CUSTOMER, STRANGER, true);
        let app: App = given(app_events(false));
        let installation: Installation = given([added()]);
        assert_eq!(
            uninstall(&customer, &app, &installation, STRANGER),
            Ok(Uninstall::Installation(vec![InstallationEvent::Removed(
                InstallationRemoved {
                    app_id: APP,
                    org_id: CUSTOMER,
                }
            )]))
        );
        // An install an earlier release recorded in the app's stream.
        let mut events = app_events(false);
        events.push(AppEvent::InstallLinkCreated(InstallLinkCreated {
            link_id: LINK,
            version_id: V1,
            token_hash: "h".into(),
            single_use: false,
            expires_at: now() + Duration::days(1),
        }));
        events.push(AppEvent::Installed(AppInstalled {
            org_id: CUSTOMER,
            version_id: V1,
            link_id: LINK,
        }));
        let legacy: App = given(events);
        assert_eq!(
            uninstall(&customer, &legacy, &Installation::default(), STRANGER),
            Ok(Uninstall::Legacy(vec![AppEvent::Uninstalled(
                AppUninstalled { org_id: CUSTOMER }
            )]))
        );
        let removed: Installation = given([
            added(),
            InstallationEvent::Removed(InstallationRemoved {
                app_id: APP,
                org_id: CUSTOMER,
            }),
        ]);
        assert_eq!(
            uninstall(&customer, &legacy, &removed, STRANGER),
            Err(AppError::NotInstalled),
            "the installation's stream supersedes the app's"
        );
    }
}
