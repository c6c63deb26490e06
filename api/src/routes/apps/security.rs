//! The Security page.

#[allow(unused_imports)]
use super::*;

/// The Security page of an app.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityView {
    /// App team members (at most the first 200; the members list pages).
    pub members: Vec<AppMemberView>,
    /// Allowed browser origins.
    pub origins: Vec<String>,
    /// OAuth callback URLs.
    pub callback_urls: Vec<String>,
    /// `private`, `unlisted` or `public`.
    pub visibility: String,
    /// Workspaces that may install it while private.
    pub allowlist: Vec<Uuid>,
    /// The scopes its credentials carry, per mode: those of approved
    /// products only.
    pub approved_scopes: BTreeMap<String, Vec<String>>,
}

/// The Security page: who holds the app, where it may be called from, who
/// may install it, and the scopes its credentials carry.
#[utoipa::path(get, path = "/v1/apps/{app}/security", tag = "apps",
    responses((status = 200, body = SecurityView), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn security(
    State(state): State<AppState>,
    Path(app): Path<Uuid>,
    _reader: AppReader,
) -> Result<Json<SecurityView>, ApiError> {
    let client = state.read_models.client().await?;
    let reach = projections::apps::read::app_reach(&client, app).await?;
    let members = projections::apps::read::first_app_members(&client, app)
        .await?
        .into_iter()
        .map(AppMemberView::from)
        .collect();
    let mut approved_scopes: BTreeMap<String, Vec<String>> = [
        ("test".to_owned(), Vec::new()),
        ("live".to_owned(), Vec::new()),
    ]
    .into();
    for (mode, scopes) in projections::apps::read::approved_scopes(&client, app).await? {
        approved_scopes.insert(mode, scopes);
    }
    Ok(Json(SecurityView {
        members,
        origins: reach.origins,
        callback_urls: reach.callback_urls,
        visibility: reach.visibility,
        allowlist: reach.allowlist,
        approved_scopes,
    }))
}
