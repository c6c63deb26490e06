//! Outsiders never learn that an organisation or an app exists. Every route
//! under `/v1/orgs/{org}` and `/v1/apps/{app}` passes this layer first: a
//! signed-in caller who is neither a member of the organisation (of the
//! app's organisation, for an app) nor platform staff gets 404 before the
//! route runs, so no route, old or added later, can forget the check, and
//! no body is even read. Membership comes from the log through the command
//! service's cache, not a read model, so a member is never refused because
//! a projection lags. A request without valid credentials passes on: the
//! route's own session extractor answers 401.
//!
//! What a member may do once in is the route's and the domain's business
//! (403 with the missing permission).

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::apps::App;
use domain::orgs::Org;
use event_schemas::app::app_stream;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Session;
use crate::state::AppState;

/// What a path is scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `/v1/orgs/{org}/...`
    Org(Uuid),
    /// `/v1/apps/{app}/...`
    App(Uuid),
}

/// The scope of `path`, if it is under an organisation or an app. A
/// segment that is not a UUID scopes nothing: the route answers 400.
pub fn scope_of(path: &str) -> Option<Scope> {
    let mut segments = path.trim_start_matches('/').split('/');
    if segments.next() != Some("v1") {
        return None;
    }
    let kind = segments.next()?;
    let id = Uuid::try_parse(segments.next()?).ok()?;
    match kind {
        "orgs" => Some(Scope::Org(id)),
        "apps" => Some(Scope::App(id)),
        _ => None,
    }
}

/// The layer.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(scope) = scope_of(req.uri().path()) else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let session = match Session::from_request_parts(&mut parts, &state).await {
        Ok(session) => session,
        // No credentials (or bad headers): the route answers that itself.
        Err(_) => return next.run(Request::from_parts(parts, body)).await,
    };
    // The route's own session extractor finds it here instead of asking the
    // database again.
    parts.extensions.insert(session);
    if admitted_by_cache(&state, scope, session.user_id) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    match admitted(&state, scope, session.user_id).await {
        Ok(true) => next.run(Request::from_parts(parts, body)).await,
        Ok(false) => ApiError::NotFound.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Membership as the command service's cache already knows it, without a
/// query. A member it admits who was removed a moment ago on another node
/// still meets the route's own check (a command decides on fresh state);
/// anyone it does not admit is checked again against the log.
fn admitted_by_cache(state: &AppState, scope: Scope, user: Uuid) -> bool {
    let org = match scope {
        Scope::Org(org) => org,
        Scope::App(app) => match state.commands.peek::<App>(&app_stream(app)) {
            Some(app) if app.exists && !app.deleted => app.org_id,
            _ => return false,
        },
    };
    state
        .commands
        .peek::<Org>(&crate::routes::orgs::stream(org))
        .is_some_and(|org| org.role_of(user).is_ok())
}

async fn admitted(state: &AppState, scope: Scope, user: Uuid) -> Result<bool, ApiError> {
    let org = match scope {
        Scope::Org(org) => org,
        Scope::App(app) => {
            let app = state.commands.load::<App>(&app_stream(app)).await?;
            if !app.exists || app.deleted {
                return is_staff(state, user).await;
            }
            app.org_id
        }
    };
    let (org, _, _) = crate::routes::orgs::load(state, org).await?;
    Ok(org.role_of(user).is_ok() || is_staff(state, user).await?)
}

async fn is_staff(state: &AppState, user: Uuid) -> Result<bool, ApiError> {
    let client = state.pool.get().await?;
    Ok(client
        .query_opt("SELECT 1 FROM rm.staff WHERE user_id = $1", &[&user])
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_read_from_the_path() {
        let id = Uuid::from_u128(7);
        assert_eq!(
            scope_of(&format!("/v1/orgs/{id}/members")),
            Some(Scope::Org(id))
        );
        assert_eq!(scope_of(&format!("/v1/apps/{id}")), Some(Scope::App(id)));
        assert_eq!(scope_of("/v1/orgs"), None);
        assert_eq!(scope_of("/v1/apps/not-a-uuid"), None);
        assert_eq!(scope_of(&format!("/v1/staff/apps/{id}/suspend")), None);
    }
}
