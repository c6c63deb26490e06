//! The app's team members.

#[allow(unused_imports)]
use super::*;

/// An app team member.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppMemberView {
    /// User.
    pub user_id: Uuid,
    /// `admin` or `developer`.
    pub role: String,
}

/// The app's team members (Security page).
#[utoipa::path(get, path = "/v1/apps/{app}/members", tag = "apps",
    params(PageQuery),
    responses((status = 200, body = Page<AppMemberView>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_app_members(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    _reader: AppReader,
    paging: Paging<Uuid>,
) -> Result<Json<Page<AppMemberView>>, ApiError> {
    let client = state.read_models.client().await?;
    let rows =
        projections::apps::read::app_members(&client, app, paging.after, paging.fetch()).await?;
    let items = rows.into_iter().map(AppMemberView::from).collect();
    Ok(Json(Page::new(items, &paging, |m| m.user_id)))
}

impl From<projections::apps::read::AppMemberRow> for AppMemberView {
    fn from(m: projections::apps::read::AppMemberRow) -> Self {
        AppMemberView {
            user_id: m.user_id,
            role: m.role,
        }
    }
}

/// `PUT /v1/apps/{app}/members/{user}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppMemberRequest {
    /// `admin` or `developer`.
    pub role: String,
}

/// Make an organisation member an app admin or app developer.
#[utoipa::path(put, path = "/v1/apps/{app}/members/{user}", tag = "apps",
    request_body = AppMemberRequest,
    responses((status = 200, body = AppMemberView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_app_member(
    State(state): State<AppState>,
    Path((app_id, user)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
    ApiJson(body): ApiJson<AppMemberRequest>,
) -> Result<Committed<AppMemberView>, ApiError> {
    let role = wire(&body.role, "/role", AppRole::parse, "admin or developer")?;
    let (after, _, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::set_member(org, app, session.user_id, user, role)
    })
    .await?;
    let role = after
        .members
        .get(&user)
        .cloned()
        .ok_or(ApiError::NotFound)?;
    Ok(Committed {
        status: StatusCode::OK,
        position,
        body: Some(AppMemberView {
            user_id: user,
            role,
        }),
    })
}

/// Remove an app team member.
#[utoipa::path(delete, path = "/v1/apps/{app}/members/{user}", tag = "apps",
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn remove_app_member(
    State(state): State<AppState>,
    Path((app_id, user)): Path<(Uuid, Uuid)>,
    meta: RequestMeta,
    session: Session,
) -> Result<Committed<()>, ApiError> {
    let (_, _, position) = by_member(&state, app_id, &meta, &session, |org, app| {
        apps::remove_member(org, app, session.user_id, user)
    })
    .await?;
    Ok(Committed {
        status: StatusCode::NO_CONTENT,
        position,
        body: None,
    })
}
