//! Create, read, list, update and delete apps.

#[allow(unused_imports)]
use super::*;

/// Create an app in an organisation (or one of its teams).
#[utoipa::path(post, path = "/v1/orgs/{org}/apps", tag = "apps",
    request_body = AppRequest,
    responses((status = 201, body = AppView), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_app(
    State(state): State<AppState>,
    Path(org_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<AppRequest>,
) -> Result<Committed<AppView>, ApiError> {
    let ids = meta.ids();
    let app_id = ids.entity("app");
    let team_id = body.team_id;
    let details = body.details();
    let metadata = meta.in_org(session.actor(), org_id);
    let (state_ref, ids_ref, details, metadata) = (&state, &ids, &details, &metadata);
    let executed = state
        .commands
        .execute::<App, _>(&app_stream(app_id), &ids, move |loaded| async move {
            let (state, ids) = (state_ref, ids_ref);
            if loaded.version > 0 {
                // Only a retried request (same Idempotency-Key) gets here
                // with the app already there; the executor answers it.
                return Ok(Plan::new(Vec::new(), metadata.clone()));
            }
            let (org, _, _) = load_org(state, org_id).await?;
            require_workspace(&org, session.user_id)?;
            let cmd = apps::CreateApp {
                app_id,
                team_id,
                details: details.clone(),
            };
            let events = apps::create(&org, session.user_id, cmd)?;
            let slug = details.slug.clone().unwrap_or_default();
            let claim = slug_claim(state, org_id, &slug, app_id).await?;
            let stream = app_slug_stream(org_id, &slug);
            let claimed = [AppSlugEvent::Claimed(AppSlug { app_id })];
            Ok(Plan {
                events,
                metadata: metadata.clone(),
                also: vec![StreamAppend::new(
                    stream.clone(),
                    claim,
                    ids.new_events(&stream, &claimed, metadata),
                )],
            })
        })
        .await?;
    Ok(Committed {
        status: StatusCode::CREATED,
        position: executed.position,
        body: Some(AppView::of(executed.state(), executed.version())),
    })
}

/// An app (the General page).
#[utoipa::path(get, path = "/v1/apps/{app}", tag = "apps",
    params(crate::routes::as_of::AsOf),
    responses((status = 200, body = AppView), (status = 400, body = Problem), (status = 402, body = Problem),
        (status = 404, description = "No such app (or none yet at `as_of`)", body = Problem)),
    security(("bearer" = [])))]
pub async fn get_app(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    _reader: AppReader,
    axum::extract::Query(t): axum::extract::Query<crate::routes::as_of::AsOf>,
) -> Result<Json<AppView>, ApiError> {
    if let Some(as_of) = t.as_of {
        return Ok(Json(
            crate::routes::as_of::app_then(&state, app, as_of).await?,
        ));
    }
    let client = state.read_models.client().await?;
    let row = projections::apps::read::app(&client, app).await?;
    Ok(Json(AppView::from_row(row)))
}

/// The organisation's apps, oldest first (deleted ones excluded).
#[utoipa::path(get, path = "/v1/orgs/{org}/apps", tag = "apps",
    params(("org" = Uuid, Path, description = "Organization id"), PageQuery),
    responses((status = 200, body = Page<AppView>), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_apps(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    _reader: WorkspaceReader,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<AppView>>, ApiError> {
    let client = state.read_models.client().await?;
    let rows = projections::apps::read::org_apps(&client, org, paging.keyset()).await?;
    Ok(Json(paging.page(rows, AppView::from_row)))
}

/// The If-Match version, if sent.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or_else(|| ApiError::BadBody {
            status: StatusCode::BAD_REQUEST,
            code: "invalid-if-match",
            detail: "If-Match must be the app's version, as GET returns it".into(),
        })
}

/// Update an app's details; only the fields sent change. Send
/// `If-Match: <version>` to be refused (409) if the app changed since read.
#[utoipa::path(patch, path = "/v1/apps/{app}", tag = "apps",
    request_body = AppRequest,
    responses((status = 200, body = AppView), (status = 402, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_app(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    headers: HeaderMap,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<AppRequest>,
) -> Result<Committed<AppView>, ApiError> {
    if body.team_id.is_some() {
        return Err(domain::Invalid(vec![domain::FieldError {
            pointer: "/team_id".into(),
            detail: "an app's owner does not change".into(),
        }])
        .into());
    }
    let expected = if_match(&headers)?;
    let details = body.details();
    let (app, version, position) = execute(
        &state,
        AppCommand {
            app: app_id,
            by: By::Member(session.user_id),
            if_match: expected,
            actor: session.actor(),
        },
        &meta,
        |org, app| apps::update(org, app, session.user_id, details.clone()),
    )
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(AppView::of(&app, version)),
    })
}

/// `DELETE /v1/apps/{app}` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    /// Why.
    pub reason: Option<String>,
}

/// Delete an app: every credential of it stops at once; history and
/// analytics stay.
#[utoipa::path(delete, path = "/v1/apps/{app}", tag = "apps",
    responses((status = 204), (status = 402, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_app(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<()>, ApiError> {
    let (_, _, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::delete(org, app, session.user_id, None)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}
