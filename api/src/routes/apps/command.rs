//! How app commands run: the caller checked against the owning organisation,
//! the executor, and the slug reservations that move with a rename or deletion.

#[allow(unused_imports)]
use super::*;

/// An app as the log holds it, shared with the command service's cache
/// (it reads as an `&App`; nothing is copied).
pub(crate) type SharedApp = std::sync::Arc<crate::command::Loaded<App>>;

/// Loads an app from the log: the state, its stream version and position.
pub(crate) async fn load(state: &AppState, app: Uuid) -> Result<(SharedApp, u64, u64), ApiError> {
    let loaded = state.commands.load::<App>(&app_stream(app)).await?;
    let (version, position) = (loaded.version, loaded.position);
    Ok((loaded, version, position))
}

/// A wire string parsed into the domain's enum at the edge, or 422 naming
/// the field and what it may be.
pub(crate) fn wire<T>(
    value: &str,
    pointer: &str,
    parse: fn(&str) -> Option<T>,
    expected: &str,
) -> Result<T, ApiError> {
    parse(value).ok_or_else(|| {
        ApiError::Invalid(domain::Invalid(vec![domain::FieldError {
            pointer: pointer.into(),
            detail: format!("must be {expected}"),
        }]))
    })
}

/// Without a plan that unlocks it (`platform.api`, not canceled) the
/// Developers workspace is locked.
pub(crate) fn require_workspace(org: &Org, user: Uuid) -> Result<(), ApiError> {
    org.role_of(user)?;
    if !org.unlocks_workspace() {
        return Err(ApiError::UpgradeRequired {
            module: PLATFORM_API,
        });
    }
    Ok(())
}

/// Who acts, for the workspace check: a member (checked against the
/// paywall) or staff (neither).
#[derive(Clone, Copy)]
pub(crate) enum By {
    /// A member of the owning organisation.
    Member(Uuid),
    /// Platform staff.
    Staff,
    /// Someone the command's own rules judge (installing into another
    /// workspace).
    Anyone,
}

/// An app command's target and caller.
pub(crate) struct AppCommand {
    /// The app.
    pub app: Uuid,
    /// Who acts, for the workspace check.
    pub by: By,
    /// `If-Match`: the version the caller read; a moved-on app is a 409
    /// instead of a re-decision.
    pub if_match: Option<u64>,
    /// Who the events name.
    pub actor: Actor,
}

/// Runs an app command through the executor: checks the caller against
/// the owning organisation, decides on fresh state and appends; with
/// `if_match`, a moved-on app is a 409 instead of a re-decision. Slug
/// changes and deletion move the app's slug reservation in the same
/// commit. Returns the app after the command, its version and the position.
pub(crate) async fn execute(
    state: &AppState,
    cmd: AppCommand,
    meta: &RequestMeta,
    decide: impl Fn(&Org, &App) -> Result<Vec<AppEvent>, AppError>,
) -> Result<(SharedApp, u64, u64), ApiError> {
    let AppCommand {
        app: app_id,
        by,
        if_match: expected,
        actor,
    } = cmd;
    let ids = meta.ids();
    let stream = app_stream(app_id);
    let (ids_ref, decide, actor) = (&ids, &decide, &actor);
    let executed = state
        .commands
        .execute::<App, _>(&stream, &ids, move |loaded| async move {
            let ids = ids_ref;
            let app = &loaded.state;
            if !app.exists {
                return Err(ApiError::NotFound);
            }
            let (org, _, _) = load_org(state, app.org_id).await?;
            if let By::Member(user) = by {
                app.access_of(&org, user)?;
                require_workspace(&org, user)?;
            }
            if expected.is_some_and(|v| v != loaded.version) {
                return Err(ApiError::Conflict {
                    code: "version-conflict",
                    detail: format!(
                        "the app is at version {}, not the expected one; re-read it and retry",
                        loaded.version
                    ),
                });
            }
            let events = decide(&org, app)?;
            let metadata = meta.in_org(actor.clone(), app.org_id);
            let also = slug_moves(state, ids, app, &events, &metadata).await?;
            Ok(Plan {
                events,
                metadata,
                also,
            })
        })
        .await?;
    if !executed.state().exists {
        return Err(ApiError::NotFound);
    }
    let (version, position) = (executed.version(), executed.position);
    Ok((executed.loaded, version, position))
}

/// [`execute`] for a member of the owning organisation.
pub(crate) async fn by_member(
    state: &AppState,
    app_id: Uuid,
    meta: &RequestMeta,
    session: &Session,
    decide: impl Fn(&Org, &App) -> Result<Vec<AppEvent>, AppError>,
) -> Result<(SharedApp, u64, u64), ApiError> {
    let cmd = AppCommand {
        app: app_id,
        by: By::Member(session.user_id),
        if_match: None,
        actor: session.actor(),
    };
    execute(state, cmd, meta, decide).await
}

/// The expected version to claim `slug` in `org` for `app`, or
/// `slug-taken` when another app holds it. Reads the reservation's folded
/// holder (cached), never the reservation's whole history.
pub(crate) async fn slug_claim(
    state: &AppState,
    org: Uuid,
    slug: &str,
    app: Uuid,
) -> Result<ExpectedVersion, ApiError> {
    let holder = state
        .commands
        .load::<SlugHolder>(&app_slug_stream(org, slug))
        .await?;
    match holder.state.0 {
        Some(other) if other != app => Err(slug_taken()),
        _ if holder.version == 0 => Ok(ExpectedVersion::NoStream),
        _ => Ok(ExpectedVersion::Exact(holder.version)),
    }
}

pub(crate) fn slug_taken() -> ApiError {
    ApiError::Conflict {
        code: "slug-taken",
        detail: "an app with this slug already exists in the organization".into(),
    }
}

/// The slug reservation appends a command's events imply: the old slug
/// released on a rename or deletion, the new one claimed on a rename.
pub(crate) async fn slug_moves(
    state: &AppState,
    ids: &CommandIds,
    app: &App,
    events: &[AppEvent],
    metadata: &event_schemas::Metadata,
) -> Result<Vec<StreamAppend>, ApiError> {
    let mut appends = Vec::new();
    for e in events {
        let moved = matches!(e, AppEvent::Updated(u) if u.slug.is_some());
        if moved || matches!(e, AppEvent::Deleted(_)) {
            let stream = app_slug_stream(app.org_id, &app.slug);
            let released = [AppSlugEvent::Released(AppSlug { app_id: app.id })];
            appends.push(StreamAppend::new(
                stream.clone(),
                ExpectedVersion::Any,
                ids.new_events(&stream, &released, metadata),
            ));
        }
        if let AppEvent::Updated(AppUpdated {
            slug: Some(slug), ..
        }) = e
        {
            let expected = slug_claim(state, app.org_id, slug, app.id).await?;
            let stream = app_slug_stream(app.org_id, slug);
            let claimed = [AppSlugEvent::Claimed(AppSlug { app_id: app.id })];
            appends.push(StreamAppend::new(
                stream.clone(),
                expected,
                ids.new_events(&stream, &claimed, metadata),
            ));
        }
    }
    Ok(appends)
}
