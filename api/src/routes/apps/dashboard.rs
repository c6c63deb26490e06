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
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "SELECT \
               (SELECT count(*) FROM rm.apps WHERE org_id = $1 AND deleted_at IS NULL), \
               (SELECT count(DISTINCT a.app_id) FROM rm.apps a JOIN rm.app_versions v USING (app_id) \
                 WHERE a.org_id = $1 AND a.deleted_at IS NULL AND v.state = 'published'), \
               (SELECT count(*) FROM rm.apps a JOIN rm.app_versions v USING (app_id) \
                 WHERE a.org_id = $1 AND a.deleted_at IS NULL AND v.state = 'draft')",
            &[&org],
        )
        .await?;
    let by_status = client
        .query(
            "SELECT status, count(*) FROM rm.apps WHERE org_id = $1 AND deleted_at IS NULL GROUP BY status",
            &[&org],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(Json(DashboardView {
        app_count: row.get(0),
        published_app_count: row.get(1),
        draft_version_count: row.get(2),
        by_status,
        apps,
    }))
}
