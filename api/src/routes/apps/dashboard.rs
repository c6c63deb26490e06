//! The developer dashboard.

#[allow(unused_imports)]
use super::*;

/// The developer dashboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardView {
    /// Apps (not deleted).
    pub app_count: i64,
    /// Apps with at least one published version.
    pub published_app_count: i64,
    /// Draft versions across the apps.
    pub draft_version_count: i64,
    /// Apps by status.
    pub by_status: BTreeMap<String, i64>,
    /// The first page of apps.
    pub apps: Page<AppView>,
}

/// The developer dashboard: counts and the first page of apps.
#[utoipa::path(get, path = "/v1/orgs/{org}/dashboard", tag = "apps",
    responses((status = 200, body = DashboardView), (status = 402, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn dashboard(
    State(state): State<AppState>,
    Path(org): Path<Uuid>,
    reader: WorkspaceReader,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<DashboardView>, ApiError> {
    let Json(apps) = list_apps(State(state.clone()), Path(org), reader, paging).await?;
    let client = state.read_models.client().await?;
    let counts = projections::apps::read::dashboard_counts(&client, org).await?;
    let by_status = projections::apps::read::org_apps_by_status(&client, org).await?;
    Ok(Json(DashboardView {
        app_count: counts.apps,
        published_app_count: counts.published_apps,
        draft_version_count: counts.draft_versions,
        by_status,
        apps,
    }))
}
