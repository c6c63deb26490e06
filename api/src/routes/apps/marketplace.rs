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
    let client = state.read_models.client().await?;
    let rows = projections::apps::read::marketplace(&client, paging.keyset()).await?;
    Ok(Json(paging.page(rows, |a| ListedApp {
        id: a.app_id,
        name: a.name,
        description: a.description,
        org_id: a.org_id,
        latest_version: a.latest_version,
    })))
}
