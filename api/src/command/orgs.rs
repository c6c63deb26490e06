//! How organisation commands run: loaded from the log with the developer
//! terms in force, through the executor. Routes, the tenancy guard and the
//! background roles (the notices) share it.

use domain::orgs::{Org, OrgError, PlatformTerms};
use event_schemas::org::{OrgEvent, TERMS_STREAM};
use event_schemas::Metadata;
use uuid::Uuid;

use super::{Plan, RequestMeta};
use crate::error::ApiError;
use crate::state::AppState;

/// The stream of organisation `org`.
pub fn stream(org: Uuid) -> String {
    format!("org-{org}")
}

/// An organisation as the log holds it now, with the developer terms in
/// force (from the platform's own stream); its stream version and position.
pub async fn load(state: &AppState, org: Uuid) -> Result<(Org, u64, u64), ApiError> {
    let stream = stream(org);
    let (loaded, terms) = tokio::try_join!(
        state.commands.load::<Org>(&stream),
        state.commands.load::<PlatformTerms>(TERMS_STREAM),
    )?;
    Ok((
        with_terms(&loaded.state, &terms.state),
        loaded.version,
        loaded.position,
    ))
}

fn with_terms(org: &Org, terms: &PlatformTerms) -> Org {
    Org {
        terms_in_force: terms.published.last().cloned(),
        ..org.clone()
    }
}

/// The platform's developer terms from the log, with the stream version.
pub async fn platform_terms(state: &AppState) -> Result<(PlatformTerms, u64), ApiError> {
    let loaded = state.commands.load::<PlatformTerms>(TERMS_STREAM).await?;
    Ok((loaded.state.clone(), loaded.version))
}

/// Runs an organisation command through the executor: decides on the
/// organisation as the log holds it (with the terms in force) and appends.
/// Returns the organisation after the command and the position reached.
pub async fn execute(
    state: &AppState,
    org: Uuid,
    meta: &RequestMeta,
    metadata: Metadata,
    decide: impl Fn(&Org) -> Result<Vec<OrgEvent>, OrgError>,
) -> Result<(Org, u64), ApiError> {
    let (decide, metadata) = (&decide, &metadata);
    let executed = state
        .commands
        .execute::<Org, _>(&stream(org), &meta.ids(), move |loaded| async move {
            let terms = state.commands.load::<PlatformTerms>(TERMS_STREAM).await?;
            let events = decide(&with_terms(&loaded.state, &terms.state))?;
            Ok(Plan::new(events, metadata.clone()))
        })
        .await?;
    let terms = state.commands.load::<PlatformTerms>(TERMS_STREAM).await?;
    Ok((
        with_terms(executed.state(), &terms.state),
        executed.position,
    ))
}
