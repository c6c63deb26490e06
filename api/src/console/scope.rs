//! An app named in a console address belongs to the organisation the same
//! address names. Every console route under `/orgs/{org}/.../apps/{app}`
//! passes this layer first: an app of another organisation (even one the
//! visitor may read) answers "page not found", so no page can show one
//! organisation's app in another's frame, and no route added later can
//! forget the check. Whether the visitor may read the app at all is the
//! API's check, made here by the same function its extractors use.

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::view::PageError;
use crate::authorize::AppReader;
use crate::error::ApiError;
use crate::extract::{MinPosition, Session};
use crate::state::AppState;

/// The organisation and app a route template names, decoded.
fn named(template: &str, param: impl Fn(&str) -> Option<String>) -> Option<Option<(Uuid, Uuid)>> {
    if !(template.starts_with("/orgs/{org}") && template.contains("/apps/{app}")) {
        return None;
    }
    let get = |name: &str| param(name).and_then(|v| Uuid::try_parse(v.trim()).ok());
    Some(get("org").zip(get("app")))
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
    let Ok(params) = RawPathParams::from_request_parts(&mut parts, &state).await else {
        return PageError(ApiError::NotFound).into_response();
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    };
    let (org, app) = match named(&template, param) {
        None => return next.run(Request::from_parts(parts, body)).await,
        Some(None) => return PageError(ApiError::NotFound).into_response(),
        Some(Some(ids)) => ids,
    };
    let Ok(session) = Session::from_request_parts(&mut parts, &state).await else {
        // Signed out: the page sends the visitor to sign in.
        return next.run(Request::from_parts(parts, body)).await;
    };
    let checked = async {
        let min = MinPosition::from_request_parts(&mut parts, &state).await?;
        // An app just created is waited for, not taken for another's.
        min.wait(&state, &["orgs", "apps"]).await?;
        AppReader::check(&state, app, session).await
    }
    .await;
    match checked {
        Ok(reader) if reader.org == org => next.run(Request::from_parts(parts, body)).await,
        Ok(_) => PageError(ApiError::NotFound).into_response(),
        Err(e) => PageError(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_routes_naming_an_organisations_app_are_scoped() {
        let (org, app) = (Uuid::now_v7(), Uuid::now_v7());
        let ids = |name: &str| match name {
            "org" => Some(org.to_string()),
            "app" => Some(app.to_string()),
            _ => None,
        };
        assert_eq!(named("/orgs/{org}/people", ids), None);
        assert_eq!(named("/staff", ids), None);
        assert_eq!(
            named("/orgs/{org}/portal/apps/{app}", ids),
            Some(Some((org, app)))
        );
        assert_eq!(
            named("/orgs/{org}/settings/developers/apps/{app}/keys", |_| Some(
                "x".into()
            )),
            Some(None)
        );
    }
}
