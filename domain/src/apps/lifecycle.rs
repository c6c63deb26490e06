//! Creating, updating, deleting, suspending and reinstating an app.

#[allow(unused_imports)]
use super::*;

/// `CreateApp`. The org must have accepted the developer terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateApp {
    /// The new app's id.
    pub app_id: Uuid,
    /// The owning team; the organisation when absent.
    pub team_id: Option<Uuid>,
    /// Its details (name and slug required).
    pub details: Details,
}

/// Decides [`CreateApp`] by `actor` (`apps.manage`, or admin of the team).
pub fn create(org: &Org, actor: Uuid, cmd: CreateApp) -> Result<Vec<AppEvent>, AppError> {
    let CreateApp {
        app_id,
        team_id,
        details,
    } = cmd;
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

pub(crate) fn live(app: &App) -> Result<(), AppError> {
    if !app.exists {
        return Err(AppError::NotFound);
    }
    if app.deleted {
        return Err(AppError::Deleted);
    }
    Ok(())
}

pub(crate) fn required_reason(reason: &str) -> Result<String, AppError> {
    let reason = reason.trim();
    let mut checks = Checks::default();
    checks.display_name("/reason", reason, 500);
    checks.finish()?;
    Ok(reason.to_owned())
}
