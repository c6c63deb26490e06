//! Authorisation of reads as extractors: a handler that names one of these
//! runs only for a caller who may read what its path names, after the read
//! models have reached the caller's `Gatehouse-Min-Position`. (Outsiders
//! never get this far: the tenancy layer answers them 404 first.)
//!
//! The checks stand on the read layer (`projections::<model>::read`): the
//! caller's role, an app's organisation, the plan's workspace. Handlers
//! that check a read themselves call the same functions.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::StatusCode;
use domain::orgs::{plan_unlocks_workspace, OrgError, PLATFORM_API};
use domain::roles::{allows, Permission, Role};
use projections::{apps, orgs};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{MinPosition, Session};
use crate::state::AppState;

/// The read models an app or workspace read uses.
const READ_MODELS: &[&str] = &["orgs", "apps"];

/// A caller who may read the app in the path's `{app}`: a member of its
/// organisation whose role has `apps.view`, on a plan with the Developers
/// workspace.
#[derive(Debug, Clone, Copy)]
pub struct AppReader {
    /// The caller.
    pub session: Session,
    /// The app.
    pub app: Uuid,
    /// Its organisation.
    pub org: Uuid,
}

impl FromRequestParts<AppState> for AppReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let min = MinPosition::from_request_parts(parts, state).await?;
        let session = Session::from_request_parts(parts, state).await?;
        let app = path_id(parts, state, "app").await?;
        min.wait(state, READ_MODELS).await?;
        AppReader::check(state, app, session).await
    }
}

impl AppReader {
    /// The check the extractor makes, for an app named elsewhere than the
    /// path (the console's `?app=`); the caller has waited for its
    /// position.
    pub async fn check(state: &AppState, app: Uuid, session: Session) -> Result<Self, ApiError> {
        let org = app_org_for(state, app, session.user_id).await?;
        Ok(AppReader { session, app, org })
    }
}

/// A caller who may read the Developers workspace of the organisation in
/// the path's `{org}`: a member whose role has `apps.view`, on a plan with
/// the workspace (else 402).
#[derive(Debug, Clone, Copy)]
pub struct WorkspaceReader {
    /// The caller.
    pub session: Session,
    /// The organisation.
    pub org: Uuid,
}

impl FromRequestParts<AppState> for WorkspaceReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let min = MinPosition::from_request_parts(parts, state).await?;
        let session = Session::from_request_parts(parts, state).await?;
        let org = path_id(parts, state, "org").await?;
        min.wait(state, READ_MODELS).await?;
        WorkspaceReader::check(state, org, session).await
    }
}

impl WorkspaceReader {
    /// The check the extractor makes, for a caller who has waited for
    /// their position.
    pub async fn check(state: &AppState, org: Uuid, session: Session) -> Result<Self, ApiError> {
        authorize_workspace_read(state, org, session.user_id).await?;
        Ok(WorkspaceReader { session, org })
    }
}

/// A member of the organisation in the path's `{org}`, with their role
/// (from the read model, once it has reached the caller's
/// `Gatehouse-Min-Position`); anyone else gets 404. What the role may do is
/// checked with [`OrgMember::require`].
#[derive(Debug, Clone, Copy)]
pub struct OrgMember {
    /// The caller.
    pub session: Session,
    /// The organisation.
    pub org: Uuid,
    /// Their role in it.
    pub role: Role,
}

impl OrgMember {
    /// The role, if it has `permission`; else 403 naming it.
    pub fn require(&self, permission: Permission) -> Result<Role, ApiError> {
        if allows(self.role, permission) {
            Ok(self.role)
        } else {
            Err(OrgError::Forbidden(permission).into())
        }
    }
}

impl FromRequestParts<AppState> for OrgMember {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let min = MinPosition::from_request_parts(parts, state).await?;
        let session = Session::from_request_parts(parts, state).await?;
        let org = path_id(parts, state, "org").await?;
        min.wait(state, &["orgs"]).await?;
        let role = member_role(state, org, session.user_id).await?;
        Ok(OrgMember { session, org, role })
    }
}

/// The caller's role in `org` from the read model; 404 for outsiders.
pub async fn member_role(state: &AppState, org: Uuid, user: Uuid) -> Result<Role, ApiError> {
    let client = state.read_models.client().await?;
    orgs::read::member_role(&client, org, user)
        .await?
        .ok_or(ApiError::NotFound)?
        .parse()
        .map_err(|_| ApiError::Internal("a stored role does not parse".into()))
}

/// Checks a permission on a read, from the read model: the caller's role
/// if it has `permission`, 403 naming it if not, 404 for outsiders.
pub async fn authorize_read(
    state: &AppState,
    org: Uuid,
    user: Uuid,
    permission: Permission,
) -> Result<Role, ApiError> {
    let role = member_role(state, org, user).await?;
    if allows(role, permission) {
        Ok(role)
    } else {
        Err(OrgError::Forbidden(permission).into())
    }
}

/// Checks that the caller may read the Developers workspace of `org`: a
/// member with `apps.view`, on a plan that unlocks it (402 otherwise).
pub async fn authorize_workspace_read(
    state: &AppState,
    org: Uuid,
    user: Uuid,
) -> Result<(), ApiError> {
    authorize_read(state, org, user, Permission::ViewApps).await?;
    if !workspace_unlocked(state, org).await? {
        return Err(ApiError::UpgradeRequired {
            module: PLATFORM_API,
        });
    }
    Ok(())
}

/// Whether `org`'s plan unlocks the Developers workspace, from the orgs
/// read model (the console's Pro badge asks this before any visit).
pub async fn workspace_unlocked(state: &AppState, org: Uuid) -> Result<bool, ApiError> {
    let client = state.read_models.client().await?;
    let plan = orgs::read::plan(&client, org).await?;
    Ok(plan_unlocks_workspace(
        &plan.modules,
        plan.subscription_state.as_deref(),
    ))
}

/// The organisation of the app `app` (not deleted) from the read model,
/// checked for the caller with [`authorize_workspace_read`]; 404 for an
/// app the read model does not hold.
pub async fn app_org_for(state: &AppState, app: Uuid, user: Uuid) -> Result<Uuid, ApiError> {
    let client = state.read_models.client().await?;
    let org = apps::read::app_org(&client, app)
        .await?
        .ok_or(ApiError::NotFound)?;
    drop(client);
    authorize_workspace_read(state, org, user).await?;
    Ok(org)
}

/// The id in path parameter `name`.
async fn path_id(parts: &mut Parts, state: &AppState, name: &str) -> Result<Uuid, ApiError> {
    let invalid = |detail: String| ApiError::BadBody {
        status: StatusCode::BAD_REQUEST,
        code: "invalid-path",
        detail,
    };
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| invalid(e.body_text()))?;
    let raw = params
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .ok_or_else(|| ApiError::Internal(format!("a route without {{{name}}}").into()))?;
    Uuid::try_parse(raw).map_err(|_| invalid(format!("{{{name}}} must be a UUID")))
}
