//! Visibility, distribution requests and the private-install allowlist.

#[allow(unused_imports)]
use super::*;

/// `POST /v1/apps/{app}/visibility` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisibilityRequest {
    /// `private` (at once), `unlisted` or `public` (a request to staff).
    pub visibility: String,
}

/// Set visibility: `private` applies at once; `unlisted` and `public` are a
/// distribution request staff approve or reject.
#[utoipa::path(post, path = "/v1/apps/{app}/visibility", tag = "apps",
    request_body = VisibilityRequest,
    responses((status = 200, body = AppView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_visibility(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<VisibilityRequest>,
) -> Result<Committed<AppView>, ApiError> {
    let visibility = wire(
        &body.visibility,
        "/visibility",
        Visibility::parse,
        "private, unlisted or public",
    )?;
    let request_id = meta.ids().entity("distribution_request");
    let (app, version, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::set_visibility(org, app, session.user_id, request_id, visibility)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(AppView::of(&app, version)),
    })
}

/// `PUT /v1/apps/{app}/allowlist` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowlistRequest {
    /// Organisation ids that may install the app while it is private.
    pub workspaces: Vec<Uuid>,
}

/// Replace the private-install allowlist.
#[utoipa::path(put, path = "/v1/apps/{app}/allowlist", tag = "apps",
    request_body = AllowlistRequest,
    responses((status = 200, body = AppView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_allowlist(
    State(state): State<AppState>,
    Path(app_id): Path<Uuid>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<AllowlistRequest>,
) -> Result<Committed<AppView>, ApiError> {
    let (app, version, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::set_allowlist(org, app, session.user_id, body.workspaces.clone())
    })
    .await?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(AppView::of(&app, version)),
    })
}
