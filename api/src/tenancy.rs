//! Outsiders never learn that an organisation or an app exists. Every route
//! under `/v1/orgs/{org}` and `/v1/apps/{app}` passes this layer first: a
//! signed-in caller who is neither a member of the organisation (of the
//! app's organisation, for an app) nor platform staff gets 404 before the
//! route runs, so no route, old or added later, can forget the check, and
//! no body is even read.
//!
//! The layer runs after routing (a route layer): the route's template says
//! whether it is scoped, and the id is the path parameter exactly as the
//! handler's extractor decodes it (percent-encoding, upper case), so no
//! spelling of an id reaches a handler unguarded. Membership comes from the log through the command
//! service's cache, not a read model, so a member is never refused because
//! a projection lags. A request without valid credentials passes on: the
//! route's own session extractor answers 401.
//!
//! What a member may do once in is the route's and the domain's business
//! (403 with the missing permission).

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
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

/// The scope of a routed request: from its route's template
/// (`/v1/orgs/{org}...`, `/v1/apps/{app}...`) and the decoded `org` or
/// `app` parameter. A parameter that is not a UUID scopes nothing: the
/// route answers 400.
pub fn scope_of(template: &str, param: impl Fn(&str) -> Option<String>) -> Option<Scope> {
    let (name, make): (&str, fn(Uuid) -> Scope) = if template.starts_with("/v1/orgs/{org}") {
        ("org", Scope::Org)
    } else if template.starts_with("/v1/apps/{app}") {
        ("app", Scope::App)
    } else {
        return None;
    };
    Uuid::try_parse(param(name)?.trim()).ok().map(make)
}

/// The layer.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let Some(template) = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
    else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    // Undecodable parameters: the route's own extractor answers 400.
    let params = RawPathParams::from_request_parts(&mut parts, &state)
        .await
        .ok();
    let scope = scope_of(&template, |name| {
        params
            .as_ref()?
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    });
    let Some(scope) = scope else {
        return next.run(Request::from_parts(parts, body)).await;
    };
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
        .peek::<Org>(&crate::command::orgs::stream(org))
        .is_some_and(|org| org.role_of(user).is_ok())
}

async fn admitted(state: &AppState, scope: Scope, user: Uuid) -> Result<bool, ApiError> {
    let org = match scope {
        Scope::Org(org) => org,
        Scope::App(app) => {
            let app = state.commands.load::<App>(&app_stream(app)).await?;
            if !app.exists || app.deleted {
                return crate::extract::is_staff(state, user).await;
            }
            app.org_id
        }
    };
    let (org, _, _) = crate::command::orgs::load(state, org).await?;
    Ok(org.role_of(user).is_ok() || crate::extract::is_staff(state, user).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_read_from_the_template_and_the_decoded_parameter() {
        let id = Uuid::from_u128(7);
        let upper = id.to_string().to_uppercase();
        let param = |v: String| move |_: &str| Some(v.clone());
        assert_eq!(
            scope_of("/v1/orgs/{org}/members", param(id.to_string())),
            Some(Scope::Org(id))
        );
        assert_eq!(
            scope_of("/v1/apps/{app}", param(upper)),
            Some(Scope::App(id)),
            "any case"
        );
        assert_eq!(scope_of("/v1/orgs", param(id.to_string())), None);
        assert_eq!(scope_of("/v1/apps/{app}", param("nope".into())), None);
        assert_eq!(
            scope_of("/v1/staff/apps/{app}/suspend", param(id.to_string())),
            None
        );
    }
}
