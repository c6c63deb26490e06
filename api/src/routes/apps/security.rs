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
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "SELECT origins, callback_urls, visibility, allowlist FROM rm.apps WHERE app_id = $1",
            &[&app],
        )
        .await?;
    let members = client
        .query(
            "SELECT user_id, role FROM rm.app_members WHERE app_id = $1 ORDER BY user_id LIMIT 200",
            &[&app],
        )
        .await?
        .iter()
        .map(|r| AppMemberView {
            user_id: r.get(0),
            role: r.get(1),
        })
        .collect();
    let mut approved_scopes: BTreeMap<String, Vec<String>> = [
        ("test".to_owned(), Vec::new()),
        ("live".to_owned(), Vec::new()),
    ]
    .into();
    for r in client
        .query(
            "SELECT mode, array_agg(DISTINCT scope ORDER BY scope) FROM rm.access_requests, \
                 jsonb_array_elements_text(scopes) AS scope \
             WHERE app_id = $1 AND state = 'approved' GROUP BY mode",
            &[&app],
        )
        .await?
    {
        approved_scopes.insert(r.get(0), r.get(1));
    }
    let PgJson(origins) = row.get(0);
    let PgJson(callback_urls) = row.get(1);
    let PgJson(allowlist) = row.get(3);
    Ok(Json(SecurityView {
        members,
        origins,
        callback_urls,
        visibility: row.get(2),
        allowlist,
        approved_scopes,
    }))
}
