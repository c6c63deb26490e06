//! The marketplace of public apps.

#[allow(unused_imports)]
use super::*;

/// A listed app.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedApp {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The publisher's organisation.
    pub org_id: Uuid,
    /// The latest published version's label.
    pub latest_version: String,
}

/// Public apps with a published version, for every signed-in user: the
/// listing `public` visibility buys (unlisted apps install by link only).
#[utoipa::path(get, path = "/v1/marketplace", tag = "apps",
    params(PageQuery),
    responses((status = 200, body = Page<ListedApp>)),
    security(("bearer" = [])))]
pub async fn marketplace(
    State(state): State<AppState>,
    min: MinPosition,
    _session: Session,
    paging: Paging<(DateTime<Utc>, Uuid)>,
) -> Result<Json<Page<ListedApp>>, ApiError> {
    min.wait(&state, &["apps"]).await?;
    let client = state.pool.get().await?;
    let select = "SELECT a.app_id, a.name, a.description, a.org_id, v.label, a.created_at \
         FROM rm.apps a \
         JOIN LATERAL (SELECT label FROM rm.app_versions v WHERE v.app_id = a.app_id \
             AND v.state = 'published' ORDER BY v.published_at DESC LIMIT 1) v ON true \
         WHERE a.visibility = 'public' AND a.status = 'active'";
    let page = page::fetch(
        &client,
        &paging,
        select,
        ("a.created_at", "a.app_id"),
        &[],
        |r| ListedApp {
            id: r.get(0),
            name: r.get(1),
            description: r.get(2),
            org_id: r.get(3),
            latest_version: r.get(4),
        },
    )
    .await?;
    Ok(Json(page))
}
